//! `POST /events`: events of the built-in and custom sources published by
//! outside systems, checked, durable before the 202, delivered like any other.

use crate::support::{Options, Server};
use hookd_store::Page;
use hookd_testkit::eventually;
use hookd_testkit::receiver::{Received, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn rate_limit(consumer: &str, rate: u32) -> Value {
    json!({"consumer": consumer, "ip": "203.0.113.9", "service": "billing", "rate": rate, "limit": 10, "window": "minute"})
}

/// Events received at a path, pings of hook changes left out.
async fn events_at(receiver: &Receiver, path: &str, n: usize) -> Vec<Value> {
    eventually(&format!("{n} events at {path}"), || async {
        let got: Vec<Value> = receiver
            .received()
            .iter()
            .filter(|r: &&Received| r.uri == path && r.json()["source"] != "kong:event_hooks")
            .map(Received::json)
            .collect();
        (got.len() >= n).then_some(got)
    })
    .await
}

async fn hook(
    server: &Server,
    source: &str,
    receiver: &Receiver,
    path: &str,
    extra: Value,
) -> Value {
    let mut body =
        json!({"source": source, "handler": "webhook", "config": {"url": receiver.url(path)}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    server.create("/event-hooks", &body).await
}

#[tokio::test]
async fn every_built_in_source_reaches_its_hooks() {
    let server = Server::start_with(Options::loopback()).await;
    let receiver = Receiver::start().await;
    let published = [
        (
            "rate-limiting-advanced",
            "rate-limit-exceeded",
            rate_limit("c1", 11),
        ),
        (
            "ai-rate-limiting-advanced",
            "rate-limit-exceeded",
            rate_limit("c2", 12),
        ),
        (
            "service-protection",
            "rate-limit-exceeded",
            json!({"service": "s", "rate": 3, "limit": 2, "window": "second"}),
        ),
        (
            "oas-validation",
            "validation-failed",
            json!({"consumer": null, "ip": "198.51.100.1", "service": "s", "err": "body: required"}),
        ),
        (
            "balancer",
            "health",
            json!({"upstream_id": uuid::Uuid::new_v4(), "ip": "10.0.0.1", "port": 80, "hostname": "a", "health": "unhealthy"}),
        ),
    ];
    for (source, _, _) in &published {
        hook(&server, source, &receiver, &format!("/{source}"), json!({})).await;
    }
    let batch: Vec<Value> = published
        .iter()
        .map(|(source, event, data)| json!({"source": source, "event": event, "data": data}))
        .collect();
    let (status, answer) = server.post("/events", &Value::Array(batch)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["data"].as_array().unwrap().len(), published.len());
    for (source, event, data) in &published {
        let got = events_at(&receiver, &format!("/{source}"), 1).await;
        let mut expected = data.clone();
        expected["event"] = json!(event);
        expected["source"] = json!(source);
        assert_eq!(got[0], expected, "{source}");
    }
}

#[tokio::test]
async fn on_change_honours_the_unique_fields_of_published_events() {
    let server = Server::start_with(Options::loopback().env("HOOKD_DELIVERY_WORKERS", "1")).await;
    let receiver = Receiver::start().await;
    hook(
        &server,
        "rate-limiting-advanced",
        &receiver,
        "/rl",
        json!({"on_change": true}),
    )
    .await;
    // rate is not a unique field: A twice is the same event to on_change.
    for (consumer, rate) in [("A", 1), ("A", 2), ("B", 3), ("A", 4)] {
        let (status, body) = server
            .post("/events", &json!({"source": "rate-limiting-advanced", "event": "rate-limit-exceeded", "data": rate_limit(consumer, rate)}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    // A last event that must fire marks the end.
    server
        .post("/events", &json!({"source": "rate-limiting-advanced", "event": "rate-limit-exceeded", "data": rate_limit("Z", 5)}))
        .await;
    let got = events_at(&receiver, "/rl", 4).await;
    let rates: Vec<&Value> = got.iter().map(|e| &e["rate"]).collect();
    assert_eq!(rates, [&json!(1), &json!(3), &json!(4), &json!(5)]);
}

#[tokio::test]
async fn malformed_published_events_are_named() {
    let server = Server::start().await;
    let (status, body) = server
        .post(
            "/events",
            &json!({"source": "kafka", "event": "x", "data": {}}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"message": "source 'kafka' is not registered"})
        )
    );
    let (status, body) = server
        .post(
            "/events",
            &json!({"source": "oas-validation", "event": "oops", "data": {}}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"message": "source 'oas-validation' has no 'oops' event"})
        )
    );
    let (status, body) = server
        .post("/events", &json!({"source": "service-protection", "event": "rate-limit-exceeded", "data": {"service": "s", "rate": 1}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["fields"],
        json!({"data": {"limit": "required field missing", "window": "required field missing"}})
    );
    let (status, body) = server
        .post(
            "/events",
            &json!({"source": "balancer", "event": "health", "data": "down", "extra": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["fields"],
        json!({"data": "expected a record", "extra": "unknown field"})
    );
    let (status, body) = server
        .post("/events", &json!([{"source": "balancer", "event": "health", "data": {}}, {"source": "nope", "event": "x", "data": {}}]))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the first fails before the second is looked at: {body}"
    );
    assert!(
        body["fields"]["1"]["data"]["upstream_id"].is_string(),
        "{body}"
    );
    let (status, body) = server.post("/events", &json!([])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = server
        .post_raw("/events", "application/json", b"{".to_vec())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        server.get("/status").await.1["outbox"]["pending"],
        0,
        "nothing half-published"
    );
}

#[tokio::test]
async fn a_published_event_survives_kill_dash_nine_after_202() {
    let mut server = Server::start_with(Options::loopback()).await;
    let mut receiver = Receiver::down().await;
    let h = hook(&server, "oas-validation", &receiver, "/oas", json!({})).await;
    let data = json!({"consumer": "c", "ip": "192.0.2.1", "service": "s", "err": "missing field"});
    let (status, answer) = server
        .post(
            "/events",
            &json!({"source": "oas-validation", "event": "validation-failed", "data": data}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    server.kill9();
    {
        let store = server.store().await;
        let hook_id = h["id"].as_str().unwrap().parse().unwrap();
        let mut held: Vec<String> = store
            .outbox_events()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id.to_string())
            .collect();
        let page = Page {
            size: 100,
            offset: None,
        };
        held.extend(
            store
                .hook_deliveries(hook_id, &page)
                .await
                .unwrap()
                .data
                .into_iter()
                .map(|d| d.event.id.to_string()),
        );
        assert!(
            held.contains(&answer["data"][0]["id"].as_str().unwrap().to_string()),
            "{held:?}"
        );
    }
    receiver.resume().await;
    server.restart();
    let got = events_at(&receiver, "/oas", 1).await;
    assert_eq!(got[0]["err"], "missing field");
}

#[tokio::test]
async fn custom_sources_from_the_configuration_file() {
    let config = r#"
[custom_sources.payments.charge-failed]
fields = ["customer", "amount", "reason"]
unique = ["customer"]
description = "Run an event when a card is declined"
"#;
    let server = Server::start_with(Options::loopback().config(config)).await;
    let receiver = Receiver::start().await;
    let (status, source) = server.get("/event-hooks/sources/payments").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        source,
        json!({"data": {"charge-failed": {"fields": ["customer", "amount", "reason"], "unique": ["customer"],
                                          "description": "Run an event when a card is declined"}}})
    );
    hook(
        &server,
        "payments",
        &receiver,
        "/pay",
        json!({"event": "charge-failed"}),
    )
    .await;
    let (status, _) = server
        .post("/events", &json!({"source": "payments", "event": "charge-failed",
                                  "data": {"customer": "cus_1", "amount": 4200, "reason": "insufficient_funds"}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let got = events_at(&receiver, "/pay", 1).await;
    assert_eq!(got[0]["amount"], 4200);
    assert_eq!(got[0]["source"], "payments");
}
