//! The delivery engine in-process, with the real store and real receivers
//! on loopback, and a clock the test moves: the spec's on_change and
//! snooze sequences and retry timing without a single sleep. The
//! handlers' own tests are in `handler`.

mod handler;

use hookd_delivery::handler::{HttpSettings, KongSignature};
use hookd_delivery::random::FixedRandom;
use hookd_delivery::retry::RetryPolicy;
use hookd_delivery::{Deliveries, Parts, Retention, Settings};
use hookd_model::clock::{Clock, ManualClock};
use hookd_model::delivery::DeliveryState;
use hookd_model::{Catalogue, Event};
use hookd_sandbox::{Sandbox, SandboxConfig};
use hookd_store::{Page, Store};
use hookd_template::{Limits, Renderer, WorkerCommand};
use hookd_testkit::fixtures::loopback_policy;
use hookd_testkit::{Receiver, eventually};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const T0: i64 = 1_800_000_000_000;

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<ManualClock>,
    deliveries: Deliveries,
    receiver: Receiver,
}

/// An engine over `store` on `clock`, not started.
fn engine(store: &Store, clock: Arc<ManualClock>) -> Deliveries {
    let settings = Settings {
        retry: RetryPolicy {
            schedule: vec![Duration::from_secs(30)],
            max_attempts: 3,
            jitter: 0.2,
            retry_after_max: Duration::from_secs(3600),
        },
        workers: 4,
        http: HttpSettings {
            timeout: Duration::from_secs(10),
            policy: loopback_policy(),
            kong_signature: KongSignature::Sha1,
        },
        retention: Retention::default(),
        templates: Renderer::new(
            WorkerCommand {
                program: env!("CARGO_BIN_EXE_hookd-delivery-template-worker").into(),
                args: Vec::new(),
            },
            Limits::default(),
        ),
        concurrency: Default::default(),
        breaker: Default::default(),
        in_memory: hookd_delivery::Settings::IN_MEMORY,
    };
    Deliveries::new(Parts {
        store: store.clone(),
        catalogue: Arc::new(Catalogue::builtin(["consumers"])),
        settings,
        clock,
        random: Arc::new(FixedRandom(0.5)),
        sandbox: Sandbox::new(SandboxConfig::default()).unwrap(),
        metrics: Arc::new(hookd_metrics::Metrics::new()),
        shards: hookd_store::ShardSet::all(),
    })
    .unwrap()
}

impl Rig {
    async fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let clock = Arc::new(ManualClock::at(T0));
        let deliveries = engine(&store, Arc::clone(&clock));
        deliveries.start();
        Rig {
            _dir: dir,
            store,
            clock,
            deliveries,
            receiver: Receiver::start().await,
        }
    }

    async fn hook(&self, source: &str, on_change: Option<bool>, snooze: Option<i64>) -> Uuid {
        let id = Uuid::new_v4();
        self.hook_with_id(id, source, on_change, snooze).await;
        id
    }

    async fn hook_with_id(
        &self,
        id: Uuid,
        source: &str,
        on_change: Option<bool>,
        snooze: Option<i64>,
    ) {
        let hook = json!({"id": id.to_string(), "created_at": 0, "source": source, "event": null,
                          "on_change": on_change, "snooze": snooze, "handler": "webhook",
                          "config": {"url": self.receiver.url("/"), "headers": {}, "secret": null, "ssl_verify": false}});
        self.insert_hook(hook).await;
    }

    /// A webhook hook on the rate-limit events with `condition`, delivering
    /// to `path`.
    async fn conditioned_hook(&self, path: &str, condition: &str, on_change: Option<bool>) {
        let hook = json!({"id": Uuid::new_v4().to_string(), "created_at": 0,
                          "source": "rate-limiting-advanced", "event": null, "on_change": on_change,
                          "snooze": null, "condition": condition, "handler": "webhook",
                          "config": {"url": self.receiver.url(path), "headers": {}, "secret": null, "ssl_verify": false}});
        self.insert_hook(hook).await;
    }

    async fn insert_hook(&self, hook: Value) {
        self.store.insert("event_hooks", hook, T0).await.unwrap();
        // The hook's own crud events must not count: dispatch them first.
        self.settle().await;
    }

    /// Publishes an event at `second` seconds after T0 and waits until it
    /// has been dispatched and every due delivery attempted.
    async fn publish_at(&self, second: i64, data: Value) {
        let now = self.clock.now_ms();
        self.clock.advance_ms(T0 + second * 1000 - now);
        let event = Event::new(
            "rate-limiting-advanced",
            "rate-limit-exceeded",
            data,
            T0 + second * 1000,
        );
        self.store.publish(&[event]).await.unwrap();
        self.settle().await;
    }

    async fn settle(&self) {
        self.deliveries.wake();
        eventually("the outbox and the due queue to drain", || async {
            let now = self.clock.now_ms();
            let due_now = self
                .store
                .next_due_ms()
                .await
                .unwrap()
                .is_some_and(|d| d <= now);
            (self.store.outbox_len().await.unwrap() == 0 && !due_now).then_some(())
        })
        .await;
    }

    fn received_values(&self, field: &str) -> Vec<Value> {
        self.received_at(None, field)
    }

    /// `field` of each event received, at `path` only when one is given.
    fn received_at(&self, path: Option<&str>, field: &str) -> Vec<Value> {
        self.receiver
            .received()
            .iter()
            .filter(|r| path.is_none_or(|p| r.uri == p))
            .map(|r| r.json()[field].clone())
            .collect()
    }
}

