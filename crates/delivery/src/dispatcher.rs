//! The dispatcher: takes events from the outbox in order, matches them to
//! the enabled hooks, applies their conditions, then on_change and snooze,
//! and makes one delivery per hook taking the event.
//!
//! A delivery is handed to the scheduler in memory ([`Unstored`](crate::unstored::Unstored)): the
//! outbox record of its event stays until its first attempt ends and it is
//! stored then, once. The deliveries of hooks with on_change or snooze are
//! stored at once instead, in one transaction with what the hooks now
//! remember, and so are all of a batch's when memory is full. Records
//! whose events made no delivery in memory leave the outbox in that
//! transaction.
//!
//! A hookd that stopped leaves records in the outbox whose deliveries
//! ended in part: they are dispatched again, and a delivery already
//! stored is not made twice (its id is the same: its event's and hook's).
//! Nor are on_change and snooze decided twice for events whose decisions
//! were stored: the store remembers the last record dispatched with them.
//!
//! A hook's condition is applied before on_change and snooze, so that an
//! event the condition refuses leaves their memory as it was: on_change
//! compares the events the hook takes, and snooze windows open only on
//! them. The conditions of a batch are evaluated together before it is
//! routed (see [`condition::judge`]).
//!
//! A hook's on_change and snooze memory belongs to one incarnation of the
//! hook: the `event_hooks` crud event of its creation or deletion, met in
//! the outbox in order with every other event, clears it. A hook deleted
//! leaves nothing behind, and one created again under the same id starts
//! clean.

