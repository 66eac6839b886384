//! Nothing acknowledged is lost: every write and the events it causes are
//! on disk before the answer, and survive kill -9.

use crate::support::Server;
use hookd_store::Store;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn kill_dash_nine_after_201_keeps_the_entity_and_its_events() {
    let mut server = Server::start().await;
    let consumer = server
        .create("/consumers", &json!({"username": "zoe"}))
        .await;
    server.kill9();
    {
        let store = Store::open(&server.data_dir()).expect("reopening the store");
        let id = consumer["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(store.get("consumers", id).unwrap(), Some(consumer.clone()));
        let events: Vec<(String, String)> = store
            .outbox_events()
            .unwrap()
            .into_iter()
            .filter(|e| e.data["entity"]["id"] == consumer["id"])
            .map(|e| (e.source, e.event))
            .collect();
        assert_eq!(
            events,
            [
                ("crud".to_string(), "consumers".to_string()),
                ("crud".to_string(), "consumers:create".to_string()),
                ("dao:crud".to_string(), "create".to_string())
            ]
        );
    }
    server.restart();
    assert_eq!(
        server.get("/consumers/zoe").await,
        (StatusCode::OK, consumer)
    );
}

#[tokio::test]
async fn the_outbox_holds_exactly_each_writes_events_in_order() {
    let mut server = Server::start().await;
    let svc = server
        .create("/services", &json!({"name": "s", "host": "example.com"}))
        .await;
    let (status, updated) = server.patch("/services/s", &json!({"retries": 1})).await;
    assert_eq!(status, StatusCode::OK);
    let hook = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "handler": "log", "config": {}}),
        )
        .await;
    assert_eq!(server.delete("/services/s").await.0, StatusCode::NO_CONTENT);
    // A refused write adds nothing.
    assert_eq!(
        server.post("/services", &json!({"name": "bad"})).await.0,
        StatusCode::BAD_REQUEST
    );
    server.terminate();

    let store = Store::open(&server.data_dir()).unwrap();
    let events = store.outbox_events().unwrap();
    let seen: Vec<String> = events
        .iter()
        .map(|e| format!("{} {}", e.source, e.event))
        .collect();
    assert_eq!(
        seen,
        [
            "crud services",
            "crud services:create",
            "dao:crud create",
            "crud services",
            "crud services:update",
            "dao:crud update",
            "crud event_hooks",
            "crud event_hooks:create",
            "dao:crud create",
            "crud services",
            "crud services:delete",
            "dao:crud delete",
        ]
    );
    let without_nulls = |v: &serde_json::Value| hookd_model::event::without_nulls(v);
    assert_eq!(
        events[0].data,
        json!({"operation": "create", "entity": without_nulls(&svc), "schema": "services"})
    );
    assert_eq!(
        events[4].data,
        json!({"operation": "update", "entity": without_nulls(&updated), "old_entity": without_nulls(&svc), "schema": "services"})
    );
    assert_eq!(events[7].data["entity"]["id"], hook["id"]);
    assert_eq!(
        events[10].data,
        json!({"operation": "delete", "entity": without_nulls(&updated), "schema": "services"})
    );
}

#[tokio::test]
async fn concurrent_writes_all_land() {
    let mut server = Server::start().await;
    let writes = (0..64).map(|i| {
        let server = &server;
        async move {
            server
                .create("/consumers", &json!({"username": format!("user-{i}")}))
                .await
        }
    });
    let created = futures::future::join_all(writes).await;
    server.kill9();
    let store = Store::open(&server.data_dir()).unwrap();
    for c in &created {
        let id = c["id"].as_str().unwrap().parse().unwrap();
        assert!(store.get("consumers", id).unwrap().is_some());
    }
    assert_eq!(store.outbox_events().unwrap().len(), 64 * 3);
}
