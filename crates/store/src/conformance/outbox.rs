//! The outbox: order and counts.

use crate::Store;
use hookd_model::Event;
use serde_json::json;

fn event(n: i64) -> Event {
    Event::new("s", "e", json!({"n": n}), n)
}

pub(super) async fn published_events_come_out_in_order_and_are_counted(store: Store) {
    store.publish(&[event(1), event(2)]).await.unwrap();
    store.publish(&[event(3)]).await.unwrap();
    assert_eq!(store.outbox_len().await.unwrap(), 3);
    let batch = store.outbox_batch(2).await.unwrap();
    assert_eq!(batch.records.len(), 1, "whole records until the limit");
    let all = store.outbox_batch(10).await.unwrap();
    let ns: Vec<i64> = all.events.iter().map(|(_, e)| e.at_ms).collect();
    assert_eq!(ns, [1, 2, 3]);
    assert!(all.events.windows(2).all(|w| w[0].0 < w[1].0));
}
