//! Hostile bodies at the door (issue 11, items 1, 2, 10 and 11): nesting
//! past `body_max_depth` is refused with a 400 naming where, in every body
//! format and through every write (POST, PATCH, PUT, published events and
//! batches, `/test`), before it can crash the server or poison a record;
//! after each attack the server answers and a normal event is delivered.
//! Guest names follow Kong's rules and survive a URL path; a hook without
//! `config` has `{}`, as in Kong.

use crate::support::{Options, Server};
use hookd_testkit::eventually;
use hookd_testkit::guests;
use hookd_testkit::receiver::Receiver;
use reqwest::StatusCode;
use reqwest::multipart::Form;
use serde_json::{Value, json};

/// The default `body_max_depth`.
const MAX_DEPTH: usize = 32;

/// `{"a": {"a": ... 1}}`, `levels` objects deep.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!(1), |inner, _| json!({ "a": inner }))
}

/// A form field name of `segments` dotted segments after `head`.
fn dotted(head: &str, segments: usize) -> String {
    format!("{head}{}", ".a".repeat(segments))
}

/// Asserts a Kong schema violation about nesting, and returns its message.
fn too_deep(status: StatusCode, body: &Value) -> String {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], 2, "{body}");
    let message = body["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.ends_with(&format!(
            "nested too deeply: at most {MAX_DEPTH} levels of objects and arrays)"
        )),
        "{message}"
    );
    message
}

/// A webhook hook on consumer creation, to see that deliveries still flow.
async fn watch_consumers(server: &Server, receiver: &Receiver) -> Value {
    server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "event": "consumers:create", "handler": "webhook",
                    "config": {"url": receiver.url("/consumers")}}),
        )
        .await
}

/// The server answers, and a consumer created now reaches the receiver.
async fn still_delivers(server: &Server, receiver: &Receiver, username: &str) {
    let (status, _) = server.get("/").await;
    assert_eq!(status, StatusCode::OK, "the server answers");
    server
        .create("/consumers", &json!({ "username": username }))
        .await;
    eventually(&format!("the webhook of consumer {username}"), || async {
        receiver
            .received()
            .iter()
            .any(|r| r.json()["entity"]["username"] == username)
            .then_some(())
    })
    .await;
}

async fn send_form(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = server
        .http
        .request(method, server.url(path))
        .form(fields)
        .send()
        .await
        .expect("request to hookd");
    answer(response).await
}

async fn send_multipart(
    server: &Server,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Value) {
    let form = fields.iter().fold(Form::new(), |form, (k, v)| {
        form.text(k.to_string(), v.to_string())
    });
    let response = server
        .http
        .post(server.url(path))
        .multipart(form)
        .send()
        .await
        .expect("request to hookd");
    answer(response).await
}

async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("reading the answer");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn hostile_form_of_ten_thousand_segments_is_refused_in_every_format() {
    let server = Server::start_with(Options::loopback()).await;
    let receiver = Receiver::start().await;
    watch_consumers(&server, &receiver).await;
    let name = dotted("tags", 10_000);
    let (status, body) = server
        .post_form("/consumers", &[(name.as_str(), "1")])
        .await;
    let message = too_deep(status, &body);
    assert!(
        message.starts_with(&format!(
            "schema violation ({}: ",
            dotted("tags", MAX_DEPTH - 1)
        )),
        "the refusal names the field, cut at the limit: {message}"
    );
    let (status, body) = send_multipart(
        &server,
        "/consumers",
        &[("username", "m"), (name.as_str(), "1")],
    )
    .await;
    too_deep(status, &body);
    let consumer = server
        .create("/consumers", &json!({"username": "target"}))
        .await;
    let path = format!("/consumers/{}", consumer["id"].as_str().unwrap());
    for method in [reqwest::Method::PATCH, reqwest::Method::PUT] {
        let (status, body) = send_form(&server, method, &path, &[(name.as_str(), "1")]).await;
        too_deep(status, &body);
    }
    // Lists count as levels too: a name just at the limit, then `[]`.
    let list = format!("{}[]", dotted("tags", MAX_DEPTH - 1));
    let (status, body) = server
        .post_form("/consumers", &[("username", "l"), (list.as_str(), "x")])
        .await;
    too_deep(status, &body);
    still_delivers(&server, &receiver, "after-forms").await;
}

