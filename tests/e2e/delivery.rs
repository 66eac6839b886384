//! Durable delivery to real receivers on loopback: Kong's bodies and
//! signatures, retries, outages, crashes, /test and /ping, and the
//! outbound address policy.

use crate::support::{Options, Server, attempted};
use base64::Engine as _;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use hookd_testkit::eventually;
use hookd_testkit::receiver::{Received, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;

/// A server that may call loopback receivers and retries quickly.
async fn loopback_server() -> Server {
    Server::start_with(Options::loopback()).await
}

pub(crate) async fn webhook(server: &Server, event: &str, config: Value) -> Value {
    server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "event": event, "handler": "webhook", "config": config}),
        )
        .await
}

/// Requests other than Kong's pings of hook changes.
pub(crate) fn events_only(received: Vec<Received>) -> Vec<Received> {
    received
        .into_iter()
        .filter(|r| r.json()["source"] != "kong:event_hooks")
        .collect()
}

pub(crate) async fn wait_events(receiver: &Receiver, n: usize) -> Vec<Received> {
    eventually(&format!("{n} events at the receiver"), || async {
        let got = events_only(receiver.received());
        (got.len() >= n).then_some(got)
    })
    .await
}

#[tokio::test]
async fn a_created_consumer_reaches_the_webhook_with_kongs_body() {
    let server = loopback_server().await;
    let receiver = Receiver::start().await;
    webhook(
        &server,
        "consumers",
        json!({"url": receiver.url("/hook"), "headers": {"X-Team": "ops"}}),
    )
    .await;
    let consumer = server
        .create("/consumers", &json!({"username": "alice"}))
        .await;
    let got = wait_events(&receiver, 1).await;
    let request = &got[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, "/hook");
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(request.header("x-team").as_deref(), Some("ops"));
    assert_eq!(
        request.json(),
        json!({"event": "consumers", "source": "crud", "operation": "create", "schema": "consumers",
               "entity": {"id": consumer["id"], "username": "alice", "created_at": consumer["created_at"],
                          "updated_at": consumer["updated_at"]}})
    );
    assert!(request.header("webhook-id").is_some());
    assert!(
        request.header("x-kong-signature").is_none(),
        "no secret, no signature"
    );
}

/// What a webhook hook with `secret` sent for a consumer's creation on
/// `server`.
async fn signed_on_create(server: &Server, secret: &str) -> Received {
    let receiver = Receiver::start().await;
    webhook(
        server,
        "consumers:create",
        json!({"url": receiver.url("/"), "secret": secret}),
    )
    .await;
    server
        .create("/consumers", &json!({"username": "bob"}))
        .await;
    wait_events(&receiver, 1).await.remove(0)
}

#[tokio::test]
async fn signatures_verify_independently() {
    let server = loopback_server().await;
    let request = signed_on_create(&server, "hunter2").await;

    let mut kong = Hmac::<sha1::Sha1>::new_from_slice(b"hunter2").unwrap();
    kong.update(&request.body);
    assert_eq!(
        request.header("x-kong-signature").unwrap(),
        format!("sha1={}", hex::encode(kong.finalize().into_bytes()))
    );

    let id = request.header("webhook-id").unwrap();
    let timestamp = request.header("webhook-timestamp").unwrap();
    let mut standard = Hmac::<sha2::Sha256>::new_from_slice(b"hunter2").unwrap();
    standard.update(format!("{id}.{timestamp}.").as_bytes());
    standard.update(&request.body);
    let expected =
        base64::engine::general_purpose::STANDARD.encode(standard.finalize().into_bytes());
    assert_eq!(
        request.header("webhook-signature").unwrap(),
        format!("v1,{expected}")
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - timestamp.parse::<i64>().unwrap()).abs() < 600,
        "timestamp is unix seconds"
    );
}

#[tokio::test]
async fn sha256_kong_signature_when_configured() {
    let server =
        Server::start_with(Options::loopback().env("HOOKD_KONG_SIGNATURE", "sha256")).await;
    let request = signed_on_create(&server, "k").await;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"k").unwrap();
    mac.update(&request.body);
    assert_eq!(
        request.header("x-kong-signature").unwrap(),
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
}

