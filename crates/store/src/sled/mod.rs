//! The embedded backend: everything in sled trees in one data directory,
//! one process. Entity writes share transactions through one writer
//! thread, and durability comes from one flusher (group commit).

mod audit;
mod entities;
mod flusher;
mod guests;
mod outbox;
mod quarantine;
mod queue;
mod tokens;
mod writer;

use crate::audit::{Audit, AuditFilter, Retention};
use crate::entities::{ChildrenOf, Entities, Listed, Page};
use crate::guests::{GuestVersion, Guests, Upload};
use crate::outbox::{Outbox, OutboxBatch};
use crate::quarantine::{Origin, Quarantine, Quarantined, Retried};
use crate::queue::{Attempted, Dispatch, Due, HookListing, Queue, Skip};
use crate::tokens::AdminTokens;
use crate::{Backend, Error, Result};
use async_trait::async_trait;
use flusher::Flusher;
use hookd_model::Event;
use hookd_model::audit::AuditRecord;
use hookd_model::delivery::Delivery;
use quarantine::open_tree;
use serde_json::Value;
use sled::transaction::TransactionError;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

pub(crate) fn tx_error(e: TransactionError<Error>) -> Error {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => Error::Sled(e),
    }
}

/// The sled backend: cheap to clone.
#[derive(Clone)]
pub(crate) struct Sled {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    entities: sled::Tree,
    unique: sled::Tree,
    children: sled::Tree,
    outbox: sled::Tree,
    meta: sled::Tree,
    queue: queue::QueueTrees,
    guests: guests::GuestTrees,
    audit: audit::AuditTrees,
    tokens: sled::Tree,
    /// Records moved aside because they do not decode (see `quarantine`).
    quarantine: sled::Tree,
    outbox_notify: tokio::sync::Notify,
    writer: writer::Writer,
    flusher: Flusher,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.writer.stop();
        self.flusher.stop();
    }
}

/// How long opening waits for the data directory's lock. sled lets it go
/// from its own threads a moment after the last handle is dropped, so a
/// store opened again at once (a restart within one process) may find it
/// still held; another process holding it gets its error after this.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether sled failed to open because another handle holds the lock: it
/// reports that as an `Other` error that names it.
fn lock_held(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Other && e.to_string().contains("could not acquire lock")
}

impl Sled {
    /// Opens (or creates) the store in a directory; sled's page cache takes
    /// at most `cache_capacity` bytes.
    pub(crate) fn open_with_cache(dir: &Path, cache_capacity: u64) -> Result<Self> {
        let config = sled::Config::new().path(dir).cache_capacity(cache_capacity);
        let waiting_since = std::time::Instant::now();
        let db = loop {
            match config.open() {
                Err(sled::Error::Io(e))
                    if lock_held(&e) && waiting_since.elapsed() < LOCK_PATIENCE =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                opened => break opened?,
            }
        };
        let (entities, unique, children, outbox, tokens) = (
            open_tree(&db, Origin::Entities)?,
            db.open_tree("unique")?,
            db.open_tree("children")?,
            open_tree(&db, Origin::Outbox)?,
            db.open_tree("admin_tokens")?,
        );
        let meta = db.open_tree("meta")?;
        let inner = Inner {
            writer: writer::Writer::start([
                entities.clone(),
                unique.clone(),
                children.clone(),
                outbox.clone(),
                tokens.clone(),
            ]),
            entities,
            unique,
            children,
            outbox,
            queue: queue::QueueTrees::open(&db, &meta)?,
            meta,
            guests: guests::GuestTrees::open(&db)?,
            audit: audit::AuditTrees::open(&db)?,
            tokens,
            quarantine: db.open_tree("quarantine")?,
            outbox_notify: tokio::sync::Notify::new(),
            flusher: Flusher::start(db.clone()),
            db,
        };
        Ok(Sled {
            inner: Arc::new(inner),
        })
    }

    #[cfg(test)]
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        Sled::open_with_cache(dir, crate::DEFAULT_CACHE_CAPACITY)
    }

    /// Waits until every write made before the call is on disk. Concurrent
    /// callers share one flush.
    pub(crate) async fn durable(&self) -> Result<()> {
        self.inner.flusher.durable().await.map_err(Error::Flush)
    }
}

