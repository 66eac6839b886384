//! The workers: a scheduler hands due deliveries to a bounded pool of
//! attempts, hook by hook in turn ([`Lanes`]), counts each hook's failures
//! ([`Breakers`]), and a completer commits the outcomes in batches (one
//! transaction and one shared flush for many attempts) with the
//! operational events they cause.
//!
//! The scheduler alone owns the lanes and the breakers: attempts, and the
//! Admin API when it writes a hook, report to it over a channel, so their
//! state needs no lock and changes in the order the reports come.

use crate::Engine;
use crate::breaker::{Breakers, Paused, Turn};
use crate::handler::Outcome;
use crate::hooks::HookSet;
use crate::lanes::{Lanes, Rules};
use hookd_metrics::{HandlerLabels, OutcomeLabels};
use hookd_model::delivery::{Delivery, DeliveryState};
use hookd_model::{Event, EventHook, operational};
use hookd_store::{Attempted, Dispatch, Due, HookStateUpdate};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use uuid::Uuid;

/// Longest sleep between looks at the queue: a changed clock or a missed
/// wake-up is noticed within this time.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// How often a scheduler shutting down looks whether every attempt ended.
const SHUTDOWN_CHECK: Duration = Duration::from_millis(100);

/// Outcomes committed per transaction, at most.
const COMMIT_BATCH: usize = 1024;

/// What the scheduler is told.
#[derive(Debug)]
pub(crate) enum Report {
    /// The dispatcher made deliveries that are in memory only.
    Dispatched(Vec<Delivery>),
    /// An attempt ended; `hook_gone` when its hook was deleted.
    Attempted { delivery: Delivery, hook_gone: bool },
    /// A hook was written or deleted through the Admin API: its failures
    /// are forgotten and its rules read again.
    HookWritten(Uuid),
    /// Any hook may have been written through another node: every rule
    /// is read again.
    HooksUnknown,
}

/// What the completer writes for one report.
#[derive(Debug, Default)]
struct Finished {
    /// Deliveries as their attempt left them, or that must wait in the
    /// queue before their first.
    deliveries: Vec<Delivery>,
    /// The delivery whose attempt ended: its claim ends once it is stored.
    attempted: Option<Uuid>,
    /// The hook's breaker as it now stands.
    remember: Option<HookStateUpdate>,
    /// Operational events to publish.
    events: Vec<Event>,
    /// A hook to disable.
    disable: Option<Uuid>,
}

/// Runs the scheduler, the attempts and the completer until shutdown.
pub(crate) async fn run(engine: Arc<Engine>, reports: mpsc::UnboundedReceiver<Report>) {
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let completer = tokio::spawn(complete(Arc::clone(&engine), done_rx));
    Scheduler::new(&engine).await.run(reports, done_tx).await;
    // The scheduler has passed on every report: the completer commits the
    // last outcomes and stops.
    let _ = completer.await;
}

struct Scheduler<'a> {
    engine: &'a Arc<Engine>,
    lanes: Lanes,
    breakers: Breakers,
    /// Each hook's rules, read once and forgotten when the hook is written.
    rules: HashMap<Uuid, Rules>,
    /// The hooks, as the engine's cache had them at the top of this turn
    /// of the loop; new rules are read from them.
    hooks: Result<Arc<HookSet>, String>,
    /// Whether the store may hold due deliveries the lanes have not seen:
    /// set by new work, by time passing, by a hook's write and by a lane
    /// running low. An attempt's end alone does not send the scheduler to
    /// the store, whose every look walks past what the lanes hold.
    look: bool,
    permits: Arc<Semaphore>,
    workers: usize,
    /// Deliveries in memory only let go of by their lanes: stored with
    /// the next report's writes.
    waiting: Vec<Delivery>,
    /// The generation of the shards held when the breakers were last read.
    shards_seen: u64,
}

