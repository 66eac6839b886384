//! Entities: unique values, foreign keys, cascades, events, listings.

use crate::entities::id_of;
use crate::{ChildrenOf, Error, Page, Store};
use serde_json::{Value, json};
use uuid::Uuid;

fn service(name: &str) -> Value {
    json!({"id": Uuid::new_v4().to_string(), "name": name, "host": "example.com"})
}

fn route(service: &Value) -> Value {
    json!({"id": Uuid::new_v4().to_string(), "paths": ["/"], "service": {"id": service["id"]}})
}

pub(super) async fn insert_writes_entity_and_its_three_events_in_order(store: Store) {
    let s = store.insert("services", service("a"), 7).await.unwrap();
    assert_eq!(
        store.get("services", id_of(&s).unwrap()).await.unwrap(),
        Some(s.clone())
    );
    let events = store.outbox_events().await.unwrap();
    let names: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.source.clone(), e.event.clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("crud".into(), "services".into()),
            ("crud".into(), "services:create".into()),
            ("dao:crud".into(), "create".into())
        ]
    );
    assert_eq!(events[0].data["entity"], s);
    assert_eq!(events[0].at_ms, 7);
}

pub(super) async fn unique_values_are_refused_and_released(store: Store) {
    let first = store.insert("services", service("a"), 0).await.unwrap();
    let err = store.insert("services", service("a"), 0).await.unwrap_err();
    assert!(
        matches!(&err, Error::Unique { shown, .. } if shown == "{name=\"a\"}"),
        "{err:?}"
    );
    let mut renamed = first.clone();
    renamed["name"] = json!("b");
    store.update("services", renamed, 0).await.unwrap();
    store.insert("services", service("a"), 0).await.unwrap();
    assert_eq!(
        store
            .find_unique("services", "name", &json!("b"))
            .await
            .unwrap()
            .unwrap()["id"],
        first["id"]
    );
    // Failed writes leave no events behind.
    assert_eq!(store.outbox_events().await.unwrap().len(), 9);
}

pub(super) async fn foreign_keys_must_exist_and_restrict_deletes(store: Store) {
    let s = store.insert("services", service("a"), 0).await.unwrap();
    let dangling = route(&service("ghost"));
    assert!(matches!(
        store.insert("routes", dangling, 0).await.unwrap_err(),
        Error::ForeignKey { .. }
    ));
    let r = store.insert("routes", route(&s), 0).await.unwrap();
    let sid = id_of(&s).unwrap();
    let err = store.delete("services", sid, 0).await.unwrap_err();
    assert!(matches!(err, Error::ReferencedBy { ref child, .. } if child == "routes"));
    let listed = store
        .list_children(
            ChildrenOf {
                parent: "services",
                parent_id: sid,
                child: "routes",
            },
            &Page {
                size: 10,
                offset: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.data, vec![r.clone()]);
    store.delete("routes", id_of(&r).unwrap(), 0).await.unwrap();
    store.delete("services", sid, 0).await.unwrap();
}

pub(super) async fn cascading_delete_emits_events_for_every_entity_removed(store: Store) {
    let up = json!({"id": Uuid::new_v4().to_string(), "name": "up"});
    let up = store.insert("upstreams", up, 0).await.unwrap();
    let target =
        json!({"id": Uuid::new_v4().to_string(), "target": "a:80", "upstream": {"id": up["id"]}});
    store.insert("targets", target.clone(), 0).await.unwrap();
    let before = store.outbox_events().await.unwrap().len();
    store
        .delete("upstreams", id_of(&up).unwrap(), 0)
        .await
        .unwrap();
    let events = store.outbox_events().await.unwrap();
    let deleted: Vec<&str> = events[before..]
        .iter()
        .filter(|e| e.source == "crud" && !e.event.contains(':'))
        .map(|e| e.event.as_str())
        .collect();
    assert_eq!(deleted, ["targets", "upstreams"]);
    assert_eq!(
        store.get("targets", id_of(&target).unwrap()).await.unwrap(),
        None
    );
    // The target's composite unique key was released with it.
    let up2 = store
        .insert("upstreams", json!({"id": up["id"], "name": "up"}), 0)
        .await
        .unwrap();
    store.insert("targets", target, 0).await.unwrap();
    assert_eq!(up2["name"], "up");
}

pub(super) async fn listing_pages_by_id(store: Store) {
    for i in 0..5 {
        store
            .insert("services", service(&format!("s{i}")), 0)
            .await
            .unwrap();
    }
    let first = store
        .list(
            "services",
            &Page {
                size: 2,
                offset: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.data.len(), 2);
    let second = store
        .list(
            "services",
            &Page {
                size: 2,
                offset: first.next.clone(),
            },
        )
        .await
        .unwrap();
    let third = store
        .list(
            "services",
            &Page {
                size: 2,
                offset: second.next.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(third.data.len(), 1);
    assert_eq!(third.next, None);
    let mut ids: Vec<&Value> = first
        .data
        .iter()
        .chain(&second.data)
        .chain(&third.data)
        .map(|v| &v["id"])
        .collect();
    let sorted = {
        let mut s = ids.clone();
        s.sort_by_key(|v| v.as_str().unwrap().parse::<Uuid>().unwrap());
        s
    };
    assert_eq!(ids, sorted);
    ids.dedup();
    assert_eq!(ids.len(), 5);
    assert!(matches!(
        store
            .list(
                "services",
                &Page {
                    size: 2,
                    offset: Some("nope".into())
                }
            )
            .await,
        Err(Error::InvalidOffset)
    ));
}
