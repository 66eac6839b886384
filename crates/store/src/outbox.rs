//! The outbox: events committed with the writes that caused them, waiting
//! for the dispatcher.

use crate::{Error, Result, Store, tx_error};
use hookd_model::Event;

impl Store {
    /// Every event in the outbox, oldest first.
    pub fn outbox_events(&self) -> Result<Vec<Event>> {
        self.inner
            .outbox
            .iter()
            .values()
            .map(|v| serde_json::from_slice(&v?).map_err(Error::Corrupt))
            .collect()
    }
}

impl Store {
    /// Number of events waiting in the outbox.
    pub fn outbox_len(&self) -> Result<usize> {
        Ok(self.inner.outbox.len())
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
    /// once they are on disk.
    pub async fn publish(&self, events: &[Event]) -> Result<()> {
        let encoded: Vec<Vec<u8>> = events
            .iter()
            .map(|e| serde_json::to_vec(e).expect("events always serialise"))
            .collect();
        self.inner
            .outbox
            .transaction(|outbox| {
                for bytes in &encoded {
                    let seq = outbox.generate_id()?;
                    outbox.insert(&seq.to_be_bytes(), bytes.as_slice())?;
                }
                Ok(())
            })
            .map_err(tx_error)?;
        self.outbox_written();
        self.durable().await
    }
}
