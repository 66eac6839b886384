//! The outbox: events committed with the writes that caused them, waiting
//! for the dispatcher and then for the first attempts of the deliveries
//! the dispatcher made of them: until those end, the record is their only
//! durable form (see DESIGN.md, "Durability").
//!
//! One record holds the events of one write (an entity's three crud
//! events, or a published batch), in order: each store operation costs
//! about as much whatever its size, so one record instead of one per event
//! saves the writer and the dispatcher two thirds of their outbox work.
//! Every backend keeps records in this layout, under increasing keys.

use crate::Result;
use crate::codec::{decode, encode_packed, json_of};
use async_trait::async_trait;
use hookd_model::Event;
use serde::de::IgnoredAny;

/// Events in one record, at most. An event's place in the outbox order is
/// its record's key shifted left by [`INDEX_BITS`] plus its index in the
/// record, so that deliveries of the events of one record keep their order.
pub(crate) const INDEX_BITS: u32 = 16;
const RECORD_EVENTS: usize = 1 << INDEX_BITS;

/// Events taken from the head of the outbox.
#[derive(Debug, Default)]
pub struct OutboxBatch {
    /// The keys of the records taken: what the dispatch removes.
    pub records: Vec<u64>,
    /// Their events, each with its place in the outbox order.
    pub events: Vec<(u64, Event)>,
}

/// The stored records of `events`, each with at most [`RECORD_EVENTS`].
pub(crate) fn encode_records(events: &[Event]) -> Result<Vec<Vec<u8>>> {
    events.chunks(RECORD_EVENTS).map(encode_packed).collect()
}

/// The outbox record that holds the event at outbox position `position`.
pub fn record_of(position: u64) -> u64 {
    position >> INDEX_BITS
}

/// The events of a record with their places in the outbox order. A record
/// written before records held several events is a single event object.
pub(crate) fn decode_record(key: u64, value: &[u8]) -> Result<Vec<(u64, Event)>> {
    let json = json_of(value)?;
    let events: Vec<Event> = if json.first() == Some(&b'[') {
        decode(&json)?
    } else {
        vec![decode(&json)?]
    };
    let first = key << INDEX_BITS;
    Ok((first..).zip(events).collect())
}

/// How many events a record holds, without decoding them.
pub(crate) fn record_len(value: &[u8]) -> Result<usize> {
    let json = json_of(value)?;
    if json.first() == Some(&b'[') {
        decode::<Vec<IgnoredAny>>(&json).map(|events| events.len())
    } else {
        Ok(1)
    }
}

/// The outbox of a store.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Every event in the outbox, oldest first.
    async fn outbox_events(&self) -> Result<Vec<Event>> {
        Ok(self
            .outbox_batch_after(None, usize::MAX)
            .await?
            .events
            .into_iter()
            .map(|(_, event)| event)
            .collect())
    }

    /// Whole records from the head of the outbox, until they hold at least
    /// `limit` events (or the outbox ends). A record that does not decode
    /// goes to the quarantine and the batch goes on behind it.
    async fn outbox_batch(&self, limit: usize) -> Result<OutboxBatch> {
        self.outbox_batch_after(None, limit).await
    }

    /// As [`Outbox::outbox_batch`], from the first record after `after`:
    /// the dispatcher's place in an outbox whose records stay until the
    /// deliveries of their events end.
    async fn outbox_batch_after(&self, after: Option<u64>, limit: usize) -> Result<OutboxBatch>;

    /// The key of the last record in the outbox, if any.
    async fn outbox_last_record(&self) -> Result<Option<u64>>;

    /// Number of events in the outbox: not yet dispatched, or with a
    /// delivery whose first attempt has not ended. A record that does not
    /// decode counts as one: it waits too, for the dispatcher to move it
    /// to the quarantine.
    async fn outbox_len(&self) -> Result<usize>;

    /// Resolves after the next write to the outbox (or at once if one
    /// happened since the last call): the dispatcher's wake-up.
    async fn outbox_changed(&self);

    /// Adds events from outside the Admin API's entity writes (published
    /// events, health checks) to the outbox, all or none, durably: returns
    /// once they are stored.
    async fn publish(&self, events: &[Event]) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(n: i64) -> Event {
        Event::new("s", "e", json!({"n": n}), n)
    }

    #[test]
    fn records_number_their_events_after_their_key() {
        let events = [event(1), event(2)];
        let record = encode_records(&events).unwrap();
        let decoded = decode_record(3, &record[0]).unwrap();
        assert_eq!(
            decoded,
            vec![
                (3 << INDEX_BITS, events[0].clone()),
                ((3 << INDEX_BITS) + 1, events[1].clone())
            ]
        );
        assert_eq!(record_len(&record[0]).unwrap(), 2);
    }

    #[test]
    fn a_single_event_stored_before_records_still_reads() {
        let e = event(1);
        let stored = serde_json::to_vec(&e).unwrap();
        assert_eq!(
            decode_record(5, &stored).unwrap(),
            vec![(5 << INDEX_BITS, e)]
        );
        assert_eq!(record_len(&stored).unwrap(), 1);
    }

    #[test]
    fn large_batches_split_into_records_that_keep_their_order() {
        let events: Vec<Event> = (0..RECORD_EVENTS as i64 + 1).map(event).collect();
        let records = encode_records(&events).unwrap();
        assert_eq!(records.len(), 2);
        let first = decode_record(1, &records[0]).unwrap();
        let second = decode_record(2, &records[1]).unwrap();
        assert_eq!(first.len(), RECORD_EVENTS);
        assert_eq!(second[0].1, events[RECORD_EVENTS]);
        assert!(first.last().unwrap().0 < second[0].0);
    }
}
