//! hookd's storage on sled: entities and event hooks with their indexes,
//! the outbox their writes fill, the delivery queue, guests, the audit
//! log, and durability through group commit.
#![deny(missing_docs)]

mod audit;
pub mod codec;
mod entities;
mod flusher;
mod guests;
mod outbox;
mod quarantine;
mod queue;
mod tokens;
mod writer;

pub use audit::{AuditFilter, Retention};
pub use entities::{Listed, Page};
pub use guests::Upload;
pub use outbox::{OutboxBatch, record_of};
pub use quarantine::{Origin, Quarantined, Retried};
pub use queue::{HookStateUpdate, ListedAt};

use flusher::Flusher;
use sled::transaction::TransactionError;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// sled failed.
    #[error("storage error")]
    Sled(#[from] sled::Error),
    /// A stored value does not decode.
    #[error("a stored value is corrupt")]
    Corrupt(#[source] serde_json::Error),
    /// A record nests deeper than it could be read back: refused, not stored.
    #[error(
        "a record nesting {depth} levels deep cannot be stored (at most {limit} levels read back)"
    )]
    TooDeep {
        /// Levels of objects and arrays of the encoded record.
        depth: usize,
        /// Levels that read back.
        limit: usize,
    },
    /// A record does not encode as JSON.
    #[error("a record does not encode")]
    Unencodable(#[source] serde_json::Error),
    /// zstd failed to pack a record.
    #[error("a record does not pack: {0}")]
    Pack(String),
    /// A stored key does not decode.
    #[error("a stored key is corrupt")]
    CorruptKey,
    /// Flushing to disk failed; the write may not survive a crash.
    #[error("flushing to disk failed: {0}")]
    Flush(String),
    /// No such entity.
    #[error("not found")]
    NotFound,
    /// An entity has no `id` member: one given to be written, or a stored
    /// one read back.
    #[error("the entity has no id")]
    MissingId,
    /// A guest's report was given to be stored without the digest its
    /// bytes are kept under.
    #[error("the guest has no digest")]
    GuestWithoutDigest,
    /// An entity with that id exists.
    #[error("primary key violation on key '{{id=\"{id}\"}}'")]
    PrimaryKey {
        /// The entity kind.
        entity: String,
        /// The id taken.
        id: Uuid,
    },
    /// A unique value is taken.
    #[error("UNIQUE violation detected on '{shown}'")]
    Unique {
        /// The entity kind.
        entity: String,
        /// The clashing fields and their values.
        fields: serde_json::Map<String, serde_json::Value>,
        /// The values as Kong shows them: `{name="x"}`.
        shown: String,
    },
    /// A reference to an entity that does not exist.
    #[error("the foreign key '{{id=\"{id}\"}}' does not reference an existing '{entity}' entity.")]
    ForeignKey {
        /// The referring field.
        field: String,
        /// The entity kind referred to.
        entity: String,
        /// The missing id.
        id: Uuid,
    },
    /// A delete refused because another entity refers to this one.
    #[error("an existing '{child}' entity references this '{parent}' entity")]
    ReferencedBy {
        /// The referring entity kind.
        child: String,
        /// The entity kind being deleted.
        parent: String,
    },
    /// A pagination offset that is not one this store gave out.
    #[error("invalid offset")]
    InvalidOffset,
    /// The store is closing and takes no more writes.
    #[error("the store is shutting down")]
    Stopped,
}

/// `Result` with the store's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn tx_error(e: TransactionError<Error>) -> Error {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => Error::Sled(e),
    }
}

/// The store: cheap to clone, shared by every part of the server.
#[derive(Clone)]
pub struct Store {
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

/// The memory sled's page cache may take unless configured otherwise,
/// bytes: sled's own default (1 GiB) let a busy server's memory climb for
/// hours.
pub const DEFAULT_CACHE_CAPACITY: u64 = 128 * 1024 * 1024;

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

impl Store {
    /// Opens (or creates) the store in a directory, with the default cache.
    pub fn open(dir: &Path) -> Result<Self> {
        Store::open_with_cache(dir, DEFAULT_CACHE_CAPACITY)
    }

    /// Opens (or creates) the store in a directory; sled's page cache takes
    /// at most `cache_capacity` bytes.
    pub fn open_with_cache(dir: &Path, cache_capacity: u64) -> Result<Self> {
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
            Origin::Entities.open(&db)?,
            db.open_tree("unique")?,
            db.open_tree("children")?,
            Origin::Outbox.open(&db)?,
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
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// This node's id: made on first open, kept across restarts.
    pub fn node_id(&self) -> Result<Uuid> {
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

    /// Waits until every write made before the call is on disk. Concurrent
    /// callers share one flush.
    pub async fn durable(&self) -> Result<()> {
        self.inner.flusher.durable().await.map_err(Error::Flush)
    }

    /// Applies the entity writes already sent, stops the writer and the
    /// flusher, and flushes everything; for shutdown.
    pub fn close(&self) {
        self.inner.writer.stop();
        self.inner.flusher.stop();
        if let Err(e) = self.inner.db.flush() {
            tracing::error!(error = %e, "final flush of the store failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_held_by_an_open_store_is_refused_and_free_once_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        match Store::open(dir.path()) {
            Err(Error::Sled(sled::Error::Io(e))) => assert!(lock_held(&e), "{e}"),
            other => panic!("opened twice: {:?}", other.map(|_| ())),
        }
        drop(store);
        for _ in 0..20 {
            Store::open(dir.path()).unwrap();
        }
    }
}
