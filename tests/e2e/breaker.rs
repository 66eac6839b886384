//! A failing hook is paused, probed and resumed, disabled when it fails
//! for too long, and every turn is an event of the `hookd` source that an
//! operator's hook receives.

use crate::per_hook::{events_at, publish, published_hook, wait_events};
use crate::support::{Options, Server};
use hookd_testkit::eventually;
use hookd_testkit::receiver::{Received, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;

/// An operator's hook on every `hookd` event, to `receiver`'s `/ops`.
async fn operator_hook(server: &Server, receiver: &Receiver) -> Value {
    let body = json!({"source": "hookd", "handler": "webhook",
                      "config": {"url": receiver.url("/ops")}});
    server.create("/event-hooks", &body).await
}

/// Waits for an operational event named `event` about `hook` at `/ops`.
async fn operational(receiver: &Receiver, event: &str, hook: &Value) -> Value {
    eventually(&format!("{event} about {hook}"), || async {
        events_at(receiver, "/ops")
            .iter()
            .map(Received::json)
            .find(|e| e["event"] == event && e["hook"] == hook["id"])
    })
    .await
}

fn webhook_id(r: &Received) -> String {
    r.header("webhook-id").expect("a webhook-id")
}

#[tokio::test]
async fn a_failing_hook_pauses_probes_one_delivery_and_resumes_in_order() {
    let server =
        Server::start_with(Options::loopback().env("HOOKD_HOOK_PAUSE_AFTER_FAILURES", "3")).await;
    let ops = Receiver::start().await;
    operator_hook(&server, &ops).await;
    let failing = Receiver::start().await;
    failing.set_status(500);
    let hook = published_hook(&server, &failing, "/failing", json!({"concurrency": 1})).await;

    publish(&server, 5).await;
    let paused = operational(&ops, "hook-paused", &hook).await;
    assert_eq!(paused["source"], "hookd");
    assert_eq!(paused["failures"], 3);
    // While paused, only the probe is tried, again and again.
    let tried = wait_events(&failing, "/failing", 8).await;
    let probes: HashSet<String> = tried[3..].iter().map(webhook_id).collect();
    assert_eq!(probes.len(), 1, "one probe while paused");
    assert!(probes.contains(paused["delivery"].as_str().unwrap()));

    failing.set_status(200);
    let resumed = operational(&ops, "hook-resumed", &hook).await;
    assert!(resumed["paused_at"].is_i64(), "{resumed}");
    // Every event arrives, the ones that waited included.
    eventually("every event delivered", || async {
        let (_, page) = server
            .get(&format!(
                "/event-hooks/{}/deliveries",
                hook["id"].as_str().unwrap()
            ))
            .await;
        let deliveries = page["data"].as_array()?.clone();
        (deliveries.len() == 5 && deliveries.iter().all(|d| d["state"] == "succeeded"))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_hook_failing_for_too_long_is_disabled_keeps_its_queue_and_a_write_enables_it() {
    let server = Server::start_with(
        Options::loopback()
            .env("HOOKD_HOOK_PAUSE_AFTER_FAILURES", "2")
            .env("HOOKD_HOOK_DISABLE_AFTER", "1s"),
    )
    .await;
    let ops = Receiver::start().await;
    operator_hook(&server, &ops).await;
    let failing = Receiver::start().await;
    failing.set_status(503);
    let hook = published_hook(&server, &failing, "/failing", json!({})).await;
    let id = hook["id"].as_str().unwrap();

    publish(&server, 1).await;
    let disabled = operational(&ops, "hook-disabled", &hook).await;
    assert!(disabled["failing_since"].is_i64(), "{disabled}");
    let (_, stored) = server.get(&format!("/event-hooks/{id}")).await;
    assert_eq!(stored["enabled"], false);

    // A disabled hook takes no new events; its queued delivery waits.
    publish(&server, 1).await;
    eventually("the outbox drained", || async {
        let (_, status) = server.get("/status").await;
        (status["outbox"]["pending"] == 0).then_some(())
    })
    .await;
    let (_, deliveries) = server.get(&format!("/event-hooks/{id}/deliveries")).await;
    let listed = deliveries["data"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{deliveries}");
    assert_eq!(listed[0]["state"], "failed", "kept, not dead: {deliveries}");

    failing.set_status(200);
    let (status, enabled) = server
        .patch(&format!("/event-hooks/{id}"), &json!({"enabled": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    server
        .newest_delivery(&hook, "the kept delivery succeeded", |d| {
            d["state"] == "succeeded"
        })
        .await;
}

#[tokio::test]
async fn dead_deliveries_are_announced_but_never_to_their_own_hook() {
    let server = Server::start_with(Options::loopback().env("HOOKD_RETRY_MAX_ATTEMPTS", "1")).await;
    let ops = Receiver::start().await;
    operator_hook(&server, &ops).await;
    // A second operator hook whose own deliveries die.
    let broken_ops = Receiver::start().await;
    broken_ops.set_status(500);
    let broken = server
        .create(
            "/event-hooks",
            &json!({"source": "hookd", "event": "delivery-dead", "handler": "webhook",
                    "config": {"url": broken_ops.url("/broken")}}),
        )
        .await;
    let failing = Receiver::start().await;
    failing.set_status(500);
    let hook = published_hook(&server, &failing, "/failing", json!({})).await;

    publish(&server, 1).await;
    let dead = operational(&ops, "delivery-dead", &hook).await;
    assert_eq!(dead["attempts"], 1);
    assert_eq!(
        (dead["event_source"].clone(), dead["event_name"].clone()),
        (json!("service-protection"), json!("rate-limit-exceeded"))
    );
    assert!(dead["event_id"].is_string(), "{dead}");
    // The broken operator hook got that one and died on it; its own death
    // was routed to the other operator hook, in the same dispatch as to any
    // other hook, and not to itself.
    operational(&ops, "delivery-dead", &broken).await;
    let (_, page) = server
        .get(&format!(
            "/event-hooks/{}/deliveries",
            broken["id"].as_str().unwrap()
        ))
        .await;
    let about: Vec<Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event"]["data"]["hook"].clone())
        .collect();
    assert_eq!(about, [hook["id"].clone()], "{page}");
}

#[tokio::test]
async fn nobody_outside_publishes_hookd_events() {
    let server = Server::start().await;
    let (status, body) = server
        .post(
            "/events",
            &json!({"source": "hookd", "event": "hook-disabled",
                    "data": {"hook": uuid::Uuid::new_v4(), "failing_since": 0}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["fields"]["source"],
        "source 'hookd' is published by hookd only"
    );
    let (status, sources) = server.get("/event-hooks/sources/hookd").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sources["data"]["hook-paused"]["unique"],
        json!(["hook"]),
        "{sources}"
    );
}
