//! The delivery queue: deliveries and their attempts, indexed by due time
//! (what to run next), by hook (what the API lists) and by finish time
//! (what retention removes), and the per-hook state of on_change and
//! snooze. The dispatcher and the workers write here in batches, one
//! transaction per batch.

use super::entities::TxResult;
use super::quarantine::open_tree;
use super::{Sled, tx_error};
use crate::codec::{decode, encode, encode_packed};
use crate::queue::{Attempted, Dispatch, Due, HookListing, decode_state, finished_at, state_key};
use crate::{Error, Listed, Origin, Page, Quarantined, Result};
use hookd_model::delivery::{Delivery, DeliveryState};
use serde_json::Value;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::{Transactional, Tree};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};
use uuid::Uuid;

/// The trees of the queue.
pub(crate) struct QueueTrees {
    /// id → delivery.
    pub deliveries: sled::Tree,
    /// due ms (big-endian) ++ outbox position ++ id → ().
    pub due: sled::Tree,
    /// hook id ++ due ms ++ outbox position ++ id → (): the same entries
    /// by hook, so that the scheduler reads each hook's due deliveries
    /// apart, and one hook's backlog is never in the way of another's.
    pub due_by_hook: sled::Tree,
    /// hook id ++ created ms ++ id → ().
    pub by_hook: sled::Tree,
    /// finished ms ++ id → [`DEAD`] for a dead delivery, nothing for one
    /// that succeeded: finished deliveries, oldest first.
    pub finished: sled::Tree,
    /// hook id ++ name → value: on_change and snooze memory.
    pub hook_state: sled::Tree,
    /// Entries in `due` and in `finished`: counted once at open, then kept
    /// by every commit, because sled's `len` walks the whole tree. Commits
    /// add their changes after they land, so a reader may briefly see one
    /// commit's removals before another's additions, never a count below
    /// zero.
    due_count: AtomicIsize,
    finished_count: AtomicIsize,
}

/// The value of a dead delivery's `finished` entry, so that dead letters
/// are listed from that index alone.
const DEAD: &[u8] = &[1];

/// Where `meta` records that `finished` marks dead deliveries.
const DEAD_MARKED: &str = "finished_marks_dead";

impl QueueTrees {
    pub(crate) fn open(db: &sled::Db, meta: &sled::Tree) -> Result<Self> {
        let due = db.open_tree("due")?;
        let deliveries = open_tree(db, Origin::Deliveries)?;
        let due_by_hook = db.open_tree("due_by_hook")?;
        let finished = db.open_tree("finished")?;
        if due_by_hook.is_empty() && !due.is_empty() {
            index_due_by_hook(&due, &deliveries, &due_by_hook)?;
        }
        if meta.get(DEAD_MARKED)?.is_none() {
            mark_dead(&finished, &deliveries)?;
            meta.insert(DEAD_MARKED, &[])?;
        }
        Ok(QueueTrees {
            deliveries,
            due_count: AtomicIsize::new(isize::try_from(due.len()).unwrap_or(isize::MAX)),
            finished_count: AtomicIsize::new(isize::try_from(finished.len()).unwrap_or(isize::MAX)),
            due,
            due_by_hook,
            by_hook: db.open_tree("by_hook")?,
            finished,
            hook_state: open_tree(db, Origin::HookState)?,
        })
    }
}

/// Builds `due_by_hook` from `due`, for a store written before it
/// existed. A due entry whose delivery does not decode is left out: the
/// delivery's first read quarantines it with its index entries.
fn index_due_by_hook(
    due: &sled::Tree,
    deliveries: &sled::Tree,
    by_hook: &sled::Tree,
) -> Result<()> {
    for key in due.iter().keys() {
        let key = key?;
        if let Some(d) = indexed_delivery(deliveries, key.get(16..).unwrap_or_default())? {
            by_hook.insert(hook_due_key(d.hook_id, &key), &[])?;
        }
    }
    Ok(())
}

/// The delivery whose id is `id` (an index key's last 16 bytes), when
/// it is stored and decodes: an index rebuilt at open leaves out one that
/// does not, whose first read quarantines it.
fn indexed_delivery(deliveries: &sled::Tree, id: &[u8]) -> Result<Option<Delivery>> {
    let Ok(id) = Uuid::from_slice(id) else {
        return Ok(None);
    };
    Ok(deliveries
        .get(id.as_bytes())?
        .and_then(|bytes| decode::<Delivery>(&bytes).ok()))
}

