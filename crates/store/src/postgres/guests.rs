//! Guests on PostgreSQL: `guests` (the record by name, with its id),
//! `guest_versions` (what each digest is and the names that use it) and
//! `guest_blobs` (the bytes).
//!
//! Guest writes are rare (uploads and deletes through the Admin API) and
//! read a name's record and its versions before they write them: they
//! take turns on one advisory lock, as sled's transactions on these trees
//! would, rather than each lock rows that may not exist yet.

use super::Postgres;
use super::retrying;
use crate::codec::{decode, encode};
use crate::guests::{GuestVersion, Guests, Upload, guest_record, report_digest, version_with};
use crate::{Error, Result};
use async_trait::async_trait;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// The advisory lock guest writes take turns on: "guests" in ASCII.
const WRITE_LOCK: i64 = 0x67_75_65_73_74_73;

/// The JSON record `sql` selects with `$1` bound to `key`, decoded.
async fn decoded<'q, 'c, K>(
    conn: impl sqlx::PgExecutor<'c>,
    sql: &'q str,
    key: K,
) -> Result<Option<Value>>
where
    K: 'q + Send + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    let raw: Option<Vec<u8>> = sqlx::query_scalar(sql)
        .bind(key)
        .fetch_optional(conn)
        .await?;
    raw.map(|raw| decode(&raw)).transpose()
}

/// Waits for the guest writes in flight; held until the transaction ends.
async fn take_turn(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITE_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

fn uses(version: &Value, name: &str) -> bool {
    version["names"]
        .as_array()
        .is_some_and(|names| names.iter().any(|n| n == name))
}

/// The digests of the versions `name` uses, read on `conn`, in the order
/// of their digests' bytes (the sled backend's).
async fn digests_of(conn: &mut PgConnection, name: &str) -> Result<Vec<String>> {
    let versions: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT digest, report FROM guest_versions ORDER BY digest COLLATE \"C\"")
            .fetch_all(conn)
            .await?;
    let mut digests = Vec::new();
    for (digest, version) in versions {
        if uses(&decode(&version)?, name) {
            digests.push(digest);
        }
    }
    Ok(digests)
}

impl Postgres {
    async fn try_put_guest(
        &self,
        guest: GuestVersion<'_>,
        digest: &str,
        now_s: i64,
    ) -> Result<(Value, Upload)> {
        let GuestVersion {
            name,
            bytes,
            report,
        } = guest;
        let mut tx = self.pool().begin().await?;
        take_turn(&mut tx).await?;
        let existing = decoded(&mut *tx, "SELECT record FROM guests WHERE name = $1", name).await?;
        let (id, record, upload) = guest_record(name, report, existing.as_ref(), now_s);
        sqlx::query(
            "INSERT INTO guest_blobs (digest, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(digest)
        .bind(bytes)
        .execute(&mut *tx)
        .await?;
        let stored = decoded(
            &mut *tx,
            "SELECT report FROM guest_versions WHERE digest = $1",
            digest,
        )
        .await?;
        let version = version_with(stored, name, report, now_s);
        sqlx::query(
            "INSERT INTO guest_versions (digest, report) VALUES ($1, $2) \
             ON CONFLICT (digest) DO UPDATE SET report = EXCLUDED.report",
        )
        .bind(digest)
        .bind(encode(&version)?)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO guests (name, id, record) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET id = EXCLUDED.id, record = EXCLUDED.record",
        )
        .bind(name)
        .bind(id)
        .bind(encode(&record)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((record, upload))
    }

    async fn try_delete_guest(&self, name: &str) -> Result<(Value, Vec<String>)> {
        let mut tx = self.pool().begin().await?;
        take_turn(&mut tx).await?;
        let Some(record) =
            sqlx::query_scalar::<_, Vec<u8>>("DELETE FROM guests WHERE name = $1 RETURNING record")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Err(Error::NotFound);
        };
        let record: Value = decode(&record)?;
        let mut gone = Vec::new();
        for digest in digests_of(&mut tx, name).await? {
            let version: Vec<u8> =
                sqlx::query_scalar("SELECT report FROM guest_versions WHERE digest = $1")
                    .bind(&digest)
                    .fetch_one(&mut *tx)
                    .await?;
            let mut version: Value = decode(&version)?;
            if let Some(names) = version["names"].as_array_mut() {
                names.retain(|n| n != name);
                if !names.is_empty() {
                    sqlx::query("UPDATE guest_versions SET report = $2 WHERE digest = $1")
                        .bind(&digest)
                        .bind(encode(&version)?)
                        .execute(&mut *tx)
                        .await?;
                    continue;
                }
            }
            sqlx::query("DELETE FROM guest_versions WHERE digest = $1")
                .bind(&digest)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM guest_blobs WHERE digest = $1")
                .bind(&digest)
                .execute(&mut *tx)
                .await?;
            gone.push(digest);
        }
        tx.commit().await?;
        Ok((record, gone))
    }
}

