//! hookd-delivery: the dispatcher, the durable delivery queue, retries and
//! the handlers.
//!
//! Events reach the outbox with the writes that cause them. The
//! dispatcher turns each into one delivery per hook that takes it; the
//! workers run due deliveries through the hook's handler and record every
//! attempt; failures are retried on a schedule until they succeed or die.
//! A delivery lives in memory until its first attempt ends, its event's
//! outbox record standing for it in the store; from then on it is stored.
//! So a restart resumes where it stopped: a delivery whose attempt was cut
//! short runs again (at least once), under the same id.
#![deny(missing_docs)]

mod breaker;
pub mod condition;
mod dispatcher;
pub mod gate;
pub mod handler;
mod hooks;
mod lanes;
pub mod random;
pub mod retry;
mod run;
mod unstored;
mod worker;

pub use breaker::{BreakerPolicy, FailingHook};
pub use lanes::HookConcurrency;

use handler::{AttemptId, HttpSettings, Outbound};
use hookd_metrics::Metrics;
use hookd_model::clock::Clock;
use hookd_model::delivery::{Delivery, DeliveryState};
use hookd_model::hook::Handler;
use hookd_model::violation::PathSeg;
use hookd_model::{Catalogue, EventHook, Violations};
use hookd_sandbox::Sandbox;
use hookd_store::{HookChange, HookListing, Listed, ListedAt, Page, ShardSet, Store, paged};
use hookd_template::Renderer;
use hooks::HookCache;
use random::Random;
use retry::RetryPolicy;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use unstored::Unstored;
use uuid::Uuid;
use worker::Report;

/// Failures of the delivery engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] hookd_store::Error),
    /// The HTTP client could not be built.
    #[error("setting up outbound HTTP")]
    Outbound(#[source] handler::HandlerError),
    /// No delivery with that id.
    #[error("no such delivery")]
    NotFound,
    /// The delivery is being attempted right now.
    #[error("the delivery is being attempted right now")]
    InFlight,
    /// The handler cannot ping.
    #[error("handler '{0}' does not support 'ping'")]
    PingUnsupported(&'static str),
    /// The ping was not answered with a 2xx.
    #[error("ping failed: {0}")]
    PingFailed(String),
}

/// The answer of `/event-hooks/{id}/test`.
#[derive(Debug)]
pub struct TestAnswer {
    /// What became of the hook's condition on the data; none when the hook
    /// has no condition.
    pub condition: Option<condition::Verdict>,
    /// Kong's `result` when the handler ran (null when the condition did
    /// not hold, and it did not run), or why there is none.
    pub result: Result<serde_json::Value, handler::TestFailure>,
}

/// How long finished deliveries are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// At most this many finished (succeeded or dead) deliveries.
    pub count: usize,
    /// None older than this.
    pub age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            count: 100_000,
            age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Settings of the delivery engine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// When failed deliveries are tried again.
    pub retry: RetryPolicy,
    /// Attempts running at once.
    pub workers: usize,
    /// Outbound HTTP of the webhook handlers.
    pub http: HttpSettings,
    /// How long finished deliveries are kept.
    pub retention: Retention,
    /// Where webhook-custom templates are rendered.
    pub templates: Renderer,
    /// How many attempts of one hook run at once.
    pub concurrency: HookConcurrency,
    /// When a failing hook pauses, and when it is disabled.
    pub breaker: BreakerPolicy,
    /// Deliveries kept in memory only until their first attempt ends, at
    /// most; beyond, new deliveries are stored in the queue as they are
    /// made.
    pub in_memory: usize,
}

impl Settings {
    /// The default of [`Settings::in_memory`]: a few seconds of the
    /// fastest delivery this machine kind reaches, at about a kilobyte
    /// each.
    pub const IN_MEMORY: usize = 16_384;
}

