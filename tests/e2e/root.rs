//! `GET /` and `GET /status`, and shutting down cleanly.

use crate::per_hook::{publish, published_hook};
use crate::support::{Options, Server};
use hookd_testkit::eventually;
use hookd_testkit::receiver::Receiver;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn root_tells_version_hostname_and_configuration_without_secrets() {
    let server = Server::start_with(Options::default().env("HOOKD_BODY_LIMIT", "4096")).await;
    let (status, root) = server.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    assert!(root["hostname"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(uuid::Uuid::try_parse(root["node_id"].as_str().unwrap()).is_ok());
    let conf = &root["configuration"];
    assert_eq!(conf["body_limit"], 4096);
    assert_eq!(conf["secret_overlap"], "1d", "a duration, not a secret");
    assert_eq!(conf["listen"], "127.0.0.1:0");
    assert_eq!(conf["data_dir"], server.data_dir().display().to_string());
    // A key names a secret by its last word: `admin_token`, not `secret_overlap`.
    for (key, value) in conf.as_object().unwrap() {
        let last_word = key.rsplit('_').next().unwrap();
        if ["token", "secret", "password"]
            .iter()
            .any(|m| last_word.contains(m))
        {
            assert!(value == "" || value == "******", "{key} = {value}");
        }
    }
}

#[tokio::test]
async fn status_reports_the_database_and_the_outbox() {
    let server = Server::start().await;
    let (status, body) = server.get("/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["database"]["reachable"], true);
    let backend = if server.on_postgres() {
        "postgres"
    } else {
        "sled"
    };
    assert_eq!(body["database"]["backend"], backend);
    assert!(body["outbox"]["pending"].is_u64(), "{body}");
}

/// Attempts ending `ok` (true) or failed in the last hour, by `/status`.
fn last_hour(status: &Value, ok: bool) -> u64 {
    let key = if ok { "ok" } else { "failed" };
    status["deliveries"]["last_hour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[key].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn status_counts_the_hours_attempts_and_names_the_hooks_failing_now() {
    let server =
        Server::start_with(Options::loopback().env("HOOKD_HOOK_PAUSE_AFTER_FAILURES", "2")).await;
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.set_status(500);
    published_hook(&server, &good, "/good", json!({})).await;
    let failing = published_hook(&server, &bad, "/bad", json!({})).await;
    publish(&server, 1).await;
    let status = eventually("a paused hook and the hour's attempts", || async {
        let (_, status) = server.get("/status").await;
        let paused = status["failing_hooks"][0]["paused_since"].is_i64();
        (paused && last_hour(&status, true) >= 1).then_some(status)
    })
    .await;
    let minutes = status["deliveries"]["last_hour"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    assert!(
        minutes
            .windows(2)
            .all(|w| w[1]["start"].as_i64() > w[0]["start"].as_i64())
    );
    assert!(last_hour(&status, false) >= 2, "{status}");
    let failing_now = status["failing_hooks"].as_array().unwrap();
    assert_eq!(failing_now.len(), 1, "only the failing hook: {status}");
    assert_eq!(failing_now[0]["hook"], failing["id"]);
    assert!(failing_now[0]["failures"].as_u64().unwrap() >= 2);
    assert!(failing_now[0]["failing_since"].is_i64());
    assert!(status["deliveries"]["queued"].is_u64());
    assert!(status["deliveries"]["oldest_due_seconds"].is_number());

    // A write of the hook forgets its failures.
    bad.set_status(200);
    let (status, _) = server
        .patch(
            &format!("/event-hooks/{}", failing["id"].as_str().unwrap()),
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    eventually("no hook failing", || async {
        let (_, status) = server.get("/status").await;
        status["failing_hooks"].as_array()?.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_node_id_survives() {
    let mut server = Server::start().await;
    let (_, before) = server.get("/").await;
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(server.logs().contains("store flushed"), "{}", server.logs());
    server.restart();
    let (_, after) = server.get("/").await;
    assert_eq!(before["node_id"], after["node_id"]);
}
