//! Hostile webhook-custom templates (issue 11, items 3 and 4): a template
//! over its memory or time fails its own /test or delivery, is refused at
//! save where it is over budget without any data, and the server, its
//! runtime and every other hook carry on.

use crate::support::{Options, Server, attempted};
use hookd_testkit::receiver::Receiver;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Over every budget at once, without data: refused at save.
const INDENT_BOMB: &str = r#"{{ "a\nb"|indent(1000000000000) }}"#;
/// Doubles a string until it holds more than any memory; the `if` makes
/// it harmless without data, so that it passes the save.
const DOUBLING_MACRO: &str = "{% macro d(s, n) %}{% if n > 0 %}{{ d(s ~ s, n - 1) }}{% endif %}{% endmacro %}{% if entity %}{{ d(entity.username, 64) }}{% endif %}";
const DOUBLING_NAMESPACE: &str = "{% if entity %}{% set ns = namespace(s=entity.username) %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}{% endif %}";
/// Fits the fuel and the memory; takes minutes (issue 11, item 4).
const SLOW: &str = "{% if entity %}{% for i in range(10000) %}{% set x = entity.username * 5000000 %}{% endfor %}{% endif %}";

/// A server whose renders get one second.
async fn server() -> Server {
    Server::start_with(
        Options::loopback()
            .env("HOOKD_TEMPLATE_TIMEOUT", "1s")
            .env("HOOKD_RETRY_MAX_ATTEMPTS", "2"),
    )
    .await
}

fn custom_hook(receiver: &Receiver, body: &str) -> Value {
    json!({"source": "crud", "event": "consumers", "handler": "webhook-custom",
           "config": {"url": receiver.url("/custom"), "method": "POST", "body": body}})
}

async fn test_hook(server: &Server, hook: &Value) -> (StatusCode, Value) {
    let path = format!("/event-hooks/{}/test", hook["id"].as_str().unwrap());
    let data = json!({"operation": "create", "entity": {"username": "bob"}});
    // On a server without the box a render runs for minutes: fail instead.
    tokio::time::timeout(Duration::from_secs(20), server.post(&path, &data))
        .await
        .expect("/test answers within its template deadline")
}

fn resident_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The server answers and a normal webhook hook delivers a new consumer.
async fn still_delivers(server: &Server, receiver: &Receiver, username: &str) {
    let (status, _) = server.get("/").await;
    assert_eq!(status, StatusCode::OK);
    let before = receiver.received().len();
    server
        .create("/consumers", &json!({"username": username}))
        .await;
    let got = receiver.wait_for(before + 1).await;
    assert!(
        got.iter()
            .any(|r| r.json()["entity"]["username"] == username),
        "no webhook for {username}"
    );
}

#[tokio::test]
async fn hostile_templates_over_budget_without_data_are_refused_at_save() {
    let server = server().await;
    let receiver = Receiver::start().await;
    let (status, refused) = server
        .post("/event-hooks", &custom_hook(&receiver, INDENT_BOMB))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["name"], "schema violation");
    let message = refused["fields"]["config"]["body"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("indent would make a string longer"),
        "{refused}"
    );

    // Through PATCH too, and the running loop is stopped at the deadline.
    let hook = server
        .create(
            "/event-hooks",
            &custom_hook(&receiver, "{{ entity.username }}"),
        )
        .await;
    let path = format!("/event-hooks/{}", hook["id"].as_str().unwrap());
    let unconditional =
        "{% set s = 'ab' %}{% for i in range(10000) %}{% set x = s * 5000000 %}{% endfor %}";
    let started = Instant::now();
    let (status, refused) = server
        .patch(&path, &json!({"config": {"body": unconditional}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let message = refused["fields"]["config"].as_str().unwrap_or_default();
    assert!(message.contains("template_timeout"), "{refused}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (_, kept) = server.get(&path).await;
    assert_eq!(kept["config"]["body"], "{{ entity.username }}");
}

#[tokio::test]
async fn hostile_templates_fail_their_own_test_and_memory_stays_bounded() {
    let server = server().await;
    let receiver = Receiver::start().await;
    crate::delivery::webhook(&server, "consumers", json!({"url": receiver.url("/plain")})).await;
    let resident_before = resident_kib(&server);
    for (name, body) in [("macro", DOUBLING_MACRO), ("namespace", DOUBLING_NAMESPACE)] {
        let hook = server
            .create("/event-hooks", &custom_hook(&receiver, body))
            .await;
        let (status, answer) = test_hook(&server, &hook).await;
        assert_eq!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{name}: {answer}"
        );
        let err = answer["err"].as_str().unwrap_or_default();
        assert!(err.contains("template_memory"), "{name}: {answer}");
    }
    let grown = resident_kib(&server).saturating_sub(resident_before);
    assert!(grown < 64 * 1024, "the server grew by {grown} KiB");
    assert!(
        !receiver
            .received()
            .iter()
            .any(|r| r.uri.starts_with("/custom")),
        "a hostile template was sent"
    );
    still_delivers(&server, &receiver, "after-test").await;
}

#[tokio::test]
async fn hostile_templates_fail_their_own_delivery_across_restarts() {
    let mut server = server().await;
    let receiver = Receiver::start().await;
    crate::delivery::webhook(&server, "consumers", json!({"url": receiver.url("/plain")})).await;
    let hook = server
        .create("/event-hooks", &custom_hook(&receiver, DOUBLING_NAMESPACE))
        .await;
    server
        .create("/consumers", &json!({"username": "alice"}))
        .await;
    let failed = server
        .newest_delivery(&hook, "a failed attempt", attempted)
        .await;
    let error = failed["attempts"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("cannot render the templates: rendering needed more than"),
        "{failed}"
    );
    assert!(error.contains("template_memory"), "{failed}");

    server.restart();
    let dead = server
        .newest_delivery(&hook, "a dead letter", |d| d["state"] == "dead")
        .await;
    assert_eq!(dead["attempts"].as_array().unwrap().len(), 2, "{dead}");
    still_delivers(&server, &receiver, "after-restart").await;
}

#[tokio::test]
async fn hostile_templates_that_run_long_hold_no_runtime_thread() {
    let server = server().await;
    let receiver = Receiver::start().await;
    let hook = server
        .create("/event-hooks", &custom_hook(&receiver, SLOW))
        .await;
    crate::delivery::webhook(&server, "consumers", json!({"url": receiver.url("/plain")})).await;
    let started = Instant::now();
    let slow = futures::future::join(test_hook(&server, &hook), test_hook(&server, &hook));
    let meanwhile = async {
        let mut slowest = Duration::ZERO;
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..5 {
            let asked = Instant::now();
            let (status, _) = server.get("/").await;
            assert_eq!(status, StatusCode::OK);
            slowest = slowest.max(asked.elapsed());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slowest
    };
    let (((first, a), (second, b)), slowest) = futures::future::join(slow, meanwhile).await;
    for (status, answer) in [(first, a), (second, b)] {
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
        let err = answer["err"].as_str().unwrap_or_default();
        assert!(
            err.contains("took longer than 1s (template_timeout)"),
            "{answer}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        slowest < Duration::from_millis(500),
        "GET / took {slowest:?}"
    );
    still_delivers(&server, &receiver, "after-slow").await;
}