/// The shared insides of the engine.
pub(crate) struct Engine {
    store: Store,
    catalogue: Arc<Catalogue>,
    settings: Settings,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    outbound: Outbound,
    sandbox: Sandbox,
    metrics: Arc<Metrics>,
    /// The hooks whose deliveries this node attempts.
    shards: ShardSet,
    /// Whether this node runs the dispatcher.
    dispatching: std::sync::atomic::AtomicBool,
    /// Every hook, decoded.
    hooks: HookCache,
    /// Deliveries in memory only, until their first attempt ends.
    unstored: Unstored,
    /// Deliveries claimed by an attempt or a redelivery: whoever claimed
    /// one is the only writer of its record until it releases it.
    in_flight: Mutex<HashSet<Uuid>>,
    /// New deliveries are due, or a hook's rules changed.
    work: Notify,
    /// Where attempts and hook writes are reported to the scheduler.
    reports: mpsc::UnboundedSender<Report>,
    /// Shutdown was asked for. A token, not a `Notify`: a task that looks
    /// after the request still sees it, where `notify_waiters` wakes only
    /// the tasks already waiting.
    shutdown: CancellationToken,
}

impl Engine {
    fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    fn work_queued(&self) {
        self.work.notify_one();
    }

    fn in_flight_ids(&self) -> HashSet<Uuid> {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Claims a delivery; false when an attempt or a redelivery holds it.
    /// Checking and taking are one step, so two writers never both hold it.
    fn claim(&self, id: Uuid) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id)
    }

    fn release(&self, ids: impl Iterator<Item = Uuid>) {
        let mut set = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            set.remove(&id);
        }
    }

    /// Rewrites a delivery the caller has claimed as due now.
    async fn requeue(&self, id: Uuid) -> Result<Delivery, Error> {
        let mut delivery = self.store.delivery(id).await?.ok_or(Error::NotFound)?;
        delivery.state = DeliveryState::Queued;
        delivery.next_attempt_at_ms = Some(self.clock.now_ms());
        self.store
            .commit_deliveries(std::slice::from_ref(&delivery))
            .await?;
        Ok(delivery)
    }
}

/// The delivery engine: cheap to clone, shared with the Admin API.
#[derive(Clone)]
pub struct Deliveries {
    engine: Arc<Engine>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// The scheduler's end of the reports, until it starts.
    reports: Arc<Mutex<Option<mpsc::UnboundedReceiver<Report>>>>,
}

/// How often retention is applied: often, so that what it removes stays
/// small and the store's space is taken again by new deliveries instead
/// of growing; a pass with nothing past retention costs one key read.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// What the delivery engine is built from.
pub struct Parts {
    /// Where events, hooks and deliveries are kept.
    pub store: Store,
    /// Sources, events and their unique fields (on_change).
    pub catalogue: Arc<Catalogue>,
    /// Retries, workers, outbound HTTP, retention, templates.
    pub settings: Settings,
    /// Time of attempts and schedules.
    pub clock: Arc<dyn Clock>,
    /// Jitter of retries.
    pub random: Arc<dyn Random>,
    /// Where lambda guests run.
    pub sandbox: Sandbox,
    /// Where attempts are counted.
    pub metrics: Arc<Metrics>,
    /// The hooks whose deliveries this node attempts: all of them
    /// ([`ShardSet::all`]) unless other nodes share the store.
    pub shards: ShardSet,
}

impl Deliveries {
    /// An engine over the store; nothing runs until [`Deliveries::start`].
    pub fn new(parts: Parts) -> Result<Self, Error> {
        let Parts {
            store,
            catalogue,
            settings,
            clock,
            random,
            sandbox,
            metrics,
            shards,
        } = parts;
        let outbound = Outbound::new(settings.http.clone()).map_err(Error::Outbound)?;
        let (reports, reports_rx) = mpsc::unbounded_channel();
        let unstored = Unstored::new(settings.in_memory);
        Ok(Deliveries {
            engine: Arc::new(Engine {
                store,
                catalogue,
                settings,
                clock,
                random,
                outbound,
                sandbox,
                metrics,
                shards,
                dispatching: Default::default(),
                hooks: HookCache::default(),
                unstored,
                in_flight: Mutex::new(HashSet::new()),
                work: Notify::new(),
                reports,
                shutdown: CancellationToken::new(),
            }),
            tasks: Arc::new(Mutex::new(Vec::new())),
            reports: Arc::new(Mutex::new(Some(reports_rx))),
        })
    }

    /// Starts the workers, the dispatcher and retention: a node alone on
    /// its store.
    pub fn start(&self) {
        self.start_attempts();
        self.start_dispatching();
    }

