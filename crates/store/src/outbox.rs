//! The outbox: events committed with the writes that caused them, waiting
//! for the dispatcher.

use crate::{Error, Result, Store};
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
