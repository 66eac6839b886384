//! The PostgreSQL backend: the store's records in tables of one database
//! (see `migrations/`), in the same encodings as the sled backend
//! (`crate::codec`), so that one decoder, one quarantine and one set of
//! limits serve both. Every write is a transaction that is durable when
//! it commits.

mod audit;
mod cluster;
mod dispatch_lock;
mod entities;
mod guests;
mod outbox;
mod quarantine;
mod queue;
mod signals;
mod tokens;

pub use cluster::ShardLeases;
pub use dispatch_lock::DispatchLock;

use crate::{Backend, Error, Result};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The schema's migrations, compiled in: a node applies those the database
/// lacks, and refuses a database that has one it does not know (a newer
/// hookd's).
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Times a write runs at most when PostgreSQL gives it up to break a
/// deadlock or a serialization conflict: it changed nothing, and running
/// it again is what the client would do.
const ATTEMPTS: u32 = 5;

/// Runs `write` (one whole transaction) until it is not a deadlock victim
/// or a serialization failure, a few times at most.
pub(super) async fn retrying<T, F, Fut>(mut write: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Err(e) if attempt < ATTEMPTS && transient(&e) => {
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// Deletes `size` rows at a time, each chunk a transaction of its own so
/// that no one statement holds a large retention's locks, until a chunk
/// comes up short. `delete` is the statement with every parameter bound
/// but its last, the chunk's size. Returns the rows deleted.
pub(super) async fn delete_in_chunks<'q>(
    pool: &PgPool,
    size: i64,
    delete: impl Fn() -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Result<usize> {
    let mut removed = 0;
    loop {
        let gone = delete().bind(size).execute(pool).await?.rows_affected();
        removed += usize::try_from(gone).unwrap_or(usize::MAX);
        if gone < size.unsigned_abs() {
            return Ok(removed);
        }
    }
}

/// Whether PostgreSQL rolled the transaction back only to let another
/// one through: serialization_failure or deadlock_detected.
fn transient(e: &Error) -> bool {
    matches!(e, Error::Postgres(sqlx::Error::Database(db))
        if matches!(db.code().as_deref(), Some("40001" | "40P01")))
}

/// How a node reaches its database.
#[derive(Debug, Clone)]
pub struct Connection {
    /// `postgres://user@host:port/database` (or a socket directory as
    /// `host`).
    pub url: String,
    /// Connections the node keeps open, at most.
    pub max_connections: u32,
    /// How long a statement may run before the server cancels it.
    pub statement_timeout: std::time::Duration,
}

impl Connection {
    /// The fewest `max_connections` a node works with: one the delivery
    /// engine has to itself, one for everything else.
    pub const MIN_CONNECTIONS: u32 = 2;
}

/// The PostgreSQL backend: cheap to clone.
#[derive(Clone)]
pub(crate) struct Postgres {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// Connections of the delivery engine's own (see [`engine_share`]).
    engine_pool: PgPool,
    node_id: Uuid,
    /// Wake-ups, here and from the other nodes.
    signals: Arc<signals::Signals>,
    /// The announcer and the listener of [`signals`].
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Postgres {
    /// Connects as the node `node_id`, and brings the schema up to date.
    pub(crate) async fn connect(connection: &Connection, node_id: Uuid) -> Result<Self> {
        let engine = engine_share(connection.max_connections);
        let pool = pool_of(
            connection,
            connection.max_connections.saturating_sub(engine),
        )
        .await?;
        MIGRATOR.run(&pool).await?;
        let signals = signals::Signals::new();
        let tasks = signals::spawn(
            &signals,
            pool.clone(),
            pool_of(connection, 1).await?,
            node_id,
        );
        Ok(Postgres {
            inner: Arc::new(Inner {
                pool,
                engine_pool: pool_of(connection, engine).await?,
                node_id,
                signals,
                tasks: std::sync::Mutex::new(tasks),
            }),
        })
    }

    fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The pool of the delivery engine's own loop: the dispatcher's
    /// outbox reads and commits, the workers' due reads and commits, and
    /// retention. What an Admin API request reads, even of the queue, goes
    /// through [`Postgres::pool`], so that no client can hold these.
    fn engine_pool(&self) -> &PgPool {
        &self.inner.engine_pool
    }

    /// Wakes whoever waits in `outbox_changed`, here and on the other
    /// nodes: called after every commit that adds events.
    fn outbox_written(&self) {
        self.inner.signals.outbox_written();
    }

    /// Tells the other nodes that a hook was written at `at_ms`.
    fn hook_written(&self, name: &str, id: Uuid, at_ms: i64, begun_or_ended: bool) {
        if name == hookd_model::hook::ENTITY {
            self.inner.signals.hook_written(id, at_ms, begun_or_ended);
        }
    }
}

/// How to open one connection to the database `connection` names.
fn connect_options(connection: &Connection) -> Result<PgConnectOptions> {
    let timeout_ms = connection.statement_timeout.as_millis().to_string();
    Ok(PgConnectOptions::from_str(&connection.url)?
        .application_name("hookd")
        .options([("statement_timeout", timeout_ms.as_str())]))
}

/// Connections out of a node's `max_connections` that the delivery
/// engine's loop has to itself (see [`Postgres::engine_pool`]), so that
/// Admin API writes holding every other one cannot make dispatching and
/// attempts wait for a connection: a quarter, from 1 to 4.
pub(crate) fn engine_share(max_connections: u32) -> u32 {
    (max_connections / 4).clamp(1, 4)
}

/// A pool of connections to the database `connection` names.
pub(crate) async fn pool(connection: &Connection) -> Result<PgPool> {
    pool_of(connection, connection.max_connections).await
}

/// A pool of at most `size` (at least 1) connections to the database
/// `connection` names.
async fn pool_of(connection: &Connection, size: u32) -> Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(size.max(1))
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with(connect_options(connection)?)
        .await?)
}

/// Applies the migrations the database lacks, without starting a node:
/// `hookd migrate`. Returns the versions applied, in order.
pub(crate) async fn migrate(connection: &Connection) -> Result<Vec<i64>> {
    let pool = pool(connection).await?;
    let before: std::collections::HashSet<i64> = applied(&pool).await?.into_iter().collect();
    MIGRATOR.run(&pool).await?;
    let after = applied(&pool).await?;
    pool.close().await;
    Ok(after.into_iter().filter(|v| !before.contains(v)).collect())
}

async fn applied(pool: &PgPool) -> Result<Vec<i64>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    Ok(
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await?,
    )
}

