//! The workers: a scheduler hands due deliveries to a bounded pool of
//! attempts, and a completer commits their outcomes in batches (one
//! transaction and one shared flush for many attempts).

use crate::run::Outcome;
use crate::{Engine, HOOKS};
use hookd_metrics::{HandlerLabels, OutcomeLabels};
use hookd_model::EventHook;
use hookd_model::delivery::{Attempt, Delivery, DeliveryState};
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
            let busy = engine.in_flight_ids();
            match engine
                .store
                .due_deliveries(engine.clock.now_ms(), free, &busy)
            {
                Ok(due) => {
                    for delivery in due {
                        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                            break;
                        };
                        engine.mark_in_flight(delivery.id);
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

/// One attempt at a delivery; returns the delivery as it now stands.
async fn attempt(engine: &Engine, mut delivery: Delivery) -> Delivery {
    let at_ms = engine.clock.now_ms();
    let number = delivery.attempts.len() as u32 + 1;
    let started = Instant::now();
    let (outcome, handler) = match load_hook(engine, &delivery) {
        Ok(hook) => (
            crate::run::handle(engine, &hook, &delivery.event, delivery.id, at_ms).await,
            hook.handler.name(),
        ),
        Err(reason) => (Outcome::failed(reason), "unknown"),
    };
    let elapsed = started.elapsed();
    let latency_ms = elapsed.as_millis() as u64;
    if !outcome.ok {
        tracing::warn!(delivery = %delivery.id, hook = %delivery.hook_id, attempt = number,
            status = ?outcome.status, error = ?outcome.error, "delivery attempt failed");
    }
    let next = if outcome.ok || outcome.gone {
        None
    } else {
        engine
            .settings
            .retry
            .next_delay(number, outcome.retry_after, engine.random.as_ref())
    };
    delivery.state = match (outcome.ok, next) {
        (true, _) => DeliveryState::Succeeded,
        (false, Some(_)) => DeliveryState::Failed,
        (false, None) => DeliveryState::Dead,
    };
    record(engine, handler, outcome.ok, delivery.state, elapsed);
    delivery.next_attempt_at_ms = next.map(|d| at_ms + d.as_millis() as i64);
    delivery.attempts.push(Attempt {
        number,
        at_ms,
        latency_ms,
        ok: outcome.ok,
        status: outcome.status,
        error: outcome.error,
        response: outcome.response,
        result: outcome.result,
    });
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

fn load_hook(engine: &Engine, delivery: &Delivery) -> Result<EventHook, String> {
    match engine.store.get(HOOKS, delivery.hook_id) {
        Ok(Some(value)) => serde_json::from_value(value)
            .map_err(|e| format!("the event hook does not decode: {e}")),
        Ok(None) => Err(crate::run::HOOK_GONE.to_string()),
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
        engine.finish_in_flight(batch.iter().map(|d| d.id));
        batch.clear();
    }
}
