//! hookd's storage: entities and event hooks with their indexes, the
//! outbox their writes fill, the delivery queue, guests, the audit log,
//! admin tokens and the quarantine, behind one interface ([`Backend`],
//! one trait per concept), with sled embedded as its first backend.
#![deny(missing_docs)]

pub mod audit;
pub mod cluster;
pub mod codec;
#[cfg(test)]
mod conformance;
pub mod entities;
pub mod guests;
pub mod outbox;
mod postgres;
pub mod quarantine;
pub mod queue;
mod sled;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tokens;

pub use audit::{Audit, AuditFilter, Retention};
pub use cluster::{HookChange, ShardSet};
pub use entities::{ChildrenOf, Entities, Listed, Page};
pub use guests::{GuestVersion, Guests, Upload};
pub use outbox::{Outbox, OutboxBatch, record_of};
pub use postgres::{Connection, DispatchLock, ShardLeases};
pub use quarantine::{Origin, Quarantine, Quarantined, Retried};
pub use queue::{Attempted, Dispatch, Due, HookListing, HookStateUpdate, ListedAt, Queue, paged};
pub use tokens::AdminTokens;

use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// sled failed.
    #[error("storage error")]
    Sled(#[from] ::sled::Error),
    /// PostgreSQL failed, or could not be reached.
    #[error("database error: {0}")]
    Postgres(#[from] sqlx::Error),
    /// The database's schema could not be brought up to date, or is newer
    /// than this hookd knows.
    #[error("{}", migrate_message(.0))]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The lock that makes this node the dispatching one may be gone:
    /// another node may dispatch now.
    #[error("this node may no longer be the dispatching one: {0}")]
    DispatchLost(String),
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

/// A store's backend: every concept's operations, and its life.
#[async_trait]
pub trait Backend:
    Entities + Outbox + Queue + Guests + Audit + AdminTokens + Quarantine + Send + Sync
{
    /// The backend's name, as `/status` shows it.
    fn kind(&self) -> &'static str;

    /// This node's id: made on first open, kept across restarts.
    async fn node_id(&self) -> Result<Uuid>;

    /// Waits until every write made before the call is durable.
    /// Concurrent callers share one flush.
    async fn durable(&self) -> Result<()>;

    /// News of hooks written through other nodes sharing this store;
    /// none when no other node can (sled).
    fn hook_changes(&self) -> Option<tokio::sync::broadcast::Receiver<HookChange>> {
        None
    }

    /// Makes what was written durable and takes no more writes; for
    /// shutdown.
    async fn close(&self);
}

fn migrate_message(e: &sqlx::migrate::MigrateError) -> String {
    match e {
        sqlx::migrate::MigrateError::VersionMissing(v) => format!(
            "the database's schema is newer than this hookd: it has migration {v}, which this \
             version does not know; run a hookd at least as new as the one that migrated it"
        ),
        other => format!("migrating the database failed: {other}"),
    }
}

/// The store: cheap to clone, shared by every part of the server. Its
/// operations are its backend's ([`Backend`] and the traits it joins).
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.backend
    }
}

/// The memory sled's page cache may take unless configured otherwise,
/// bytes: sled's own default (1 GiB) let a busy server's memory climb for
/// hours.
pub const DEFAULT_CACHE_CAPACITY: u64 = 128 * 1024 * 1024;

impl Store {
    /// Opens (or creates) the embedded store in a directory, with the
    /// default cache.
    pub fn open(dir: &Path) -> Result<Self> {
        Store::open_with_cache(dir, DEFAULT_CACHE_CAPACITY)
    }

    /// Opens (or creates) the embedded store in a directory; sled's page
    /// cache takes at most `cache_capacity` bytes.
    pub fn open_with_cache(dir: &Path, cache_capacity: u64) -> Result<Self> {
        Ok(Store {
            backend: Arc::new(sled::Sled::open_with_cache(dir, cache_capacity)?),
        })
    }

    /// Connects to the PostgreSQL database `connection` names as the node
    /// `node_id` (which the node keeps itself: the database is shared),
    /// applying the schema's migrations it lacks first.
    pub async fn connect(connection: &Connection, node_id: Uuid) -> Result<Self> {
        Ok(Store {
            backend: Arc::new(postgres::Postgres::connect(connection, node_id).await?),
        })
    }

    /// Applies the migrations the database lacks, and nothing else:
    /// `hookd migrate`. Returns the versions applied.
    pub async fn migrate(connection: &Connection) -> Result<Vec<i64>> {
        postgres::migrate(connection).await
    }
}
