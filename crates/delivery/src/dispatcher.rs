//! The dispatcher: takes events from the outbox in order, matches them to
//! the enabled hooks, applies their conditions, then on_change and snooze,
//! and queues one delivery per hook taking the event, in the same
//! transaction that removes the events.
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
use crate::{Engine, Error};
use hookd_metrics::EventLabels;
use hookd_model::delivery::Delivery;
use hookd_model::event::Operation;
use hookd_model::{Event, EventHook, operational};
use hookd_store::{HookStateUpdate, Page};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Events taken from the outbox per transaction (whole records, so a few
/// more at times).
const BATCH: usize = 1024;

/// How often the outbox is looked at without being woken, in case a
/// wake-up was missed (none should be).
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Runs until the engine shuts down.
pub(crate) async fn run(engine: Arc<Engine>) {
    let mut memory = match engine.store.hook_states() {
        Ok(entries) => gate::load(entries),
        Err(e) => {
            tracing::error!(error = %e, "cannot read on_change/snooze memory; starting empty");
            HashMap::new()
        }
    };
    if let Err(e) = forget_deleted_hooks(&engine, &mut memory).await {
        tracing::error!(error = %e, "cannot drop the on_change/snooze memory of deleted hooks");
    }
    loop {
        if engine.is_shutting_down() {
            return;
        }
        match dispatch_batch(&engine, &mut memory).await {
            Ok(0) => {
                tokio::select! {
                    _ = engine.store.outbox_changed() => {}
                    _ = engine.shutdown.cancelled() => {}
                    _ = tokio::time::sleep(IDLE_CHECK) => {}
                }
            }
            Ok(_) => engine.work_queued(),
            Err(e) => {
                tracing::error!(error = %e, "dispatching events failed; retrying");
                tokio::time::sleep(IDLE_CHECK).await;
            }
        }
    }
}

/// What one batch of events comes to.
#[derive(Default)]
struct Batch {
    deliveries: Vec<Delivery>,
    remembered: Vec<HookStateUpdate>,
}

impl Batch {
    /// Queues a delivery of the event at outbox position `seq`, the
    /// batch's `index`th, for each hook that takes it.
    fn route(
        &mut self,
        engine: &Engine,
        hooks: &[EventHook],
        (index, (seq, event)): (usize, (u64, Event)),
        refusals: &Refusals,
        memory: &mut HashMap<Uuid, HookMemory>,
        now: i64,
    ) {
        engine
            .metrics
            .events
            .get_or_create(&EventLabels {
                source: event.source.clone(),
                event: event.event.clone(),
            })
            .inc();
        if let Some(hook) = begun_or_ended(&event) {
            // A hook deleted, or created again under its id, starts over:
            // no gate memory, no kept guest instances.
            engine.sandbox.forget_hook(hook);
            if let Some(old) = memory.remove(&hook) {
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
            let memory = memory.entry(hook.id).or_default();
            let (fire, remember) = gate::admit(hook, &event, unique, memory, now);
            self.remembered.extend(updates(hook.id, remember));
            if fire {
                self.deliveries
                    .push(Delivery::new(hook.id, event.clone(), seq, now));
            } else {
                tracing::debug!(hook = %hook.id, event = %event.id, "event dropped by on_change/snooze");
            }
        }
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
    if event.source != "crud" || event.event != hookd_model::hook::ENTITY {
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
    let stored: HashSet<Uuid> = load_hooks(engine)?.iter().map(|h| h.id).collect();
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
    engine.store.commit_dispatch(&[], &[], &forgotten)?;
    engine.store.durable().await?;
    Ok(())
}

/// Dispatches one batch; returns how many events it consumed.
async fn dispatch_batch(
    engine: &Engine,
    memory: &mut HashMap<Uuid, HookMemory>,
) -> Result<usize, Error> {
    let taken = engine.store.outbox_batch(BATCH)?;
    if taken.records.is_empty() {
        return Ok(0);
    }
    let hooks = load_hooks(engine)?;
    let now = engine.clock.now_ms();
    let events = taken.events.len();
    let refusals = condition::judge(engine, &hooks, &taken.events).await;
    let mut batch = Batch::default();
    for item in taken.events.into_iter().enumerate() {
        batch.route(engine, &hooks, item, &refusals, memory, now);
    }
    engine
        .store
        .commit_dispatch(&taken.records, &batch.deliveries, &batch.remembered)?;
    engine.store.durable().await?;
    tracing::debug!(events, deliveries = batch.deliveries.len(), "dispatched");
    Ok(events)
}

/// Every hook, read afresh for each batch so that created, changed and
/// deleted hooks take effect at the next event.
fn load_hooks(engine: &Engine) -> Result<Vec<EventHook>, Error> {
    let mut hooks = Vec::new();
    let mut page = Page {
        size: 1000,
        offset: None,
    };
    loop {
        let listed = engine.store.list(hookd_model::hook::ENTITY, &page)?;
        for value in listed.data {
            match serde_json::from_value::<EventHook>(value) {
                Ok(h) => hooks.push(h),
                Err(e) => {
                    tracing::error!(error = %e, "a stored event hook does not decode; skipped")
                }
            }
        }
        match listed.next {
            Some(next) => page.offset = Some(next),
            None => return Ok(hooks),
        }
    }
}