impl<'a> Scheduler<'a> {
    async fn new(engine: &'a Arc<Engine>) -> Self {
        let breakers = match engine.store.hook_states().await {
            Ok(entries) => Breakers::load(&entries),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the hooks' breakers; starting with none");
                Breakers::default()
            }
        };
        let workers = engine.settings.workers.max(1);
        Scheduler {
            engine,
            lanes: Lanes::default(),
            breakers,
            rules: HashMap::new(),
            hooks: Err("not read yet".into()),
            look: true,
            permits: Arc::new(Semaphore::new(workers)),
            workers,
            waiting: Vec::new(),
            shards_seen: engine.shards.generation(),
        }
    }

    /// Reads the stored breakers of the hooks of shards gained since the
    /// last look: their failures were counted by the node that held them.
    async fn adopt_gained_hooks(&mut self) {
        let shards = &self.engine.shards;
        let generation = shards.generation();
        if generation == self.shards_seen {
            return;
        }
        match self.engine.store.hook_states().await {
            Ok(entries) => {
                self.breakers
                    .adopt(Breakers::load(&entries), |hook| shards.owns(hook));
                self.shards_seen = generation;
                self.look = true;
            }
            Err(e) => tracing::error!(error = %e, "cannot read the breakers of gained hooks"),
        }
    }

    async fn run(
        mut self,
        mut reports: mpsc::UnboundedReceiver<Report>,
        done: mpsc::UnboundedSender<Finished>,
    ) {
        let engine = self.engine;
        loop {
            self.hooks = load_hooks(engine).await;
            while let Ok(report) = reports.try_recv() {
                let _ = done.send(self.heard(report));
            }
            if engine.is_shutting_down() {
                if self.permits.available_permits() == self.workers {
                    // Every attempt has reported, before giving its permit
                    // back: pass on what came since the last look.
                    while let Ok(report) = reports.try_recv() {
                        let _ = done.send(self.heard(report));
                    }
                    return;
                }
                // An attempt that panicked gives its permit back without
                // a report: look at the permits again now and then.
                tokio::select! {
                    Some(report) = reports.recv() => {
                        let _ = done.send(self.heard(report));
                    }
                    _ = tokio::time::sleep(SHUTDOWN_CHECK) => {}
                }
                continue;
            }
            self.adopt_gained_hooks().await;
            let started = self.start_due().await;
            if !self.waiting.is_empty() {
                let _ = done.send(Finished {
                    deliveries: std::mem::take(&mut self.waiting),
                    ..Finished::default()
                });
            }
            let free = self.permits.available_permits();
            if started && free > 0 {
                continue;
            }
            let wait = if free == 0 {
                IDLE_CHECK
            } else {
                self.until_next_work().await
            };
            tokio::select! {
                report = reports.recv() => {
                    if let Some(report) = report {
                        let _ = done.send(self.heard(report));
                    }
                }
                _ = engine.work.notified() => self.look = true,
                _ = engine.store.queue_changed() => self.look = true,
                _ = engine.shutdown.cancelled() => {}
                _ = tokio::time::sleep(wait) => self.look = true,
            }
        }
    }

    /// Holds due deliveries and starts as many attempts as the workers and
    /// the lanes allow; true when anything was held or started.
    async fn start_due(&mut self) -> bool {
        let free = self.permits.available_permits();
        if free == 0 {
            return false;
        }
        let now = Instant::now();
        let wanted = self.look && self.lanes.startable(&self.breakers, now) < free;
        if wanted {
            self.look = false;
        }
        let mut progressed = match if wanted { self.hold_due().await } else { Ok(0) } {
            Ok(held) => held > 0,
            Err(e) => {
                tracing::error!(error = %e, "reading due deliveries failed");
                self.look = true;
                false
            }
        };
        while let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            let Some(delivery) = self.lanes.next(&mut self.breakers, now) else {
                break;
            };
            if !self.engine.shards.owns(delivery.hook_id) {
                // The hook's shard went to another node, which reads its
                // stored deliveries; one in memory only is stored for it.
                self.lanes.finished(delivery.hook_id);
                self.store_waiting(vec![delivery]);
                continue;
            }
            if !self.engine.claim(delivery.id) {
                // A redelivery holds it for a moment: it is read again at a
                // later look, from the store (where one in memory only is
                // stored to wait).
                self.lanes.finished(delivery.hook_id);
                self.store_waiting(vec![delivery]);
                continue;
            }
            progressed = true;
            self.spawn_attempt(delivery, permit);
        }
        progressed
    }

    fn spawn_attempt(&self, delivery: Delivery, permit: OwnedSemaphorePermit) {
        let engine = Arc::clone(self.engine);
        tokio::spawn(async move {
            let (delivery, hook_gone) = attempt(&engine, delivery).await;
            let _ = engine.reports.send(Report::Attempted {
                delivery,
                hook_gone,
            });
            // Given back after the report, so a scheduler that sees every
            // permit back has every report.
            drop(permit);
        });
    }

    /// Reads due deliveries into their lanes, hook by hook, as many as
    /// each lane has room for, passing over those held or in flight
    /// already; a paused hook's probe is read even into a full lane.
    /// Returns how many it held.
    async fn hold_due(&mut self) -> Result<usize, hookd_store::Error> {
        let engine = self.engine;
        let store = &engine.store;
        let now_ms = engine.clock.now_ms();
        let now = Instant::now();
        // Read when a lane has room: most looks find only full lanes.
        let mut busy = None;
        let mut held = 0;
        for hook in store.hooks_with_due(now_ms).await? {
            if !engine.shards.owns(hook) {
                let released = self.lanes.release(hook);
                self.store_waiting(released);
                continue;
            }
            let rules = self.rules(hook);
            if !rules.enabled {
                let released = self.lanes.release(hook);
                self.store_waiting(released);
                continue;
            }
            let room = self.lanes.room(hook, &rules);
            let probe = match self.breakers.paused(hook) {
                Some(Paused::Probe(probe)) => Some(probe),
                _ => None,
            };
            if room == 0 && probe.is_none() {
                self.lanes.set_rules(hook, rules, now);
                continue;
            }
            let busy = busy.get_or_insert_with(|| engine.in_flight_ids());
            let lanes = &self.lanes;
            let mut due = store
                .due_deliveries(Due::of_hook(hook, now_ms, room), &mut |id| {
                    busy.contains(&id) || lanes.holds(id)
                })
                .await?;
            if let Some(probe) = probe
                && !lanes.holds(probe)
                && !busy.contains(&probe)
                && !due.iter().any(|d| d.id == probe)
            {
                due.extend(
                    store
                        .delivery(probe)
                        .await?
                        .filter(|d| d.next_attempt_at_ms.is_some_and(|at| at <= now_ms)),
                );
            }
            held += due.len();
            for delivery in due {
                self.lanes.hold(delivery, rules, now);
            }
            self.lanes.set_rules(hook, rules, now);
        }
        Ok(held)
    }

    /// How long nothing can start: until a rate-limited lane gets a token
    /// or the next scheduled attempt is due, within [`IDLE_CHECK`].
    /// Deliveries due already wait for a worker or a lane, whose end is
    /// reported.
    async fn until_next_work(&self) -> Duration {
        let engine = self.engine;
        let mut wait = IDLE_CHECK;
        if let Some(at) = self.lanes.next_token_at(&self.breakers) {
            wait = wait.min(at.saturating_duration_since(Instant::now()));
        }
        let now_ms = engine.clock.now_ms();
        match engine.store.next_due_after(now_ms).await {
            Ok(Some(due)) => wait = wait.min(Duration::from_millis((due - now_ms).max(0) as u64)),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "reading the next due delivery failed"),
        }
        wait
    }

    /// Deliveries in memory only that must wait for their hook: the
    /// completer stores them as they are, due.
    fn store_waiting(&mut self, deliveries: Vec<Delivery>) {
        let unstored = &self.engine.unstored;
        self.waiting
            .extend(deliveries.into_iter().filter(|d| unstored.contains(d.id)));
    }

    /// The rules of a hook's lane, read once until the hook is written.
    fn rules(&mut self, hook: Uuid) -> Rules {
        let default = self.engine.settings.concurrency.default;
        *self
            .rules
            .entry(hook)
            .or_insert_with(|| rules_of(&self.hooks, hook, default))
    }

    /// Holds dispatched deliveries in their lanes; those whose hook is
    /// disabled or paused, or whose lane is full, are stored to wait.
    fn hold_dispatched(&mut self, deliveries: Vec<Delivery>) -> Finished {
        let now = Instant::now();
        let mut waiting = Vec::new();
        for delivery in deliveries {
            let hook = delivery.hook_id;
            let rules = self.rules(hook);
            if rules.enabled
                && self.breakers.paused(hook).is_none()
                && self.lanes.room(hook, &rules) > 0
            {
                self.lanes.hold(delivery, rules, now);
            } else {
                waiting.push(delivery);
            }
        }
        Finished {
            deliveries: waiting,
            ..Finished::default()
        }
    }

    /// Takes in a report: what the completer then writes.
    fn heard(&mut self, report: Report) -> Finished {
        let mut finished = self.take_in(report);
        finished.deliveries.append(&mut self.waiting);
        finished
    }

    fn take_in(&mut self, report: Report) -> Finished {
        match report {
            Report::Dispatched(deliveries) => self.hold_dispatched(deliveries),
            Report::HookWritten(hook) => {
                self.rules.remove(&hook);
                self.look = true;
                Finished {
                    remember: self.breakers.reset(hook),
                    ..Finished::default()
                }
            }
            Report::HooksUnknown => {
                self.rules.clear();
                self.look = true;
                Finished::default()
            }
            Report::Attempted {
                delivery,
                hook_gone,
            } => {
                let hook = delivery.hook_id;
                self.lanes.finished(hook);
                self.look |= self.lanes.running_low(hook);
                let now_ms = self.engine.clock.now_ms();
                let (remember, turns) = if hook_gone {
                    self.rules.remove(&hook);
                    (self.breakers.reset(hook), Vec::new())
                } else {
                    self.breakers
                        .record(&delivery, &self.engine.settings.breaker, now_ms)
                };
                let mut finished = Finished {
                    remember,
                    ..Finished::default()
                };
                for turn in turns {
                    if let Turn::Disable { .. } = turn {
                        // Held no more from now, before the write lands.
                        let released = self.lanes.release(hook);
                        self.store_waiting(released);
                        let default = self.engine.settings.concurrency.default;
                        self.rules
                            .entry(hook)
                            .or_insert_with(|| rules_of(&self.hooks, hook, default))
                            .enabled = false;
                        finished.disable = Some(hook);
                    }
                    finished.events.push(turn_event(hook, turn, now_ms));
                }
                if delivery.state == DeliveryState::Dead && !hook_gone {
                    finished.events.push(dead_event(&delivery, now_ms));
                }
                finished.attempted = Some(delivery.id);
                finished.deliveries.push(delivery);
                finished
            }
        }
    }
}

