//! Live instances kept for lambda hooks that chose `instance = "reused"`:
//! each was made for one hook, one guest and one version of the hook's
//! configuration, serves that hook's events one call at a time, and is
//! dropped when anything it was made for changes, when a call ends badly
//! (the caller does not give it back), or past the server's maxima of
//! calls and age.

use crate::invoke::{ComponentState, bindings};
use crate::output::Capture;
use hookd_model::UnixMillis;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;
use wasmtime::Store;

/// The server's bounds on kept instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReuseLimits {
    /// Calls one instance serves before it is dropped.
    pub max_calls: u64,
    /// Age past which an instance is dropped rather than called again.
    pub max_age: Duration,
    /// Instances kept idle across every hook; past it, one given back is
    /// dropped. Each holds its memory (up to its hook's limit) and a slot
    /// of the engine's instance pool.
    pub max_idle: usize,
    /// Linear memory the idle instances may hold together, bytes; one
    /// given back that would take them past it is dropped, so that hooks
    /// with large memories cannot make the server hold `max_idle` times
    /// the largest memory.
    pub max_idle_memory: u64,
}

/// Default of [`ReuseLimits::max_calls`].
pub const MAX_INSTANCE_CALLS: u64 = 10_000;
/// Default of [`ReuseLimits::max_age`].
pub const MAX_INSTANCE_AGE: Duration = Duration::from_secs(300);
/// Default of [`ReuseLimits::max_idle`].
pub const MAX_IDLE_INSTANCES: usize = 64;
/// Default of [`ReuseLimits::max_idle_memory`].
pub const MAX_IDLE_MEMORY: u64 = 256 << 20;

impl Default for ReuseLimits {
    fn default() -> Self {
        ReuseLimits {
            max_calls: MAX_INSTANCE_CALLS,
            max_age: MAX_INSTANCE_AGE,
            max_idle: MAX_IDLE_INSTANCES,
            max_idle_memory: MAX_IDLE_MEMORY,
        }
    }
}

/// What an instance was made for: a step of a hook's chain, the guest's
/// bytes and a version of the hook's lambda configuration (the grant is a
/// function of these: the server's mode and ceiling do not change while
/// it runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fit {
    pub hook_id: Uuid,
    pub step: usize,
    pub digest: String,
    pub version: u64,
}

/// A step of a hook's chain: where instances are kept.
type Slot = (Uuid, usize);
/// The guest's bytes and the configuration version an instance was made for.
type MadeFor = (String, u64);

impl Fit {
    fn slot(&self) -> Slot {
        (self.hook_id, self.step)
    }

    fn made_for(&self) -> MadeFor {
        (self.digest.clone(), self.version)
    }

    /// Whether instances made for `made_for` fit; compared in place, as
    /// it is on every call of a reused hook.
    fn fits(&self, made_for: &MadeFor) -> bool {
        made_for.1 == self.version && made_for.0 == self.digest
    }
}

/// A live instance of a component guest and its store.
pub(crate) struct Kept {
    pub store: Store<ComponentState>,
    pub lambda: bindings::Lambda,
    /// Where its WASI stdout and stderr go, emptied before each call.
    pub stdout: Capture,
    pub stderr: Capture,
    /// Calls it has served.
    pub calls: u64,
    born: Instant,
    /// When it was made, on the sandbox's clock (the one events are
    /// stamped by): a hook's creation or deletion drops only the instances
    /// made before it.
    born_ms: UnixMillis,
    /// Its linear memory when it was last given back, bytes.
    memory: u64,
}

impl Kept {
    pub fn new(
        store: Store<ComponentState>,
        lambda: bindings::Lambda,
        stdout: Capture,
        stderr: Capture,
        born: Instant,
        born_ms: UnixMillis,
    ) -> Self {
        Kept {
            store,
            lambda,
            stdout,
            stderr,
            calls: 0,
            born,
            born_ms,
            memory: 0,
        }
    }