/// Marks the dead deliveries in `finished`, for a store written before
/// the marks existed. An entry whose delivery does not decode is left as
/// it is: its first read quarantines it.
fn mark_dead(finished: &sled::Tree, deliveries: &sled::Tree) -> Result<()> {
    for key in finished.iter().keys() {
        let key = key?;
        if indexed_delivery(deliveries, key.get(8..).unwrap_or_default())?
            .is_some_and(|d| d.state == DeliveryState::Dead)
        {
            finished.insert(key, DEAD)?;
        }
    }
    Ok(())
}

/// hook id ++ a `due` key.
fn hook_due_key(hook: Uuid, due_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + due_key.len());
    k.extend_from_slice(hook.as_bytes());
    k.extend_from_slice(due_key);
    k
}

fn time_key(ms: i64, id: Uuid) -> [u8; 24] {
    let mut k = [0u8; 24];
    // Times before 1970 do not occur; clamping keeps the order total.
    k[..8].copy_from_slice(&(ms.max(0) as u64).to_be_bytes());
    k[8..].copy_from_slice(id.as_bytes());
    k
}

/// due ms ++ outbox position ++ id: soonest first, then in event order.
fn due_key(due_ms: i64, d: &Delivery) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&(due_ms.max(0) as u64).to_be_bytes());
    k[8..16].copy_from_slice(&d.seq.to_be_bytes());
    k[16..].copy_from_slice(d.id.as_bytes());
    k
}

/// The due time of a `due` key.
fn due_ms(key: &[u8]) -> Result<i64> {
    let ms = key.first_chunk::<8>().ok_or(Error::CorruptKey)?;
    Ok(u64::from_be_bytes(*ms) as i64)
}

/// The delivery id an index key ends with, from byte `at` on.
fn id_in(key: &[u8], at: usize) -> Result<Uuid> {
    key.get(at..)
        .and_then(|id| Uuid::from_slice(id).ok())
        .ok_or(Error::CorruptKey)
}

fn hook_key(d: &Delivery) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..16].copy_from_slice(d.hook_id.as_bytes());
    k[16..].copy_from_slice(&time_key(d.created_at_ms, d.id));
    k
}

/// The queue trees inside one transaction.
struct QueueTx<'a> {
    deliveries: &'a TransactionalTree,
    due: &'a TransactionalTree,
    due_by_hook: &'a TransactionalTree,
    by_hook: &'a TransactionalTree,
    finished: &'a TransactionalTree,
    /// Entries this attempt added to `due` and `finished`, less those it
    /// removed: a transaction may run its closure again, so the counts are
    /// applied only once it commits.
    added: Cell<Added>,
}

/// Entries a transaction added to the counted trees, less those it removed.
#[derive(Debug, Clone, Copy, Default)]
struct Added {
    due: isize,
    finished: isize,
}

