//! The two engines, their linkers and the epoch ticker.

use crate::invoke::{CommandState, ComponentState, bindings};
use crate::{Error, SandboxConfig};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::component::HasSelf;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourcesRequired,
};

/// One epoch tick: the granularity of invocation deadlines.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// How much of a fresh instance's memory, and of its tables, the pool keeps
/// mapped when the instance is dropped, rather than handing it back to the
/// kernel and taking a page fault per page on the next instance.
const MEMORY_KEPT_RESIDENT: usize = 2 << 20;
const TABLES_KEPT_RESIDENT: usize = 64 << 10;

/// Guests whose memories start at most this large in all run on the
/// clearing engine.
///
/// Measured (docs/measurements.md): a fresh `transform` (2 pages) runs
/// 10-30% faster when its memory is reset by clearing it whole than by
/// the `PAGEMAP_SCAN` system call that finds the pages it wrote, a 4-page
/// build 3-6% faster; a guest of Rust's default 17 pages is faster with
/// the scan.
const SMALL_MEMORY: u64 = 256 << 10;

pub(crate) struct Runtime {
    /// For guests whose memories start larger than [`SMALL_MEMORY`]: a
    /// dropped instance's memory is reset by scanning for the pages it
    /// wrote (Linux >= 6.7; elsewhere, wasmtime's defaults).
    pub scanning: Linked,
    /// For the others: a dropped instance's memory is cleared whole, which
    /// for so little memory costs less than the scan's system call.
    pub clearing: Linked,
    pub tls: Arc<rustls::ClientConfig>,
    _ticker: Ticker,
}

/// An engine and the linkers built for it: a guest compiled for the engine
/// is linked and instantiated only through these.
pub(crate) struct Linked {
    pub engine: Engine,
    pub components: wasmtime::component::Linker<ComponentState>,
    pub commands: wasmtime::Linker<CommandState>,
}

fn engine_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::Engine(e.into())
}

impl Runtime {
    pub fn new(config: &SandboxConfig) -> Result<Self, Error> {
        // Measured (docs/measurements.md): keeping memory and tables
        // resident doubles fresh-instance throughput, but only if resetting
        // them is cheap: by PAGEMAP_SCAN (Linux >= 6.7), or by clearing
        // when there is little to clear. Clearing a large memory whole is
        // slower than wasmtime's defaults.
        let mut scanning = PoolingAllocationConfig::new();
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            scanning
                .linear_memory_keep_resident(MEMORY_KEPT_RESIDENT)
                .table_keep_resident(TABLES_KEPT_RESIDENT)
                .pagemap_scan(Enabled::Yes);
        }
        let mut clearing = PoolingAllocationConfig::new();
        clearing
            .linear_memory_keep_resident(MEMORY_KEPT_RESIDENT)
            .table_keep_resident(TABLES_KEPT_RESIDENT)
            .pagemap_scan(Enabled::No);
        let scanning = Linked::new(config, scanning)?;
        let clearing = Linked::new(config, clearing)?;
        let tls = hookd_outbound::tls::verified().map_err(engine_error)?;
        let engines = vec![scanning.engine.clone(), clearing.engine.clone()];
        Ok(Runtime {
            _ticker: Ticker::start(engines).map_err(engine_error)?,
            scanning,
            clearing,
            tls: Arc::new(tls),
        })
    }

    /// The engine for a guest that needs `resources`: the clearing one when
    /// its memories start small in all. A component that instantiates
    /// modules it imports has no static figure and stays on the scanning
    /// one.
    pub fn for_resources(&self, resources: Option<ResourcesRequired>) -> &Linked {
        let small = resources.is_some_and(|r| {
            // Pages of 64 KiB: a custom page size only overestimates.
            let pages = r.max_initial_memory_size.unwrap_or(0);
            u64::from(r.num_memories).saturating_mul(pages.saturating_mul(64 << 10)) <= SMALL_MEMORY
        });
        if small {
            &self.clearing
        } else {
            &self.scanning
        }
    }

    /// The engine and linkers of a guest compiled for `engine`.
    pub fn for_engine(&self, engine: &Engine) -> &Linked {
        if Engine::same(engine, &self.clearing.engine) {
            &self.clearing
        } else {
            &self.scanning
        }
    }
}

impl Linked {
    fn new(config: &SandboxConfig, mut pool: PoolingAllocationConfig) -> Result<Self, Error> {
        let max_memory = usize::try_from(config.ceiling.max_limits.memory).unwrap_or(usize::MAX);
        pool.max_memory_size(max_memory);
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

        Ok(Linked {
            engine,
            components,
            commands,
        })
    }
}

/// Advances the engines' epochs every [`TICK`] until dropped.
struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engines: Vec<Engine>) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("hookd-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                    for engine in &engines {
                        engine.increment_epoch();
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::component::Component;

    /// A component instantiating one core module per entry, each with a
    /// memory of that many pages.
    fn component_with_pages(rt: &Runtime, memories: &[u32]) -> Component {
        let modules: String = memories
            .iter()
            .enumerate()
            .map(|(i, pages)| {
                format!("(core module $m{i} (memory {pages})) (core instance (instantiate $m{i}))")
            })
            .collect();
        let wat = format!("(component {modules})");
        Component::new(&rt.scanning.engine, wat::parse_str(wat).unwrap()).unwrap()
    }

    fn engine_for(rt: &Runtime, memories: &[u32]) -> &'static str {
        let component = component_with_pages(rt, memories);
        let linked = rt.for_resources(component.resources_required());
        if Engine::same(&linked.engine, &rt.clearing.engine) {
            "clearing"
        } else {
            "scanning"
        }
    }

    #[test]
    fn memories_that_start_small_in_all_go_to_the_clearing_engine() {
        let rt = Runtime::new(&SandboxConfig::default()).unwrap();
        assert_eq!(engine_for(&rt, &[]), "clearing");
        assert_eq!(engine_for(&rt, &[2]), "clearing");
        assert_eq!(engine_for(&rt, &[4]), "clearing");
        assert_eq!(engine_for(&rt, &[2, 2]), "clearing");
        assert_eq!(engine_for(&rt, &[5]), "scanning");
        assert_eq!(engine_for(&rt, &[3, 2]), "scanning");
        // Rust's default 1 MiB stack: 17 pages.
        assert_eq!(engine_for(&rt, &[17]), "scanning");
        assert!(Engine::same(
            &rt.for_resources(None).engine,
            &rt.scanning.engine
        ));
    }

    #[test]
    fn the_example_guests_go_where_their_memories_say() {
        let rt = Runtime::new(&SandboxConfig::default()).unwrap();
        let on_clearing = |name: &str| {
            let bytes = hookd_testkit::guests::bytes(name);
            let component = Component::new(&rt.scanning.engine, bytes).unwrap();
            let linked = rt.for_resources(component.resources_required());
            Engine::same(&linked.engine, &rt.clearing.engine)
        };
        // Built with a 64 KiB stack (guest-examples/build.sh): 2 pages.
        assert!(on_clearing("transform"));
        // Rust's default stack: 17 pages.
        assert!(!on_clearing("noop"));
    }
}