/// The rules of a hook's lane; a hook that cannot be read runs by the
/// defaults, and its attempts say why it cannot be read.
fn rules_of(hooks: &Result<Arc<HookSet>, String>, hook: Uuid, default: u32) -> Rules {
    let hook = match hooks {
        Ok(hooks) => hooks.get(hook),
        Err(e) => Err(e.clone()),
    };
    match hook {
        Ok(Some(hook)) => Rules::of(&hook, default),
        Ok(None) | Err(_) => Rules {
            enabled: true,
            concurrency: default as usize,
            rate: None,
        },
    }
}

/// The operational event of a hook's turn.
fn turn_event(hook: Uuid, turn: Turn, now_ms: i64) -> Event {
    let (name, data) = match turn {
        Turn::Paused {
            failures,
            delivery,
            error,
        } => (
            operational::HOOK_PAUSED,
            json!({"failures": failures, "delivery": delivery, "error": error}),
        ),
        Turn::Resumed { paused_at_ms } => (
            operational::HOOK_RESUMED,
            json!({"paused_at": paused_at_ms / 1000}),
        ),
        Turn::Disable { failing_since_ms } => (
            operational::HOOK_DISABLED,
            json!({"failing_since": failing_since_ms / 1000}),
        ),
    };
    operational::about_hook(name, hook, data, now_ms)
}

