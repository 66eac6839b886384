//! One guest call: a fresh `Store` (or, for a hook that reuses instances,
//! one kept from its earlier events), the WASI context built from the
//! grant, limits, captured output, and the failure told apart.

use crate::apply::GuestContext;
use crate::audit::Auditor;
use crate::engine::TICK;
use crate::guest::{Guest, Prepared};
use crate::http::HttpPolicy;
use crate::kept::{Fit, Kept};
use crate::output::{Capture, LineBudget};
use crate::{
    AuditRecord, CapabilityClass, EffectiveGrant, GuestRef, Sandbox, UntrustedWasm, Verdict,
};
use hookd_model::capability::ResolvedLimits;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "lambda",
        path: "../../wit",
        exports: { default: async },
    });
}

use bindings::hookd::lambda::host::Level;

/// One call of a prepared guest: the event, what it may use, and where its
/// output and decisions go.
struct Call<'a> {
    grant: &'a EffectiveGrant,
    /// The guest's engine, which its stores must use.
    engine: &'a wasmtime::Engine,
    /// Whether the guest imports WASI: if not, it gets no WASI context.
    imports_wasi: bool,
    inv: Invocation<'a>,
    io: &'a Io,
    audit: &'a Auditor,
    /// When the call began: the one clock reading its deadline and the
    /// kept instances' age are measured from.
    started: Instant,
}

/// One event for one guest.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// The hook whose chain runs the guest.
    pub hook_id: Uuid,
    /// The name the guest runs under (for logs and audit records).
    pub guest_name: &'a str,
    /// The event's id.
    pub event_id: Uuid,
    /// The event's source.
    pub source: &'a str,
    /// The event's name.
    pub event: &'a str,
    /// The data, JSON: the event's, or the previous guest's output.
    pub data: String,
    /// The instance it runs on.
    pub instance: Instance,
}

/// Which instance a call runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instance {
    /// A new one, dropped after the call.
    Fresh,
    /// One kept for the hook's events, made for `version` of its lambda
    /// configuration: an idle one if there is one, else a new one, kept
    /// after the call unless the call ended badly. A preview-1 command
    /// cannot be called twice and always runs fresh.
    Reused {
        /// Stands for the hook's lambda configuration: any change makes
        /// the instances of older versions unfit.
        version: u64,
        /// The guest's place in the hook's chain: each place keeps its
        /// own instances.
        step: usize,
    },
}

/// Why a call did not produce data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum Failure {
    /// Mode `off`.
    #[error("lambda hooks are disabled: untrusted_wasm = off")]
    Disabled,
    /// The guest returned an error (or a command exited non-zero).
    #[error("the guest failed: {0}")]
    GuestError(String),
    /// The call ran past its wall-time limit, in milliseconds.
    #[error("the guest exceeded its time limit of {0} ms")]
    Timeout(u64),
    /// The guest tried to grow its memory past the limit, in bytes.
    #[error("the guest exceeded its memory limit of {0} bytes")]
    MemoryLimit(u64),
    /// The guest used all its fuel.
    #[error("the guest ran out of fuel ({0})")]
    FuelExhausted(u64),
    /// The guest overflowed its call stack.
    #[error("the guest overflowed its stack")]
    StackOverflow,
    /// Any other trap.
    #[error("the guest trapped: {0}")]
    Trap(String),
    /// The guest's result is larger than the server accepts.
    #[error("the guest's output of {size} bytes exceeds the limit of {max} bytes")]
    OutputTooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The server could not run the guest (not the guest's fault).
    #[error("cannot run the guest: {0}")]
    Host(String),
}

/// How much the guest wrote, and how much of it was dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutputStats {
    /// Bytes written to stdout (a command's stdout is its result, counted
    /// in neither field).
    pub stdout_bytes: u64,
    /// Bytes written to stderr.
    pub stderr_bytes: u64,
    /// Bytes of stdout and stderr not logged, past the bound.
    pub stdio_dropped_bytes: u64,
    /// Lines of stdout and stderr not logged (or cut short), past the
    /// bounds of lines per call and bytes per line.
    pub stdio_dropped_lines: u64,
    /// `log` calls logged.
    pub log_lines: u64,
    /// `log` calls dropped (or cut short), past the bound.
    pub log_dropped: u64,
}