impl QueueTx<'_> {
    fn due_insert(&self, key: &[u8], hook: Uuid) -> TxResult<()> {
        self.due_by_hook.insert(hook_due_key(hook, key), &[])?;
        if self.due.insert(key, &[])?.is_none() {
            self.tally(|a| a.due += 1);
        }
        Ok(())
    }

    fn due_remove(&self, key: &[u8], hook: Uuid) -> TxResult<()> {
        self.due_by_hook.remove(hook_due_key(hook, key))?;
        if self.due.remove(key)?.is_some() {
            self.tally(|a| a.due -= 1);
        }
        Ok(())
    }

    fn finished_insert(&self, d: &Delivery) -> TxResult<()> {
        let mark: &[u8] = if d.state == DeliveryState::Dead {
            DEAD
        } else {
            &[]
        };
        if self
            .finished
            .insert(&time_key(finished_at(d), d.id), mark)?
            .is_none()
        {
            self.tally(|a| a.finished += 1);
        }
        Ok(())
    }

    fn finished_remove(&self, key: &[u8]) -> TxResult<()> {
        if self.finished.remove(key)?.is_some() {
            self.tally(|a| a.finished -= 1);
        }
        Ok(())
    }

    fn tally(&self, change: impl FnOnce(&mut Added)) {
        let mut added = self.added.get();
        change(&mut added);
        self.added.set(added);
    }

    /// Writes a delivery and moves its index entries from what was stored.
    fn put(&self, d: &Delivery) -> TxResult<()> {
        let id = d.id.as_bytes();
        match self.deliveries.get(id)? {
            Some(old) => {
                let old: Delivery = decode(&old).map_err(ConflictableTransactionError::Abort)?;
                if let Some(due) = old.next_attempt_at_ms {
                    self.due_remove(&due_key(due, &old), old.hook_id)?;
                }
                if old.state.is_final() {
                    self.finished_remove(&time_key(finished_at(&old), old.id))?;
                }
            }
            None => {
                self.by_hook.insert(hook_key(d).to_vec(), &[])?;
            }
        }
        self.write_indexed(d)
    }

    /// Writes a delivery never stored before (its first attempt ended, or
    /// it waits): nothing to read first, no old index entries to move.
    fn put_first(&self, d: &Delivery) -> TxResult<()> {
        self.by_hook.insert(hook_key(d).to_vec(), &[])?;
        self.write_indexed(d)
    }

    /// Writes a delivery with its `due` and `finished` entries, once any
    /// it had before are gone.
    fn write_indexed(&self, d: &Delivery) -> TxResult<()> {
        if let Some(due) = d.next_attempt_at_ms {
            self.due_insert(&due_key(due, d), d.hook_id)?;
        }
        if d.state.is_final() {
            self.finished_insert(d)?;
        }
        self.deliveries.insert(
            d.id.as_bytes(),
            encode_packed(d).map_err(ConflictableTransactionError::Abort)?,
        )?;
        Ok(())
    }

    fn remove(&self, d: &Delivery) -> TxResult<()> {
        if let Some(due) = d.next_attempt_at_ms {
            self.due_remove(&due_key(due, d), d.hook_id)?;
        }
        if d.state.is_final() {
            self.finished_remove(&time_key(finished_at(d), d.id))?;
        }
        self.by_hook.remove(hook_key(d).to_vec())?;
        self.deliveries.remove(d.id.as_bytes())?;
        Ok(())
    }
}

/// Where `meta` keeps the last outbox record whose dispatch was committed.
const DISPATCHED_THROUGH: &str = "dispatched_through";