/// The operational event of a delivery out of attempts.
fn dead_event(delivery: &Delivery, now_ms: i64) -> Event {
    let last = delivery.attempts.last();
    let data = json!({
        "delivery": delivery.id,
        "event_id": delivery.event.id,
        "event_source": delivery.event.source,
        "event_name": delivery.event.event,
        "attempts": delivery.attempts.len(),
        "error": last.and_then(|a| a.error.clone()),
    });
    operational::about_hook(operational::DELIVERY_DEAD, delivery.hook_id, data, now_ms)
}

/// One attempt at a delivery; returns the delivery as it now stands, and
/// whether its hook is gone.
async fn attempt(engine: &Engine, mut delivery: Delivery) -> (Delivery, bool) {
    let at_ms = engine.clock.now_ms();
    let number = delivery.attempts.len() as u32 + 1;
    let started = Instant::now();
    let (outcome, handler) = match load_hook(engine, delivery.hook_id).await {
        Ok(Some(hook)) => (
            crate::run::handle(engine, &hook, &delivery.event, delivery.id, at_ms).await,
            hook.handler.name(),
        ),
        Ok(None) => (Outcome::HookGone, "unknown"),
        Err(reason) => (Outcome::failed(reason), "unknown"),
    };
    let elapsed = started.elapsed();
    let hook_gone = matches!(outcome, Outcome::HookGone);
    let next = match &outcome {
        Outcome::Failed { retry_after, .. } => engine.settings.retry.next_delay(
            number,
            retry_after.map(|r| r.delay_from(at_ms)),
            engine.random.as_ref(),
        ),
        Outcome::Delivered { .. } | Outcome::HookGone => None,
    };
    let delivered = outcome.is_delivered();
    delivery.state = match (delivered, next) {
        (true, _) => DeliveryState::Succeeded,
        (false, Some(_)) => DeliveryState::Failed,
        (false, None) => DeliveryState::Dead,
    };
    record(engine, handler, delivered, delivery.state, at_ms, elapsed);
    delivery.next_attempt_at_ms = next.map(|d| at_ms + d.as_millis() as i64);
    let attempt = outcome.into_attempt(number, at_ms, elapsed.as_millis() as u64);
    if !attempt.ok {
        tracing::warn!(delivery = %delivery.id, hook = %delivery.hook_id, attempt = number,
            status = ?attempt.status, error = ?attempt.error, "delivery attempt failed");
    }
    delivery.attempts.push(attempt);
    (delivery, hook_gone)
}