/// What a call produced.
#[derive(Debug)]
pub struct Outcome {
    /// The guest's data (`None`: pass the input on unchanged) or why not.
    pub result: Result<Option<String>, Failure>,
    /// Every checked decision, allowed and denied, in order.
    pub audit: Vec<AuditRecord>,
    /// How much it wrote.
    pub output: OutputStats,
    /// Wall time of the call, instantiation included.
    pub elapsed: Duration,
    /// Whether it ran on an instance that had served earlier events.
    pub reused: bool,
    /// The largest linear memory the guest had, bytes (a kept instance's
    /// since it was made: its memory never shrinks).
    pub peak_memory: u64,
}

/// `StoreLimits` with `trap_on_grow_failure(true)`, remembering that it
/// refused a memory, so a memory kill is told apart from other traps
/// without reading error text, and reporting the largest memory it let a
/// guest have.
pub(crate) struct Limiter {
    inner: StoreLimits,
    memory_refused: bool,
    /// The largest linear memory granted so far, bytes.
    peak: usize,
    /// Where the current call reads `peak`.
    report: Arc<AtomicU64>,
}

impl Limiter {
    fn new(memory: u64, report: Arc<AtomicU64>) -> Self {
        Limiter {
            inner: StoreLimitsBuilder::new()
                .memory_size(usize::try_from(memory).unwrap_or(usize::MAX))
                .trap_on_grow_failure(true)
                .build(),
            memory_refused: false,
            peak: 0,
            report,
        }
    }