    /// Starts the workers, which attempt the due deliveries of the hooks
    /// of this node's shards (once: a second call does nothing).
    pub fn start_attempts(&self) {
        let Some(reports) = self
            .reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        self.spawn(worker::run(Arc::clone(&self.engine), reports));
    }

    /// Starts the dispatcher and retention, which one node of those
    /// sharing a store runs at a time (once: a second call, or one after
    /// shutdown began, does nothing).
    pub fn start_dispatching(&self) {
        let engine = &self.engine;
        if engine.is_shutting_down()
            || engine
                .dispatching
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        self.spawn(dispatcher::run(Arc::clone(&self.engine)));
        self.spawn(prune(Arc::clone(&self.engine)));
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tokio::spawn(task));
    }

    /// Stops taking work, lets running attempts finish and records them.
    pub async fn shutdown(&self) {
        self.engine.shutdown.cancel();
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Makes the workers look at the queue now (after the clock moved, in tests).
    pub fn wake(&self) {
        self.engine.work.notify_one();
    }

    /// The delivery's state, `in_flight` while an attempt runs.
    pub fn state_of(&self, delivery: &Delivery) -> DeliveryState {
        if self
            .engine
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&delivery.id)
        {
            DeliveryState::InFlight
        } else {
            delivery.state
        }
    }

    /// Runs a hook's handler on `data` now, outside the queue, when the
    /// hook's condition (if it has one) holds for it: the answer of `/test`.
    pub async fn test(&self, hook: &EventHook, data: serde_json::Value) -> TestAnswer {
        run::test(&self.engine, hook, data).await
    }

    /// Sends Kong's ping for a webhook hook: `operation` is `create`,
    /// `update`, `delete` or `ping`.
    pub async fn ping(&self, hook: &EventHook, operation: &str) -> Result<(), Error> {
        let Handler::Webhook(cfg) = &hook.handler else {
            return Err(Error::PingUnsupported(hook.handler.name()));
        };
        let now_ms = self.engine.clock.now_ms();
        let event = hookd_model::Event::new("kong:event_hooks", "ping", hook.to_json(), now_ms);
        let attempt = AttemptId {
            delivery_id: Uuid::new_v4(),
            timestamp_s: now_ms / 1000,
            event: &event,
        };
        let response = self
            .engine
            .outbound
            .ping(cfg, operation, &hook.to_json(), &attempt)
            .await
            .map_err(|e| Error::PingFailed(e.to_string()))?;
        if response.is_success() {
            Ok(())
        } else {
            Err(Error::PingFailed(format!(
                "the receiver answered {}",
                response.status
            )))
        }
    }

    /// Sends the ping of a hook's creation, change or removal without
    /// waiting for it, as Kong does; failures are logged.
    pub fn ping_in_background(&self, hook: EventHook, operation: &'static str) {
        if !matches!(hook.handler, Handler::Webhook(_)) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.ping(&hook, operation).await {
                tracing::warn!(hook = %hook.id, operation, error = %e, "event hook ping failed");
            }
        });
    }

    /// Queues a delivery for another attempt now, dead letters included.
    /// The delivery is claimed while it is rewritten, so no attempt starts
    /// on it meanwhile and then records over the redelivery. One in memory
    /// only has not had its first attempt yet: it is due now already.
    pub async fn redeliver(&self, id: Uuid) -> Result<Delivery, Error> {
        let engine = &self.engine;
        if !engine.claim(id) {
            return Err(Error::InFlight);
        }
        if let Some(unstored) = engine.unstored.get(id) {
            engine.release(std::iter::once(id));
            return Ok(unstored);
        }
        let requeued = engine.requeue(id).await;
        engine.release(std::iter::once(id));
        let delivery = requeued?;
        engine.store.durable().await?;
        engine.work_queued();
        engine.store.announce_due();
        Ok(delivery)
    }

    /// Checks, when a hook is saved, what the schema cannot: a `concurrency`
    /// within the server's maximum, a condition that compiles and is within
    /// its budget without data, and what its handler needs (for
    /// webhook-custom, templates that compile and are within their budget
    /// without data; for lambda, a request the mode and ceiling admit and
    /// guests that exist).
    pub async fn check_hook(&self, hook: &EventHook) -> Result<(), Violations> {
        let engine = &self.engine;
        let (condition, handler) = futures::join!(
            condition::check(hook, &engine.settings.templates),
            handler::of(&hook.handler).check(engine)
        );
        let mut violations = Violations::new();
        let max = engine.settings.concurrency.max;
        if hook.concurrency.is_some_and(|c| c > max) {
            violations.push(
                vec![PathSeg::Key("concurrency".into())],
                format!("must be at most {max} (the server's hook_max_concurrency)"),
            );
        }
        for checked in [condition, handler] {
            if let Err(found) = checked {
                violations.extend_under(&[], found);
            }
        }
        violations.into_result(())
    }

    /// Tells the engine that a hook was written or deleted: the hooks are
    /// read again, and a write forgets the hook's failures (a paused hook
    /// resumes, a disabled one written `enabled` starts afresh).
    pub fn hook_written(&self, hook: Uuid) {
        self.engine.hooks.invalidate();
        let _ = self.engine.reports.send(Report::HookWritten(hook));
    }

    /// Takes in news of a hook written through another node sharing the
    /// store: as [`Deliveries::hook_written`], and a hook created or
    /// deleted there drops the guest instances kept for its id before.
    pub fn hook_changed_elsewhere(&self, change: HookChange) {
        match change {
            HookChange::Written {
                hook,
                at_ms,
                begun_or_ended,
            } => {
                if begun_or_ended {
                    self.engine.sandbox.forget_hook(hook, at_ms);
                }
                self.hook_written(hook);
            }
            HookChange::Unknown => {
                self.engine.hooks.invalidate();
                let _ = self.engine.reports.send(Report::HooksUnknown);
            }
        }
    }

    /// The shards whose hooks this node attempts.
    pub fn shards(&self) -> &ShardSet {
        &self.engine.shards
    }

    /// Whether this node runs the dispatcher.
    pub fn dispatching(&self) -> bool {
        self.engine
            .dispatching
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A delivery, stored or in memory only.
    pub async fn delivery(&self, id: Uuid) -> hookd_store::Result<Option<Delivery>> {
        // Stored first: one just stored is still in memory for a moment,
        // and the store has its attempt.
        match self.engine.store.delivery(id).await? {
            Some(stored) => Ok(Some(stored)),
            None => Ok(self.engine.unstored.get(id)),
        }
    }

    /// A page of a hook's deliveries, stored or in memory only, newest
    /// first. Offsets are the id of the first delivery of the next page.
    pub async fn hook_deliveries(
        &self,
        hook: Uuid,
        page: &Page,
    ) -> hookd_store::Result<Listed<Delivery>> {
        let from = HookListing::of_page(hook, page, async |id| self.delivery(id).await).await?;
        let wanted = page.size.saturating_add(1);
        let mut data = self.engine.store.hook_deliveries_from(from, wanted).await?;
        let stored: HashSet<Uuid> = data.iter().map(|d| d.id).collect();
        data.extend(
            self.engine
                .unstored
                .of_hook(hook, from.through)
                .into_iter()
                .filter(|d| !stored.contains(&d.id)),
        );
        data.sort_by_key(|d| std::cmp::Reverse(ListedAt::of(d)));
        data.truncate(wanted);
        Ok(paged(data, page.size))
    }

    /// Deliveries waiting for an attempt: due in the store, or in memory
    /// only.
    pub async fn queue_depth(&self) -> hookd_store::Result<usize> {
        Ok(self.engine.store.queue_depth().await? + self.engine.unstored.len())
    }

    /// The hooks failing now, the longest failing first: read from the
    /// store, where the scheduler keeps each failing hook's breaker.
    pub async fn failing_hooks(&self) -> hookd_store::Result<Vec<FailingHook>> {
        Ok(breaker::Breakers::load(&self.engine.store.hook_states().await?).failing())
    }

    /// What each guest of a lambda hook is granted (mode ∩ ceiling ∩
    /// request ∩ imports), or none for other handlers.
    pub async fn capabilities(&self, hook: &EventHook) -> Option<Vec<serde_json::Value>> {
        match &hook.handler {
            Handler::Lambda(cfg) => Some(handler::lambda::grants(&self.engine, cfg).await),
            _ => None,
        }
    }
}

