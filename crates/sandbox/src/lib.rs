//! Runs the WebAssembly guests of `lambda` hooks under wasmtime.
//!
//! One [`Sandbox`] per server: it owns two engines (pooling allocators that
//! reset a dropped instance's memory differently, chosen per guest by the
//! size its memories start at; `engine.rs` says why), one linker per guest
//! kind and engine, the epoch ticker, and the guests compiled so far (in
//! memory, and precompiled on disk so a restart does not recompile).
//!
//! - [`Sandbox::inspect`] accepts a component of world `hookd:lambda/lambda`
//!   or a WASI preview-1 command module, and reports its imports classed
//!   into capabilities; anything else is a [`GuestRejected`] with its reason.
//! - [`Sandbox::invoke`] runs one guest on one event in a fresh `Store`,
//!   with the WASI context built from nothing but the [`EffectiveGrant`],
//!   and returns the guest's answer or a typed [`Failure`], with the audit
//!   records of every checked decision.
//! - [`Sandbox::run_chain`] runs a hook's `functions` in order.
#![deny(missing_docs)]

mod apply;
mod audit;
mod chain;
mod engine;
mod guest;
mod http;
mod invoke;
mod kept;
mod output;
mod secrets;

pub use chain::{ChainFailure, ChainOutcome, GuestSource, SourceError, Step};
pub use guest::{CacheCounters, Guest, GuestKind, GuestRejected, GuestReport, digest};
pub use hookd_model::audit::{AuditRecord, CapabilityClass, GuestRef, Verdict};
pub use hookd_model::capability::{EffectiveGrant, SandboxCeiling, ServerSecrets, UntrustedWasm};
pub use invoke::{Failure, Instance, Invocation, Outcome, OutputStats};
pub use kept::{
    MAX_IDLE_INSTANCES, MAX_IDLE_MEMORY, MAX_INSTANCE_AGE, MAX_INSTANCE_CALLS, ReuseLimits,
};
pub use secrets::resolve_path;

use hookd_model::clock::{Clock, SystemClock};
use hookd_outbound::Dialer;
use std::path::PathBuf;
use std::sync::Arc;

/// The guest contract: the WIT of world `hookd:lambda/lambda` that this
/// crate's host side implements, embedded for `hookd wit`, `GET /wit` and
/// the projects `hookd guests new` writes.
pub const WIT: &str = include_str!("../../../wit/lambda.wit");

/// What can go wrong in the sandbox itself (a guest's own failure is a
/// [`Failure`], a refused upload a [`GuestRejected`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The wasmtime engine or a linker could not be set up.
    #[error("cannot set up the WebAssembly engine")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The compiled-guest cache directory could not be created.
    #[error("cannot create the compiled-guest cache directory {path}")]
    CacheDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Result of the sandbox's own operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Largest guest accepted by default: 64 MiB.
pub const MAX_GUEST_BYTES: usize = 64 << 20;
/// Largest result a guest may return by default: 1 MiB.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;
/// Bytes of a guest's stdout and of its stderr kept per invocation by
/// default: 16 KiB each; the rest is counted and dropped.
pub const MAX_STDIO_BYTES: usize = 16 << 10;
/// Lines per invocation a guest may put in the server log by default, from
/// each of its `log` calls, its stdout and its stderr.
pub const MAX_LOG_LINES: usize = 100;
/// Longest guest line logged by default (a `log` message, a line of stdout
/// or stderr): 1 KiB; the rest of the line is dropped.
pub const MAX_LINE_BYTES: usize = 1 << 10;
/// Distinct audit records per invocation by default (repeats of a decision
/// are counted in its record; see [`AuditRecord::count`]).
pub const MAX_AUDIT_RECORDS: usize = 100;
/// Bytes of `log` messages kept per invocation by default: 16 KiB.
pub const MAX_LOG_BYTES: usize = 16 << 10;