/// Counts the attempt made at `at_ms`, its duration and, when it ended the
/// delivery, how.
fn record(
    engine: &Engine,
    handler: &str,
    ok: bool,
    state: DeliveryState,
    at_ms: i64,
    elapsed: Duration,
) {
    let m = &engine.metrics;
    m.last_hour.record(at_ms, ok);
    let labels = |outcome: &str| OutcomeLabels {
        handler: handler.to_string(),
        outcome: outcome.to_string(),
    };
    m.attempts
        .get_or_create(&labels(if ok { "ok" } else { "failed" }))
        .inc();
    m.attempt_seconds
        .get_or_create(&HandlerLabels {
            handler: handler.to_string(),
        })
        .observe(elapsed.as_secs_f64());
    if state.is_final() {
        m.deliveries.get_or_create(&labels(state.as_str())).inc();
    }
}

/// The hooks as they are stored (cached until a hook is written).
async fn load_hooks(engine: &Engine) -> Result<Arc<HookSet>, String> {
    engine
        .hooks
        .get(&engine.store)
        .await
        .map_err(|e| format!("reading the event hooks failed: {e}"))
}

/// A delivery's hook; none when it was deleted. A hook the cache does
/// not know is looked up in the store before it counts as deleted: it
/// may have been written through another node a moment ago, before the
/// news of it came. Only then are the hooks read again, so that the
/// deliveries of a deleted hook cost one lookup each, not a reread.
async fn load_hook(engine: &Engine, hook: Uuid) -> Result<Option<Arc<EventHook>>, String> {
    if let Some(found) = load_hooks(engine).await?.get(hook)? {
        return Ok(Some(found));
    }
    let stored = engine
        .store
        .get(hookd_model::hook::ENTITY, hook)
        .await
        .map_err(|e| format!("reading the event hook failed: {e}"))?;
    if stored.is_none() {
        return Ok(None);
    }
    engine.hooks.invalidate();
    load_hooks(engine).await?.get(hook)
}

