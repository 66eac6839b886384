//! `/event-hooks/sources`: the whole catalogue of Kong's table.

use crate::support::Server;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CRUD_FIELDS: [&str; 4] = ["operation", "entity", "old_entity", "schema"];
const ENTITIES: [&str; 10] = [
    "services",
    "routes",
    "consumers",
    "consumer_groups",
    "upstreams",
    "targets",
    "plugins",
    "certificates",
    "admins",
    "event_hooks",
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