/// How the sandbox is set up: the server's `untrusted_wasm` mode and
/// ceiling, and the bounds of what a guest may produce.
///
/// # Defaults
///
/// [`SandboxConfig::default`] is mode `sandbox` with the default ceiling
/// (no env, no dirs, no HTTP host; see [`SandboxCeiling`]), an outbound
/// policy that refuses every private, loopback and link-local address, no
/// on-disk cache, guests up to [`MAX_GUEST_BYTES`] (64 MiB), results up to
/// [`MAX_OUTPUT_BYTES`] (1 MiB), [`MAX_STDIO_BYTES`] (16 KiB) kept of each
/// of stdout and stderr, at most [`MAX_LOG_LINES`] (100) lines logged of
/// each of `log` calls, stdout and stderr per invocation, each at most
/// [`MAX_LINE_BYTES`] (1 KiB), `log` calls at most [`MAX_LOG_BYTES`]
/// (16 KiB) in all, [`MAX_AUDIT_RECORDS`] (100) distinct audit records
/// per invocation, and kept instances (hooks with `instance = "reused"`)
/// within [`ReuseLimits::default`].
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// `untrusted_wasm`.
    pub mode: UntrustedWasm,
    /// The operator's ceiling (the outbound address policy included) and
    /// the limits' defaults and maxima.
    pub ceiling: SandboxCeiling,
    /// Directory of precompiled guests (`<data_dir>/compiled`); `None`
    /// keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Largest guest accepted, in bytes.
    pub max_guest_bytes: usize,
    /// Largest result a guest may return, in bytes.
    pub max_output_bytes: usize,
    /// Bytes kept of each of stdout and stderr per invocation.
    pub max_stdio_bytes: usize,
    /// Lines logged per invocation from each of `log`, stdout and stderr.
    pub max_log_lines: usize,
    /// Longest line logged; longer lines are cut.
    pub max_line_bytes: usize,
    /// Distinct audit records per invocation; past them, decisions are
    /// counted in one record per capability and verdict.
    pub max_audit_records: usize,
    /// Bytes of `log` messages kept per invocation.
    pub max_log_bytes: usize,
    /// The clock of audit records.
    pub clock: Arc<dyn Clock>,
    /// Bounds on the instances kept for hooks that reuse them.
    pub reuse: ReuseLimits,
    /// Values that granted environment variables take instead of this
    /// process's own: `hookd guests run --env NAME=VALUE`. Empty in the
    /// server, whose guests read its environment.
    pub env_values: std::collections::BTreeMap<String, String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            mode: UntrustedWasm::default(),
            ceiling: SandboxCeiling::default(),
            cache_dir: None,
            max_guest_bytes: MAX_GUEST_BYTES,
            max_output_bytes: MAX_OUTPUT_BYTES,
            max_stdio_bytes: MAX_STDIO_BYTES,
            max_log_lines: MAX_LOG_LINES,
            max_log_bytes: MAX_LOG_BYTES,
            max_line_bytes: MAX_LINE_BYTES,
            max_audit_records: MAX_AUDIT_RECORDS,
            clock: Arc::new(SystemClock),
            reuse: ReuseLimits::default(),
            env_values: Default::default(),
        }
    }
}

/// The server's sandbox: cheap to clone, shared by every worker.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    /// Dials under `config.ceiling.outbound`, shared with each call's HTTP
    /// hooks.
    outbound: Dialer,
    runtime: engine::Runtime,
    guests: guest::Guests,
    /// Idle instances of hooks that reuse them.
    instances: kept::Instances,
}