#[tokio::test]
async fn a_500_then_200_is_retried_and_both_attempts_are_logged() {
    let server = loopback_server().await;
    let receiver = Receiver::start().await;
    let hook = webhook(
        &server,
        "consumers:create",
        json!({"url": receiver.url("/")}),
    )
    .await;
    receiver.wait_for(1).await; // the creation ping
    receiver.script(&[500, 200]);
    server
        .create("/consumers", &json!({"username": "carol"}))
        .await;
    let got = wait_events(&receiver, 2).await;
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "same delivery, same id"
    );
    let delivery = server
        .newest_delivery(&hook, "the delivery to succeed", |d| {
            d["state"] == "succeeded"
        })
        .await;
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{delivery}");
    assert_eq!(attempts[0]["status"], 500);
    assert_eq!(attempts[0]["ok"], false);
    assert_eq!(attempts[0]["error"], "the receiver answered 500");
    assert_eq!(attempts[0]["response"], "received");
    assert_eq!(attempts[1]["status"], 200);
    assert_eq!(attempts[1]["ok"], true);
    assert!(attempts[1]["at_ms"].as_i64() >= attempts[0]["at_ms"].as_i64());
    assert_eq!(
        delivery["id"].as_str(),
        got[0].header("webhook-id").as_deref()
    );
    let (status, one) = server
        .get(&format!("/deliveries/{}", delivery["id"].as_str().unwrap()))
        .await;
    assert_eq!((status, &one), (StatusCode::OK, &delivery));
}

/// The delivery to `receiver` of consumer `username`'s creation, by a
/// webhook hook made for it, once `until` holds of it.
async fn delivery_of_a_consumer(
    server: &Server,
    receiver: &Receiver,
    username: &str,
    what: &str,
    until: impl Fn(&Value) -> bool,
) -> Value {
    let hook = webhook(
        server,
        "consumers:create",
        json!({"url": receiver.url("/")}),
    )
    .await;
    server
        .create("/consumers", &json!({"username": username}))
        .await;
    server.newest_delivery(&hook, what, until).await
}

#[tokio::test]
async fn a_receiver_down_when_the_event_happens_gets_it_when_up() {
    let server = loopback_server().await;
    let mut receiver = Receiver::down().await;
    let failed =
        delivery_of_a_consumer(&server, &receiver, "dan", "a failed attempt", attempted).await;
    assert_eq!(failed["attempts"][0]["ok"], false);
    assert!(
        failed["attempts"][0]["status"].is_null(),
        "no answer: {failed}"
    );
    receiver.resume().await;
    let got = wait_events(&receiver, 1).await;
    assert_eq!(got[0].json()["entity"]["username"], "dan");
}