#[async_trait]
impl Backend for Postgres {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    /// The id the node was connected as.
    async fn node_id(&self) -> Result<Uuid> {
        Ok(self.inner.node_id)
    }

    /// Every write is durable when its transaction commits.
    async fn durable(&self) -> Result<()> {
        Ok(())
    }

    fn hook_changes(&self) -> Option<tokio::sync::broadcast::Receiver<crate::HookChange>> {
        Some(self.inner.signals.hooks.subscribe())
    }

    async fn close(&self) {
        for task in self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
        self.inner.engine_pool.close().await;
        self.inner.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;

    #[test]
    fn the_engine_keeps_a_quarter_of_the_connections_from_one_to_four() {
        let shares: Vec<u32> = [2, 4, 8, 16, 100].map(engine_share).into();
        assert_eq!(shares, [1, 1, 2, 4, 4]);
        assert!(engine_share(Connection::MIN_CONNECTIONS) < Connection::MIN_CONNECTIONS);
    }

    #[tokio::test]
    async fn migrations_apply_once_and_a_newer_schema_is_refused() {
        let Some(db) = TestDatabase::for_this_test().await else {
            return;
        };
        let first = migrate(&db.connection).await.unwrap();
        assert_eq!(first, [1, 2]);
        assert!(migrate(&db.connection).await.unwrap().is_empty());
        // As a newer hookd would leave the database.
        let pool = pool(&db.connection).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', true, '\\x00', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        let refused = Postgres::connect(&db.connection, Uuid::new_v4()).await;
        let Err(e) = refused else {
            panic!("a database with an unknown migration was opened");
        };
        let message = e.to_string();
        assert!(message.contains("newer than this hookd"), "{message}");
        assert!(message.contains("9999"), "{message}");
    }
}
