//! Filters (issue 14, item 6): a hook's `condition`, a minijinja
//! expression over the event data, checked at save, evaluated in the
//! template box, and the hook takes only the events it holds for.

use crate::support::{Options, Server};
use hookd_testkit::eventually;
use hookd_testkit::receiver::{Received, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const STARTS_WITH_A: &str = "entity.username is startingwith 'a'";
/// Two copies of the username repeated 20 million times (minijinja's cap
/// on one repetition is 100 MB), joined: more than a worker's memory.
/// Without data there is no username, and it merely errs.
const MEMORY_BOMB: &str = "entity.username * 20000000 ~ entity.username * 20000000 != ''";

/// A webhook hook on consumers delivering to `path`, with `condition`.
fn hook(receiver: &Receiver, path: &str, condition: Option<&str>) -> Value {
    json!({"source": "crud", "event": "consumers", "handler": "webhook",
           "condition": condition, "config": {"url": receiver.url(path)}})
}

/// Usernames of the consumer events received at `path` (pings left out),
/// once there are at least `n`.
async fn usernames_at(receiver: &Receiver, path: &str, n: usize) -> Vec<String> {
    eventually(&format!("{n} events at {path}"), || async {
        let got: Vec<String> = receiver
            .received()
            .iter()
            .filter(|r: &&Received| r.uri == path && r.json()["source"] == "crud")
            .filter_map(|r| r.json()["entity"]["username"].as_str().map(String::from))
            .collect();
        (got.len() >= n).then_some(got)
    })
    .await
}

async fn deliveries_of(server: &Server, hook: &Value) -> usize {
    let path = format!("/event-hooks/{}/deliveries", hook["id"].as_str().unwrap());
    let (status, page) = server.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().len()
}

/// The value of a `hookd_conditions_total` series.
async fn conditions_counted(server: &Server, outcome: &str) -> u64 {
    let text = server.metrics().await;
    let series = format!("hookd_conditions_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |n| n.parse().unwrap())
}

async fn create_consumers(server: &Server, names: &[&str]) {
    for name in names {
        server
            .create("/consumers", &json!({"username": name}))
            .await;
    }
}

#[tokio::test]
async fn a_hook_takes_only_the_events_its_condition_holds_for() {
    let server = Server::start_with(Options::loopback()).await;
    let receiver = Receiver::start().await;
    let filtered = server
        .create("/event-hooks", &hook(&receiver, "/a", Some(STARTS_WITH_A)))
        .await;
    assert_eq!(filtered["condition"], STARTS_WITH_A);
    let (_, shown) = server
        .get(&format!(
            "/event-hooks/{}",
            filtered["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(shown, filtered);
    let everything = server
        .create("/event-hooks", &hook(&receiver, "/all", None))
        .await;
    assert_eq!(everything["condition"], Value::Null);

    create_consumers(&server, &["alice", "bob", "anna"]).await;
    // Every event is dispatched once the unconditional hook has them all
    // (in any order: a hook's attempts run side by side).
    let mut all = usernames_at(&receiver, "/all", 3).await;
    all.sort();
    assert_eq!(all, ["alice", "anna", "bob"]);
    let mut taken = usernames_at(&receiver, "/a", 2).await;
    taken.sort();
    assert_eq!(taken, ["alice", "anna"]);
    assert_eq!(deliveries_of(&server, &filtered).await, 2);
    assert_eq!(deliveries_of(&server, &everything).await, 3);
    assert_eq!(conditions_counted(&server, "held").await, 2);
    assert_eq!(conditions_counted(&server, "not_held").await, 1);

    // Taken off by PATCH: the hook takes every event again.
    let path = format!("/event-hooks/{}", filtered["id"].as_str().unwrap());
    let (status, patched) = server.patch(&path, &json!({"condition": null})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["condition"], Value::Null);
    create_consumers(&server, &["carol"]).await;
    assert!(
        usernames_at(&receiver, "/a", 3)
            .await
            .contains(&"carol".to_string())
    );
}

#[tokio::test]
async fn a_condition_is_checked_at_save_in_kongs_error_shape() {
    let server = Server::start_with(Options::loopback()).await;
    let receiver = Receiver::start().await;
    let (status, refused) = server
        .post(
            "/event-hooks",
            &hook(&receiver, "/x", Some("entity.username ==")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["code"], 2);
    assert_eq!(refused["name"], "schema violation");
    assert_eq!(
        refused["fields"],
        json!({"condition": "invalid condition: syntax error: unexpected end of input, \
                             expected expression (line 1)"})
    );
    // A template is not a condition; nor is anything but a string.
    for condition in [json!("{{ entity.username }}"), json!(true)] {
        let mut body = hook(&receiver, "/x", None);
        body["condition"] = condition.clone();
        let (status, refused) = server.post("/event-hooks", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{condition}: {refused}");
        assert!(refused["fields"]["condition"].is_string(), "{refused}");
    }
    // Over its budget without any data: refused, naming the limit.
    let (status, refused) = server
        .post(
            "/event-hooks",
            &hook(&receiver, "/x", Some("'ab' * 50000000 != ''")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let message = refused["fields"]["condition"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("over its budget without any event data")
            && message.contains("template_memory"),
        "{refused}"
    );

    // Through PATCH too, and the hook stays as it was.
    let created = server
        .create("/event-hooks", &hook(&receiver, "/x", Some(STARTS_WITH_A)))
        .await;
    let path = format!("/event-hooks/{}", created["id"].as_str().unwrap());
    let (status, refused) = server
        .patch(&path, &json!({"condition": "entity.username )"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["fields"]["condition"].is_string(), "{refused}");
    let (_, kept) = server.get(&path).await;
    assert_eq!(kept["condition"], STARTS_WITH_A);
    // A log hook has one too: every handler does.
    let mut log = json!({"source": "crud", "handler": "log", "condition": "entity.username +"});
    let (status, refused) = server.post("/event-hooks", &log).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    log["condition"] = json!("operation == 'delete'");
    server.create("/event-hooks", &log).await;
}

#[tokio::test]
async fn test_says_whether_the_condition_held() {
    let server = Server::start_with(Options::loopback()).await;
    let receiver = Receiver::start().await;
    let test = async |hook: &Value, username: &str| {
        let path = format!("/event-hooks/{}/test", hook["id"].as_str().unwrap());
        let data = json!({"operation": "create", "entity": {"username": username}});
        server.post(&path, &data).await
    };
    let filtered = server
        .create("/event-hooks", &hook(&receiver, "/a", Some(STARTS_WITH_A)))
        .await;
    let (status, held) = test(&filtered, "alice").await;
    assert_eq!(status, StatusCode::OK, "{held}");
    assert_eq!(held["condition"], true);
    assert_eq!(held["result"]["status"], 200, "{held}");
    let (status, refused) = test(&filtered, "bob").await;
    assert_eq!(status, StatusCode::OK, "{refused}");
    assert_eq!(
        refused,
        json!({"data": {"operation": "create", "entity": {"username": "bob"}},
               "condition": false, "result": null})
    );
    let sent: Vec<Value> = receiver
        .received()
        .iter()
        .filter(|r| r.uri == "/a" && r.json()["source"] != "kong:event_hooks")
        .map(Received::json)
        .collect();
    assert_eq!(sent.len(), 1, "the handler ran for alice only: {sent:?}");
    assert_eq!(sent[0]["entity"]["username"], "alice");

    // A condition that fails does not hold, and says why.
    let hostile = server
        .create("/event-hooks", &hook(&receiver, "/h", Some(MEMORY_BOMB)))
        .await;
    let (status, failed) = test(&hostile, "alice").await;
    assert_eq!(status, StatusCode::OK, "{failed}");
    assert_eq!(failed["condition"], false);
    assert_eq!(failed["result"], Value::Null);
    let error = failed["condition_error"].as_str().unwrap_or_default();
    assert!(error.contains("template_memory"), "{failed}");

    // Without a condition, Kong's answer as it is.
    let plain = server
        .create("/event-hooks", &hook(&receiver, "/plain", None))
        .await;
    let (status, answer) = test(&plain, "bob").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let mut members: Vec<&String> = answer.as_object().unwrap().keys().collect();
    members.sort();
    assert_eq!(members, ["data", "result"]);
}

#[tokio::test]
async fn a_hostile_condition_fails_its_own_hooks_events_only() {
    let server = Server::start_with(Options::loopback().env("HOOKD_TEMPLATE_TIMEOUT", "1s")).await;
    let receiver = Receiver::start().await;
    // Without a username both are harmless, so they pass the save; with
    // one, the first outgrows the worker's memory, the second its deadline
    // (each `map` makes a list of 100,000 numbers: 1,200 of them take far
    // longer than a second, and few instructions).
    let slow = format!(
        "entity.username and (range(100000){}|length > 0)",
        "|map('abs')".repeat(1200)
    );
    let bomb = server
        .create("/event-hooks", &hook(&receiver, "/bomb", Some(MEMORY_BOMB)))
        .await;
    let slow = server
        .create("/event-hooks", &hook(&receiver, "/slow", Some(&slow)))
        .await;
    let filtered = server
        .create("/event-hooks", &hook(&receiver, "/a", Some(STARTS_WITH_A)))
        .await;
    server
        .create("/event-hooks", &hook(&receiver, "/all", None))
        .await;

    let started = Instant::now();
    create_consumers(&server, &["alice", "bob", "anna"]).await;
    assert_eq!(usernames_at(&receiver, "/all", 3).await.len(), 3);
    let mut taken = usernames_at(&receiver, "/a", 2).await;
    taken.sort();
    assert_eq!(taken, ["alice", "anna"]);
    // One deadline per hostile event at most, not a stalled dispatcher.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(deliveries_of(&server, &bomb).await, 0);
    assert_eq!(deliveries_of(&server, &slow).await, 0);
    assert_eq!(deliveries_of(&server, &filtered).await, 2);
    assert_eq!(conditions_counted(&server, "failed").await, 6);
    let logs = server.logs();
    for (hook, limit) in [(&bomb, "template_memory"), (&slow, "template_timeout")] {
        let id = hook["id"].as_str().unwrap();
        assert!(
            logs.lines()
                .any(|l| l.contains(id) && l.contains("condition failed") && l.contains(limit)),
            "no failure over {limit} logged for {id}"
        );
    }
    let (status, _) = server.get("/").await;
    assert_eq!(status, StatusCode::OK);
}