impl Sandbox {
    /// Builds the engines and linkers, starts the epoch ticker (stopped
    /// when the last clone is dropped) and creates the cache directory.
    pub fn new(config: SandboxConfig) -> Result<Self> {
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir).map_err(|source| Error::CacheDir {
                path: dir.clone(),
                source,
            })?;
        }
        let runtime = engine::Runtime::new(&config)?;
        Ok(Sandbox {
            inner: Arc::new(Inner {
                outbound: Dialer::new(config.ceiling.outbound.clone()),
                instances: kept::Instances::new(config.reuse),
                config,
                runtime,
                guests: guest::Guests::default(),
            }),
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// Drops the instances kept for `hook_id` that were made at or before
    /// `until_ms`: the hook was deleted, or replaced by a hook of the same
    /// id, at that time.
    pub fn forget_hook(&self, hook_id: uuid::Uuid, until_ms: hookd_model::UnixMillis) {
        self.inner.instances.forget_hook(hook_id, until_ms);
    }

    /// How many kept instances are idle, across every hook.
    pub fn idle_instances(&self) -> usize {
        self.inner.instances.idle()
    }

    /// What one guest of a lambda hook gets under this server's mode and
    /// ceiling (what `GET /event-hooks/{id}/capabilities` shows).
    pub fn grant(
        &self,
        lambda: &hookd_model::hook::LambdaConfig,
        guest: &GuestReport,
    ) -> EffectiveGrant {
        let c = &self.inner.config;
        EffectiveGrant::new(
            c.mode,
            &c.ceiling,
            &lambda.capabilities,
            &lambda.limits,
            &guest.capabilities,
        )
    }
}

/// A guest's static audit: each import with its capability class, and
/// what the server's mode and ceiling would grant or deny a hook that
/// asked for everything they allow. `GET /guests/{id}/audit` and
/// `hookd guest inspect` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GuestAudit {
    /// Each import and its class (none for plumbing such as `wasi:io`).
    pub imports: Vec<ImportClass>,
    /// The classes the guest imports.
    pub capabilities: Vec<CapabilityClass>,
    /// The server's mode.
    pub mode: UntrustedWasm,
    /// The server's ceiling.
    pub ceiling: SandboxCeiling,
    /// Classes a hook could get for this guest.
    pub would_grant: Vec<CapabilityClass>,
    /// What it could not get, and why.
    pub would_deny: Vec<hookd_model::capability::Withheld>,
}

/// One import and its capability class.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportClass {
    /// The import's name.
    pub import: String,
    /// Its class, if it reaches anything by itself.
    pub capability: Option<CapabilityClass>,
}

impl Sandbox {
    /// The static audit of a guest under this server's mode and ceiling.
    pub fn audit(&self, report: &GuestReport) -> GuestAudit {
        let c = &self.inner.config;
        let grant = EffectiveGrant::widest(c.mode, &c.ceiling, &report.capabilities);
        GuestAudit {
            imports: report
                .imports
                .iter()
                .map(|i| ImportClass {
                    import: i.clone(),
                    capability: CapabilityClass::of_import(i),
                })
                .collect(),
            capabilities: report.capabilities.clone(),
            mode: c.mode,
            ceiling: c.ceiling.clone(),
            would_grant: grant.usable,
            would_deny: grant.withheld,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_model::outbound::OutboundPolicy;

    #[test]
    fn the_sandbox_config_defaults() {
        let c = SandboxConfig::default();
        assert_eq!(c.mode, UntrustedWasm::Sandbox);
        assert_eq!(c.ceiling, SandboxCeiling::default());
        assert_eq!(c.ceiling.outbound, OutboundPolicy::default());
        assert_eq!(c.cache_dir, None);
        assert_eq!(
            (c.max_guest_bytes, c.max_output_bytes, c.max_stdio_bytes),
            (64 << 20, 1 << 20, 16 << 10)
        );
        assert_eq!((c.max_log_lines, c.max_log_bytes), (100, 16 << 10));
        assert_eq!((c.max_line_bytes, c.max_audit_records), (1 << 10, 100));
    }

    #[test]
    fn the_audit_in_on_mode_grants_every_kind_the_guest_imports() {
        let sandbox = Sandbox::new(SandboxConfig {
            mode: UntrustedWasm::On,
            ..SandboxConfig::default()
        })
        .unwrap();
        let imported = [
            CapabilityClass::Http,
            CapabilityClass::Filesystem,
            CapabilityClass::Environment,
        ];
        let report = GuestReport {
            digest: digest(b""),
            size: 0,
            kind: GuestKind::Component,
            imports: Vec::new(),
            exports: Vec::new(),
            capabilities: imported.to_vec(),
        };
        let audit = sandbox.audit(&report);
        assert_eq!(audit.would_grant, imported);
        assert!(audit.would_deny.is_empty(), "{:?}", audit.would_deny);
    }
}
