//! What each hook gets of the workers: a receiver that hangs holds up
//! only its own hook's deliveries, `concurrency` caps a hook's attempts at
//! once, and `rate_limit` spreads its deliveries over time.

use crate::support::{Options, Server};
use hookd_testkit::receiver::{Received, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A webhook hook on the published `service-protection` event.
pub async fn published_hook(
    server: &Server,
    receiver: &Receiver,
    path: &str,
    extra: Value,
) -> Value {
    let mut body = json!({
        "source": "service-protection",
        "event": "rate-limit-exceeded",
        "handler": "webhook",
        "config": {"url": receiver.url(path)},
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    server.create("/event-hooks", &body).await
}

/// Publishes `n` events, numbered from 0 in their `rate`, in one request.
pub async fn publish(server: &Server, n: usize) {
    let batch: Vec<Value> = (0..n)
        .map(|i| {
            json!({"source": "service-protection", "event": "rate-limit-exceeded",
                   "data": {"service": "billing", "rate": i, "limit": 1, "window": "second"}})
        })
        .collect();
    let (status, body) = server.post("/events", &Value::Array(batch)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// The events received at a path (pings of hook changes left out).
pub fn events_at(receiver: &Receiver, path: &str) -> Vec<Received> {
    receiver
        .received()
        .into_iter()
        .filter(|r| r.uri == path && r.json()["source"] != "kong:event_hooks")
        .collect()
}

/// Waits until `n` events arrived at `path`.
pub async fn wait_events(receiver: &Receiver, path: &str, n: usize) -> Vec<Received> {
    hookd_testkit::eventually(&format!("{n} events at {path}"), || async {
        let got = events_at(receiver, path);
        (got.len() >= n).then_some(got)
    })
    .await
}

#[tokio::test]
async fn a_hanging_receiver_holds_up_only_its_own_hook() {
    // Four workers in all; without per-hook shares the hanging hook would
    // soon hold all four and the other hook would wait for its timeouts.
    let server = Server::start_with(
        Options::loopback()
            .env("HOOKD_DELIVERY_WORKERS", "4")
            .env("HOOKD_WEBHOOK_TIMEOUT", "60s"),
    )
    .await;
    let hanging = Receiver::start().await;
    hanging.set_delay(Duration::from_secs(60));
    let fast = Receiver::start().await;
    published_hook(&server, &hanging, "/hangs", json!({"concurrency": 2})).await;
    published_hook(&server, &fast, "/fast", json!({})).await;

    publish(&server, 40).await;
    let got = wait_events(&fast, "/fast", 40).await;
    let mut numbers: Vec<i64> = got
        .iter()
        .map(|r| r.json()["rate"].as_i64().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (0..40).collect::<Vec<_>>());
    // Meanwhile the hanging hook has its two attempts open, no more.
    wait_events(&hanging, "/hangs", 2).await;
    assert_eq!(events_at(&hanging, "/hangs").len(), 2);
}

#[tokio::test]
async fn concurrency_is_checked_against_the_servers_maximum() {
    let server =
        Server::start_with(Options::loopback().env("HOOKD_HOOK_MAX_CONCURRENCY", "8")).await;
    let receiver = Receiver::start().await;
    let body = json!({"source": "service-protection", "handler": "webhook",
                      "concurrency": 9, "config": {"url": receiver.url("/")}});
    let (status, answer) = server.post("/event-hooks", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer["fields"]["concurrency"],
        "must be at most 8 (the server's hook_max_concurrency)"
    );
    for (field, bad) in [
        ("concurrency", json!(0)),
        ("rate_limit", json!(0)),
        ("rate_limit", json!(-1.5)),
    ] {
        let mut body = body.clone();
        body["concurrency"] = json!(8);
        body[field] = bad.clone();
        let (status, answer) = server.post("/event-hooks", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field} {bad}: {answer}");
        assert!(answer["fields"][field].is_string(), "{answer}");
    }
    let hook = published_hook(
        &server,
        &receiver,
        "/",
        json!({"concurrency": 8, "rate_limit": 2.5}),
    )
    .await;
    assert_eq!(
        (hook["concurrency"].clone(), hook["rate_limit"].clone()),
        (json!(8), json!(2.5))
    );
    assert_eq!(hook["enabled"], true);
}

#[tokio::test]
async fn a_rate_limited_hook_spreads_its_deliveries_and_keeps_the_rest_queued() {
    let server = Server::start_with(Options::loopback()).await;
    let limited = Receiver::start().await;
    let free = Receiver::start().await;
    published_hook(&server, &limited, "/limited", json!({"rate_limit": 5})).await;
    published_hook(&server, &free, "/free", json!({})).await;

    let started = Instant::now();
    publish(&server, 6).await;
    wait_events(&free, "/free", 6).await;
    let got = wait_events(&limited, "/limited", 6).await;
    // At five a second, six deliveries take at least a second: a lower
    // bound, which a slow machine only makes longer.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let numbers: Vec<i64> = got
        .iter()
        .map(|r| r.json()["rate"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [0, 1, 2, 3, 4, 5], "in order");
}
