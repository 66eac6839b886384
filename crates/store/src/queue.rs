//! The delivery queue: deliveries and their attempts, what is due next,
//! each hook's listing, the dead letters, retention, and the per-hook
//! memory of on_change, snooze and the circuit breaker. The dispatcher
//! and the workers write here in batches, one transaction per batch.

use crate::codec::decode;
use crate::{Error, Listed, Page, Result};
use async_trait::async_trait;
use hookd_model::delivery::Delivery;
use serde_json::Value;
use uuid::Uuid;

/// A delivery's place in its hook's listing, newest first: by creation,
/// then by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListedAt {
    /// When the delivery was created.
    pub created_at_ms: i64,
    /// Its id.
    pub id: Uuid,
}

impl ListedAt {
    /// The place of `d`.
    pub fn of(d: &Delivery) -> Self {
        ListedAt {
            created_at_ms: d.created_at_ms,
            id: d.id,
        }
    }
}

/// Where a read of one hook's deliveries starts, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookListing {
    /// The hook.
    pub hook: Uuid,
    /// The place to start at (included); none: the newest.
    pub through: Option<ListedAt>,
}

impl HookListing {
    /// Where `page` of the hook's listing starts: the newest delivery, or
    /// the one its offset names, which `find` reads and which must be the
    /// hook's.
    pub async fn of_page(
        hook: Uuid,
        page: &Page,
        find: impl AsyncFnOnce(Uuid) -> Result<Option<Delivery>>,
    ) -> Result<Self> {
        let through = match &page.offset {
            Some(offset) => {
                let id = Uuid::try_parse(offset).map_err(|_| Error::InvalidOffset)?;
                let first = find(id)
                    .await?
                    .filter(|d| d.hook_id == hook)
                    .ok_or(Error::InvalidOffset)?;
                Some(ListedAt::of(&first))
            }
            None => None,
        };
        Ok(HookListing { hook, through })
    }
}

/// A listing page from up to `size + 1` deliveries: the one past the page
/// is where the next page starts.
pub fn paged(mut data: Vec<Delivery>, size: usize) -> Listed<Delivery> {
    let next = (data.len() > size)
        .then(|| data.pop().map(|d| d.id.to_string()))
        .flatten();
    Listed { data, next }
}

/// A change to the on_change and snooze memory of a hook.
#[derive(Debug, Clone, PartialEq)]
pub struct HookStateUpdate {
    /// The hook.
    pub hook: Uuid,
    /// What is remembered (`on_change`, `snooze:<digest>`).
    pub name: String,
    /// The new value; none forgets it.
    pub value: Option<Value>,
}

/// What one dispatch commit writes, in one transaction: outbox records
/// become deliveries, and the hooks' memory changes with them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dispatch<'a> {
    /// The outbox record the dispatcher has routed through, remembered
    /// with the batch: what on_change and snooze decided for the events up
    /// to there is stored (deliveries and memory), and a dispatcher
    /// starting over from records still in the outbox must not decide it
    /// again. None leaves the remembered record as it is.
    pub through: Option<u64>,
    /// Outbox records that leave the outbox.
    pub records: &'a [u64],
    /// Deliveries queued (or replaced, by id).
    pub deliveries: &'a [Delivery],
    /// Changes to the hooks' on_change and snooze memory.
    pub state: &'a [HookStateUpdate],
}

impl<'a> Dispatch<'a> {
    /// Queues deliveries, and nothing else.
    pub fn queue(deliveries: &'a [Delivery]) -> Self {
        Dispatch {
            deliveries,
            ..Dispatch::default()
        }
    }

    /// Changes the hooks' memory, and nothing else.
    pub fn remember(state: &'a [HookStateUpdate]) -> Self {
        Dispatch {
            state,
            ..Dispatch::default()
        }
    }
}

/// The time a finished delivery finished: its last attempt.
pub(crate) fn finished_at(d: &Delivery) -> i64 {
    d.attempts.last().map_or(d.created_at_ms, |a| a.at_ms)
}

/// The key of a hook's memory entry, as the quarantine keeps it (and
/// sled stores it): the 16 bytes of the hook id ++ the name.
pub(crate) fn state_key(hook: Uuid, name: &str) -> Vec<u8> {
    let mut k = hook.as_bytes().to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// An entry of the on_change / snooze memory: (hook, name, value).
pub(crate) fn decode_state(key: &[u8], value: &[u8]) -> Result<(Uuid, String, Value)> {
    let (hook, name) = key.split_at_checked(16).ok_or(Error::CorruptKey)?;
    let hook = Uuid::from_slice(hook).map_err(|_| Error::CorruptKey)?;
    let name = String::from_utf8(name.to_vec()).map_err(|_| Error::CorruptKey)?;
    Ok((hook, name, decode(value)?))
}

/// What one commit of attempts writes, in one transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attempted<'a> {
    /// Deliveries stored before, rewritten.
    pub updated: &'a [Delivery],
    /// Deliveries stored for the first time: their first attempt ended, or
    /// they must wait.
    pub first: &'a [Delivery],
    /// Outbox records that no delivery still in memory needs: removed.
    pub ended: &'a [u64],
}

