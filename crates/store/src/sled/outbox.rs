//! The outbox in sled: records under the database's id sequence.

use super::Sled;
use crate::outbox::{OutboxBatch, decode_record, encode_records, record_len};
use crate::{Error, Origin, Result};
use hookd_model::Event;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

/// The key of the next record: the database's id sequence only grows, so
/// records stay in the order they were written.
pub(crate) fn next_key(
    outbox: &TransactionalTree,
) -> std::result::Result<[u8; 8], ConflictableTransactionError<Error>> {
    Ok(outbox.generate_id()?.to_be_bytes())
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

impl Sled {
    /// Whole records after `after` until they hold at least `limit`
    /// events (see [`crate::Outbox::outbox_batch_after`]).
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

impl Sled {
    /// Wakes whoever waits in [`Sled::outbox_changed`]: called after every
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

impl Sled {
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