#[tokio::test]
async fn hostile_published_event_too_deep_to_store_is_refused_and_deliveries_flow() {
    let server = Server::start_with(Options::loopback()).await;
    let receiver = Receiver::start().await;
    watch_consumers(&server, &receiver).await;
    let published = server
        .create(
            "/event-hooks",
            &json!({"source": "service-protection", "handler": "webhook",
                    "config": {"url": receiver.url("/published")}}),
        )
        .await;
    let event = |data_extra: Value| {
        json!({"source": "service-protection", "event": "rate-limit-exceeded",
               "data": {"consumer": null, "ip": "203.0.113.9", "service": "s", "rate": 11,
                        "limit": 10, "window": "minute", "extra": data_extra}})
    };
    // `data` 126 levels deep: serde_json reads the body (127 levels), but
    // the outbox record around it would be 128, one more than reads back.
    let (status, body) = server.post("/events", &event(nested(125))).await;
    let message = too_deep(status, &body);
    assert!(
        message.starts_with("schema violation (data.extra.a.a."),
        "{message}"
    );
    // One deep event in a batch refuses the batch, naming its position.
    let batch = json!([event(json!(1)), event(nested(100))]);
    let (status, body) = server.post("/events", &batch).await;
    let message = too_deep(status, &body);
    assert!(
        message.starts_with("schema violation (2.data.extra."),
        "{message}"
    );
    // Just within the limit is accepted and delivered.
    let deepest = nested(MAX_DEPTH - 2);
    let (status, body) = server.post("/events", &event(deepest.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let delivery = server
        .newest_delivery(&published, "a recorded delivery", |d| {
            d["state"] == "succeeded"
        })
        .await;
    assert_eq!(delivery["event"]["data"]["extra"], deepest);
    still_delivers(&server, &receiver, "after-events").await;
    let (status, _) = server.get("/event-hooks").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn hostile_plugin_config_too_deep_is_refused_through_post_patch_and_put() {
    let server = Server::start_with(Options::loopback()).await;
    let receiver = Receiver::start().await;
    watch_consumers(&server, &receiver).await;
    let deep_config = dotted("config", 200);
    let (status, body) = server
        .post_form(
            "/plugins",
            &[("name", "rate-limiting"), (deep_config.as_str(), "1")],
        )
        .await;
    too_deep(status, &body);
    let plugin = server
        .create(
            "/plugins",
            &json!({"name": "rate-limiting", "config": {"minute": 5}}),
        )
        .await;
    let path = format!("/plugins/{}", plugin["id"].as_str().unwrap());
    // JSON under serde_json's own limit, over hookd's: accepted by serde_json,
    // it would have made records that no longer read back.
    let deep = json!({"name": "rate-limiting", "config": nested(120)});
    for (status, body) in [
        server.post("/plugins", &deep).await,
        server.patch(&path, &deep).await,
        server.put(&path, &deep).await,
    ] {
        too_deep(status, &body);
    }
    for method in [reqwest::Method::PATCH, reqwest::Method::PUT] {
        let (status, body) = send_form(
            &server,
            method,
            &path,
            &[("name", "rate-limiting"), (deep_config.as_str(), "1")],
        )
        .await;
        too_deep(status, &body);
    }
    let (status, body) = send_multipart(
        &server,
        "/plugins",
        &[("name", "rate-limiting"), (deep_config.as_str(), "1")],
    )
    .await;
    too_deep(status, &body);
    let (status, body) = server.get("/plugins").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1));
    still_delivers(&server, &receiver, "after-plugins").await;
}

#[tokio::test]
async fn hostile_hook_bodies_too_deep_are_refused() {
    let server = Server::start_with(Options::loopback()).await;
    let receiver = Receiver::start().await;
    let hook = watch_consumers(&server, &receiver).await;
    let path = format!("/event-hooks/{}", hook["id"].as_str().unwrap());
    let deep = json!({"config": {"headers": nested(120)}});
    for (status, body) in [
        server.post("/event-hooks", &deep).await,
        server.patch(&path, &deep).await,
        server.put(&path, &deep).await,
        server.post(&format!("{path}/test"), &nested(120)).await,
    ] {
        too_deep(status, &body);
    }
    let headers = dotted("config.headers", 10_000);
    let (status, body) = send_form(
        &server,
        reqwest::Method::PATCH,
        &path,
        &[(headers.as_str(), "1")],
    )
    .await;
    too_deep(status, &body);
    still_delivers(&server, &receiver, "after-hooks").await;
}

#[tokio::test]
async fn hostile_guest_names_that_a_path_would_resolve_away_are_refused() {
    let server = Server::start_with(Options::loopback()).await;
    for name in [".", "..", "...", "%2e%2e", "caf%C3%A9"] {
        let (status, body) = server
            .post_raw(
                &format!("/guests?name={name}"),
                "application/wasm",
                guests::bytes("noop"),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert!(
            body["fields"]["name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("invalid value"),
            "{body}"
        );
    }
    let (status, body) = crate::lambda::upload_form(&server, "..", "noop").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["fields"]["name"],
        "invalid value '..': a name may not be made of dots only"
    );
    // Dots among other characters are a name like any other, and reachable.
    let (status, body) = server
        .post_raw(
            "/guests?name=..noop.v1~",
            "application/wasm",
            guests::bytes("noop"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let bytes = server
        .http
        .get(server.url("/guests/..noop.v1~/wasm"))
        .send()
        .await
        .unwrap();
    assert_eq!(bytes.status(), StatusCode::OK);
    assert_eq!(bytes.bytes().await.unwrap().to_vec(), guests::bytes("noop"));
    let (status, listed) = server.get("/guests").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn hostile_hook_without_config_has_an_empty_one_as_in_kong() {
    let server = Server::start_with(Options::loopback()).await;
    // Kong's own spec (spec/02-integration/04-admin_api/*event_hooks*).
    let log = server
        .create(
            "/event-hooks",
            &json!({"source": "dao:crud", "event": "create", "handler": "log"}),
        )
        .await;
    assert_eq!(log["config"], json!({}));
    let (status, body) = server
        .post(
            "/event-hooks",
            &json!({"source": "crud", "handler": "webhook"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["message"],
        "schema violation (config.url: required field missing)"
    );
    let id = uuid::Uuid::new_v4();
    let (status, body) = server
        .put(
            &format!("/event-hooks/{id}"),
            &json!({"source": "crud", "handler": "log"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["config"], json!({}));
    let (status, body) = server
        .put(
            &format!("/event-hooks/{id}"),
            &json!({"source": "crud", "handler": "webhook"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["fields"],
        json!({"config": {"url": "required field missing"}})
    );
    // The form way, as Kong's curl examples send it.
    let (status, body) = server
        .post_form("/event-hooks", &[("source", "crud"), ("handler", "log")])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
