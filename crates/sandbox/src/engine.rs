//! The engine, the two linkers and the epoch ticker.

use crate::invoke::{CommandState, ComponentState, bindings};
use crate::{Error, SandboxConfig};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::component::HasSelf;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// One epoch tick: the granularity of invocation deadlines.
pub(crate) const TICK: Duration = Duration::from_millis(10);

pub(crate) struct Runtime {
    pub engine: Engine,
    pub components: wasmtime::component::Linker<ComponentState>,
    pub commands: wasmtime::Linker<CommandState>,
    pub tls: Arc<rustls::ClientConfig>,
    _ticker: Ticker,
}

fn engine_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::Engine(e.into())
}

impl Runtime {
    pub fn new(config: &SandboxConfig) -> Result<Self, Error> {
        let mut pool = PoolingAllocationConfig::new();
        let max_memory = usize::try_from(config.ceiling.max_limits.memory).unwrap_or(usize::MAX);
        pool.max_memory_size(max_memory);
        // Measured (docs/measurements.md): keeping 2 MiB of memory and 64 KiB
        // of tables resident doubles fresh-instance throughput, but only
        // with PAGEMAP_SCAN (Linux >= 6.7); without it the kept region is
        // memset whole, which is slower than the defaults.
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.linear_memory_keep_resident(2 << 20)
                .table_keep_resident(64 << 10)
                .pagemap_scan(Enabled::Yes);
        }
        let mut wasm = Config::new();
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .epoch_interruption(true)
            .consume_fuel(config.ceiling.fuel_metering);
        let engine = Engine::new(&wasm).map_err(engine_error)?;

        let mut components = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut components).map_err(engine_error)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut components)
            .map_err(engine_error)?;
        bindings::Lambda::add_to_linker::<_, HasSelf<ComponentState>>(&mut components, |s| s)
            .map_err(engine_error)?;

        let mut commands = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut commands, |s: &mut CommandState| &mut s.wasi)
            .map_err(engine_error)?;

        let tls = hookd_outbound::tls::verified().map_err(engine_error)?;

        Ok(Runtime {
            _ticker: Ticker::start(engine.clone()).map_err(engine_error)?,
            engine,
            components,
            commands,
            tls: Arc::new(tls),
        })
    }
}

/// Advances the engine's epoch every [`TICK`] until dropped.
struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("hookd-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread at once.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