#[async_trait]
impl Backend for Sled {
    fn kind(&self) -> &'static str {
        "sled"
    }

    async fn node_id(&self) -> Result<Uuid> {
        let fresh = Uuid::new_v4();
        let stored = self.inner.meta.compare_and_swap(
            "node_id",
            None as Option<&[u8]>,
            Some(fresh.as_bytes()),
        )?;
        match stored {
            Ok(()) => Ok(fresh),
            Err(current) => {
                let bytes = current.current.ok_or(Error::CorruptKey)?;
                Uuid::from_slice(&bytes).map_err(|_| Error::CorruptKey)
            }
        }
    }

    async fn durable(&self) -> Result<()> {
        Sled::durable(self).await
    }

    async fn close(&self) {
        self.inner.writer.stop();
        self.inner.flusher.stop();
        if let Err(e) = self.inner.db.flush() {
            tracing::error!(error = %e, "final flush of the store failed");
        }
    }
}

#[async_trait]
impl Entities for Sled {
    async fn insert(&self, name: &str, value: Value, at_ms: i64) -> Result<Value> {
        Sled::insert(self, name, value, at_ms).await
    }
    async fn update(&self, name: &str, value: Value, at_ms: i64) -> Result<Value> {
        Sled::update(self, name, value, at_ms).await
    }
    async fn delete(&self, name: &str, id: Uuid, at_ms: i64) -> Result<Value> {
        Sled::delete(self, name, id, at_ms).await
    }
    async fn get(&self, name: &str, id: Uuid) -> Result<Option<Value>> {
        Sled::get(self, name, id)
    }
    async fn find_unique(&self, name: &str, field: &str, value: &Value) -> Result<Option<Value>> {
        Sled::find_unique(self, name, field, value)
    }
    async fn list(&self, name: &str, page: &Page) -> Result<Listed> {
        Sled::list(self, name, page)
    }
    async fn list_children(&self, of: ChildrenOf<'_>, page: &Page) -> Result<Listed> {
        Sled::list_children(self, of, page)
    }
}

#[async_trait]
impl Outbox for Sled {
    async fn outbox_batch_after(&self, after: Option<u64>, limit: usize) -> Result<OutboxBatch> {
        Sled::outbox_batch_after(self, after, limit)
    }
    async fn outbox_last_record(&self) -> Result<Option<u64>> {
        Sled::outbox_last_record(self)
    }
    async fn outbox_len(&self) -> Result<usize> {
        Sled::outbox_len(self)
    }
    async fn outbox_changed(&self) {
        Sled::outbox_changed(self).await
    }
    async fn publish(&self, events: &[Event]) -> Result<()> {
        Sled::publish(self, events).await
    }
}

#[async_trait]
impl Queue for Sled {
    async fn commit_dispatch(&self, batch: Dispatch<'_>) -> Result<()> {
        Sled::commit_dispatch(self, batch)
    }
    async fn dispatched_through(&self) -> Result<Option<u64>> {
        Sled::dispatched_through(self)
    }
    async fn hook_states(&self) -> Result<Vec<(Uuid, String, Value)>> {
        Sled::hook_states(self)
    }
    async fn due_deliveries(&self, due: Due, skip: Skip<'_>) -> Result<Vec<Delivery>> {
        Sled::due_deliveries(self, due, skip)
    }
    async fn hooks_with_due(&self, now_ms: i64) -> Result<Vec<Uuid>> {
        Sled::hooks_with_due(self, now_ms)
    }
    async fn next_due_ms(&self) -> Result<Option<i64>> {
        Sled::next_due_ms(self)
    }
    async fn next_due_after(&self, now_ms: i64) -> Result<Option<i64>> {
        Sled::next_due_after(self, now_ms)
    }
    async fn queue_depth(&self) -> Result<usize> {
        Ok(Sled::queue_depth(self))
    }
    async fn commit_attempts(&self, batch: Attempted<'_>) -> Result<()> {
        Sled::commit_attempts(self, batch)
    }
    async fn delivery_exists(&self, id: Uuid) -> Result<bool> {
        Sled::delivery_exists(self, id)
    }
    async fn delivery(&self, id: Uuid) -> Result<Option<Delivery>> {
        Sled::delivery(self, id)
    }
    async fn hook_deliveries_from(&self, from: HookListing, limit: usize) -> Result<Vec<Delivery>> {
        Sled::hook_deliveries_from(self, from, limit)
    }
    async fn dead_deliveries(&self, page: &Page) -> Result<Listed<Delivery>> {
        Sled::dead_deliveries(self, page)
    }
    /// On a blocking thread: far behind retention, pruning takes a while.
    async fn prune_deliveries(&self, keep: usize, finished_before_ms: i64) -> Result<usize> {
        let sled = self.clone();
        tokio::task::spawn_blocking(move || sled.prune_deliveries(keep, finished_before_ms))
            .await
            .map_err(|e| Error::Flush(format!("pruning stopped: {e}")))?
    }
    async fn finished_count(&self) -> Result<usize> {
        Ok(Sled::finished_count(self))
    }
}

