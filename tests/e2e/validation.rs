//! Bad input of every kind: a 4xx in Kong's shape naming what is wrong,
//! never a 5xx, never a half-written record.

use crate::support::{Options, Server};
use hookd_testkit::eventually;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Asserts a Kong schema violation naming these fields.
fn assert_schema_violation(answer: &(StatusCode, Value), fields: Value) {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], 2, "{body}");
    assert_eq!(body["name"], "schema violation", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("schema violation"),
        "{body}"
    );
    assert_eq!(body["fields"], fields, "{body}");
}

async fn assert_nothing_written(server: &Server) {
    assert_eq!(server.get("/event-hooks").await.1["data"], json!([]));
    assert_eq!(server.get("/consumers").await.1["data"], json!([]));
    assert_eq!(server.get("/status").await.1["outbox"]["pending"], 0);
}

#[tokio::test]
async fn malformed_and_unreadable_bodies() {
    let server = Server::start().await;
    let (status, body) = server
        .post_raw(
            "/event-hooks",
            "application/json",
            b"{\"source\": ".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Cannot parse JSON body"),
        "{body}"
    );
    let (status, body) = server
        .post_raw("/event-hooks", "text/plain", b"source=crud".to_vec())
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        body["message"],
        "unsupported content type 'text/plain': send application/json, \
         application/x-www-form-urlencoded, multipart/form-data"
    );
    assert_eq!(body["accepted"][0], "application/json");
    assert_schema_violation(
        &server
            .post("/event-hooks", &json!(["not", "an", "object"]))
            .await,
        json!({"@entity": ["expected a record"]}),
    );
    assert_nothing_written(&server).await;
}

#[tokio::test]
async fn bodies_over_the_size_limit() {
    let server = Server::start_with(Options::default().env("HOOKD_BODY_LIMIT", "1024")).await;
    let big = json!({"source": "crud", "handler": "log", "config": {}, "pad": "x".repeat(2000)});
    let (status, body) = server.post("/event-hooks", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body["message"],
        "request body too large (limit: 1024 bytes)"
    );
    assert_nothing_written(&server).await;
}

#[tokio::test]
async fn missing_fields_and_wrong_types() {
    let server = Server::start().await;
    assert_schema_violation(
        &server
            .post(
                "/event-hooks",
                &json!({"source": "crud", "handler": "webhook", "config": {}}),
            )
            .await,
        json!({"config": {"url": "required field missing"}}),
    );
    let (_, body) = server
        .post(
            "/event-hooks",
            &json!({"source": "crud", "handler": "webhook", "config": {}}),
        )
        .await;
    assert_eq!(
        body["message"],
        "schema violation (config.url: required field missing)"
    );
    assert_schema_violation(
        &server.post("/event-hooks", &json!({})).await,
        json!({"source": "required field missing", "handler": "required field missing"}),
    );
    assert_schema_violation(
        &server
            .post("/event-hooks", &json!({"source": "crud", "handler": "webhook", "on_change": "yes", "snooze": 1.5,
                                          "config": {"url": 5, "ssl_verify": "no", "headers": {"a": 1}}}))
            .await,
        json!({"on_change": "expected a boolean", "snooze": "expected an integer",
               "config": {"url": "expected a string", "ssl_verify": "expected a boolean", "headers": {"a": "expected a string"}}}),
    );
    assert_schema_violation(
        &server
            .post(
                "/event-hooks",
                &json!({"source": "crud", "handler": "webhook", "config": {"url": "ftp://x/"}}),
            )
            .await,
        json!({"config": {"url": "missing host in url or scheme is not http or https"}}),
    );
    assert_schema_violation(
        &server
            .post(
                "/event-hooks",
                &json!({"source": "crud", "handler": "lambda", "config": {"functions": []}}),
            )
            .await,
        json!({"config": {"functions": "length must be at least 1"}}),
    );
    assert_nothing_written(&server).await;
}