    /// Starts a call of a kept instance: nothing refused yet, the peak so
    /// far (its memory never shrinks) reported to the new call.
    fn begin_call(&mut self, report: Arc<AtomicU64>) {
        self.memory_refused = false;
        report.store(self.peak as u64, Ordering::Relaxed);
        self.report = report;
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let r = self.inner.memory_growing(current, desired, maximum);
        if matches!(r, Ok(true)) {
            self.peak = self.peak.max(desired);
            self.report.store(self.peak as u64, Ordering::Relaxed);
        } else {
            self.memory_refused = true;
        }
        r
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_refused = true;
        self.inner.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// The `log` import's budget for one call.
struct GuestLog {
    hook_id: Uuid,
    guest: String,
    budget: LineBudget,
    /// Calls logged.
    lines: u64,
    /// Calls dropped or cut short.
    dropped: u64,
}

macro_rules! at_level {
    ($level:expr, $($event:tt)*) => {
        match $level {
            Level::Trace => tracing::trace!($($event)*),
            Level::Debug => tracing::debug!($($event)*),
            Level::Info => tracing::info!($($event)*),
            Level::Warn => tracing::warn!($($event)*),
            Level::Error => tracing::error!($($event)*),
        }
    };
}

impl GuestLog {
    fn log(&mut self, level: Level, message: &str) {
        let Some(kept) = self.budget.admit(message) else {
            self.dropped += 1;
            return;
        };
        if kept.len() < message.len() {
            self.dropped += 1;
        }
        self.lines += 1;
        at_level!(level, target: "hookd::guest", hook = %self.hook_id, guest = %self.guest, "{kept}");
    }
}

/// Store data of a component call.
pub(crate) struct ComponentState {
    /// Built from the grant for a guest that imports WASI; `None` for one
    /// that imports none, which cannot call it (measured: building a
    /// context is ~3% of a fresh instance, its random generators seeded).
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: HttpPolicy,
    limiter: Limiter,
    log: Arc<Mutex<GuestLog>>,
}

impl ComponentState {
    /// The guest's linear memory now, bytes (it never shrinks).
    pub(crate) fn memory(&self) -> u64 {
        self.limiter.peak as u64
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            // Unreachable for a guest without WASI imports; should it ever
            // be asked, it gets a context that grants nothing.
            ctx: self.wasi.get_or_insert_with(|| sealed().build()),
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl bindings::hookd::lambda::types::Host for ComponentState {}

impl bindings::hookd::lambda::host::Host for ComponentState {
    fn log(&mut self, level: Level, message: String) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .log(level, &message);
    }
}

/// Store data of a preview-1 command call.
pub(crate) struct CommandState {
    pub wasi: WasiP1Ctx,
    limiter: Limiter,
}

trait Limited {
    fn limiter(&mut self) -> &mut Limiter;
}

impl Limited for ComponentState {
    fn limiter(&mut self) -> &mut Limiter {
        &mut self.limiter
    }
}

impl Limited for CommandState {
    fn limiter(&mut self) -> &mut Limiter {
        &mut self.limiter
    }
}

/// Output shared between the store and the caller, so it survives a call
/// abandoned at its deadline.
struct Io {
    stdout: Capture,
    stderr: Capture,
    log: Arc<Mutex<GuestLog>>,
    /// What each of stdout and stderr may put in the server log.
    stdio_lines: LineBudget,
    /// The guest's largest memory, bytes.
    peak_memory: Arc<AtomicU64>,
}

impl Sandbox {
    /// Runs `guest` on one event with what `grant` allows. Never panics on
    /// guest behaviour; every way a call can end is in [`Outcome::result`].
    /// Cheap enough for a tight loop: per call, one `Store`, one WASI
    /// context and one instantiation from the prepared guest.
    pub async fn invoke(
        &self,
        guest: &Guest,
        grant: &EffectiveGrant,
        inv: Invocation<'_>,
    ) -> Outcome {
        let started = Instant::now();
        let config = &self.inner.config;
        if config.mode == UntrustedWasm::Off || grant.mode == UntrustedWasm::Off {
            return Outcome {
                result: Err(Failure::Disabled),
                audit: Vec::new(),
                output: OutputStats::default(),
                elapsed: started.elapsed(),
                reused: false,
                peak_memory: 0,
            };
        }
        let guest_ref = GuestRef {
            name: inv.guest_name.to_string(),
            digest: guest.digest().to_string(),
        };
        let audit = Auditor::new(
            inv.hook_id,
            guest_ref,
            Arc::clone(&config.clock),
            config.max_audit_records,
        );
        let reuse = match (inv.instance, &guest.prepared) {
            (Instance::Reused { version, step }, Prepared::Component(_)) => {
                let fit = Fit {
                    hook_id: inv.hook_id,
                    step,
                    digest: guest.digest().to_string(),
                    version,
                };
                let kept = self.inner.instances.take(&fit, started);
                Some((fit, kept))
            }
            _ => None,
        };
        let reused = matches!(reuse, Some((_, Some(_))));
        // A kept instance writes into the captures it was made with.
        let (stdout, stderr) = match &reuse {
            Some((_, Some(kept))) => (kept.stdout.emptied(), kept.stderr.emptied()),
            _ => (
                Capture::new(config.max_stdio_bytes),
                Capture::new(config.max_stdio_bytes),
            ),
        };
        let io = Io {
            stdout,
            stderr,
            log: Arc::new(Mutex::new(GuestLog {
                hook_id: inv.hook_id,
                guest: inv.guest_name.to_string(),
                budget: LineBudget::new(
                    config.max_log_lines,
                    config.max_log_bytes,
                    config.max_line_bytes,
                ),
                lines: 0,
                dropped: 0,
            })),
            stdio_lines: LineBudget::new(
                config.max_log_lines,
                config.max_stdio_bytes,
                config.max_line_bytes,
            ),
            peak_memory: Arc::default(),
        };
        let limits = grant.limits;
        let (hook_id, name) = (inv.hook_id, inv.guest_name);
        let call = Call {
            grant,
            engine: guest.engine(),
            imports_wasi: guest.imports_wasi,
            inv,
            io: &io,
            audit: &audit,
            started,
        };
        // Boxed: the call's future is a few KB, which would otherwise be
        // copied into the timeout and through every caller's future.
        let run = Box::pin(async {
            match (&guest.prepared, reuse) {
                (Prepared::Component(pre), Some((fit, kept))) => {
                    self.run_kept(pre, fit, kept, call).await
                }
                (Prepared::Component(pre), None) => {
                    let (mut store, lambda) = self.instantiate(pre, &call).await?;
                    call_handle(&mut store, &lambda, call, self.max_output()).await
                }
                (Prepared::Command(pre), _) => self.run_command(pre, call).await,
            }
        });
        // Ends a guest waiting in a host call (an HTTP response, a sleep)
        // as well as one computing (it yields every epoch tick). A kept
        // instance abandoned here is dropped with the call.
        let result = tokio::time::timeout_at(deadline(started, limits.timeout_ms), run)
            .await
            .unwrap_or(Err(Failure::Timeout(limits.timeout_ms)));
        let output = emit_output(hook_id, name, &io);
        Outcome {
            result,
            audit: audit.take(),
            output,
            elapsed: started.elapsed(),
            reused,
            peak_memory: io.peak_memory.load(Ordering::Relaxed),
        }
    }

    /// A new instance of a component guest, its WASI context built from
    /// the call's grant and writing into the call's captures.
    async fn instantiate(
        &self,
        pre: &bindings::LambdaPre<ComponentState>,
        call: &Call<'_>,
    ) -> Result<(Store<ComponentState>, bindings::Lambda), Failure> {
        let rt = &self.inner.runtime;
        // A guest without WASI imports has nothing granted either (the
        // grant is cut to its imports): no context to build.
        let (wasi, http_hosts) = if call.imports_wasi {
            let GuestContext {
                mut wasi,
                http_hosts,
                ..
            } = self.wasi_builder(call.grant, call.audit);
            wasi.stdout(call.io.stdout.clone())
                .stderr(call.io.stderr.clone());
            (Some(wasi.build()), http_hosts)
        } else {
            (None, Vec::new())
        };
        let mut store = self.call_store(call, |limiter| ComponentState {
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: HttpPolicy {
                hosts: http_hosts.into(),
                outbound: self.inner.outbound.clone(),
                tls: rt.tls.clone(),
                audit: call.audit.clone(),
            },
            limiter,
            log: call.io.log.clone(),
        })?;
        let lambda = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| failure(e, &mut store, &call.grant.limits))?;
        Ok((store, lambda))
    }

    /// A call on the hook's kept instance (or a new one, to be kept): given
    /// back after a call that ended well or with the guest's own error,
    /// dropped after a trap, a memory kill or any other failure, whose
    /// state cannot be trusted.
    async fn run_kept(
        &self,
        pre: &bindings::LambdaPre<ComponentState>,
        fit: Fit,
        kept: Option<Kept>,
        call: Call<'_>,
    ) -> Result<Option<String>, Failure> {
        let mut kept = match kept {
            Some(mut kept) => {
                let state = kept.store.data_mut();
                state.log = call.io.log.clone();
                state.hooks.audit = call.audit.clone();
                state.limiter.begin_call(call.io.peak_memory.clone());
                arm(&mut kept.store, self.metered(), &call.grant.limits)?;
                kept
            }
            None => {
                let (store, lambda) = self.instantiate(pre, &call).await?;
                Kept::new(
                    store,
                    lambda,
                    call.io.stdout.clone(),
                    call.io.stderr.clone(),
                    call.started,
                    self.inner.config.clock.now_ms(),
                )
            }
        };
        let started = call.started;
        let result = call_handle(&mut kept.store, &kept.lambda, call, self.max_output()).await;
        if matches!(
            result,
            Ok(_) | Err(Failure::GuestError(_) | Failure::OutputTooLarge { .. })
        ) {
            self.inner.instances.give_back(fit, kept, started);
        }
        result
    }

    async fn run_command(
        &self,
        pre: &wasmtime::InstancePre<CommandState>,
        mut call: Call<'_>,
    ) -> Result<Option<String>, Failure> {
        let max = self.inner.config.max_output_bytes;
        // stdout is the result: kept whole up to the limit, one byte more
        // tells that it was exceeded.
        let result = Capture::new(max.saturating_add(1));
        // A command has no wasi:http: the granted hosts go unused.
        let mut wasi = self.wasi_builder(call.grant, call.audit).wasi;
        wasi.stdin(MemoryInputPipe::new(std::mem::take(&mut call.inv.data)))
            .stdout(result.clone())
            .stderr(call.io.stderr.clone())
            .arg(call.inv.guest_name);
        let mut store = self.call_store(&call, |limiter| CommandState {
            wasi: wasi.build_p1(),
            limiter,
        })?;
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| failure(e, &mut store, &call.grant.limits))?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|e| Failure::Host(format!("{e:#}")))?;
        let status = match start.call_async(&mut store, ()).await {
            Ok(()) => 0,
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(I32Exit(code)) => *code,
                None => return Err(failure(e, &mut store, &call.grant.limits)),
            },
        };
        let (out, written) = result.take();
        if status != 0 {
            let err = call.io.stderr.peek(512);
            let err = String::from_utf8_lossy(&err);
            return Err(Failure::GuestError(format!(
                "exited with status {status}: {}",
                err.trim()
            )));
        }
        if written > max as u64 {
            return Err(Failure::OutputTooLarge {
                size: written,
                max: max as u64,
            });
        }
        let out = String::from_utf8(out)
            .map_err(|_| Failure::GuestError("stdout is not UTF-8".into()))?;
        Ok((!out.trim().is_empty()).then_some(out))
    }

    /// A store for a new instance of `call`'s guest: `state`, around the
    /// call's memory limiter, armed with the call's deadline and fuel.
    fn call_store<T: Limited + 'static>(
        &self,
        call: &Call<'_>,
        state: impl FnOnce(Limiter) -> T,
    ) -> Result<Store<T>, Failure> {
        let limiter = Limiter::new(call.grant.limits.memory, call.io.peak_memory.clone());
        let mut store = Store::new(call.engine, state(limiter));
        store.limiter(|s| s.limiter());
        arm(&mut store, self.metered(), &call.grant.limits)?;
        Ok(store)
    }

    fn metered(&self) -> bool {
        self.inner.config.ceiling.fuel_metering
    }

    fn max_output(&self) -> usize {
        self.inner.config.max_output_bytes
    }

    /// A WASI context with nothing but the grant (no inherited stdio, env,
    /// args or network; sockets and name lookup off), and the granted
    /// hosts for the wasi-http hook.
    fn wasi_builder(&self, grant: &EffectiveGrant, audit: &Auditor) -> GuestContext<'_> {
        let mut wasi = sealed();
        // Unreachable while TCP and UDP are off; kept so that a future
        // switch cannot open the network without an audit trail.
        let sockets = audit.clone();
        wasi.socket_addr_check(move |addr, used| {
            sockets.record(
                CapabilityClass::Network,
                addr.to_string(),
                Verdict::Denied,
                Some(format!("raw sockets are never granted ({used:?})")),
            );
            Box::pin(async { false })
        });
        let mut context = GuestContext {
            wasi,
            http_hosts: Vec::new(),
            env_values: &self.inner.config.env_values,
        };
        context.apply(grant, &self.inner.config.ceiling, audit);
        context
    }
}