use crate::condition::{self, Refusals};
use crate::gate::{self, HookMemory, Remember};
use crate::worker::Report;
use crate::{Engine, Error};
use hookd_metrics::EventLabels;
use hookd_model::delivery::Delivery;
use hookd_model::event::Operation;
use hookd_model::{Event, EventHook, operational};
use hookd_store::{Dispatch, HookStateUpdate, record_of};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Events taken from the outbox per batch (whole records, so a few more
/// at times).
const BATCH: usize = 1024;

/// How often the outbox is looked at without being woken, in case a
/// wake-up was missed (none should be).
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Runs until the engine shuts down.
pub(crate) async fn run(engine: Arc<Engine>) {
    let mut memory = match engine.store.hook_states().await {
        Ok(entries) => gate::load(entries),
        Err(e) => {
            tracing::error!(error = %e, "cannot read on_change/snooze memory; starting empty");
            HashMap::new()
        }
    };
    if let Err(e) = forget_deleted_hooks(&engine, &mut memory).await {
        tracing::error!(error = %e, "cannot drop the on_change/snooze memory of deleted hooks");
    }
    let mut place = loop {
        match Place::at_start(&engine).await {
            Ok(place) => break place,
            Err(e) => {
                tracing::error!(error = %e, "cannot read where dispatching stopped; retrying");
                tokio::select! {
                    _ = engine.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(IDLE_CHECK) => {}
                }
            }
        }
    };
    loop {
        if engine.is_shutting_down() {
            return;
        }
        match dispatch_batch(&engine, &mut place, &mut memory).await {
            Ok(0) => {
                tokio::select! {
                    _ = engine.store.outbox_changed() => {}
                    _ = engine.shutdown.cancelled() => {}
                    _ = tokio::time::sleep(IDLE_CHECK) => {}
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "dispatching events failed; retrying");
                tokio::time::sleep(IDLE_CHECK).await;
            }
        }
    }
}

/// Where the dispatcher is in the outbox, and what it must not do again
/// for the records an earlier run left there.
#[derive(Debug, Clone, Copy)]
struct Place {
    /// The last record taken: the records before it stay in the outbox
    /// while deliveries in memory hold them.
    after: Option<u64>,
    /// Records up to here were in the outbox at start, dispatched before
    /// in part perhaps: deliveries of theirs already stored are not made
    /// again.
    again_through: Option<u64>,
    /// Records up to here had on_change and snooze decided and stored:
    /// hooks with either take none of their events again.
    gated_through: Option<u64>,
}

impl Place {
    async fn at_start(engine: &Engine) -> Result<Self, Error> {
        Ok(Place {
            after: None,
            again_through: engine.store.outbox_last_record().await?,
            gated_through: engine.store.dispatched_through().await?,
        })
    }

    /// Whether the event at outbox position `seq` may have been dispatched
    /// before, and whether its gated hooks' decisions were stored.
    fn seen(&self, seq: u64) -> (bool, bool) {
        let record = record_of(seq);
        let upto = |through: Option<u64>| through.is_some_and(|t| record <= t);
        (upto(self.again_through), upto(self.gated_through))
    }
}

/// What one batch of events comes to.
#[derive(Default)]
struct Batch {
    /// Deliveries to attempt from memory.
    unstored: Vec<Delivery>,
    /// Deliveries to store now.
    stored: Vec<Delivery>,
    remembered: Vec<HookStateUpdate>,
}

impl Batch {
    /// Makes a delivery of the event at outbox position `seq`, the
    /// batch's `index`th, for each hook that takes it.
    #[allow(clippy::too_many_arguments)]
    async fn route(
        &mut self,
        engine: &Engine,
        hooks: &[Arc<EventHook>],
        (index, (seq, event)): (usize, (u64, Event)),
        refusals: &Refusals,
        memory: &mut HashMap<Uuid, HookMemory>,
        place: &Place,
        now: i64,
    ) -> Result<(), Error> {
        engine
            .metrics
            .events
            .get_or_create(&EventLabels {
                source: event.source.clone(),
                event: event.event.clone(),
            })
            .inc();
        let (again, gated_done) = place.seen(seq);
        if let Some(hook) = begun_or_ended(&event) {
            // A hook deleted, or created again under its id, starts over:
            // no gate memory, no kept guest instances made before.
            engine.sandbox.forget_hook(hook, event.at_ms);
            if !gated_done && let Some(old) = memory.remove(&hook) {
                self.remembered.extend(updates(hook, gate::forget(&old)));
            }
        }
        let unique = engine
            .catalogue
            .event(&event.source, &event.event)
            .and_then(|info| info.unique.as_deref());
        // A disabled hook takes no events, and no hook takes an
        // operational event about itself.
        let about = operational::hook_of(&event);
        for hook in hooks.iter().filter(|h| {
            h.enabled
                && h.matches(&event.source, &event.event)
                && about != Some(h.id)
                && refusals.admit(index, h.id)
        }) {
            let gated = gate::applies(hook);
            if gated && gated_done {
                continue;
            }
            let memory = memory.entry(hook.id).or_default();
            let (fire, remember) = gate::admit(hook, &event, unique, memory, now);
            self.remembered.extend(updates(hook.id, remember));
            if !fire {
                tracing::debug!(hook = %hook.id, event = %event.id, "event dropped by on_change/snooze");
                continue;
            }
            let delivery = Delivery::new(hook.id, event.clone(), seq, now);
            if again && engine.store.delivery_exists(delivery.id).await? {
                continue;
            }
            // Another node attempts the hooks of the shards it holds: it
            // finds their deliveries in the store.
            if gated || !engine.shards.owns(hook.id) {
                self.stored.push(delivery);
            } else {
                self.unstored.push(delivery);
            }
        }
        Ok(())
    }
}

/// The store's form of what a hook remembers or forgets.
fn updates(hook: Uuid, remember: Vec<Remember>) -> impl Iterator<Item = HookStateUpdate> {
    remember
        .into_iter()
        .map(move |(name, value)| HookStateUpdate { hook, name, value })
}

/// The hook whose creation or deletion `event` reports: whatever was
/// remembered under its id belonged to another incarnation.
fn begun_or_ended(event: &Event) -> Option<Uuid> {
    if !writes_a_hook(event) {
        return None;
    }
    match Operation::deserialize(event.data.get("operation")?).ok()? {
        Operation::Create | Operation::Delete => {}
        Operation::Update => return None,
    }
    Uuid::try_parse(event.data.get("entity")?.get("id")?.as_str()?).ok()
}

/// Drops the memory of hooks that no longer exist: those deleted before
/// their deletion cleared it (by an older hookd, or while an entry was in
/// the quarantine).
async fn forget_deleted_hooks(
    engine: &Engine,
    memory: &mut HashMap<Uuid, HookMemory>,
) -> Result<(), Error> {
    let stored: HashSet<Uuid> = engine
        .hooks
        .get(&engine.store)
        .await?
        .list
        .iter()
        .map(|h| h.id)
        .collect();
    let mut forgotten = Vec::new();
    memory.retain(|id, old| {
        let exists = stored.contains(id);
        if !exists {
            forgotten.extend(updates(*id, gate::forget(old)));
        }
        exists
    });
    if forgotten.is_empty() {
        return Ok(());
    }
    engine
        .store
        .commit_dispatch(Dispatch::remember(&forgotten))
        .await?;
    engine.store.durable().await?;
    Ok(())
}

/// Dispatches one batch; returns how many events it took.
async fn dispatch_batch(
    engine: &Engine,
    place: &mut Place,
    memory: &mut HashMap<Uuid, HookMemory>,
) -> Result<usize, Error> {
    let taken = engine.store.outbox_batch_after(place.after, BATCH).await?;
    let Some(&through) = taken.records.last() else {
        return Ok(0);
    };
    if taken.events.iter().any(|(_, e)| writes_a_hook(e)) {
        engine.hooks.invalidate();
    }
    let hooks = engine.hooks.get(&engine.store).await?;
    let now = engine.clock.now_ms();
    let events = taken.events.len();
    let refusals = condition::judge(engine, &hooks.list, &taken.events).await;
    let mut batch = Batch::default();
    for item in taken.events.into_iter().enumerate() {
        batch
            .route(engine, &hooks.list, item, &refusals, memory, place, now)
            .await?;
    }
    if !engine.unstored.has_room(batch.unstored.len()) {
        let unstored = std::mem::take(&mut batch.unstored);
        batch.stored.extend(unstored);
    }
    let held: HashSet<u64> = batch.unstored.iter().map(|d| record_of(d.seq)).collect();
    let done: Vec<u64> = taken
        .records
        .iter()
        .copied()
        .filter(|r| !held.contains(r))
        .collect();
    let commits = !(done.is_empty() && batch.stored.is_empty() && batch.remembered.is_empty());
    if commits {
        engine
            .store
            .commit_dispatch(Dispatch {
                through: Some(through),
                records: &done,
                deliveries: &batch.stored,
                state: &batch.remembered,
            })
            .await?;
    }
    place.after = Some(through);
    tracing::debug!(
        events,
        unstored = batch.unstored.len(),
        stored = batch.stored.len(),
        "dispatched"
    );
    if !batch.unstored.is_empty() {
        engine.unstored.add(&batch.unstored);
        let _ = engine.reports.send(Report::Dispatched(batch.unstored));
    }
    if commits {
        engine.store.durable().await?;
    }
    if !batch.stored.is_empty() {
        engine.work_queued();
        engine.store.announce_due();
    }
    Ok(events)
}

/// Whether `event` reports a write of an event hook: the hooks are read
/// again before the events that follow it are routed.
fn writes_a_hook(event: &Event) -> bool {
    event.source == "crud" && event.event == hookd_model::hook::ENTITY
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{T0, engine};
    use hookd_store::{Attempted, Page};
    use serde_json::json;

    async fn publish(engine: &Engine, v: i64) {
        let event = Event::new("s", "e", json!({"v": v}), T0);
        engine.store.publish(&[event]).await.unwrap();
    }

    async fn stored(engine: &Engine, hook: Uuid) -> usize {
        let page = Page {
            size: 100,
            offset: None,
        };
        engine
            .store
            .hook_deliveries(hook, &page)
            .await
            .unwrap()
            .data
            .len()
    }

    /// Stores one of the hook's deliveries in memory, as the completer
    /// does when its first attempt ends.
    async fn store_first(engine: &Engine, hook: Uuid) {
        let done = engine.unstored.of_hook(hook, None).pop().unwrap();
        let ended = engine.unstored.storing([&done]);
        engine
            .store
            .commit_attempts(Attempted {
                first: std::slice::from_ref(&done),
                ended: &ended,
                ..Attempted::default()
            })
            .await
            .unwrap();
        engine.unstored.forget([done.id]);
    }

    #[tokio::test]
    async fn a_dispatch_repeated_after_a_stop_makes_nothing_twice_and_decides_on_change_once() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = engine(dir.path());
        let engine = &deliveries.engine;
        let (gated, plain) = (Uuid::new_v4(), Uuid::new_v4());
        for (id, on_change) in [(gated, true), (plain, false)] {
            let hook = json!({"id": id.to_string(), "created_at": 0, "source": "s",
                              "on_change": on_change, "handler": "log", "config": {}});
            engine
                .store
                .insert(hookd_model::hook::ENTITY, hook, T0)
                .await
                .unwrap();
        }
        let mut memory = HashMap::new();
        let mut place = Place::at_start(engine).await.unwrap();
        // v=1 fires the on_change hook; the plain hook's delivery ends, and
        // its record with it.
        publish(engine, 1).await;
        dispatch_batch(engine, &mut place, &mut memory)
            .await
            .unwrap();
        store_first(engine, plain).await;
        // v=1 again does not fire, v=2 does; the plain hook's deliveries
        // stay in memory, holding their records.
        for v in [1, 2] {
            publish(engine, v).await;
            dispatch_batch(engine, &mut place, &mut memory)
                .await
                .unwrap();
        }
        assert_eq!(stored(engine, gated).await, 2);
        assert_eq!(stored(engine, plain).await, 1);
        assert_eq!(engine.unstored.len(), 2);
        assert_eq!(engine.store.outbox_len().await.unwrap(), 2);

        // Stopped before those attempts ended: a new start dispatches the
        // two records again. The on_change hook decided them already:
        // deciding the second v=1 again, against v=2's memory, would fire.
        let restarted = crate::testing::engine_after(&deliveries);
        let engine = &restarted.engine;
        let mut memory = gate::load(engine.store.hook_states().await.unwrap());
        let mut place = Place::at_start(engine).await.unwrap();
        assert_eq!(
            dispatch_batch(engine, &mut place, &mut memory)
                .await
                .unwrap(),
            2
        );
        assert_eq!(stored(engine, gated).await, 2);
        assert_eq!(engine.unstored.len(), 2, "the plain hook's, made again");

        // One of them ends and is stored: a third start makes the other
        // only.
        store_first(engine, plain).await;
        let again = crate::testing::engine_after(&restarted);
        let engine = &again.engine;
        let mut memory = gate::load(engine.store.hook_states().await.unwrap());
        let mut place = Place::at_start(engine).await.unwrap();
        dispatch_batch(engine, &mut place, &mut memory)
            .await
            .unwrap();
        assert_eq!(engine.unstored.len(), 1);
        assert_eq!(stored(engine, plain).await, 2);
    }

    #[tokio::test]
    async fn deliveries_of_hooks_another_node_attempts_are_stored_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = crate::testing::engine_holding(dir.path(), hookd_store::ShardSet::none());
        let engine = &deliveries.engine;
        let hook = Uuid::new_v4();
        let body = json!({"id": hook.to_string(), "created_at": 0, "source": "s",
                          "handler": "log", "config": {}});
        engine
            .store
            .insert(hookd_model::hook::ENTITY, body, T0)
            .await
            .unwrap();
        let mut place = Place::at_start(engine).await.unwrap();
        publish(engine, 1).await;
        dispatch_batch(engine, &mut place, &mut HashMap::new())
            .await
            .unwrap();
        assert_eq!(engine.unstored.len(), 0, "none kept in this node's memory");
        assert_eq!(stored(engine, hook).await, 1);
        assert_eq!(engine.store.outbox_len().await.unwrap(), 0);
    }
}