#[async_trait]
impl Guests for Sled {
    async fn put_guest(&self, guest: GuestVersion<'_>, now_s: i64) -> Result<(Value, Upload)> {
        Sled::put_guest(self, guest, now_s).await
    }
    async fn guest(&self, name_or_id: &str) -> Result<Option<Value>> {
        Sled::guest(self, name_or_id)
    }
    async fn guests(&self) -> Result<Vec<Value>> {
        Sled::guests(self)
    }
    async fn guest_version(&self, digest: &str) -> Result<Option<Value>> {
        Sled::guest_version(self, digest)
    }
    async fn guest_digests(&self, name: &str) -> Result<Vec<String>> {
        Sled::guest_digests(self, name)
    }
    async fn guest_bytes(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        Sled::guest_bytes(self, digest)
    }
    async fn delete_guest(&self, name: &str) -> Result<(Value, Vec<String>)> {
        Sled::delete_guest(self, name).await
    }
}

#[async_trait]
impl Audit for Sled {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        Sled::append_audit(self, records)
    }
    async fn audit_page(&self, filter: &AuditFilter, page: &Page) -> Result<Listed<AuditRecord>> {
        Sled::audit_page(self, filter, page)
    }
    async fn prune_audit(&self, allowed: Retention, denied: Retention) -> Result<usize> {
        Sled::prune_audit(self, allowed, denied)
    }
}

#[async_trait]
impl AdminTokens for Sled {
    async fn set_admin_token(&self, admin: Uuid, hash: [u8; 32]) -> Result<()> {
        Sled::set_admin_token(self, admin, hash).await
    }
    async fn admin_by_token(&self, hash: &[u8; 32]) -> Result<Option<Uuid>> {
        Sled::admin_by_token(self, hash)
    }
}

#[async_trait]
impl Quarantine for Sled {
    async fn quarantine_page(&self, page: &Page) -> Result<Listed<Quarantined>> {
        Sled::quarantine_page(self, page)
    }
    async fn quarantined(&self, id: Uuid) -> Result<Option<Quarantined>> {
        Sled::quarantined(self, id)
    }
    async fn quarantine_counts(&self) -> Result<Vec<(Origin, usize)>> {
        Sled::quarantine_counts(self)
    }
    async fn delete_quarantined(&self, id: Uuid) -> Result<bool> {
        Sled::delete_quarantined(self, id).await
    }
    async fn retry_quarantined(&self, id: Uuid) -> Result<Option<Retried>> {
        Sled::retry_quarantined(self, id).await
    }
}

#[cfg(test)]
impl Sled {
    /// A store in a new temporary directory, removed when that is dropped.
    pub(crate) fn temporary() -> (tempfile::TempDir, Sled) {
        let dir = tempfile::tempdir().unwrap();
        let store = Sled::open(dir.path()).unwrap();
        (dir, store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_held_by_an_open_store_is_refused_and_free_once_it_is_dropped() {
        let (dir, store) = Sled::temporary();
        match Sled::open(dir.path()) {
            Err(Error::Sled(sled::Error::Io(e))) => assert!(lock_held(&e), "{e}"),
            other => panic!("opened twice: {:?}", other.map(|_| ())),
        }
        drop(store);
        for _ in 0..20 {
            Sled::open(dir.path()).unwrap();
        }
    }
}