#[tokio::test]
async fn unknown_source_event_handler_and_fields() {
    let server = Server::start().await;
    assert_schema_violation(
        &server
            .post(
                "/event-hooks",
                &json!({"source": "kafka", "handler": "log", "config": {}}),
            )
            .await,
        json!({"source": "source 'kafka' is not registered"}),
    );
    assert_schema_violation(
        &server
            .post(
                "/event-hooks",
                &json!({"source": "crud", "event": "widgets", "handler": "log", "config": {}}),
            )
            .await,
        json!({"event": "source 'crud' has no 'widgets' event"}),
    );
    assert_schema_violation(
        &server
            .post(
                "/event-hooks",
                &json!({"source": "crud", "handler": "email", "config": {}}),
            )
            .await,
        json!({"handler": "expected one of: webhook, webhook-custom, log, lambda"}),
    );
    assert_schema_violation(
        &server
            .post(
                "/event-hooks",
                &json!({"source": "crud", "handler": "log", "config": {}, "colour": "red"}),
            )
            .await,
        json!({"colour": "unknown field"}),
    );
    assert_schema_violation(
        &server.post("/event-hooks", &json!({"source": "crud", "handler": "webhook", "config": {"url": "http://x/", "verify": true}})).await,
        json!({"config": {"verify": "unknown field"}}),
    );
    assert_schema_violation(
        &server
            .post("/consumers", &json!({"username": "a", "nickname": "b"}))
            .await,
        json!({"nickname": "unknown field"}),
    );
    assert_nothing_written(&server).await;
}

#[tokio::test]
async fn bad_uuids_in_paths_and_bodies() {
    let server = Server::start().await;
    let (status, body) = server.get("/event-hooks/not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"code": 1, "name": "invalid primary key", "message": "invalid primary key: '{id=\"not-a-uuid\"}'",
               "fields": {"id": "expected a valid UUID"}})
    );
    assert_eq!(
        server.patch("/event-hooks/nope", &json!({})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        server.delete("/plugins/nope").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_schema_violation(
        &server
            .post(
                "/event-hooks",
                &json!({"id": "123", "source": "crud", "handler": "log", "config": {}}),
            )
            .await,
        json!({"id": "expected a valid UUID"}),
    );
    assert_schema_violation(
        &server
            .post(
                "/routes",
                &json!({"paths": ["/"], "service": {"id": "nope"}}),
            )
            .await,
        json!({"service": {"id": "expected a valid UUID"}}),
    );
    // A name that is not a uuid is a lookup by name where Kong allows it.
    assert_eq!(
        server.get("/consumers/nobody").await,
        (StatusCode::NOT_FOUND, json!({"message": "Not found"}))
    );
    assert_nothing_written(&server).await;
}

#[tokio::test]
async fn duplicate_unique_names_and_dangling_foreign_keys() {
    let server = Server::start().await;
    let consumer = server
        .create("/consumers", &json!({"username": "alice"}))
        .await;
    // The dispatcher drains the outbox as it likes: count what it has
    // emitted once it is empty, before and after the refused writes.
    let emitted = || async {
        eventually("an empty outbox", || async {
            (server.get("/status").await.1["outbox"]["pending"] == 0).then_some(())
        })
        .await;
        let metrics = server.metrics().await;
        metrics
            .lines()
            .filter(|l| l.starts_with("hookd_events_total{source=\"crud\""))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let before = emitted().await;
    assert!(!before.is_empty());
    let (status, body) = server
        .post("/consumers", &json!({"username": "alice"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        json!({"code": 5, "name": "unique constraint violation",
               "message": "UNIQUE violation detected on '{username=\"alice\"}'", "fields": {"username": "alice"}})
    );
    let ghost = uuid::Uuid::new_v4();
    let (status, body) = server
        .post(
            "/routes",
            &json!({"paths": ["/"], "service": {"id": ghost}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"code": 4, "name": "foreign key violation",
               "message": format!("the foreign key '{{id=\"{ghost}\"}}' does not reference an existing 'services' entity."),
               "fields": {"service": {"id": ghost}}})
    );
    let (status, body) = server
        .post(
            &format!("/upstreams/{ghost}/targets"),
            &json!({"target": "a:1"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"message": "Not found"}))
    );
    // Nothing of the refused writes was stored or emitted.
    assert_eq!(server.get("/consumers").await.1["data"], json!([consumer]));
    assert_eq!(server.get("/routes").await.1["data"], json!([]));
    assert_eq!(emitted().await, before);
}

#[tokio::test]
async fn pagination_parameters() {
    let server = Server::start().await;
    for size in ["0", "1001", "ten"] {
        let (status, body) = server.get(&format!("/event-hooks?size={size}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], 9, "{body}");
        assert_eq!(
            body["fields"]["size"],
            "size must be an integer between 1 and 1000"
        );
    }
    let (status, body) = server.get("/services?offset=garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 7, "{body}");
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let server = Server::start().await;
    assert_eq!(
        server.get("/no/such/thing").await,
        (StatusCode::NOT_FOUND, json!({"message": "Not found"}))
    );
    let (status, body) = server.delete("/event-hooks").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body, json!({"message": "Method not allowed"}));
}
