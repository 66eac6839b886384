//! One active node per database: the node that holds a session-level
//! advisory lock dispatches, delivers and serves; every other node waits
//! for it as a standby. PostgreSQL lets the lock go the moment the
//! holder's connection ends (a crash, a `kill -9`, a lost network), and
//! the first standby to ask again takes over with what is stored.

use super::{Connection, connect_options};
use crate::{Error, Result};
use sqlx::Connection as _;
use sqlx::PgConnection;
use std::time::Duration;

/// The advisory lock's key: "hookd" in ASCII.
const ACTIVE_KEY: i64 = 0x686f_6f6b64;

/// How often a standby asks for the lock, and the holder checks that it
/// still has it.
const POLL: Duration = Duration::from_secs(1);

/// How long a check of the holder's connection may take before the lock
/// counts as lost: a connection that cannot answer may already have been
/// dropped by the server, and a standby may have taken over.
const CHECK_PATIENCE: Duration = Duration::from_secs(5);

/// The lock of the active node, held by a connection of its own.
pub struct ActiveLock {
    connection: PgConnection,
}

impl ActiveLock {
    /// Waits until this node is the active one. `standing_by` is called
    /// once, when another node holds the lock.
    pub async fn acquire(connection: &Connection, standing_by: impl FnOnce()) -> Result<Self> {
        let mut session = PgConnection::connect_with(&connect_options(connection)?).await?;
        let mut standing_by = Some(standing_by);
        loop {
            let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(ACTIVE_KEY)
                .fetch_one(&mut session)
                .await?;
            if held {
                return Ok(ActiveLock {
                    connection: session,
                });
            }
            if let Some(tell) = standing_by.take() {
                tell();
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Resolves when the lock may be lost: its connection fails, or does
    /// not answer in time. The node must stop working then, since a
    /// standby may already be active.
    pub async fn lost(&mut self) -> Error {
        loop {
            tokio::time::sleep(POLL).await;
            match tokio::time::timeout(CHECK_PATIENCE, self.connection.ping()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Error::ActiveLost(e.to_string()),
                Err(_) => {
                    return Error::ActiveLost(format!(
                        "its connection did not answer within {CHECK_PATIENCE:?}"
                    ));
                }
            }
        }
    }
}