fn rate(consumer: &str, n: u32) -> Value {
    json!({"consumer": consumer, "ip": "10.0.0.1", "service": "svc", "rate": n, "limit": 5, "window": "second"})
}

#[tokio::test]
async fn snooze_sequence_of_the_spec() {
    let rig = Rig::new().await;
    rig.hook("rate-limiting-advanced", None, Some(60)).await;
    for second in [0, 50, 70, 100, 131] {
        rig.publish_at(second, rate("c", second as u32)).await;
    }
    assert_eq!(
        rig.received_values("rate"),
        [json!(0), json!(70), json!(131)]
    );
}

#[tokio::test]
async fn on_change_sequence_of_the_spec_uses_the_unique_fields() {
    let rig = Rig::new().await;
    rig.hook("rate-limiting-advanced", Some(true), None).await;
    // rate differs each time but is not a unique field of this event.
    for (second, consumer) in [(0, "A"), (1, "A"), (2, "B"), (3, "A")] {
        rig.publish_at(second, rate(consumer, second as u32)).await;
    }
    assert_eq!(
        rig.received_values("consumer"),
        [json!("A"), json!("B"), json!("A")]
    );
}

#[tokio::test]
async fn on_change_and_snooze_together_snooze_identical_data_only() {
    let rig = Rig::new().await;
    rig.hook("rate-limiting-advanced", Some(true), Some(60))
        .await;
    for (second, consumer) in [(0, "A"), (10, "A"), (20, "B"), (30, "B"), (61, "A")] {
        rig.publish_at(second, rate(consumer, second as u32)).await;
    }
    assert_eq!(
        rig.received_values("rate"),
        [json!(0), json!(20), json!(61)]
    );
}

#[tokio::test]
async fn a_condition_refuses_events_before_on_change_remembers_them() {
    let rig = Rig::new().await;
    rig.conditioned_hook("/", "rate > 10", Some(true)).await;
    // B is refused by the condition, so on_change still remembers A last:
    // A again is no change.
    for (second, consumer, n) in [(0, "A", 11), (1, "B", 5), (2, "A", 12), (3, "B", 13)] {
        rig.publish_at(second, rate(consumer, n)).await;
    }
    assert_eq!(rig.received_values("rate"), [json!(11), json!(13)]);
}