#[async_trait]
impl Guests for Postgres {
    async fn put_guest(&self, guest: GuestVersion<'_>, now_s: i64) -> Result<(Value, Upload)> {
        let digest = report_digest(guest.report)?;
        retrying(|| self.try_put_guest(guest, digest, now_s)).await
    }

    async fn guest(&self, name_or_id: &str) -> Result<Option<Value>> {
        if let Ok(id) = Uuid::try_parse(name_or_id) {
            let by_id = decoded(self.pool(), "SELECT record FROM guests WHERE id = $1", id).await?;
            if by_id.is_some() {
                return Ok(by_id);
            }
        }
        decoded(
            self.pool(),
            "SELECT record FROM guests WHERE name = $1",
            name_or_id,
        )
        .await
    }

    async fn guests(&self) -> Result<Vec<Value>> {
        let records: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT record FROM guests ORDER BY name COLLATE \"C\"")
                .fetch_all(self.pool())
                .await?;
        records.iter().map(|record| decode(record)).collect()
    }

    async fn guest_version(&self, digest: &str) -> Result<Option<Value>> {
        decoded(
            self.pool(),
            "SELECT report FROM guest_versions WHERE digest = $1",
            digest,
        )
        .await
    }

    async fn guest_digests(&self, name: &str) -> Result<Vec<String>> {
        let mut conn = self.pool().acquire().await?;
        digests_of(&mut conn, name).await
    }

    async fn guest_bytes(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT bytes FROM guest_blobs WHERE digest = $1")
                .bind(digest)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    async fn delete_guest(&self, name: &str) -> Result<(Value, Vec<String>)> {
        retrying(|| self.try_delete_guest(name)).await
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{TestDatabase, guest_report};
    use crate::{GuestVersion, Upload};

    #[tokio::test]
    async fn concurrent_uploads_under_one_name_share_its_id() {
        let Some((_db, store)) = TestDatabase::with_store().await else {
            return;
        };
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let digest = format!("d{i}");
                    store
                        .put_guest(
                            GuestVersion {
                                name: "t",
                                bytes: digest.as_bytes(),
                                report: &guest_report(&digest),
                            },
                            i,
                        )
                        .await
                })
            })
            .collect();
        let mut ids = Vec::new();
        let mut created = 0;
        for task in tasks {
            let (record, upload) = task.await.unwrap().unwrap();
            created += usize::from(upload == Upload::Created);
            ids.push(record["id"].clone());
        }
        assert_eq!(created, 1);
        ids.dedup();
        assert_eq!(ids.len(), 1);
        assert_eq!(store.guest_digests("t").await.unwrap().len(), 8);
        let (_, mut gone) = store.delete_guest("t").await.unwrap();
        gone.sort();
        assert_eq!(gone.len(), 8);
    }
}
