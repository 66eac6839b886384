//! The gateway entities: Kong's Admin API shape for each, by id and by
//! name, nested routes, foreign keys, restricted and cascading deletes.

use crate::support::Server;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

/// Create, get by id and by name, patch, put, list, delete: the cycle every
/// entity offers.
async fn full_cycle(
    server: &Server,
    path: &str,
    create: Value,
    name_field: Option<&str>,
    patch: Value,
) {
    let mut created = server.create(path, &create).await;
    if path == "/admins" {
        // The admin's token is shown once, at creation, and never again.
        assert!(created["token"].as_str().is_some_and(|t| t.len() > 32));
        created.as_object_mut().unwrap().remove("token");
    }
    let id = created["id"].as_str().unwrap().to_string();
    assert!(created["created_at"].as_i64().unwrap() > 0);
    let by_id = format!("{path}/{id}");
    assert_eq!(server.get(&by_id).await, (StatusCode::OK, created.clone()));
    if let Some(field) = name_field {
        let name = created[field].as_str().unwrap();
        assert_eq!(
            server.get(&format!("{path}/{name}")).await,
            (StatusCode::OK, created.clone())
        );
    }
    let (status, patched) = server.patch(&by_id, &patch).await;
    assert_eq!(status, StatusCode::OK, "{path}: {patched}");
    for (k, v) in patch.as_object().unwrap() {
        assert_eq!(&patched[k], v, "{path}.{k}");
    }
    assert_eq!(patched["created_at"], created["created_at"]);
    let (status, put) = server.put(&by_id, &create).await;
    assert_eq!(status, StatusCode::OK, "{path}: {put}");
    assert_eq!(put["id"], created["id"]);
    let (_, list) = server.get(path).await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == created["id"]),
        "{path} listed"
    );
    assert_eq!(server.delete(&by_id).await.0, StatusCode::NO_CONTENT);
    assert_eq!(server.get(&by_id).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_entity_has_kongs_crud_cycle() {
    let server = Server::start().await;
    full_cycle(
        &server,
        "/services",
        json!({"name": "billing", "url": "http://billing.internal:8080/v1"}),
        Some("name"),
        json!({"retries": 2}),
    )
    .await;
    full_cycle(
        &server,
        "/routes",
        json!({"name": "r1", "paths": ["/r1"]}),
        Some("name"),
        json!({"strip_path": false}),
    )
    .await;
    full_cycle(
        &server,
        "/consumers",
        json!({"username": "bob", "custom_id": "b-1"}),
        Some("username"),
        json!({"tags": ["vip"]}),
    )
    .await;
    full_cycle(
        &server,
        "/consumer_groups",
        json!({"name": "gold"}),
        Some("name"),
        json!({"tags": ["t"]}),
    )
    .await;
    full_cycle(
        &server,
        "/upstreams",
        json!({"name": "backend"}),
        Some("name"),
        json!({"slots": 100}),
    )
    .await;
    full_cycle(
        &server,
        "/plugins",
        json!({"name": "rate-limiting", "config": {"minute": 5}}),
        None,
        json!({"enabled": false}),
    )
    .await;
    full_cycle(
        &server,
        "/certificates",
        json!({"cert": CERT, "key": KEY}),
        None,
        json!({"tags": ["edge"]}),
    )
    .await;
    full_cycle(
        &server,
        "/admins",
        json!({"username": "root", "email": "root@example.com"}),
        Some("username"),
        json!({"role": "super-admin"}),
    )
    .await;
}

#[tokio::test]
async fn services_take_kongs_defaults_and_url_shorthand() {
    let server = Server::start().await;
    let svc = server
        .create(
            "/services",
            &json!({"name": "s", "url": "https://example.com/api"}),
        )
        .await;
    for (k, v) in [
        ("protocol", json!("https")),
        ("host", json!("example.com")),
        ("port", json!(443)),
        ("path", json!("/api")),
        ("retries", json!(5)),
        ("connect_timeout", json!(60000)),
        ("enabled", json!(true)),
        ("tags", Value::Null),
    ] {
        assert_eq!(svc[k], v, "{k}");
    }
    let (status, body) = server
        .post(
            "/services",
            &json!({"name": "t", "protocol": "gopher", "host": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["fields"]["protocol"]
            .as_str()
            .unwrap()
            .split(':')
            .next(),
        Some("expected one of")
    );
}

#[tokio::test]
async fn routes_nest_under_services_and_restrict_their_delete() {
    let server = Server::start().await;
    let svc = server
        .create("/services", &json!({"name": "api", "host": "example.com"}))
        .await;
    let route = server
        .create(
            "/services/api/routes",
            &json!({"name": "r", "paths": ["/x"]}),
        )
        .await;
    assert_eq!(route["service"], json!({"id": svc["id"]}));
    let (_, listed) = server.get("/services/api/routes").await;
    assert_eq!(listed["data"], json!([route.clone()]));
    assert_eq!(
        server.get("/routes/r/service").await,
        (StatusCode::OK, svc.clone())
    );
    let (status, body) = server.delete("/services/api").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"code": 4, "name": "foreign key violation",
               "message": "an existing 'routes' entity references this 'services' entity",
               "fields": {"@referenced_by": "routes"}})
    );
    assert_eq!(server.delete("/routes/r").await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        server.delete("/services/api").await.0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = server.post("/routes", &json!({"name": "nothing"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("must set one of 'methods', 'hosts', 'headers', 'paths'"),
        "{body}"
    );
}

#[tokio::test]
async fn targets_live_under_upstreams_and_cascade() {
    let server = Server::start().await;
    let up = server
        .create("/upstreams", &json!({"name": "backend"}))
        .await;
    assert_eq!(
        up["healthchecks"]["active"]["healthy"]["http_statuses"],
        json!([200, 302])
    );
    let target = server
        .create("/upstreams/backend/targets", &json!({"target": "10.0.0.1"}))
        .await;
    assert_eq!(target["target"], "10.0.0.1:8000");
    assert_eq!(target["weight"], 100);
    assert_eq!(target["upstream"], json!({"id": up["id"]}));
    assert_eq!(
        server.get("/upstreams/backend/targets/10.0.0.1:8000").await,
        (StatusCode::OK, target.clone())
    );
    let (status, body) = server
        .post(
            "/upstreams/backend/targets",
            &json!({"target": "10.0.0.1:8000"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let other = server.create("/upstreams", &json!({"name": "other"})).await;
    // The same address under another upstream is a different target.
    server
        .create(
            "/upstreams/other/targets",
            &json!({"target": "10.0.0.1:8000"}),
        )
        .await;
    let tid = target["id"].as_str().unwrap();
    assert_eq!(
        server
            .get(&format!("/upstreams/other/targets/{tid}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.delete("/upstreams/backend").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        server
            .get(&format!("/upstreams/backend/targets/{tid}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/upstreams/other/targets").await.1["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let _ = other;
}

#[tokio::test]
async fn plugins_nest_under_their_scopes_and_cascade() {
    let server = Server::start().await;
    server
        .create("/consumers", &json!({"username": "carol"}))
        .await;
    let plugin = server
        .create("/consumers/carol/plugins", &json!({"name": "key-auth"}))
        .await;
    assert_eq!(plugin["config"], json!({}));
    assert_eq!(
        plugin["protocols"],
        json!(["grpc", "grpcs", "http", "https"])
    );
    // One plugin of a name per scope, as Kong's cache key says.
    let (status, _) = server
        .post("/consumers/carol/plugins", &json!({"name": "key-auth"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    server
        .create("/plugins", &json!({"name": "key-auth"}))
        .await;
    assert_eq!(
        server.delete("/consumers/carol").await.0,
        StatusCode::NO_CONTENT
    );
    let pid = plugin["id"].as_str().unwrap();
    assert_eq!(
        server.get(&format!("/plugins/{pid}")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn put_by_name_creates_then_replaces() {
    let server = Server::start().await;
    let (status, created) = server
        .put("/consumers/dave", &json!({"custom_id": "d"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["username"], "dave");
    let (status, replaced) = server.put("/consumers/dave", &json!({"tags": ["x"]})).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["id"], created["id"]);
    assert_eq!(replaced["custom_id"], Value::Null);
    assert_eq!(replaced["tags"], json!(["x"]));
}