#[tokio::test]
async fn a_failing_condition_refuses_only_its_own_hooks_events() {
    let rig = Rig::new().await;
    // Over the worker's memory, an invalid operation, and two that work.
    let bomb = "consumer * 15000000 ~ consumer * 15000000 != ''";
    rig.conditioned_hook("/memory", bomb, None).await;
    rig.conditioned_hook("/error", "consumer + 1", None).await;
    rig.conditioned_hook("/held", "consumer is startingwith 'a'", None)
        .await;
    rig.hook("rate-limiting-advanced", None, None).await;
    for (second, consumer) in [(0, "alice"), (1, "bob"), (2, "anna")] {
        rig.publish_at(second, rate(consumer, 1)).await;
    }
    assert_eq!(
        rig.received_at(Some("/held"), "consumer"),
        [json!("alice"), json!("anna")]
    );
    assert_eq!(rig.received_at(Some("/"), "consumer").len(), 3);
    assert!(rig.received_at(Some("/memory"), "consumer").is_empty());
    assert!(rig.received_at(Some("/error"), "consumer").is_empty());
}

#[tokio::test]
async fn failed_attempts_wait_for_the_schedule_on_the_injected_clock() {
    let rig = Rig::new().await;
    let hook = rig.hook("rate-limiting-advanced", None, None).await;
    rig.receiver.script(&[500, 503]);
    rig.publish_at(0, rate("c", 1)).await;
    assert_eq!(rig.receiver.received().len(), 1);
    let listed = rig
        .store
        .hook_deliveries(
            hook,
            &Page {
                size: 10,
                offset: None,
            },
        )
        .await
        .unwrap();
    let delivery = &listed.data[0];
    // 30 s with jitter 0.2 and the random source fixed at the middle: exactly 30 s.
    assert_eq!(delivery.next_attempt_at_ms, Some(T0 + 30_000));
    rig.clock.advance_ms(29_999);
    rig.settle().await;
    assert_eq!(rig.receiver.received().len(), 1, "not due yet");
    rig.clock.advance_ms(1);
    rig.settle().await;
    assert_eq!(rig.receiver.received().len(), 2);
    rig.clock.advance_ms(30_000);
    rig.settle().await;
    let d = rig.store.delivery(delivery.id).await.unwrap().unwrap();
    let statuses: Vec<Option<u16>> = d.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
    assert_eq!(d.state, DeliveryState::Succeeded);
}

#[tokio::test]
async fn a_deleted_hook_leaves_no_memory_and_its_successor_starts_clean() {
    let rig = Rig::new().await;
    let source = "rate-limiting-advanced";
    let id = rig.hook(source, Some(true), Some(60)).await;
    rig.publish_at(0, rate("A", 0)).await;
    let remembered = |store: &Store| {
        let store = store.clone();
        async move {
            store
                .hook_states()
                .await
                .unwrap()
                .into_iter()
                .filter(|(hook, _, _)| *hook == id)
                .count()
        }
    };
    assert_eq!(remembered(&rig.store).await, 1, "the snooze window of A");

    rig.store.delete("event_hooks", id, T0).await.unwrap();
    rig.settle().await;
    assert_eq!(
        remembered(&rig.store).await,
        0,
        "the deleted hook's memory is gone"
    );

    // The same id again (as `PUT /event-hooks/{id}` or `hookd apply` make
    // it), within the old snooze window: a new hook, not snoozed.
    rig.hook_with_id(id, source, Some(true), Some(60)).await;
    rig.publish_at(1, rate("A", 1)).await;
    assert_eq!(rig.received_values("rate"), [json!(0), json!(1)]);
}

/// Shutdown asked for before the engine's loops first wait (here: before
/// they ran at all) still ends them at once. With a wake-up that reached
/// only tasks already waiting, retention slept its full minute first.
#[tokio::test]
async fn shutdown_ends_every_loop_even_one_that_was_not_waiting_yet() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let deliveries = engine(&store, Arc::new(ManualClock::at(T0)));
    // No await between the two: on this single-threaded runtime the
    // engine's tasks have not been polled when shutdown is asked for.
    deliveries.start();
    let stopped = tokio::time::timeout(Duration::from_secs(5), deliveries.shutdown()).await;
    assert!(stopped.is_ok(), "the engine's loops outlived shutdown");
}
