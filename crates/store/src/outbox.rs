//! The outbox: events committed with the writes that caused them, waiting
//! for the dispatcher and then for the first attempts of the deliveries
//! the dispatcher made of them: until those end, the record is their only
//! durable form (see DESIGN.md, "Durability").
//!
//! One record holds the events of one write (an entity's three crud
//! events, or a published batch), in order: each sled operation costs
//! about as much whatever its size, so one record instead of one per event
//! saves the writer and the dispatcher two thirds of their outbox work.

use crate::codec::{decode, encode_packed, json_of};
use crate::{Error, Origin, Result, Store};
use hookd_model::Event;
use serde::de::IgnoredAny;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

/// Events in one record, at most. An event's place in the outbox order is
/// its record's key shifted left by [`INDEX_BITS`] plus its index in the
/// record, so that deliveries of the events of one record keep their order.
const INDEX_BITS: u32 = 16;
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

/// The key of the next record: the database's id sequence only grows, so
/// records stay in the order they were written.
pub(crate) fn next_key(
    outbox: &TransactionalTree,
) -> std::result::Result<[u8; 8], ConflictableTransactionError<Error>> {
    Ok(outbox.generate_id()?.to_be_bytes())
}

/// The outbox record that holds the event at outbox position `position`.
pub fn record_of(position: u64) -> u64 {
    position >> INDEX_BITS
}

fn record_key(key: &[u8]) -> Result<u64> {
    Ok(u64::from_be_bytes(
        key.try_into().map_err(|_| Error::CorruptKey)?,
    ))
}

/// A stored record, key and value, as the dispatcher takes it.
pub(crate) fn decode_stored(key: &[u8], value: &[u8]) -> Result<Vec<(u64, Event)>> {
    decode_record(record_key(key)?, value)
}

/// The events of a record with their places in the outbox order. A record
/// written before records held several events is a single event object.
fn decode_record(key: u64, value: &[u8]) -> Result<Vec<(u64, Event)>> {
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
fn record_len(value: &[u8]) -> Result<usize> {
    let json = json_of(value)?;
    if json.first() == Some(&b'[') {
        decode::<Vec<IgnoredAny>>(&json).map(|events| events.len())
    } else {
        Ok(1)
    }
}

impl Store {
    /// Every event in the outbox, oldest first.
    pub fn outbox_events(&self) -> Result<Vec<Event>> {
        Ok(self
            .outbox_batch(usize::MAX)?
            .events
            .into_iter()
            .map(|(_, event)| event)
            .collect())
    }

    /// Whole records from the head of the outbox, until they hold at least
    /// `limit` events (or the outbox ends). A record that does not decode
    /// goes to the quarantine and the batch goes on behind it.
    pub fn outbox_batch(&self, limit: usize) -> Result<OutboxBatch> {
        self.outbox_batch_after(None, limit)
    }

    /// As [`Store::outbox_batch`], from the first record after `after`:
    /// the dispatcher's place in an outbox whose records stay until the
    /// deliveries of their events end.
    pub fn outbox_batch_after(&self, after: Option<u64>, limit: usize) -> Result<OutboxBatch> {
        let start = match after {
            Some(key) => match key.checked_add(1) {
                Some(next) => next,
                None => return Ok(OutboxBatch::default()),
            },
            None => 0,
        };
        let mut batch = OutboxBatch::default();
        for item in self.inner.outbox.range(start.to_be_bytes()..) {
            if batch.events.len() >= limit {
                break;
            }
            let (key, value) = item?;
            match decode_stored(&key, &value) {
                Ok(events) => {
                    batch.records.push(record_key(&key)?);
                    batch.events.extend(events);
                }
                Err(e) => self.quarantine(Origin::Outbox, &key, &value, &e)?,
            }
        }
        Ok(batch)
    }

    /// The key of the last record in the outbox, if any.
    pub fn outbox_last_record(&self) -> Result<Option<u64>> {
        self.inner
            .outbox
            .last()?
            .map(|(key, _)| record_key(&key))
            .transpose()
    }

    /// Number of events in the outbox: not yet dispatched, or with a
    /// delivery whose first attempt has not ended. A record that does not
    /// decode counts as one: it waits too, for the dispatcher to move it
    /// to the quarantine.
    pub fn outbox_len(&self) -> Result<usize> {
        self.inner
            .outbox
            .iter()
            .values()
            .map(|value| Ok(record_len(&value?).unwrap_or(1)))
            .sum()
    }
}

impl Store {
    /// Wakes whoever waits in [`Store::outbox_changed`]: called after every
    /// commit that adds events.
    pub(crate) fn outbox_written(&self) {
        self.inner.outbox_notify.notify_one();
    }

    /// Resolves after the next write to the outbox (or at once if one
    /// happened since the last call): the dispatcher's wake-up.
    pub async fn outbox_changed(&self) {
        self.inner.outbox_notify.notified().await;
    }
}

impl Store {
    /// Adds events from outside the Admin API's entity writes (published
    /// events, health checks) to the outbox, all or none, durably: returns
    /// once they are on disk. They go through the entity writer, so that
    /// many publishers share its transactions as entity writes do.
    pub async fn publish(&self, events: &[Event]) -> Result<()> {
        let records = encode_records(events)?;
        let at_ms = events.first().map_or(0, |e| e.at_ms);
        self.entity_write(at_ms, move |tx| {
            tx.emit_records(&records).map(|()| serde_json::Value::Null)
        })
        .await
        .map(|_| ())
    }
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

    #[tokio::test]
    async fn published_events_come_out_in_order_and_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.publish(&[event(1), event(2)]).await.unwrap();
        store.publish(&[event(3)]).await.unwrap();
        assert_eq!(store.outbox_len().unwrap(), 3);
        let batch = store.outbox_batch(2).unwrap();
        assert_eq!(batch.records.len(), 1, "whole records until the limit");
        let all = store.outbox_batch(10).unwrap();
        let ns: Vec<i64> = all.events.iter().map(|(_, e)| e.at_ms).collect();
        assert_eq!(ns, [1, 2, 3]);
        assert!(all.events.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
