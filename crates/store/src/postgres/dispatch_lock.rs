//! One dispatching node per database: the node that holds a
//! session-level advisory lock reads the outbox and makes deliveries (and
//! runs the health checks); every node serves the Admin API and attempts
//! the deliveries of its shards (`super::cluster`). PostgreSQL lets the
//! lock go the moment the holder's connection ends (a crash, a `kill -9`,
//! a lost network), and the first other node to ask again takes over with
//! what is stored.

use super::{Connection, connect_options};
use crate::{Error, Result};
use sqlx::Connection as _;
use sqlx::PgConnection;
use std::time::Duration;

/// The advisory lock's key: "hookd" in ASCII.
const DISPATCH_KEY: i64 = 0x686f_6f6b64;

/// How often a node waiting for the lock asks for it, and the holder
/// checks that it still has it.
const POLL: Duration = Duration::from_secs(1);

/// How long a check of the holder's connection may take before the lock
/// counts as lost: a connection that cannot answer may already have been
/// dropped by the server, and another node may have taken over.
const CHECK_PATIENCE: Duration = Duration::from_secs(5);

/// The lock of the dispatching node, held by a connection of its own.
pub struct DispatchLock {
    connection: PgConnection,
}

impl DispatchLock {
    /// Waits until this node is the dispatching one. `waiting` is called
    /// once, when another node holds the lock.
    pub async fn acquire(connection: &Connection, waiting: impl FnOnce()) -> Result<Self> {
        let mut session = PgConnection::connect_with(&connect_options(connection)?).await?;
        let mut waiting = Some(waiting);
        loop {
            let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(DISPATCH_KEY)
                .fetch_one(&mut session)
                .await?;
            if held {
                return Ok(DispatchLock {
                    connection: session,
                });
            }
            if let Some(tell) = waiting.take() {
                tell();
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Resolves when the lock may be lost: its connection fails, or does
    /// not answer in time. The node must stop dispatching then, since
    /// another node may already dispatch.
    pub async fn lost(&mut self) -> Error {
        loop {
            tokio::time::sleep(POLL).await;
            match tokio::time::timeout(CHECK_PATIENCE, self.connection.ping()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Error::DispatchLost(e.to_string()),
                Err(_) => {
                    return Error::DispatchLost(format!(
                        "its connection did not answer within {CHECK_PATIENCE:?}"
                    ));
                }
            }
        }
    }
}