async fn complete(engine: Arc<Engine>, mut done: mpsc::UnboundedReceiver<Finished>) {
    let mut batch = Vec::with_capacity(COMMIT_BATCH);
    while done.recv_many(&mut batch, COMMIT_BATCH).await > 0 {
        let (first, updated): (Vec<Delivery>, Vec<Delivery>) = batch
            .iter_mut()
            .flat_map(|f| f.deliveries.drain(..))
            .partition(|d| engine.unstored.contains(d.id));
        let ended = engine.unstored.storing(&first);
        let remembered: Vec<HookStateUpdate> =
            batch.iter_mut().filter_map(|f| f.remember.take()).collect();
        // A failed commit leaves the deliveries as they were: due in the
        // store, or in memory with their outbox records. They run again
        // (at least once), so retrying the commit is all there is to do.
        loop {
            match commit(&engine, &updated, &first, &ended, &remembered).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, "recording delivery attempts failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        for hook in batch.iter().filter_map(|f| f.disable) {
            disable(&engine, hook).await;
        }
        let events: Vec<Event> = batch.iter_mut().flat_map(|f| f.events.drain(..)).collect();
        if !events.is_empty()
            && let Err(e) = engine.store.publish(&events).await
        {
            tracing::error!(error = %e, "publishing operational events failed");
        }
        if let Err(e) = engine.store.durable().await {
            tracing::error!(error = %e, "flushing delivery attempts failed");
        }
        engine.unstored.forget(first.iter().map(|d| d.id));
        engine.release(batch.iter().filter_map(|f| f.attempted));
        batch.clear();
    }
}

/// Writes attempted and waiting deliveries with the outbox records that
/// ended, then changed breakers, each set in one transaction; an empty set
/// costs nothing.
async fn commit(
    engine: &Engine,
    updated: &[Delivery],
    first: &[Delivery],
    ended: &[u64],
    remembered: &[HookStateUpdate],
) -> Result<(), hookd_store::Error> {
    if !(updated.is_empty() && first.is_empty() && ended.is_empty()) {
        engine
            .store
            .commit_attempts(Attempted {
                updated,
                first,
                ended,
            })
            .await?;
    }
    if !remembered.is_empty() {
        engine
            .store
            .commit_dispatch(Dispatch::remember(remembered))
            .await?;
    }
    Ok(())
}

