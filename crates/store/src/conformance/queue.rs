//! The delivery queue: dispatch, attempts, listings, dead letters,
//! retention.

use crate::testing::{due, finished};
use crate::{Attempted, Dispatch, Due, Error, HookStateUpdate, Page, Store};
use hookd_model::Event;
use hookd_model::delivery::{Delivery, DeliveryState};
use serde_json::json;
use uuid::Uuid;

pub(super) async fn dispatch_moves_events_into_due_deliveries_atomically(store: Store) {
    store
        .publish(&[Event::new("s", "e", json!({}), 0)])
        .await
        .unwrap();
    store
        .publish(&[Event::new("s", "e", json!({}), 0)])
        .await
        .unwrap();
    let batch = store.outbox_batch(1).await.unwrap();
    assert_eq!(batch.events.len(), 1);
    let (seq, event) = batch.events[0].clone();
    let hook = Uuid::new_v4();
    let d = Delivery::new(hook, event, seq, 100);
    let update = HookStateUpdate {
        hook,
        name: "on_change".into(),
        value: Some(json!("abc")),
    };
    store
        .commit_dispatch(Dispatch {
            records: &batch.records,
            deliveries: std::slice::from_ref(&d),
            state: &[update],
            ..Dispatch::default()
        })
        .await
        .unwrap();
    assert_eq!(store.outbox_len().await.unwrap(), 1);
    assert_eq!(
        store.hook_states().await.unwrap(),
        vec![(hook, "on_change".into(), json!("abc"))]
    );
    assert!(due(&*store, 99, 10).await.is_empty());
    assert_eq!(due(&*store, 100, 10).await, vec![d.clone()]);
    assert!(
        store
            .due_deliveries(Due::every_hook(100, 10), &mut |id| id == d.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due_ms().await.unwrap(), Some(100));
    // Finishing it takes it off the due index.
    store
        .commit_deliveries(&[finished(d, 150, DeliveryState::Succeeded)])
        .await
        .unwrap();
    assert_eq!(store.queue_depth().await.unwrap(), 0);
    assert_eq!(store.next_due_ms().await.unwrap(), None);
}

pub(super) async fn a_delivery_stored_at_its_first_attempts_end_takes_its_outbox_record_with_it(
    store: Store,
) {
    for n in 0..3 {
        store
            .publish(&[Event::new("s", "e", json!({"n": n}), 0)])
            .await
            .unwrap();
    }
    let batch = store.outbox_batch(1).await.unwrap();
    let (seq, event) = batch.events[0].clone();
    let record = crate::record_of(seq);
    assert_eq!(batch.records, [record]);
    // The dispatcher goes on after the record, which stays.
    let rest = store.outbox_batch_after(Some(record), 10).await.unwrap();
    assert_eq!(rest.events.len(), 2);
    assert_eq!(
        store.outbox_last_record().await.unwrap(),
        rest.records.last().copied()
    );
    assert!(
        store
            .outbox_batch_after(rest.records.last().copied(), 10)
            .await
            .unwrap()
            .records
            .is_empty()
    );
    assert_eq!(store.outbox_len().await.unwrap(), 3);

    // Two deliveries of the first event, stored one after the other.
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let first = finished(
        Delivery::new(a, event.clone(), seq, 1),
        2,
        DeliveryState::Succeeded,
    );
    let mut waits = Delivery::new(b, event, seq, 1);
    waits.next_attempt_at_ms = Some(10);
    store
        .commit_attempts(Attempted::first(std::slice::from_ref(&first)))
        .await
        .unwrap();
    assert!(store.delivery_exists(first.id).await.unwrap());
    assert_eq!(
        store.outbox_len().await.unwrap(),
        3,
        "the other still needs it"
    );
    store
        .commit_attempts(Attempted {
            first: std::slice::from_ref(&waits),
            ended: &[record],
            ..Attempted::default()
        })
        .await
        .unwrap();
    assert_eq!(store.outbox_len().await.unwrap(), 2);
    assert_eq!(store.queue_depth().await.unwrap(), 1);
    assert_eq!(store.hooks_with_due(10).await.unwrap(), [b]);
    // Stored since, it is updated as any other.
    let done = finished(waits, 20, DeliveryState::Succeeded);
    store
        .commit_attempts(Attempted::updated(&[done]))
        .await
        .unwrap();
    assert_eq!(store.queue_depth().await.unwrap(), 0);
    assert_eq!(store.prune_deliveries(0, i64::MAX).await.unwrap(), 2);
}

pub(super) async fn hook_deliveries_page_newest_first(store: Store) {
    let hook = Uuid::new_v4();
    let all: Vec<Delivery> = (0..5)
        .map(|i| Delivery::new(hook, Event::new("s", "e", json!({}), 0), 0, i))
        .collect();
    store.commit_dispatch(Dispatch::queue(&all)).await.unwrap();
    let mut seen = Vec::new();
    let mut page = Page {
        size: 2,
        offset: None,
    };
    loop {
        let listed = store.hook_deliveries(hook, &page).await.unwrap();
        seen.extend(listed.data.iter().map(|d| d.created_at_ms));
        match listed.next {
            Some(next) => page.offset = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, [4, 3, 2, 1, 0]);
    let other = Uuid::new_v4();
    let first_page = Page {
        size: 2,
        offset: None,
    };
    assert!(
        store
            .hook_deliveries(other, &first_page)
            .await
            .unwrap()
            .data
            .is_empty()
    );
    // An offset of another hook's listing is not one of this hook's.
    let foreign = Page {
        size: 2,
        offset: Some(all[3].id.to_string()),
    };
    assert!(matches!(
        store.hook_deliveries(other, &foreign).await,
        Err(Error::InvalidOffset)
    ));
}

pub(super) async fn retention_removes_the_oldest_finished_beyond_count_and_age(store: Store) {
    let hook = Uuid::new_v4();
    let finished: Vec<Delivery> = (0..6)
        .map(|i| {
            finished(
                Delivery::new(hook, Event::new("s", "e", json!({}), 0), 0, i),
                i * 10,
                DeliveryState::Succeeded,
            )
        })
        .collect();
    let pending = Delivery::new(hook, Event::new("s", "e", json!({}), 0), 0, 0);
    let queued: Vec<Delivery> = finished.iter().chain([&pending]).cloned().collect();
    store
        .commit_dispatch(Dispatch::queue(&queued))
        .await
        .unwrap();
    // Keep 4, and nothing that finished before 25: 0, 10, 20 go.
    assert_eq!(store.prune_deliveries(4, 25).await.unwrap(), 3);
    for d in &finished[..3] {
        assert_eq!(store.delivery(d.id).await.unwrap(), None);
    }
    for d in &finished[3..] {
        assert!(store.delivery(d.id).await.unwrap().is_some());
    }
    assert!(
        store.delivery(pending.id).await.unwrap().is_some(),
        "pending ones are never pruned"
    );
    assert_eq!(store.prune_deliveries(1, 0).await.unwrap(), 2);
    assert_eq!(
        store
            .hook_deliveries(
                hook,
                &Page {
                    size: 10,
                    offset: None
                }
            )
            .await
            .unwrap()
            .data
            .len(),
        2
    );
}