    /// Past the maxima of calls or age, at `now`.
    fn spent(&self, limits: &ReuseLimits, now: Instant) -> bool {
        self.calls >= limits.max_calls || now.saturating_duration_since(self.born) >= limits.max_age
    }
}

/// The idle kept instances of every hook.
pub(crate) struct Instances {
    limits: ReuseLimits,
    idle: Mutex<Idle>,
}

#[derive(Default)]
struct Idle {
    /// Per step of a hook's chain: the guest and the configuration its
    /// instances were made for, and the instances, most recently used
    /// last. One made for anything else makes them stale.
    by_step: HashMap<Slot, (MadeFor, Vec<Kept>)>,
    count: usize,
    /// The linear memory they hold together, bytes.
    memory: u64,
}

impl Idle {
    /// Counts `kept` out of the idle ones.
    fn release(&mut self, kept: &[Kept]) {
        self.count -= kept.len();
        self.memory -= kept.iter().map(|k| k.memory).sum::<u64>();
    }
}

impl Instances {
    pub fn new(limits: ReuseLimits) -> Self {
        Instances {
            limits,
            idle: Mutex::new(Idle::default()),
        }
    }

    /// An idle instance made for `fit`, if there is one fit to call at
    /// `now`. Instances of the same step made for another guest version or
    /// another configuration are dropped on the way.
    pub fn take(&self, fit: &Fit, now: Instant) -> Option<Kept> {
        let mut dropped = Vec::new();
        let taken = {
            let mut idle = self.lock();
            let taken = match idle.by_step.get_mut(&fit.slot()) {
                Some((made_for, kept)) if fit.fits(made_for) => loop {
                    match kept.pop() {
                        Some(k) if k.spent(&self.limits, now) => dropped.push(k),
                        other => break other,
                    }
                },
                Some(_) => {
                    let (_, stale) = idle.by_step.remove(&fit.slot()).unwrap_or_default();
                    dropped.extend(stale);
                    None
                }
                None => None,
            };
            idle.release(&dropped);
            idle.release(taken.as_slice());
            taken
        };
        // Stores are dropped outside the lock: it frees their memory.
        drop(dropped);
        taken
    }

    /// Keeps `kept` for the next event of its hook, unless it is spent at
    /// `now` or the server keeps as many idle instances as it may.
    pub fn give_back(&self, fit: Fit, mut kept: Kept, now: Instant) {
        kept.calls += 1;
        if kept.spent(&self.limits, now) {
            return;
        }
        kept.memory = kept.store.data().memory();
        let mut idle = self.lock();
        if idle.count >= self.limits.max_idle
            || idle.memory + kept.memory > self.limits.max_idle_memory
        {
            return;
        }
        let (made_for, list) = idle
            .by_step
            .entry(fit.slot())
            .or_insert_with(|| (fit.made_for(), Vec::new()));
        if !fit.fits(made_for) {
            // Given back after an instance of another version was kept:
            // the step runs that version now.
            return;
        }
        let memory = kept.memory;
        list.push(kept);
        idle.count += 1;
        idle.memory += memory;
    }

    /// Drops the instances kept for `hook_id` that were made at or before
    /// `until_ms`, when the hook was deleted or created again under its
    /// id. Instances made later serve the hook as it is now: the news of
    /// its creation may reach the sandbox after its first events did.
    pub fn forget_hook(&self, hook_id: Uuid, until_ms: UnixMillis) {
        let mut dropped: Vec<Kept> = Vec::new();
        {
            let mut idle = self.lock();
            let idle = &mut *idle;
            idle.by_step.retain(|(hook, _), (_, list)| {
                if *hook != hook_id {
                    return true;
                }
                let (old, young) = std::mem::take(list)
                    .into_iter()
                    .partition(|k: &Kept| k.born_ms <= until_ms);
                *list = young;
                dropped.extend(old);
                !list.is_empty()
            });
            idle.release(&dropped);
        }
        // Stores are dropped outside the lock: it frees their memory.
        drop(dropped);
    }

    /// How many instances are idle, for every hook.
    pub fn idle(&self) -> usize {
        self.lock().count
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}