#[tokio::test]
async fn dead_letters_can_be_redelivered() {
    let server = Server::start_with(Options::loopback().env("HOOKD_RETRY_MAX_ATTEMPTS", "2")).await;
    let receiver = Receiver::start().await;
    receiver.set_status(503);
    let dead = delivery_of_a_consumer(&server, &receiver, "erin", "a dead letter", |d| {
        d["state"] == "dead"
    })
    .await;
    assert_eq!(dead["attempts"].as_array().unwrap().len(), 2);
    receiver.set_status(200);
    let id = dead["id"].as_str().unwrap();
    let (status, queued) = server
        .post(&format!("/deliveries/{id}/retry"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let done = eventually("the redelivery", || async {
        let (_, d) = server.get(&format!("/deliveries/{id}")).await;
        (d["state"] == "succeeded").then_some(d)
    })
    .await;
    assert_eq!(done["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(
        server
            .post(
                &format!("/deliveries/{}/retry", uuid::Uuid::new_v4()),
                &json!({})
            )
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/deliveries/not-a-uuid").await.0,
        StatusCode::BAD_REQUEST
    );
}

/// Every delivery of a hook, through the Admin API's pages.
pub(crate) async fn all_deliveries(server: &Server, hook: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut path = format!("/event-hooks/{hook}/deliveries?size=1000");
    loop {
        let (status, page) = server.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["offset"].as_str() {
            Some(offset) => {
                path = format!("/event-hooks/{hook}/deliveries?size=1000&offset={offset}")
            }
            None => return all,
        }
    }
}

/// Creates consumers `user-0` to `user-999`.
async fn create_1000_consumers(server: &Server) {
    let writes = (0..1000).map(|i| async move {
        server
            .create("/consumers", &json!({"username": format!("user-{i}")}))
            .await
    });
    // 64 clients at a time: beyond the server's `max_connections` a client
    // waits for another's keep-alive connection to time out.
    let created: Vec<Value> = futures::stream::iter(writes)
        .buffer_unordered(64)
        .collect()
        .await;
    assert_eq!(created.len(), 1000);
}

/// The webhook-ids that had reached `receiver`: delivered, or in flight
/// (the receiver records a request as it arrives).
pub(crate) fn reached(receiver: &Receiver) -> HashSet<String> {
    events_only(receiver.received())
        .iter()
        .filter_map(|r| r.header("webhook-id"))
        .collect()
}

/// The deliveries of a stopped server's hook that its store holds as
/// succeeded: those ended before the kill.
pub(crate) async fn stored_as_succeeded(server: &Server, hook: &str) -> HashSet<String> {
    let store = server.store().await;
    let page = hookd_store::Page {
        size: 100_000,
        offset: None,
    };
    store
        .hook_deliveries(hook.parse().unwrap(), &page)
        .await
        .unwrap()
        .data
        .into_iter()
        .filter(|d| d.state == hookd_model::delivery::DeliveryState::Succeeded)
        .map(|d| d.id.to_string())
        .collect()
}

/// Checks what a hook's receiver got across a kill -9: each of the 1000
/// events under one webhook-id, sent again only if it had reached the
/// receiver before the kill and had not been stored as succeeded, and one
/// succeeded delivery each. Returns how many were sent again.
pub(crate) async fn delivered_once_but_in_flight(
    server: &Server,
    receiver: &Receiver,
    hook: &str,
    (before, done): (&HashSet<String>, &HashSet<String>),
) -> usize {
    let got = eventually("every event delivered", || async {
        let got = events_only(receiver.received());
        let ids: HashSet<String> = got.iter().filter_map(|r| r.header("webhook-id")).collect();
        (ids.len() >= 1000).then_some(got)
    })
    .await;
    let mut event_of: std::collections::HashMap<String, String> = Default::default();
    let mut duplicated = HashSet::new();
    for request in &got {
        let id = request.header("webhook-id").unwrap();
        let name = request.json()["entity"]["username"]
            .as_str()
            .unwrap()
            .to_string();
        if let Some(earlier) = event_of.insert(id.clone(), name.clone()) {
            assert_eq!(
                earlier, name,
                "a webhook-id is sent again with its own event"
            );
            duplicated.insert(id);
        }
    }
    let names: HashSet<&String> = event_of.values().collect();
    assert_eq!(
        names.len(),
        1000,
        "every consumer's event arrived, under one id"
    );
    let unexpected: Vec<String> = duplicated
        .iter()
        .filter(|id| !before.contains(*id) || done.contains(*id))
        .map(|id| match done.contains(id) {
            true => format!("{id} (stored as succeeded)"),
            false => format!("{id} (had not reached the receiver)"),
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "only deliveries in flight at the kill are sent again: {unexpected:?}"
    );
    let deliveries = eventually("every delivery recorded", || async {
        let all = all_deliveries(server, hook).await;
        all.iter().all(|d| d["state"] == "succeeded").then_some(all)
    })
    .await;
    let ids: HashSet<&str> = deliveries
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!((deliveries.len(), ids.len()), (1000, 1000));
    duplicated.len()
}

#[tokio::test]
async fn kill_dash_nine_with_a_thousand_pending_loses_nothing() {
    let mut server = loopback_server().await;
    // Two hooks on each event: one receiver slower than the writes, so
    // that most of its deliveries are in memory or in flight when hookd
    // dies, and one that keeps up, so that most outbox records left at the
    // kill have a delivery stored already, which must not be made again.
    let (slow, fast) = (Receiver::start().await, Receiver::start().await);
    slow.set_delay(std::time::Duration::from_millis(200));
    let mut hooks = Vec::new();
    for receiver in [&slow, &fast] {
        let hook = webhook(
            &server,
            "consumers:create",
            json!({"url": receiver.url("/")}),
        )
        .await;
        hooks.push(hook["id"].as_str().unwrap().to_string());
    }
    create_1000_consumers(&server).await;
    server.kill9();
    // What hookd had sent but the receivers had not read yet reached them
    // before the kill all the same.
    slow.settle().await;
    fast.settle().await;
    let (slow_before, fast_before) = (reached(&slow), reached(&fast));
    let (slow_done, fast_done) = (
        stored_as_succeeded(&server, &hooks[0]).await,
        stored_as_succeeded(&server, &hooks[1]).await,
    );
    server.restart();
    slow.set_delay(std::time::Duration::ZERO);
    let slow_again =
        delivered_once_but_in_flight(&server, &slow, &hooks[0], (&slow_before, &slow_done)).await;
    let fast_again =
        delivered_once_but_in_flight(&server, &fast, &hooks[1], (&fast_before, &fast_done)).await;
    eprintln!(
        "reached the receivers before the kill: {} slow, {} fast; stored as succeeded: {} slow, \
         {} fast; sent again: {slow_again} slow, {fast_again} fast",
        slow_before.len(),
        fast_before.len(),
        slow_done.len(),
        fast_done.len()
    );
}

/// A webhook hook on consumers:create that makes one attempt at a time,
/// so that its deliveries are attempted, and finish, in event order; its id.
async fn one_at_a_time(server: &Server, receiver: &Receiver) -> String {
    let hook = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "event": "consumers:create", "handler": "webhook",
                    "concurrency": 1, "config": {"url": receiver.url("/")}}),
        )
        .await;
    hook["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn deliveries_before_their_first_attempt_ends_are_shown_from_memory() {
    let server = loopback_server().await;
    let receiver = Receiver::start().await;
    receiver.set_delay(std::time::Duration::from_secs(3));
    let hook = &one_at_a_time(&server, &receiver).await;
    for name in ["first", "second"] {
        server
            .create("/consumers", &json!({"username": name}))
            .await;
    }
    // One attempt runs (its receiver is slow), the other waits for the
    // hook's only place: neither is stored yet, both are listed.
    let listed = eventually("one in flight, one queued", || async {
        let all = all_deliveries(&server, hook).await;
        let mut states: Vec<&str> = all.iter().map(|d| d["state"].as_str().unwrap()).collect();
        states.sort();
        (states == ["in_flight", "queued"]).then_some(all)
    })
    .await;
    let by_state = |state: &str| {
        listed.iter().find(|d| d["state"] == state).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (running, waiting) = (by_state("in_flight"), by_state("queued"));
    let (status, one) = server.get(&format!("/deliveries/{waiting}")).await;
    assert_eq!((status, &one["state"]), (StatusCode::OK, &json!("queued")));
    assert_eq!(one["attempts"], json!([]));
    let (status, _) = server
        .post(&format!("/deliveries/{running}/retry"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, retried) = server
        .post(&format!("/deliveries/{waiting}/retry"), &json!({}))
        .await;
    assert_eq!(
        (status, &retried["state"]),
        (StatusCode::ACCEPTED, &json!("queued"))
    );
    // Both end stored, one attempt each.
    receiver.set_delay(std::time::Duration::ZERO);
    for id in [running, waiting] {
        let done = eventually("the delivery succeeded", || async {
            let (_, d) = server.get(&format!("/deliveries/{id}")).await;
            (d["state"] == "succeeded").then_some(d)
        })
        .await;
        assert_eq!(done["attempts"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn test_runs_the_handler_synchronously_and_answers_kongs_shape() {
    let server = loopback_server().await;
    let receiver = Receiver::start().await;
    let hook = webhook(&server, "consumers", json!({"url": receiver.url("/t")})).await;
    let id = hook["id"].as_str().unwrap();
    let (status, answer) = server
        .post(&format!("/event-hooks/{id}/test"), &json!({"some": "data"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["data"], json!({"some": "data"}));
    assert_eq!(answer["result"]["status"], 200);
    assert_eq!(answer["result"]["body"], "received");
    assert!(answer["result"]["headers"].is_object());
    let got = wait_events(&receiver, 1).await;
    assert_eq!(
        got[0].json(),
        json!({"some": "data", "event": "consumers", "source": "crud"})
    );

    let log = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "handler": "log", "config": {}}),
        )
        .await;
    let (status, answer) = server
        .post(
            &format!("/event-hooks/{}/test", log["id"].as_str().unwrap()),
            &json!({"x": 1}),
        )
        .await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"data": {"x": 1}, "result": null}))
    );

    let mut down = Receiver::down().await;
    let broken = webhook(&server, "consumers", json!({"url": down.url("/")})).await;
    let (status, answer) = server
        .post(
            &format!("/event-hooks/{}/test", broken["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer["message"], "An unexpected error occurred");
    assert!(
        answer["err"].as_str().is_some_and(|e| !e.is_empty()),
        "{answer}"
    );
    down.stop().await;
    let missing = uuid::Uuid::new_v4();
    assert_eq!(
        server
            .post(&format!("/event-hooks/{missing}/test"), &json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn ping_and_the_pings_of_hook_changes() {
    let server = loopback_server().await;
    let receiver = Receiver::start().await;
    let hook = webhook(&server, "consumers", json!({"url": receiver.url("/")})).await;
    let id = hook["id"].as_str().unwrap();
    let created = receiver.wait_for(1).await;
    assert_eq!(
        created[0].json(),
        json!({"source": "kong:event_hooks", "event": "ping", "operation": "create", "event_hooks": hook})
    );
    let response = server
        .http
        .get(server.url(&format!("/event-hooks/{id}/ping")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().len(), 0, "empty body");
    let pinged = receiver.wait_for(2).await;
    assert_eq!(pinged[1].json()["operation"], "ping");
    let (status, updated) = server
        .patch(&format!("/event-hooks/{id}"), &json!({"snooze": 5}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(receiver.wait_for(3).await[2].json()["event_hooks"], updated);
    assert_eq!(
        server.delete(&format!("/event-hooks/{id}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(receiver.wait_for(4).await[3].json()["operation"], "delete");

    let log = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "handler": "log", "config": {}}),
        )
        .await;
    let (status, body) = server
        .get(&format!(
            "/event-hooks/{}/ping",
            log["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": "handler 'log' does not support 'ping'"})
        )
    );
}

#[tokio::test]
async fn private_targets_are_refused_without_the_allowlist() {
    let server = Server::start_with(Options::default().env("HOOKD_RETRY_SCHEDULE", "50ms")).await;
    let receiver = Receiver::start().await;
    let failed = delivery_of_a_consumer(
        &server,
        &receiver,
        "mallory",
        "a refused attempt",
        attempted,
    )
    .await;
    let error = failed["attempts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("refused") && error.contains("127.0.0.1"),
        "{error}"
    );
    let by_name = webhook(
        &server,
        "consumers:create",
        json!({"url": format!("http://localhost:{}/", receiver.addr.port())}),
    )
    .await;
    server
        .create("/consumers", &json!({"username": "trudy"}))
        .await;
    let failed = server
        .newest_delivery(&by_name, "a refused attempt by name", attempted)
        .await;
    assert!(
        failed["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{failed}"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
}

/// A webhook-custom hook's request for this config, run through /test on
/// the data of a consumer named `a"b\c`.
async fn custom_request(server: &Server, receiver: &Receiver, config: Value) -> Received {
    let mut config = config;
    config["url"] = json!(receiver.url("/custom?static=1"));
    let hook = server
        .create("/event-hooks", &json!({"source": "crud", "event": "consumers", "handler": "webhook-custom", "config": config}))
        .await;
    let before = receiver.received().len();
    let data = json!({"operation": "create", "entity": {"username": "a\"b\\c", "id": "42"}});
    let (status, answer) = server
        .post(
            &format!("/event-hooks/{}/test", hook["id"].as_str().unwrap()),
            &data,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    receiver.wait_for(before + 1).await.remove(before)
}

#[tokio::test]
async fn webhook_custom_follows_kongs_rules_for_each_content_type() {
    let server = loopback_server().await;
    let receiver = Receiver::start().await;
    let payload = json!({"user": "{{ entity.username }}", "op": "{{ operation }}d"});

    let get = custom_request(
        &server,
        &receiver,
        json!({"method": "GET", "payload": payload}),
    )
    .await;
    assert_eq!(get.method, "GET");
    let query: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(get.uri.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(query["static"], "1");
    assert_eq!(query["user"], "a\"b\\c");
    assert_eq!(query["op"], "created");

    let as_json = custom_request(
        &server,
        &receiver,
        json!({"method": "POST", "payload": payload,
        "headers": {"Content-Type": "application/json"}}),
    )
    .await;
    assert_eq!(as_json.json(), json!({"user": "a\"b\\c", "op": "created"}));

    let form = custom_request(
        &server,
        &receiver,
        json!({"method": "PUT", "payload": payload,
        "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
    )
    .await;
    assert_eq!(form.method, "PUT");
    let fields: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&form.body)
        .into_owned()
        .collect();
    assert_eq!(fields["user"], "a\"b\\c");

    for config in [
        json!({"method": "POST", "payload": payload, "headers": {"Content-Type": "multipart/form-data"}}),
        json!({"method": "PATCH", "payload": payload}),
    ] {
        let multipart = custom_request(&server, &receiver, config).await;
        let content_type = multipart.header("content-type").unwrap();
        let boundary = content_type
            .split("boundary=")
            .nth(1)
            .unwrap_or_else(|| panic!("a boundary in {content_type}"));
        assert!(
            content_type.starts_with("multipart/form-data"),
            "{content_type}"
        );
        let text = multipart.text();
        assert!(text.contains(&format!("--{boundary}")), "{text}");
        assert!(
            text.contains("name=\"user\"") && text.contains("a\"b\\c"),
            "{text}"
        );
    }

    let body = custom_request(&server, &receiver, json!({"method": "POST",
        "headers": {"Content-Type": "application/json", "X-Who": "{{ entity.id }}"}, "headers_format": true,
        "body": "{\"message\": \"Admin account `{{ entity.username }}` {{ operation }}d\"}"})).await;
    assert_eq!(
        body.json(),
        json!({"message": "Admin account `a\"b\\c` created"}),
        "escaped as JSON"
    );
    assert_eq!(body.header("x-who").as_deref(), Some("42"));

    // lua-resty-template's escape: a backslash prints the tag as written.
    let escaped = custom_request(
        &server,
        &receiver,
        json!({"method": "POST",
        "headers": {"Content-Type": "text/plain"},
        "body": "\\{{ entity.username }} is {{ operation }}d"}),
    )
    .await;
    assert_eq!(escaped.text(), "{{ entity.username }} is created");

    let (status, refused) = server
        .post("/event-hooks", &json!({"source": "crud", "handler": "webhook-custom",
                                       "config": {"url": receiver.url("/"), "method": "POST", "body": "{{ broken"}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(refused["fields"]["config"]["body"].is_string(), "{refused}");
}

#[tokio::test]
async fn webhook_custom_runs_on_events_through_the_queue() {
    let server = loopback_server().await;
    let receiver = Receiver::start().await;
    server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "event": "consumers:create", "handler": "webhook-custom",
            "config": {"url": receiver.url("/slack"), "method": "POST",
                       "headers": {"Content-Type": "application/json"},
                       "body": "{\"text\": \"{{ entity.username }} was {{ operation }}d\"}"}}),
        )
        .await;
    server
        .create("/consumers", &json!({"username": "carol"}))
        .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json(), json!({"text": "carol was created"}));
    assert!(got[0].header("webhook-id").is_some());
}

#[tokio::test]
async fn retention_keeps_the_newest_finished_deliveries_while_the_server_runs() {
    let server =
        Server::start_with(Options::loopback().env("HOOKD_DELIVERY_RETENTION_COUNT", "3")).await;
    let receiver = Receiver::start().await;
    let hook = &one_at_a_time(&server, &receiver).await;
    for i in 0..8 {
        server
            .create("/consumers", &json!({"username": format!("user-{i}")}))
            .await;
    }
    eventually("every event delivered", || async {
        (events_only(receiver.received()).len() >= 8).then_some(())
    })
    .await;
    let kept = eventually("retention down to three", || async {
        let all = all_deliveries(&server, hook).await;
        (all.len() == 3).then_some(all)
    })
    .await;
    let mut names: Vec<&str> = kept
        .iter()
        .map(|d| d["event"]["data"]["entity"]["username"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["user-5", "user-6", "user-7"]);
}