impl<'a> Attempted<'a> {
    /// Rewrites deliveries stored before, and nothing else.
    pub fn updated(updated: &'a [Delivery]) -> Self {
        Attempted {
            updated,
            ..Attempted::default()
        }
    }

    /// Stores deliveries for the first time, and nothing else.
    pub fn first(first: &'a [Delivery]) -> Self {
        Attempted {
            first,
            ..Attempted::default()
        }
    }
}

/// Which due deliveries a read wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Only this hook's; none: every hook's.
    pub hook: Option<Uuid>,
    /// Due at this time (unix milliseconds) or before.
    pub now_ms: i64,
    /// At most this many.
    pub limit: usize,
}

impl Due {
    /// Up to `limit` of one hook's deliveries due at `now_ms`.
    pub fn of_hook(hook: Uuid, now_ms: i64, limit: usize) -> Self {
        Due {
            hook: Some(hook),
            now_ms,
            limit,
        }
    }

    /// Up to `limit` of every hook's deliveries due at `now_ms`.
    pub fn every_hook(now_ms: i64, limit: usize) -> Self {
        Due {
            hook: None,
            now_ms,
            limit,
        }
    }
}

/// A predicate on delivery ids: which ones a read passes over.
pub type Skip<'a> = &'a mut (dyn FnMut(Uuid) -> bool + Send);

/// The delivery queue of a store. Writes are not durable when they
/// return: await [`crate::Backend::durable`].
#[async_trait]
pub trait Queue: Send + Sync {
    /// Writes a dispatch batch in one transaction (see [`Dispatch`]).
    async fn commit_dispatch(&self, batch: Dispatch<'_>) -> Result<()>;

    /// Tells whatever other nodes share the store that deliveries were
    /// made due that they may attempt (dispatched for their hooks, or
    /// redelivered); nothing when none can.
    fn announce_due(&self) {}

    /// Resolves when another node announced due deliveries (or news may
    /// have been missed); never when no other node can.
    async fn queue_changed(&self) {
        std::future::pending::<()>().await
    }

    /// The last outbox record a [`Dispatch`] remembered as `through`.
    async fn dispatched_through(&self) -> Result<Option<u64>>;

    /// Everything remembered for on_change and snooze: (hook, name, value).
    /// An entry that does not decode goes to the quarantine: that hook
    /// forgets it, as if it had never been remembered.
    async fn hook_states(&self) -> Result<Vec<(Uuid, String, Value)>>;

    /// The deliveries `due` asks for, soonest first, passing over those
    /// whose id `skip` names before they are read.
    async fn due_deliveries(&self, due: Due, skip: Skip<'_>) -> Result<Vec<Delivery>>;

    /// The hooks with a delivery due at `now_ms`.
    async fn hooks_with_due(&self, now_ms: i64) -> Result<Vec<Uuid>>;

    /// When the soonest scheduled attempt is due, if any.
    async fn next_due_ms(&self) -> Result<Option<i64>>;

    /// When the soonest attempt scheduled after `now_ms` is due, if any.
    async fn next_due_after(&self, now_ms: i64) -> Result<Option<i64>>;

    /// Number of deliveries waiting for an attempt.
    async fn queue_depth(&self) -> Result<usize>;

    /// Writes deliveries after attempts (or a redelivery), in one
    /// transaction.
    async fn commit_deliveries(&self, updated: &[Delivery]) -> Result<()> {
        self.commit_attempts(Attempted::updated(updated)).await
    }

    /// Writes what attempts changed in one transaction (see [`Attempted`]).
    async fn commit_attempts(&self, batch: Attempted<'_>) -> Result<()>;

    /// Whether a delivery with this id is stored, without reading it.
    async fn delivery_exists(&self, id: Uuid) -> Result<bool>;

    /// One delivery. One that does not decode goes to the quarantine and
    /// is none from then on: whatever loop or listing met it goes on
    /// without it.
    async fn delivery(&self, id: Uuid) -> Result<Option<Delivery>>;

    /// A page of a hook's deliveries, newest first. Offsets are the id of
    /// the first delivery of the next page.
    async fn hook_deliveries(&self, hook: Uuid, page: &Page) -> Result<Listed<Delivery>> {
        let from = HookListing::of_page(hook, page, async |id| self.delivery(id).await).await?;
        let data = self
            .hook_deliveries_from(from, page.size.saturating_add(1))
            .await?;
        Ok(paged(data, page.size))
    }

    /// Up to `limit` of a hook's deliveries, newest first, from where
    /// `from` says on.
    async fn hook_deliveries_from(&self, from: HookListing, limit: usize) -> Result<Vec<Delivery>>;

    /// A page of the dead deliveries of every hook, the latest to die
    /// first. Offsets are the id of the first delivery of the next page.
    async fn dead_deliveries(&self, page: &Page) -> Result<Listed<Delivery>>;

    /// Forgets finished deliveries beyond retention: succeeded and dead
    /// ones that finished before `finished_before_ms`, and the oldest
    /// finished ones while more than `keep` remain. Returns how many went.
    async fn prune_deliveries(&self, keep: usize, finished_before_ms: i64) -> Result<usize>;

    /// Finished deliveries held.
    async fn finished_count(&self) -> Result<usize>;
}