/// A WASI context builder with nothing inherited and the network off.
fn sealed() -> WasiCtxBuilder {
    let mut wasi = WasiCtxBuilder::new();
    wasi.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    wasi
}

/// When a call begun at `started` must have ended. A timeout too long to
/// add to an `Instant` (the server's maximum is configurable) is capped at
/// 30 years, as tokio caps its own.
fn deadline(started: Instant, timeout_ms: u64) -> tokio::time::Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);
    (started + Duration::from_millis(timeout_ms).min(FAR)).into()
}

/// Sets one call's deadline and fuel: before the first call of an
/// instance, and again before each call of a kept one.
fn arm<T>(store: &mut Store<T>, metered: bool, limits: &ResolvedLimits) -> Result<(), Failure> {
    // Every tick the guest yields to the executor, so a computing guest
    // neither holds a worker thread for its whole deadline nor keeps the
    // caller's timeout from firing; past the deadline it traps.
    let mut ticks_left = limits.timeout_ms.div_ceil(TICK.as_millis() as u64).max(1);
    store.epoch_deadline_callback(move |_| {
        ticks_left -= 1;
        Ok(if ticks_left == 0 {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    store.set_epoch_deadline(1);
    // A metering engine counts every call's fuel, down from zero: an
    // unlimited call gets all there is.
    if metered {
        store
            .set_fuel(limits.fuel.unwrap_or(u64::MAX))
            .map_err(|e| Failure::Host(format!("{e:#}")))?;
    }
    Ok(())
}

/// Calls a component's `handle` with the call's event; its result bounded
/// by `max_output` bytes.
async fn call_handle(
    store: &mut Store<ComponentState>,
    lambda: &bindings::Lambda,
    call: Call<'_>,
    max_output: usize,
) -> Result<Option<String>, Failure> {
    let event = bindings::hookd::lambda::types::Event {
        id: call.inv.event_id.to_string(),
        hook_id: call.inv.hook_id.to_string(),
        source: call.inv.source.to_string(),
        event: call.inv.event.to_string(),
        data: call.inv.data,
    };
    match lambda.call_handle(&mut *store, &event).await {
        Ok(Ok(Some(out))) if out.len() > max_output => Err(Failure::OutputTooLarge {
            size: out.len() as u64,
            max: max_output as u64,
        }),
        Ok(Ok(out)) => Ok(out),
        Ok(Err(message)) => Err(Failure::GuestError(message)),
        Err(e) => Err(failure(e, store, &call.grant.limits)),
    }
}

fn failure<T: Limited>(
    err: wasmtime::Error,
    store: &mut Store<T>,
    limits: &ResolvedLimits,
) -> Failure {
    if store.data_mut().limiter().memory_refused {
        return Failure::MemoryLimit(limits.memory);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Failure::Timeout(limits.timeout_ms),
        Some(Trap::OutOfFuel) => Failure::FuelExhausted(limits.fuel.unwrap_or(u64::MAX)),
        Some(Trap::StackOverflow) => Failure::StackOverflow,
        Some(trap) => Failure::Trap(trap.to_string()),
        None => match err.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => Failure::Trap(format!("the guest exited with status {code}")),
            None => Failure::Trap(err.root_cause().to_string()),
        },
    }
}

/// Writes the captured stdio into the server log, tagged and within each
/// stream's line budget, and counts; one line says what was dropped.
fn emit_output(hook_id: Uuid, guest: &str, io: &Io) -> OutputStats {
    let mut stats = OutputStats::default();
    for (stream, capture) in [("stdout", &io.stdout), ("stderr", &io.stderr)] {
        let (kept, written) = capture.take();
        let text = String::from_utf8_lossy(&kept);
        let mut budget = io.stdio_lines;
        for line in text.lines().filter(|l| !l.is_empty()) {
            match budget.admit(line) {
                Some(shown) => {
                    stats.stdio_dropped_lines += u64::from(shown.len() < line.len());
                    tracing::info!(target: "hookd::guest", hook = %hook_id, guest, stream, "{shown}");
                }
                None => stats.stdio_dropped_lines += 1,
            }
        }
        stats.stdio_dropped_bytes += written - kept.len() as u64;
        if stream == "stdout" {
            stats.stdout_bytes = written;
        } else {
            stats.stderr_bytes = written;
        }
    }
    let log = io.log.lock().unwrap_or_else(|e| e.into_inner());
    stats.log_lines = log.lines;
    stats.log_dropped = log.dropped;
    if stats.stdio_dropped_bytes > 0 || stats.stdio_dropped_lines > 0 || log.dropped > 0 {
        tracing::warn!(target: "hookd::guest", hook = %hook_id, guest,
            stdio_dropped_bytes = stats.stdio_dropped_bytes,
            stdio_dropped_lines = stats.stdio_dropped_lines, log_dropped = log.dropped,
            "guest output past its bounds was dropped");
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_past_what_an_instant_holds_is_capped() {
        let now = Instant::now();
        let far = deadline(now, u64::MAX);
        assert!(far.into_std() > now + Duration::from_secs(29 * 365 * 86_400));
        assert_eq!(
            deadline(now, 1500).into_std(),
            now + Duration::from_millis(1500)
        );
    }

    #[test]
    fn the_log_budget_counts_lines_and_bytes() {
        let mut log = GuestLog {
            hook_id: Uuid::nil(),
            guest: "g".into(),
            budget: LineBudget::new(3, 10, 100),
            lines: 0,
            dropped: 0,
        };
        log.log(Level::Info, "12345");
        log.log(Level::Info, "1234567890");
        log.log(Level::Info, "more");
        assert_eq!((log.lines, log.dropped), (2, 2));
        let mut log = GuestLog {
            budget: LineBudget::new(1, 100, 100),
            lines: 0,
            dropped: 0,
            ..log
        };
        log.log(Level::Warn, "a");
        log.log(Level::Warn, "b");
        assert_eq!((log.lines, log.dropped), (1, 1));
    }
}
