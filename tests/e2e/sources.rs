//! `/event-hooks/sources`: the whole catalogue of Kong's table.

use crate::support::{Options, Server};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CRUD_FIELDS: [&str; 4] = ["operation", "entity", "old_entity", "schema"];
/// Kong's crud entities, alphabetically: the catalogue is checked as a set.
const ENTITIES: [&str; 10] = [
    "admins",
    "certificates",
    "consumer_groups",
    "consumers",
    "event_hooks",
    "plugins",
    "routes",
    "services",
    "targets",
    "upstreams",
];

#[tokio::test]
async fn the_catalogue_has_every_source_of_kongs_table() {
    let server = Server::start().await;
    let (status, all) = server.get("/event-hooks/sources").await;
    assert_eq!(status, StatusCode::OK);
    let data = all["data"].as_object().unwrap();
    let mut sources: Vec<&str> = data.keys().map(String::as_str).collect();
    sources.sort();
    assert_eq!(
        sources,
        [
            "ai-rate-limiting-advanced",
            "balancer",
            "crud",
            "dao:crud",
            "hookd",
            "oas-validation",
            "rate-limiting-advanced",
            "service-protection"
        ]
    );

    let crud = data["crud"].as_object().unwrap();
    assert_eq!(crud.len(), ENTITIES.len() * 4);
    for entity in ENTITIES {
        for event in [
            entity.to_string(),
            format!("{entity}:create"),
            format!("{entity}:update"),
            format!("{entity}:delete"),
        ] {
            assert_eq!(crud[&event], json!({"fields": CRUD_FIELDS}), "crud {event}");
        }
    }
    for op in ["create", "update", "delete"] {
        assert_eq!(data["dao:crud"][op], json!({"fields": CRUD_FIELDS}));
    }
    assert_eq!(
        data["balancer"],
        json!({"health": {"fields": ["upstream_id", "ip", "port", "hostname", "health"]}})
    );
    let rate_limit = json!({"rate-limit-exceeded": {
        "fields": ["consumer", "ip", "service", "rate", "limit", "window"],
        "unique": ["consumer", "ip", "service"],
        "description": "Run an event when a rate limit has been exceeded"}});
    assert_eq!(data["rate-limiting-advanced"], rate_limit);
    assert_eq!(data["ai-rate-limiting-advanced"], rate_limit);
    assert_eq!(
        data["service-protection"],
        json!({"rate-limit-exceeded": {"fields": ["service", "rate", "limit", "window"],
               "unique": ["service"], "description": "Run an event when a rate limit has been exceeded"}})
    );
    assert_eq!(
        data["oas-validation"],
        json!({"validation-failed": {"fields": ["consumer", "ip", "service", "err"],
               "unique": ["consumer", "ip", "service"], "description": "Run an event when oas validation fails"}})
    );
}

#[tokio::test]
async fn one_source_and_one_event() {
    let server = Server::start().await;
    assert_eq!(
        server.get("/event-hooks/sources/balancer").await,
        (
            StatusCode::OK,
            json!({"data": {"health": {"fields": ["upstream_id", "ip", "port", "hostname", "health"]}}})
        )
    );
    assert_eq!(
        server
            .get("/event-hooks/sources/crud/consumers:create")
            .await,
        (StatusCode::OK, json!({"data": {"fields": CRUD_FIELDS}}))
    );
    let not_found = (StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
    assert_eq!(server.get("/event-hooks/sources/nope").await, not_found);
    assert_eq!(
        server.get("/event-hooks/sources/crud/nope").await,
        not_found
    );
    let (_, all) = server.get("/event-hooks/sources/").await;
    assert!(
        all["data"]["crud"].is_object(),
        "trailing slash works: {all}"
    );
    let _: Value = all;
}

const TOKEN: &str = "examples-token";

/// A request with the bootstrap admin token.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = server
        .http
        .request(method, server.url(path))
        .header("Kong-Admin-Token", TOKEN);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn example(server: &Server, source: &str, event: &str) -> Value {
    let path = format!("/event-hooks/sources/{source}/{event}/example");
    let (status, example) = call(server, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {example}");
    let mut members: Vec<&String> = example.as_object().unwrap().keys().collect();
    members.sort();
    assert_eq!(members, ["data", "event", "source"], "{path}");
    assert_eq!(
        (&example["source"], &example["event"]),
        (&json!(source), &json!(event))
    );
    example["data"].clone()
}

#[tokio::test]
async fn every_source_has_examples_as_handlers_receive_them() {
    let custom = r#"{payments = {charge-failed = {fields = ["customer", "amount"]}}}"#;
    let server = Server::start_with(
        Options::default()
            .env("HOOKD_ENFORCE_RBAC", "true")
            .env("HOOKD_ADMIN_TOKEN", TOKEN)
            .env("HOOKD_CUSTOM_SOURCES", custom),
    )
    .await;
    // A read like any other: it needs a token once RBAC is enforced.
    let (status, _) = server
        .get("/event-hooks/sources/crud/consumers:create/example")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let created = example(&server, "crud", "consumers:create").await;
    assert_eq!(
        (&created["operation"], &created["schema"]),
        (&json!("create"), &json!("consumers"))
    );
    assert!(created.get("old_entity").is_none(), "{created}");
    // The example entity has every field a stored consumer has.
    let (status, alice) = call(
        &server,
        Method::POST,
        "/consumers",
        Some(&json!({"username": "alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&created["entity"]), keys(&alice));

    let updated = example(&server, "dao:crud", "update").await;
    assert_eq!(updated["operation"], "update");
    assert_eq!(updated["old_entity"]["id"], updated["entity"]["id"]);

    let (_, info) = call(
        &server,
        Method::GET,
        "/event-hooks/sources/balancer/health",
        None,
    )
    .await;
    let health = example(&server, "balancer", "health").await;
    let mut fields: Vec<String> = serde_json::from_value(info["data"]["fields"].clone()).unwrap();
    fields.sort();
    assert_eq!(keys(&health), fields);
    assert!(
        health["port"].is_u64() && health["upstream_id"].is_string(),
        "{health}"
    );

    // A published example is each field as a placeholder, and is accepted
    // as it is by POST /events.
    for (source, event, data) in [
        (
            "rate-limiting-advanced",
            "rate-limit-exceeded",
            json!({"consumer": "<consumer>", "ip": "<ip>", "service": "<service>",
                   "rate": "<rate>", "limit": "<limit>", "window": "<window>"}),
        ),
        (
            "payments",
            "charge-failed",
            json!({"customer": "<customer>", "amount": "<amount>"}),
        ),
    ] {
        assert_eq!(example(&server, source, event).await, data);
        let path = format!("/event-hooks/sources/{source}/{event}/example");
        let (_, whole) = call(&server, Method::GET, &path, None).await;
        let (status, answer) = call(&server, Method::POST, "/events", Some(&whole)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{source} {event}: {answer}");
    }

    let not_found = (StatusCode::NOT_FOUND, json!({"message": "Not found"}));
    for path in [
        "/event-hooks/sources/nope/health/example",
        "/event-hooks/sources/crud/nope/example",
        "/event-hooks/sources/balancer/consumers:create/example",
    ] {
        assert_eq!(
            call(&server, Method::GET, path, None).await,
            not_found,
            "{path}"
        );
    }
    // Kong's own answer for the event is unchanged beside it.
    assert_eq!(
        call(
            &server,
            Method::GET,
            "/event-hooks/sources/payments/charge-failed",
            None
        )
        .await,
        (
            StatusCode::OK,
            json!({"data": {"fields": ["customer", "amount"]}})
        )
    );
}