async fn prune(engine: Arc<Engine>) {
    loop {
        let keep = engine.settings.retention.count;
        let cutoff = engine.clock.now_ms() - engine.settings.retention.age.as_millis() as i64;
        match engine.store.prune_deliveries(keep, cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "finished deliveries past retention removed"),
            Err(e) => tracing::error!(error = %e, "applying delivery retention failed"),
        }
        tokio::select! {
            _ = engine.shutdown.cancelled() => return,
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod testing {
    use super::*;
    use crate::random::FixedRandom;
    use hookd_model::clock::ManualClock;
    use hookd_sandbox::SandboxConfig;
    use hookd_template::{Limits, WorkerCommand};

    /// The time of the engine's clock.
    pub const T0: i64 = 1_800_000_000_000;

    /// An engine over a store in `dir` that is not started: the test plays
    /// the dispatcher or the scheduler. It has no template worker.
    pub fn engine(dir: &std::path::Path) -> Deliveries {
        engine_over(Store::open(dir).unwrap())
    }

    /// A new engine over the store of `stopped`, as after a restart: none
    /// of its memory.
    pub fn engine_after(stopped: &Deliveries) -> Deliveries {
        engine_over(stopped.engine.store.clone())
    }

    /// As [`engine`], for a node of a cluster that holds `shards`.
    pub fn engine_holding(dir: &std::path::Path, shards: ShardSet) -> Deliveries {
        engine_with(Store::open(dir).unwrap(), shards)
    }

    fn engine_over(store: Store) -> Deliveries {
        engine_with(store, ShardSet::all())
    }

    fn engine_with(store: Store, shards: ShardSet) -> Deliveries {
        let settings = Settings {
            retry: Default::default(),
            workers: 1,
            http: HttpSettings::default(),
            retention: Retention::default(),
            templates: Renderer::new(
                WorkerCommand {
                    program: "never-started".into(),
                    args: Vec::new(),
                },
                Limits::default(),
            ),
            concurrency: Default::default(),
            breaker: Default::default(),
            in_memory: Settings::IN_MEMORY,
        };
        Deliveries::new(Parts {
            store,
            catalogue: Arc::new(Catalogue::builtin(["consumers"])),
            settings,
            clock: Arc::new(ManualClock::at(T0)),
            random: Arc::new(FixedRandom(0.5)),
            sandbox: Sandbox::new(SandboxConfig::default()).unwrap(),
            metrics: Arc::new(hookd_metrics::Metrics::new()),
            shards,
        })
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_model::Event;
    use hookd_store::Attempted;
    use serde_json::json;

    #[tokio::test]
    async fn a_hooks_deliveries_page_through_the_store_and_memory_alike() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = testing::engine(dir.path());
        let engine = &deliveries.engine;
        let hook = Uuid::new_v4();
        let make = |created: i64| {
            let event = Event::new("s", "e", json!({"n": created}), 0);
            Delivery::new(hook, event, created as u64, created)
        };
        // Created at 0..6; the odd ones stored, the even ones in memory.
        let all: Vec<Delivery> = (0..6).map(make).collect();
        let (memory, stored): (Vec<Delivery>, Vec<Delivery>) =
            all.iter().cloned().partition(|d| d.created_at_ms % 2 == 0);
        engine
            .store
            .commit_attempts(Attempted::first(&stored))
            .await
            .unwrap();
        engine.unstored.add(&memory);
        let mut seen = Vec::new();
        let mut page = Page {
            size: 2,
            offset: None,
        };
        loop {
            let listed = deliveries.hook_deliveries(hook, &page).await.unwrap();
            seen.extend(listed.data.iter().map(|d| d.created_at_ms));
            match listed.next {
                Some(next) => page.offset = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, [5, 4, 3, 2, 1, 0]);
        assert_eq!(
            deliveries.delivery(all[2].id).await.unwrap(),
            Some(all[2].clone())
        );
        assert_eq!(
            deliveries.delivery(all[3].id).await.unwrap(),
            Some(all[3].clone())
        );
        assert_eq!(deliveries.queue_depth().await.unwrap(), 6);
    }
}
