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
use crate::guests::{Guests, Upload, guest_record, report_digest, version_with};
use crate::{Error, Result};
use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

/// The advisory lock guest writes take turns on: "guests" in ASCII.
const WRITE_LOCK: i64 = 0x67_75_65_73_74_73;

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
        name: &str,
        digest: &str,
        bytes: &[u8],
        report: &Map<String, Value>,
        now_s: i64,
    ) -> Result<(Value, Upload)> {
        let mut tx = self.pool().begin().await?;
        take_turn(&mut tx).await?;
        let existing: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT record FROM guests WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        let existing: Option<Value> = existing.map(|record| decode(&record)).transpose()?;
        let (id, record, upload) = guest_record(name, report, existing.as_ref(), now_s);
        sqlx::query(
            "INSERT INTO guest_blobs (digest, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(digest)
        .bind(bytes)
        .execute(&mut *tx)
        .await?;
        let version: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT report FROM guest_versions WHERE digest = $1")
                .bind(digest)
                .fetch_optional(&mut *tx)
                .await?;
        let stored = version.map(|version| decode(&version)).transpose()?;
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
    async fn put_guest(
        &self,
        name: &str,
        bytes: &[u8],
        report: &Map<String, Value>,
        now_s: i64,
    ) -> Result<(Value, Upload)> {
        let digest = report_digest(report)?;
        retrying(|| self.try_put_guest(name, digest, bytes, report, now_s)).await
    }

    async fn guest(&self, name_or_id: &str) -> Result<Option<Value>> {
        if let Ok(id) = Uuid::try_parse(name_or_id) {
            let record: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT record FROM guests WHERE id = $1")
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?;
            if let Some(record) = record {
                return decode(&record).map(Some);
            }
        }
        let record: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT record FROM guests WHERE name = $1")
                .bind(name_or_id)
                .fetch_optional(self.pool())
                .await?;
        record.map(|record| decode(&record)).transpose()
    }

    async fn guests(&self) -> Result<Vec<Value>> {
        let records: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT record FROM guests ORDER BY name COLLATE \"C\"")
                .fetch_all(self.pool())
                .await?;
        records.iter().map(|record| decode(record)).collect()
    }

    async fn guest_version(&self, digest: &str) -> Result<Option<Value>> {
        let version: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT report FROM guest_versions WHERE digest = $1")
                .bind(digest)
                .fetch_optional(self.pool())
                .await?;
        version.map(|version| decode(&version)).transpose()
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
    use crate::{Error, Upload};
    use serde_json::{Map, json};

    #[tokio::test]
    async fn a_name_keeps_its_id_and_its_versions() {
        let Some(db) = TestDatabase::create("a_name_keeps_its_id_and_its_versions").await else {
            return;
        };
        let store = db.store().await;
        let (first, upload) = store
            .put_guest("t", b"one", &guest_report("d1"), 10)
            .await
            .unwrap();
        assert_eq!(upload, Upload::Created);
        let (second, upload) = store
            .put_guest("t", b"two", &guest_report("d2"), 20)
            .await
            .unwrap();
        assert_eq!(upload, Upload::Replaced);
        assert_eq!(first["id"], second["id"]);
        assert_eq!(second["created_at"], 10);
        assert_eq!(second["updated_at"], 20);
        assert_eq!(second["digest"], "d2");
        assert_eq!(store.guest("t").await.unwrap().unwrap(), second);
        let by_id = store.guest(second["id"].as_str().unwrap()).await.unwrap();
        assert_eq!(by_id.unwrap(), second);
        assert_eq!(store.guests().await.unwrap(), std::slice::from_ref(&second));
        assert_eq!(
            store.guest_bytes("d1").await.unwrap().as_deref(),
            Some(&b"one"[..])
        );
        let version = store.guest_version("d1").await.unwrap().unwrap();
        assert_eq!(version["names"], json!(["t"]));
        assert_eq!(version["uploaded_at"], 10);
        assert_eq!(store.guest_digests("t").await.unwrap(), ["d1", "d2"]);
        let err = store
            .put_guest("u", b"x", &Map::new(), 0)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::GuestWithoutDigest), "{err:?}");
        assert!(store.guest("u").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn delete_keeps_bytes_another_name_uses() {
        let Some(db) = TestDatabase::create("delete_keeps_bytes_another_name_uses").await else {
            return;
        };
        let store = db.store().await;
        store
            .put_guest("a", b"same", &guest_report("d"), 0)
            .await
            .unwrap();
        store
            .put_guest("b", b"same", &guest_report("d"), 1)
            .await
            .unwrap();
        store
            .put_guest("a", b"other", &guest_report("e"), 2)
            .await
            .unwrap();
        let version = store.guest_version("d").await.unwrap().unwrap();
        assert_eq!(version["names"], json!(["a", "b"]));
        let (record, gone) = store.delete_guest("a").await.unwrap();
        assert_eq!(record["digest"], "e");
        assert_eq!(gone, ["e"]);
        assert!(store.guest("a").await.unwrap().is_none());
        assert!(
            store
                .guest(record["id"].as_str().unwrap())
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.guest_bytes("d").await.unwrap().is_some());
        assert!(store.guest_bytes("e").await.unwrap().is_none());
        assert_eq!(
            store.guest_version("d").await.unwrap().unwrap()["names"],
            json!(["b"])
        );
        assert!(matches!(
            store.delete_guest("a").await,
            Err(Error::NotFound)
        ));
        let (_, gone) = store.delete_guest("b").await.unwrap();
        assert_eq!(gone, ["d"], "the last user takes the shared bytes with it");
        assert!(store.guests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn concurrent_uploads_under_one_name_share_its_id() {
        let Some(db) = TestDatabase::create("concurrent_uploads_under_one_name_share_its_id").await
        else {
            return;
        };
        let store = db.store().await;
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let digest = format!("d{i}");
                    store
                        .put_guest("t", digest.as_bytes(), &guest_report(&digest), i)
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
