//! Nothing acknowledged is lost: every write and the events it causes are
//! on disk before the answer, survive kill -9, and reach their hooks in
//! the order they happened.

use crate::support::{Options, Server};
use hookd_model::Event;
use hookd_store::{Page, Store};
use hookd_testkit::eventually;
use hookd_testkit::receiver::{Received, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every event the store holds for these hooks, once: still in the outbox
/// (which keeps an event until each of its deliveries is stored), or
/// already in a stored delivery.
async fn events_in(store: &Store, hooks: &[&Value]) -> Vec<Event> {
    let mut events = store.outbox_events().await.unwrap();
    for hook in hooks {
        let id = hook["id"].as_str().unwrap().parse().unwrap();
        let page = Page {
            size: 100_000,
            offset: None,
        };
        events.extend(
            store
                .hook_deliveries(id, &page)
                .await
                .unwrap()
                .data
                .into_iter()
                .map(|d| d.event),
        );
    }
    let mut seen = std::collections::HashSet::new();
    events.retain(|e| seen.insert(e.id));
    events
}

fn names(events: &[&Event]) -> Vec<String> {
    let mut names: Vec<String> = events
        .iter()
        .map(|e| format!("{} {}", e.source, e.event))
        .collect();
    names.sort();
    names
}

async fn crud_and_dao_hooks(server: &Server, receiver: &Receiver) -> (Value, Value) {
    let crud = server
        .create("/event-hooks", &json!({"source": "crud", "handler": "webhook", "config": {"url": receiver.url("/crud")}}))
        .await;
    let dao = server
        .create("/event-hooks", &json!({"source": "dao:crud", "handler": "webhook", "config": {"url": receiver.url("/dao")}}))
        .await;
    (crud, dao)
}

#[tokio::test]
async fn kill_dash_nine_after_201_keeps_the_entity_and_its_events() {
    let mut server = Server::start_with(Options::loopback()).await;
    let mut receiver = Receiver::down().await;
    let (crud, dao) = crud_and_dao_hooks(&server, &receiver).await;
    let consumer = server
        .create("/consumers", &json!({"username": "zoe"}))
        .await;
    server.kill9();
    {
        let store = server.store().await;
        let id = consumer["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            store.get("consumers", id).await.unwrap(),
            Some(consumer.clone())
        );
        let events = events_in(&store, &[&crud, &dao]).await;
        let mine: Vec<&Event> = events
            .iter()
            .filter(|e| e.data["entity"]["id"] == consumer["id"])
            .collect();
        assert_eq!(
            names(&mine),
            ["crud consumers", "crud consumers:create", "dao:crud create"]
        );
    }
    receiver.resume().await;
    server.restart();
    assert_eq!(
        server.get("/consumers/zoe").await,
        (StatusCode::OK, consumer.clone())
    );
    let got = eventually("the consumer's three events", || async {
        let got: Vec<Received> = receiver
            .received()
            .into_iter()
            .filter(|r| r.json()["entity"]["id"] == consumer["id"])
            .collect();
        (got.len() >= 3).then_some(got)
    })
    .await;
    let mut seen: Vec<String> = got
        .iter()
        .map(|r| format!("{} {}", r.json()["source"], r.json()["event"]))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "\"crud\" \"consumers\"",
            "\"crud\" \"consumers:create\"",
            "\"dao:crud\" \"create\""
        ]
    );
}

/// The bodies received at `path` about services, once the marker's
/// event (written last) has arrived there too.
async fn about_services(receiver: &Receiver, marker: &Value, path: &str) -> Vec<Value> {
    eventually("the marker's events", || async {
        receiver
            .received()
            .iter()
            .any(|r| r.uri == path && r.json()["entity"]["id"] == marker["id"])
            .then_some(())
    })
    .await;
    receiver
        .received()
        .into_iter()
        .filter(|r| r.uri == path && r.json()["schema"] == "services")
        .map(|r| r.json())
        .collect()
}

#[tokio::test]
async fn each_write_causes_exactly_its_events_in_order() {
    // One worker: deliveries are attempted in the order of their events.
    let server = Server::start_with(Options::loopback().env("HOOKD_DELIVERY_WORKERS", "1")).await;
    let receiver = Receiver::start().await;
    crud_and_dao_hooks(&server, &receiver).await;
    let svc = server
        .create("/services", &json!({"name": "s", "host": "example.com"}))
        .await;
    let (status, updated) = server.patch("/services/s", &json!({"retries": 1})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.delete("/services/s").await.0, StatusCode::NO_CONTENT);
    // A refused write causes nothing.
    assert_eq!(
        server.post("/services", &json!({"name": "bad"})).await.0,
        StatusCode::BAD_REQUEST
    );
    let marker = server
        .create("/consumers", &json!({"username": "end-marker"}))
        .await;

    let crud = about_services(&receiver, &marker, "/crud").await;
    let seen: Vec<&str> = crud.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        seen,
        [
            "services",
            "services:create",
            "services",
            "services:update",
            "services",
            "services:delete"
        ]
    );
    let without_nulls = hookd_model::event::without_nulls;
    assert_eq!(
        crud[0],
        json!({"operation": "create", "entity": without_nulls(&svc), "schema": "services",
               "event": "services", "source": "crud"})
    );
    assert_eq!(
        crud[3],
        json!({"operation": "update", "entity": without_nulls(&updated), "old_entity": without_nulls(&svc),
               "schema": "services", "event": "services:update", "source": "crud"})
    );
    assert_eq!(crud[5]["entity"], without_nulls(&updated));
    assert!(crud[5].get("old_entity").is_none());
    let dao = about_services(&receiver, &marker, "/dao").await;
    let ops: Vec<&str> = dao.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(ops, ["create", "update", "delete"]);
}

#[tokio::test]
async fn concurrent_writes_all_land_with_their_events() {
    let mut server = Server::start_with(Options::loopback()).await;
    let receiver = Receiver::down().await;
    let hook = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "event": "consumers:create", "handler": "webhook",
                                         "config": {"url": receiver.url("/")}}),
        )
        .await;
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
    let store = server.store().await;
    for c in &created {
        let id = c["id"].as_str().unwrap().parse().unwrap();
        assert!(store.get("consumers", id).await.unwrap().is_some());
    }
    let events = events_in(&store, &[&hook]).await;
    let creates = events
        .iter()
        .filter(|e| e.source == "crud" && e.event == "consumers:create")
        .count();
    assert_eq!(creates, 64);
}
