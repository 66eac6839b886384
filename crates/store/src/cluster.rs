//! Many nodes on one database: which hooks' deliveries this node may
//! attempt. Hooks are split into [`SHARDS`] shards by id; each shard is
//! claimed by one node at a time, for a lease it renews (on PostgreSQL,
//! `postgres::cluster`). A node alone on its store (sled) holds every
//! shard for ever.
//!
//! A hook's attempts, its lane, its concurrency and its breaker live on
//! the one node that holds its shard, so they hold across the cluster as
//! on one node.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use uuid::Uuid;

/// Shards the hooks are split into: every node must agree, so it is not
/// a setting.
pub const SHARDS: u32 = 64;

/// The shard of a hook.
pub fn shard_of(hook: Uuid) -> u32 {
    (hook.as_u128() % u128::from(SHARDS)) as u32
}

/// The shards this node holds, until when, and how it came by them:
/// written by whatever renews the leases, read by the scheduler before
/// each attempt it starts. Cheap to clone.
#[derive(Clone)]
pub struct ShardSet {
    inner: Arc<Inner>,
}

struct Inner {
    held: Mutex<Held>,
    /// Shards taken over from a node whose lease ran out, ever.
    takeovers: AtomicU64,
}

#[derive(Clone, Copy)]
struct Held {
    /// Bit `k` set: shard `k` is held.
    shards: u64,
    /// When the leases may run out, on this node's clock; none: never.
    until: Option<Instant>,
    /// Bumped whenever a shard is gained, so that whoever keeps state per
    /// hook reads again what another node left for the gained hooks.
    gained: u64,
}

impl Held {
    /// Whether the leases have not run out.
    fn live(&self) -> bool {
        self.until.is_none_or(|until| Instant::now() < until)
    }
}

impl ShardSet {
    /// Every shard, for ever: a node alone on its store.
    pub fn all() -> Self {
        ShardSet::with(Held {
            shards: u64::MAX,
            until: None,
            gained: 0,
        })
    }

    /// No shard yet: a node of a cluster before its first claim.
    pub fn none() -> Self {
        ShardSet::with(Held {
            shards: 0,
            until: Some(Instant::now()),
            gained: 0,
        })
    }

    fn with(held: Held) -> Self {
        ShardSet {
            inner: Arc::new(Inner {
                held: Mutex::new(held),
                takeovers: AtomicU64::new(0),
            }),
        }
    }

    fn held(&self) -> Held {
        *self
            .inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this node may attempt `hook`'s deliveries now: it holds
    /// the hook's shard and its lease has not run out.
    pub fn owns(&self, hook: Uuid) -> bool {
        let held = self.held();
        held.live() && held.shards & (1 << shard_of(hook)) != 0
    }

    /// Shards held now.
    pub fn count(&self) -> u32 {
        let held = self.held();
        if held.live() {
            held.shards.count_ones()
        } else {
            0
        }
    }

    /// Changes when a shard is gained.
    pub fn generation(&self) -> u64 {
        self.held().gained
    }

    /// Shards taken over from nodes whose leases ran out.
    pub fn takeovers(&self) -> u64 {
        self.inner.takeovers.load(Ordering::Relaxed)
    }

    /// Records the shards held (bit `k` for shard `k`) until `until`,
    /// `taken_over` of them from nodes whose leases ran out.
    pub fn set(&self, shards: u64, until: Instant, taken_over: u32) {
        let mut held = self
            .inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = if held.live() { held.shards } else { 0 };
        if shards & !before != 0 {
            held.gained += 1;
        }
        held.shards = shards;
        held.until = Some(until);
        self.inner
            .takeovers
            .fetch_add(u64::from(taken_over), Ordering::Relaxed);
    }
}

/// News of a hook written through another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookChange {
    /// The hook was written at `at_ms`; `begun_or_ended` when it was
    /// created or deleted (what was kept for an earlier hook under its id
    /// goes).
    Written {
        /// The hook.
        hook: Uuid,
        /// When it was written, on the clock events are stamped by.
        at_ms: i64,
        /// Created or deleted, not updated.
        begun_or_ended: bool,
    },
    /// News may have been missed (the connection that hears it was lost):
    /// any hook may have changed.
    Unknown,
}

impl std::fmt::Debug for ShardSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSet")
            .field("count", &self.count())
            .field("takeovers", &self.takeovers())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hook_in(shard: u32) -> Uuid {
        Uuid::from_u128(u128::from(SHARDS) * 1000 + u128::from(shard))
    }

    #[test]
    fn a_node_alone_owns_every_hook() {
        let all = ShardSet::all();
        assert!((0..SHARDS).all(|k| all.owns(hook_in(k))));
        assert_eq!(all.count(), SHARDS);
    }

    #[test]
    fn a_node_owns_the_hooks_of_its_shards_until_its_leases_run_out() {
        let set = ShardSet::none();
        assert!(!set.owns(hook_in(3)));
        let first = set.generation();
        set.set(1 << 3, Instant::now() + Duration::from_secs(60), 1);
        assert!(set.owns(hook_in(3)));
        assert!(!set.owns(hook_in(4)));
        assert_eq!((set.count(), set.takeovers()), (1, 1));
        assert_ne!(set.generation(), first, "a shard gained");
        let renewed = set.generation();
        set.set(1 << 3, Instant::now() + Duration::from_secs(60), 0);
        assert_eq!(set.generation(), renewed, "a renewal gains nothing");
        set.set(1 << 3, Instant::now(), 0);
        assert!(!set.owns(hook_in(3)), "the lease ran out");
        assert_eq!(set.count(), 0);
        set.set(1 << 3, Instant::now() + Duration::from_secs(60), 0);
        assert_ne!(set.generation(), renewed, "held again after running out");
    }
}