impl Sled {
    /// Runs `f` in one transaction over the queue's trees and `more`, whose
    /// views it is given in their order, and counts what it added to the
    /// counted trees once that commits.
    fn queue_tx<const N: usize, T>(
        &self,
        more: [&Tree; N],
        f: impl Fn(&QueueTx<'_>, &[TransactionalTree; N]) -> TxResult<T>,
    ) -> Result<T> {
        let q = &self.inner.queue;
        let queue = [
            &q.deliveries,
            &q.due,
            &q.due_by_hook,
            &q.by_hook,
            &q.finished,
        ];
        let trees: Vec<Tree> = queue.into_iter().chain(more).cloned().collect();
        let (value, added) = trees
            .as_slice()
            .transaction(|views| {
                let ([deliveries, due, due_by_hook, by_hook, finished], more) = views
                    .split_first_chunk()
                    .and_then(|(queue, more)| Some((queue, more.try_into().ok()?)))
                    .expect("a view for each tree, in order");
                let tx = QueueTx {
                    deliveries,
                    due,
                    due_by_hook,
                    by_hook,
                    finished,
                    added: Cell::default(),
                };
                Ok((f(&tx, more)?, tx.added.get()))
            })
            .map_err(tx_error)?;
        self.count(added);
        Ok(value)
    }

    fn count(&self, added: Added) {
        let q = &self.inner.queue;
        q.due_count.fetch_add(added.due, Ordering::Relaxed);
        q.finished_count
            .fetch_add(added.finished, Ordering::Relaxed);
    }

    /// Writes a dispatch batch in one transaction (see [`Dispatch`]). Not
    /// yet durable: await [`Sled::durable`].
    pub fn commit_dispatch(&self, batch: Dispatch<'_>) -> Result<()> {
        self.replacing_corrupt(batch.deliveries, || self.commit_dispatch_once(batch))
    }

    /// The last outbox record a [`Dispatch`] remembered as `through`.
    pub fn dispatched_through(&self) -> Result<Option<u64>> {
        match self.inner.meta.get(DISPATCHED_THROUGH)? {
            Some(bytes) => Ok(Some(u64::from_be_bytes(
                bytes.as_ref().try_into().map_err(|_| Error::CorruptKey)?,
            ))),
            None => Ok(None),
        }
    }

    /// Runs a commit of `written`; if one of the deliveries it overwrites
    /// does not decode (which would fail the commit, and the whole batch
    /// with it, every time), moves those to the quarantine and commits
    /// again, each new record taking its old one's place.
    fn replacing_corrupt(
        &self,
        written: &[Delivery],
        commit: impl Fn() -> Result<()>,
    ) -> Result<()> {
        match commit() {
            Err(Error::Corrupt(_)) => {
                for d in written {
                    self.delivery(d.id)?;
                }
                commit()
            }
            other => other,
        }
    }

    fn commit_dispatch_once(&self, batch: Dispatch<'_>) -> Result<()> {
        let more = [
            &self.inner.outbox,
            &self.inner.queue.hook_state,
            &self.inner.meta,
        ];
        self.queue_tx(more, |tx, [outbox, hook_state, meta]| {
            for key in batch.records {
                outbox.remove(&key.to_be_bytes())?;
            }
            if let Some(through) = batch.through {
                meta.insert(DISPATCHED_THROUGH, &through.to_be_bytes())?;
            }
            for d in batch.deliveries {
                tx.put(d)?;
            }
            for u in batch.state {
                let key = state_key(u.hook, &u.name);
                match &u.value {
                    Some(v) => {
                        let value = encode(v).map_err(ConflictableTransactionError::Abort)?;
                        hook_state.insert(key, value)?;
                    }
                    None => {
                        hook_state.remove(key)?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Everything remembered for on_change and snooze: (hook, name, value).
    /// An entry that does not decode goes to the quarantine: that hook
    /// forgets it, as if it had never been remembered.
    pub fn hook_states(&self) -> Result<Vec<(Uuid, String, Value)>> {
        let mut states = Vec::new();
        for item in self.inner.queue.hook_state.iter() {
            let (key, value) = item?;
            match decode_state(&key, &value) {
                Ok(state) => states.push(state),
                Err(e) => self.quarantine(Origin::HookState, &key, &value, &e)?,
            }
        }
        Ok(states)
    }

    /// The deliveries `due` asks for, soonest first, passing over those
    /// whose id `skip` names before they are read.
    pub fn due_deliveries(
        &self,
        due: Due,
        skip: impl FnMut(Uuid) -> bool,
    ) -> Result<Vec<Delivery>> {
        let end = (due.now_ms.saturating_add(1).max(0) as u64).to_be_bytes();
        let q = &self.inner.queue;
        match due.hook {
            None => {
                let keys = q.due.range(..end.as_slice()).keys();
                self.read_due(keys, 16, due.limit, skip)
            }
            Some(hook) => {
                let range = hook.as_bytes().to_vec()..hook_due_key(hook, &end);
                self.read_due(q.due_by_hook.range(range).keys(), 32, due.limit, skip)
            }
        }
    }

    /// The hooks with a delivery due at `now_ms`: one look per hook with
    /// any delivery scheduled, at its soonest.
    pub fn hooks_with_due(&self, now_ms: i64) -> Result<Vec<Uuid>> {
        let index = &self.inner.queue.due_by_hook;
        let mut hooks = Vec::new();
        let mut from = Some(Uuid::nil());
        while let Some(start) = from {
            let Some(item) = index.range(start.as_bytes().to_vec()..).next() else {
                break;
            };
            let key = item?.0;
            let (hook, due) = key.split_at_checked(16).ok_or(Error::CorruptKey)?;
            let hook = Uuid::from_slice(hook).map_err(|_| Error::CorruptKey)?;
            if due_ms(due)? <= now_ms {
                hooks.push(hook);
            }
            from = hook.as_u128().checked_add(1).map(Uuid::from_u128);
        }
        Ok(hooks)
    }

    /// The deliveries of due index keys whose id starts at `id_at`.
    fn read_due(
        &self,
        keys: impl Iterator<Item = sled::Result<sled::IVec>>,
        id_at: usize,
        limit: usize,
        mut skip: impl FnMut(Uuid) -> bool,
    ) -> Result<Vec<Delivery>> {
        let mut out = Vec::new();
        for key in keys {
            if out.len() == limit {
                break;
            }
            let key = key?;
            let id = id_in(&key, id_at)?;
            if skip(id) {
                continue;
            }
            if let Some(d) = self.delivery(id)? {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// When the soonest scheduled attempt is due, if any.
    pub fn next_due_ms(&self) -> Result<Option<i64>> {
        self.inner
            .queue
            .due
            .first()?
            .map(|(key, _)| due_ms(&key))
            .transpose()
    }

    /// When the soonest attempt scheduled after `now_ms` is due, if any.
    pub fn next_due_after(&self, now_ms: i64) -> Result<Option<i64>> {
        let start = (now_ms.saturating_add(1).max(0) as u64).to_be_bytes();
        match self.inner.queue.due.range(start.as_slice()..).next() {
            Some(item) => due_ms(&item?.0).map(Some),
            None => Ok(None),
        }
    }

    /// Number of deliveries waiting for an attempt; cheap (a counter).
    pub fn queue_depth(&self) -> usize {
        self.inner
            .queue
            .due_count
            .load(Ordering::Relaxed)
            .max(0)
            .unsigned_abs()
    }

    /// Writes what attempts changed in one transaction (see
    /// [`Attempted`]). Not yet durable.
    pub fn commit_attempts(&self, batch: Attempted<'_>) -> Result<()> {
        self.replacing_corrupt(batch.updated, || {
            self.queue_tx([&self.inner.outbox], |tx, [outbox]| {
                for d in batch.updated {
                    tx.put(d)?;
                }
                for d in batch.first {
                    tx.put_first(d)?;
                }
                for key in batch.ended {
                    outbox.remove(&key.to_be_bytes())?;
                }
                Ok(())
            })
        })
    }

    /// Whether a delivery with this id is stored, without reading it.
    pub fn delivery_exists(&self, id: Uuid) -> Result<bool> {
        Ok(self.inner.queue.deliveries.contains_key(id.as_bytes())?)
    }

    /// One delivery. One that does not decode goes to the quarantine, with
    /// its index entries, and is none from then on: whatever loop or
    /// listing met it goes on without it.
    pub fn delivery(&self, id: Uuid) -> Result<Option<Delivery>> {
        Ok(self.stored_delivery(id)?.map(|(_, d)| d))
    }

    /// [`Sled::delivery`] with the bytes it was read from.
    fn stored_delivery(&self, id: Uuid) -> Result<Option<(sled::IVec, Delivery)>> {
        let Some(bytes) = self.inner.queue.deliveries.get(id.as_bytes())? else {
            return Ok(None);
        };
        match decode(&bytes) {
            Ok(d) => Ok(Some((bytes, d))),
            Err(e) => {
                self.quarantine(Origin::Deliveries, id.as_bytes(), &bytes, &e)?;
                Ok(None)
            }
        }
    }

    /// Removes the index entries of a delivery that left the `deliveries`
    /// tree without being decoded: found by scanning, since the keys hold
    /// times only the delivery knew. Rare (a quarantine), so a scan is fine.
    pub(crate) fn forget_delivery_indexes(&self, id: Uuid) -> Result<()> {
        let q = &self.inner.queue;
        let id = id.as_bytes().as_slice();
        let (due, finished) = (
            Added {
                due: -1,
                finished: 0,
            },
            Added {
                due: 0,
                finished: -1,
            },
        );
        for (tree, id_at, removed) in [
            (&q.due, 16, due),
            (&q.due_by_hook, 32, Added::default()),
            (&q.by_hook, 24, Added::default()),
            (&q.finished, 8, finished),
        ] {
            for key in tree.iter().keys() {
                let key = key?;
                if key.get(id_at..) == Some(id) && tree.remove(&key)?.is_some() {
                    self.count(removed);
                }
            }
        }
        Ok(())
    }

    /// Puts a quarantined delivery back with its index entries, unless its
    /// id holds a delivery again; false then.
    pub(crate) fn restore_delivery(&self, record: &Quarantined) -> Result<bool> {
        let d: Delivery = decode(&record.raw)?;
        self.queue_tx([&self.inner.quarantine], |tx, [quarantine]| {
            if tx.deliveries.get(d.id.as_bytes())?.is_some() {
                return Ok(false);
            }
            tx.put(&d)?;
            quarantine.remove(record.id.as_bytes())?;
            Ok(true)
        })
    }

    /// Up to `limit` of a hook's deliveries, newest first, from where
    /// `from` says on.
    pub fn hook_deliveries_from(&self, from: HookListing, limit: usize) -> Result<Vec<Delivery>> {
        let prefix = from.hook.as_bytes().to_vec();
        let keys = match from.through {
            Some(at) => {
                let mut upto = prefix.clone();
                upto.extend_from_slice(&time_key(at.created_at_ms, at.id));
                self.inner.queue.by_hook.range(prefix..=upto)
            }
            None => self.inner.queue.by_hook.scan_prefix(prefix),
        };
        let mut data = Vec::new();
        for key in keys.keys().rev() {
            if data.len() == limit {
                break;
            }
            let key = key?;
            let id = id_in(&key, 24)?;
            if let Some(d) = self.delivery(id)? {
                data.push(d);
            }
        }
        Ok(data)
    }

    /// A page of the dead deliveries of every hook, the latest to die
    /// first. Offsets are the id of the first delivery of the next page.
    /// Read from the `finished` index, whose entries mark the dead ones,
    /// so only dead letters are decoded.
    pub fn dead_deliveries(&self, page: &Page) -> Result<Listed<Delivery>> {
        let finished = &self.inner.queue.finished;
        let entries = match &page.offset {
            Some(offset) => {
                let start: Uuid = offset.parse().map_err(|_| Error::InvalidOffset)?;
                let first = self
                    .delivery(start)?
                    .filter(|d| d.state == DeliveryState::Dead)
                    .ok_or(Error::InvalidOffset)?;
                finished.range(..=time_key(finished_at(&first), first.id))
            }
            None => finished.iter(),
        };
        let wanted = page.size.saturating_add(1);
        let mut data = Vec::new();
        for entry in entries.rev() {
            if data.len() == wanted {
                break;
            }
            let (key, mark) = entry?;
            if *mark != *DEAD {
                continue;
            }
            let id = id_in(&key, 8)?;
            if let Some(d) = self.delivery(id)? {
                data.push(d);
            }
        }
        let next = (data.len() > page.size)
            .then(|| data.pop().map(|d| d.id.to_string()))
            .flatten();
        Ok(Listed { data, next })
    }

    /// Forgets finished deliveries beyond retention: succeeded and dead
    /// ones that finished before `finished_before_ms`, and the oldest
    /// finished ones while more than `keep` remain. Returns how many went.
    ///
    /// `finished` sorts by finish time, so what goes is a run of its oldest
    /// entries, taken [`PRUNE_CHUNK`] at a time, each chunk read and
    /// removed in a transaction of its own: pruning holds one chunk in
    /// memory however far behind retention has fallen, and costs next to
    /// nothing when nothing is due to go.
    pub fn prune_deliveries(&self, keep: usize, finished_before_ms: i64) -> Result<usize> {
        let finished = &self.inner.queue.finished;
        let cutoff = time_key(finished_before_ms, Uuid::nil());
        let mut removed = 0;
        loop {
            let over = self.finished_count().saturating_sub(keep);
            let mut keys = Vec::new();
            for (i, key) in finished.iter().keys().take(PRUNE_CHUNK).enumerate() {
                let key = key?;
                if i >= over && *key >= cutoff[..] {
                    break;
                }
                keys.push(key);
            }
            if keys.is_empty() {
                return Ok(removed);
            }
            // Read outside the transaction, so that one that does not
            // decode is quarantined rather than failing every prune.
            let mut chunk = Vec::with_capacity(keys.len());
            for key in keys {
                let id = id_in(&key, 8)?;
                chunk.push((key, self.stored_delivery(id)?));
            }
            removed += self.queue_tx([], |tx, []| {
                let mut removed = 0;
                for (key, read) in &chunk {
                    // The key goes whatever it points at, so that one left
                    // behind by a quarantine cannot hold pruning up.
                    tx.finished_remove(key)?;
                    let Some((bytes, d)) = read else { continue };
                    // Rewritten since it was read (redelivered), it has a
                    // later key or none, and stays.
                    let unchanged = tx.deliveries.get(d.id.as_bytes())?.as_ref() == Some(bytes);
                    if unchanged && d.state.is_final() && time_key(finished_at(d), d.id) == **key {
                        tx.remove(d)?;
                        removed += 1;
                    }
                }
                Ok(removed)
            })?;
        }
    }

    /// Finished deliveries held; cheap (a counter).
    pub fn finished_count(&self) -> usize {
        self.inner
            .queue
            .finished_count
            .load(Ordering::Relaxed)
            .max(0)
            .unsigned_abs()
    }
}

/// Finished deliveries removed per transaction by retention.
const PRUNE_CHUNK: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::finished;
    use hookd_model::Event;
    use hookd_model::delivery::DeliveryState;
    use serde_json::json;

    #[test]
    fn the_last_record_dispatched_with_its_decisions_is_remembered() {
        let (dir, store) = Sled::temporary();
        assert_eq!(store.dispatched_through().unwrap(), None);
        store
            .commit_dispatch(Dispatch {
                through: Some(7),
                ..Dispatch::default()
            })
            .unwrap();
        store.commit_dispatch(Dispatch::queue(&[])).unwrap();
        drop(store);
        let reopened = Sled::open(dir.path()).unwrap();
        assert_eq!(reopened.dispatched_through().unwrap(), Some(7));
    }

    #[test]
    fn each_hooks_due_deliveries_are_read_apart_and_the_index_is_rebuilt() {
        let (dir, store) = Sled::temporary();
        let (busy, quiet, later) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let make = |hook, n: i64, due: i64| {
            let mut d = Delivery::new(hook, Event::new("s", "e", json!({"n": n}), 0), n as u64, 0);
            d.next_attempt_at_ms = Some(due);
            d
        };
        // A backlog of one hook before the other's only delivery.
        let mut all: Vec<Delivery> = (0..50).map(|n| make(busy, n, 10)).collect();
        all.push(make(quiet, 99, 20));
        all.push(make(later, 100, 1_000));
        store.commit_dispatch(Dispatch::queue(&all)).unwrap();

        assert_eq!(store.hooks_with_due(5).unwrap(), Vec::<Uuid>::new());
        assert_eq!(store.hooks_with_due(20).unwrap(), [busy, quiet]);
        assert_eq!(store.hooks_with_due(1_000).unwrap(), [busy, quiet, later]);
        let quiet_due = store
            .due_deliveries(Due::of_hook(quiet, 20, 10), |_| false)
            .unwrap();
        assert_eq!(quiet_due, [all[50].clone()]);
        let first = all[0].id;
        let busy_due = store
            .due_deliveries(Due::of_hook(busy, 20, 3), |id| id == first)
            .unwrap();
        assert_eq!(busy_due, all[1..4]);

        // Finished: off both indexes.
        store
            .commit_attempts(Attempted::updated(&[finished(
                all[50].clone(),
                30,
                DeliveryState::Succeeded,
            )]))
            .unwrap();
        assert_eq!(store.hooks_with_due(20).unwrap(), [busy]);

        // A store written before the index by hook existed gets it built.
        store.inner.queue.due_by_hook.clear().unwrap();
        drop(store);
        let reopened = Sled::open(dir.path()).unwrap();
        assert_eq!(reopened.hooks_with_due(1_000).unwrap(), [busy, later]);
        assert_eq!(
            reopened
                .due_deliveries(Due::of_hook(busy, 20, 100), |_| false)
                .unwrap()
                .len(),
            50
        );
    }

    #[tokio::test]
    async fn due_and_finished_deliveries_are_counted_across_commits_and_reopen() {
        let (dir, store) = Sled::temporary();
        let hook = Uuid::new_v4();
        let pending: Vec<Delivery> = (0..3)
            .map(|i| Delivery::new(hook, Event::new("s", "e", json!({}), 0), 0, i))
            .collect();
        store.commit_dispatch(Dispatch::queue(&pending)).unwrap();
        assert_eq!(store.queue_depth(), 3);
        // Rescheduled (a failed attempt): still one entry each.
        let mut retried = pending[0].clone();
        retried.next_attempt_at_ms = Some(1_000);
        store
            .commit_attempts(Attempted::updated(&[retried]))
            .unwrap();
        assert_eq!(store.queue_depth(), 3);
        // Written again unchanged: nothing added.
        store
            .commit_attempts(Attempted::updated(&pending[1..2]))
            .unwrap();
        assert_eq!(store.queue_depth(), 3);
        store
            .commit_attempts(Attempted::updated(&[finished(
                pending[2].clone(),
                5,
                DeliveryState::Dead,
            )]))
            .unwrap();
        assert_eq!((store.queue_depth(), store.finished_count()), (2, 1));
        // Finished again, later (a redelivery): still one entry.
        store
            .commit_attempts(Attempted::updated(&[finished(
                pending[2].clone(),
                9,
                DeliveryState::Succeeded,
            )]))
            .unwrap();
        assert_eq!(store.finished_count(), 1);
        drop(store);
        let reopened = Sled::open(dir.path()).unwrap();
        assert_eq!((reopened.queue_depth(), reopened.finished_count()), (2, 1));
        assert_eq!(reopened.prune_deliveries(0, i64::MAX).unwrap(), 1);
        assert_eq!((reopened.queue_depth(), reopened.finished_count()), (2, 0));
    }

    fn ids(listed: &Listed<Delivery>) -> Vec<Uuid> {
        listed.data.iter().map(|d| d.id).collect()
    }

    #[tokio::test]
    async fn dead_letters_page_latest_first_and_leave_when_redelivered() {
        let (dir, store) = Sled::temporary();
        let new = |i| Delivery::new(Uuid::new_v4(), Event::new("s", "e", json!({}), 0), 0, i);
        let dead: Vec<Delivery> = (0..3)
            .map(|i| finished(new(i), 10 + i, DeliveryState::Dead))
            .collect();
        let succeeded = finished(new(0), 11, DeliveryState::Succeeded);
        store.commit_dispatch(Dispatch::queue(&dead)).unwrap();
        store
            .commit_dispatch(Dispatch::queue(std::slice::from_ref(&succeeded)))
            .unwrap();
        let page =
            |size, offset: Option<String>| store.dead_deliveries(&Page { size, offset }).unwrap();
        let first = page(2, None);
        assert_eq!(ids(&first), [dead[2].id, dead[1].id]);
        let second = page(2, first.next.clone());
        assert_eq!(ids(&second), [dead[0].id]);
        assert_eq!(second.next, None);
        assert!(matches!(
            store.dead_deliveries(&Page {
                size: 2,
                offset: Some(succeeded.id.to_string())
            }),
            Err(Error::InvalidOffset)
        ));
        // Redelivered: queued again, no longer a dead letter.
        let mut again = dead[1].clone();
        again.state = DeliveryState::Queued;
        again.next_attempt_at_ms = Some(20);
        store.commit_attempts(Attempted::updated(&[again])).unwrap();
        assert_eq!(ids(&page(10, None)), [dead[2].id, dead[0].id]);

        // A store written before the marks: they are made at the next open.
        let finished = store.inner.queue.finished.clone();
        for key in finished.iter().keys() {
            finished.insert(key.unwrap(), &[]).unwrap();
        }
        store.inner.meta.remove(DEAD_MARKED).unwrap();
        assert!(page(10, None).data.is_empty());
        drop(finished);
        drop(store);
        let reopened = Sled::open(dir.path()).unwrap();
        let listed = reopened
            .dead_deliveries(&Page {
                size: 10,
                offset: None,
            })
            .unwrap();
        assert_eq!(ids(&listed), [dead[2].id, dead[0].id]);
    }

    #[tokio::test]
    async fn retention_goes_chunk_by_chunk_past_keys_that_point_nowhere() {
        let (_dir, store) = Sled::temporary();
        let hook = Uuid::new_v4();
        let total = 2 * PRUNE_CHUNK + 7;
        let finished: Vec<Delivery> = (0..total as i64)
            .map(|i| {
                finished(
                    Delivery::new(hook, Event::new("s", "e", json!({}), 0), 0, i),
                    1_000 + i,
                    DeliveryState::Succeeded,
                )
            })
            .collect();
        store.commit_dispatch(Dispatch::queue(&finished)).unwrap();
        // An index entry older than all of them, whose delivery is gone.
        let dangling = time_key(1, Uuid::new_v4());
        store.inner.queue.finished.insert(dangling, &[]).unwrap();
        store.count(Added {
            due: 0,
            finished: 1,
        });
        assert_eq!(store.finished_count(), total + 1);
        assert_eq!(store.prune_deliveries(10, 0).unwrap(), total - 10);
        assert_eq!(store.inner.queue.finished.len(), 10);
        assert_eq!(store.finished_count(), 10);
        assert!(!store.inner.queue.finished.contains_key(dangling).unwrap());
        for d in &finished[total - 10..] {
            assert!(store.delivery(d.id).unwrap().is_some());
        }
        assert_eq!(store.prune_deliveries(10, 0).unwrap(), 0);
    }
}
