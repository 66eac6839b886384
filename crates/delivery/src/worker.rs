//! The workers: a scheduler hands due deliveries to a bounded pool of
//! attempts, and a completer commits their outcomes in batches (one
//! transaction and one shared flush for many attempts).

use crate::Engine;
use crate::handler::Outcome;
use hookd_metrics::{HandlerLabels, OutcomeLabels};
use hookd_model::EventHook;
use hookd_model::delivery::{Delivery, DeliveryState};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

/// Longest sleep between looks at the queue: a changed clock or a missed
/// wake-up is noticed within this time.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Outcomes committed per transaction, at most.
const COMMIT_BATCH: usize = 1024;

/// Runs the scheduler, the attempts and the completer until shutdown.
pub(crate) async fn run(engine: Arc<Engine>) {
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let completer = tokio::spawn(complete(Arc::clone(&engine), done_rx));
    schedule(&engine, done_tx).await;
    // The senders are gone once every attempt has finished: the completer
    // then commits the last outcomes and stops.
    let _ = completer.await;
}

async fn schedule(engine: &Arc<Engine>, done: mpsc::UnboundedSender<Delivery>) {
    let permits = Arc::new(Semaphore::new(engine.settings.workers.max(1)));
    while !engine.is_shutting_down() {
        let free = permits.available_permits();
        let mut started = 0;
        if free > 0 {
            match take_due(engine, free) {
                Ok(due) => {
                    for delivery in due {
                        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                            engine.release(std::iter::once(delivery.id));
                            continue;
                        };
                        started += 1;
                        let engine = Arc::clone(engine);
                        let done = done.clone();
                        tokio::spawn(async move {
                            let updated = attempt(&engine, delivery).await;
                            drop(permit);
                            let _ = done.send(updated);
                        });
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading due deliveries failed"),
            }
        }
        if started == free && free > 0 {
            // The pool may still have due work: look again as soon as a slot frees.
            tokio::select! {
                _ = engine.slot_freed.notified() => {}
                _ = engine.shutdown.cancelled() => {}
            }
            continue;
        }
        let wait = match engine.store.next_due_ms() {
            Ok(Some(due)) => {
                Duration::from_millis((due - engine.clock.now_ms()).max(0) as u64).min(IDLE_CHECK)
            }
            _ => IDLE_CHECK,
        };
        tokio::select! {
            _ = engine.work.notified() => {}
            _ = engine.slot_freed.notified(), if free == 0 => {}
            _ = engine.shutdown.cancelled() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Claims up to `limit` due deliveries for attempts. One that a
/// redelivery holds is left for the next look. A delivery redelivered
/// between the read and the claim is attempted from the copy read: it
/// differs from the stored one only in the state and due time the attempt
/// sets anyway.
fn take_due(engine: &Engine, limit: usize) -> Result<Vec<Delivery>, hookd_store::Error> {
    let busy = engine.in_flight_ids();
    let due = engine
        .store
        .due_deliveries(engine.clock.now_ms(), limit, &busy)?;
    Ok(due.into_iter().filter(|d| engine.claim(d.id)).collect())
}

/// One attempt at a delivery; returns the delivery as it now stands.
async fn attempt(engine: &Engine, mut delivery: Delivery) -> Delivery {
    let at_ms = engine.clock.now_ms();
    let number = delivery.attempts.len() as u32 + 1;
    let started = Instant::now();
    let (outcome, handler) = match load_hook(engine, &delivery) {
        Ok(Some(hook)) => (
            crate::run::handle(engine, &hook, &delivery.event, delivery.id, at_ms).await,
            hook.handler.name(),
        ),
        Ok(None) => (Outcome::HookGone, "unknown"),
        Err(reason) => (Outcome::failed(reason), "unknown"),
    };
    let elapsed = started.elapsed();
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
    record(engine, handler, delivered, delivery.state, elapsed);
    delivery.next_attempt_at_ms = next.map(|d| at_ms + d.as_millis() as i64);
    let attempt = outcome.into_attempt(number, at_ms, elapsed.as_millis() as u64);
    if !attempt.ok {
        tracing::warn!(delivery = %delivery.id, hook = %delivery.hook_id, attempt = number,
            status = ?attempt.status, error = ?attempt.error, "delivery attempt failed");
    }
    delivery.attempts.push(attempt);
    delivery
}

/// Counts the attempt, its duration and, when it ended the delivery, how.
fn record(engine: &Engine, handler: &str, ok: bool, state: DeliveryState, elapsed: Duration) {
    let m = &engine.metrics;
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

/// The delivery's hook; none when it was deleted.
fn load_hook(engine: &Engine, delivery: &Delivery) -> Result<Option<EventHook>, String> {
    match engine
        .store
        .get(hookd_model::hook::ENTITY, delivery.hook_id)
    {
        Ok(Some(value)) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| format!("the event hook does not decode: {e}")),
        Ok(None) => Ok(None),
        Err(e) => Err(format!("reading the event hook failed: {e}")),
    }
}

async fn complete(engine: Arc<Engine>, mut done: mpsc::UnboundedReceiver<Delivery>) {
    let mut batch = Vec::with_capacity(COMMIT_BATCH);
    while done.recv_many(&mut batch, COMMIT_BATCH).await > 0 {
        // A failed commit leaves the deliveries due as they were: they run
        // again (at least once), so retrying the commit is all there is to do.
        loop {
            match engine.store.commit_deliveries(&batch) {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, "recording delivery attempts failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        if let Err(e) = engine.store.durable().await {
            tracing::error!(error = %e, "flushing delivery attempts failed");
        }
        engine.release(batch.iter().map(|d| d.id));
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::HttpSettings;
    use crate::random::FixedRandom;
    use crate::{Deliveries, Parts, Retention, Settings};
    use hookd_model::clock::ManualClock;
    use hookd_model::{Catalogue, Event};
    use hookd_sandbox::{Sandbox, SandboxConfig};
    use hookd_store::Store;
    use hookd_template::{Limits, Renderer, WorkerCommand};
    use uuid::Uuid;

    const T0: i64 = 1_800_000_000_000;

    /// An engine that is not started: the test plays the scheduler.
    fn engine(dir: &std::path::Path) -> Deliveries {
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
        };
        Deliveries::new(Parts {
            store: Store::open(dir).unwrap(),
            catalogue: Arc::new(Catalogue::builtin(["consumers"])),
            settings,
            clock: Arc::new(ManualClock::at(T0)),
            random: Arc::new(FixedRandom(0.5)),
            sandbox: Sandbox::new(SandboxConfig::default()).unwrap(),
            metrics: Arc::new(hookd_metrics::Metrics::new()),
        })
        .unwrap()
    }

    /// A failed delivery whose next attempt is due now.
    fn failed_and_due(store: &Store) -> Delivery {
        let event = Event::new("crud", "consumers", serde_json::json!({}), T0);
        let mut delivery = Delivery::new(Uuid::new_v4(), event, 0, T0 - 60_000);
        delivery.state = DeliveryState::Failed;
        delivery.next_attempt_at_ms = Some(T0);
        store
            .commit_deliveries(std::slice::from_ref(&delivery))
            .unwrap();
        delivery
    }

    #[test]
    fn the_scheduler_leaves_a_delivery_being_redelivered_alone() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = engine(dir.path());
        let engine = &deliveries.engine;
        let delivery = failed_and_due(&engine.store);

        // A redelivery has claimed the delivery and not yet rewritten it
        // when the scheduler looks at the queue.
        assert!(engine.claim(delivery.id));
        assert!(take_due(engine, 10).unwrap().is_empty());
        let requeued = engine.requeue(delivery.id).unwrap();
        engine.release(std::iter::once(delivery.id));
        assert_eq!(requeued.state, DeliveryState::Queued);

        // Then the attempt starts from the redelivered record.
        let taken = take_due(engine, 10).unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].state, DeliveryState::Queued);
    }

    #[tokio::test]
    async fn a_delivery_being_attempted_is_not_redelivered() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = engine(dir.path());
        let delivery = failed_and_due(&deliveries.engine.store);
        assert_eq!(take_due(&deliveries.engine, 10).unwrap().len(), 1);
        assert!(matches!(
            deliveries.redeliver(delivery.id).await,
            Err(crate::Error::InFlight)
        ));
        let stored = deliveries.engine.store.delivery(delivery.id).unwrap();
        assert_eq!(stored.unwrap().state, DeliveryState::Failed);
        deliveries.engine.release(std::iter::once(delivery.id));
        assert!(deliveries.redeliver(delivery.id).await.is_ok());
    }
}