/// Disables a hook that failed for too long, as an Admin API write of
/// `enabled: false` would: its queue stays, and so does everything else.
async fn disable(engine: &Engine, hook: Uuid) {
    let entity = hookd_model::hook::ENTITY;
    let disabled = match engine.store.get(entity, hook).await {
        Ok(Some(mut value)) => {
            value["enabled"] = json!(false);
            engine
                .store
                .update(entity, value, engine.clock.now_ms())
                .await
                .map(|_| ())
        }
        Ok(None) => return,
        Err(e) => Err(e),
    };
    match disabled {
        Ok(()) => {
            tracing::warn!(%hook, "event hook disabled after failing for too long");
            engine.hooks.invalidate();
            // As after any write of the hook: its rules are read again.
            let _ = engine.reports.send(Report::HookWritten(hook));
        }
        Err(e) => tracing::error!(%hook, error = %e, "disabling a failing event hook failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{T0, engine};
    use hookd_model::Event;
    use hookd_store::Store;
    use uuid::Uuid;

    /// A failed delivery whose next attempt is due now.
    async fn failed_and_due(store: &Store) -> Delivery {
        let event = Event::new("crud", "consumers", serde_json::json!({}), T0);
        let mut delivery = Delivery::new(Uuid::new_v4(), event, 0, T0 - 60_000);
        delivery.state = DeliveryState::Failed;
        delivery.next_attempt_at_ms = Some(T0);
        store
            .commit_deliveries(std::slice::from_ref(&delivery))
            .await
            .unwrap();
        delivery
    }

    /// What the scheduler would attempt next, claimed as it claims it.
    async fn take_next(scheduler: &mut Scheduler<'_>) -> Option<Delivery> {
        scheduler.hold_due().await.unwrap();
        let next = scheduler
            .lanes
            .next(&mut scheduler.breakers, Instant::now())?;
        assert!(scheduler.engine.claim(next.id));
        Some(next)
    }

    #[tokio::test]
    async fn the_scheduler_leaves_a_delivery_being_redelivered_alone() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = engine(dir.path());
        let engine = &deliveries.engine;
        let delivery = failed_and_due(&engine.store).await;
        let mut scheduler = Scheduler::new(engine).await;

        // A redelivery has claimed the delivery and not yet rewritten it
        // when the scheduler looks at the queue.
        assert!(engine.claim(delivery.id));
        assert_eq!(scheduler.hold_due().await.unwrap(), 0);
        let requeued = engine.requeue(delivery.id).await.unwrap();
        engine.release(std::iter::once(delivery.id));
        assert_eq!(requeued.state, DeliveryState::Queued);

        // Then the attempt starts from the redelivered record.
        let taken = take_next(&mut scheduler).await.unwrap();
        assert_eq!(taken.id, delivery.id);
        assert_eq!(taken.state, DeliveryState::Queued);
    }

    #[tokio::test]
    async fn a_delivery_being_attempted_is_not_redelivered() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = engine(dir.path());
        let delivery = failed_and_due(&deliveries.engine.store).await;
        let mut scheduler = Scheduler::new(&deliveries.engine).await;
        assert!(take_next(&mut scheduler).await.is_some());
        assert!(matches!(
            deliveries.redeliver(delivery.id).await,
            Err(crate::Error::InFlight)
        ));
        let stored = deliveries.engine.store.delivery(delivery.id).await.unwrap();
        assert_eq!(stored.unwrap().state, DeliveryState::Failed);
        deliveries.engine.release(std::iter::once(delivery.id));
        assert!(deliveries.redeliver(delivery.id).await.is_ok());
    }

    #[tokio::test]
    async fn a_full_lane_is_passed_over_and_its_probe_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = engine(dir.path());
        let engine = &deliveries.engine;
        let hook = Uuid::new_v4();
        let queued: Vec<Delivery> = (0..300)
            .map(|n| {
                let event = Event::new("crud", "consumers", serde_json::json!({"n": n}), T0);
                Delivery::new(hook, event, n, T0 - 1000)
            })
            .collect();
        engine
            .store
            .commit_dispatch(Dispatch::queue(&queued))
            .await
            .unwrap();
        let mut scheduler = Scheduler::new(engine).await;
        // The default concurrency, 64, holds 256 at most.
        assert_eq!(scheduler.hold_due().await.unwrap(), 256);
        assert_eq!(scheduler.hold_due().await.unwrap(), 0);
        // Paused with a probe beyond what the lane holds: the probe is
        // still held, and is the one attempted.
        let probe = queued.last().unwrap().clone();
        let failed = crate::breaker::with_attempt(probe.clone(), false, DeliveryState::Failed);
        let policy = crate::BreakerPolicy {
            pause_after: 1,
            ..Default::default()
        };
        scheduler.breakers.record(&failed, &policy, T0);
        assert_eq!(scheduler.hold_due().await.unwrap(), 1);
        assert_eq!(take_next(&mut scheduler).await.unwrap().id, probe.id);
        assert!(take_next(&mut scheduler).await.is_none(), "one at a time");
    }

    #[tokio::test]
    async fn the_scheduler_leaves_the_hooks_of_shards_it_does_not_hold_alone() {
        let dir = tempfile::tempdir().unwrap();
        let shards = hookd_store::ShardSet::none();
        let deliveries = crate::testing::engine_holding(dir.path(), shards.clone());
        let engine = &deliveries.engine;
        let delivery = failed_and_due(&engine.store).await;
        let mut scheduler = Scheduler::new(engine).await;
        assert_eq!(scheduler.hold_due().await.unwrap(), 0);
        let shard = hookd_store::cluster::shard_of(delivery.hook_id);
        shards.set(
            1 << shard,
            std::time::Instant::now() + Duration::from_secs(60),
            0,
        );
        assert_eq!(take_next(&mut scheduler).await.unwrap().id, delivery.id);
    }
}
