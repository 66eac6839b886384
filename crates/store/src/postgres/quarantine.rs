//! The quarantine on PostgreSQL: a record that does not decode is moved
//! out of its table into `quarantine`, with its announcement in the
//! outbox, in one transaction. Keys are sled's (see
//! [`Quarantined::key_text`]), each naming one row of its origin's table.

use super::Postgres;
use super::audit::{ALLOWED, DENIED, split_audit_key};
use super::queue::{DeliveryRows, Stored};
use crate::codec::decode;
use crate::entities::split_entity_key;
use crate::quarantine::{Origin, Quarantine, Quarantined, Retried};
use crate::{Error, Listed, Page, Result};
use async_trait::async_trait;
use hookd_model::audit::AuditRecord;
use hookd_model::clock::{Clock, SystemClock};
use hookd_model::delivery::Delivery;
use sqlx::PgConnection;
use uuid::Uuid;

/// The row a quarantine key names in its origin's table.
#[derive(Debug, Clone, PartialEq)]
enum Row {
    Outbox(i64),
    Delivery(Uuid),
    HookState(Uuid, String),
    Entity(String, Uuid),
    Audit { verdict: i16, at_ms: i64, seq: i64 },
}

impl Row {
    fn of(origin: Origin, key: &[u8]) -> Result<Row> {
        let row = match origin {
            Origin::Outbox => <[u8; 8]>::try_from(key)
                .ok()
                .and_then(|key| i64::try_from(u64::from_be_bytes(key)).ok())
                .map(Row::Outbox),
            Origin::Deliveries => Uuid::from_slice(key).ok().map(Row::Delivery),
            Origin::HookState => key.split_at_checked(16).and_then(|(hook, name)| {
                Some(Row::HookState(
                    Uuid::from_slice(hook).ok()?,
                    String::from_utf8(name.to_vec()).ok()?,
                ))
            }),
            Origin::Entities => split_entity_key(key).map(|(kind, id)| Row::Entity(kind, id)),
            Origin::AuditAllowed | Origin::AuditDenied => {
                split_audit_key(key).map(|(at_ms, seq)| Row::Audit {
                    verdict: if origin == Origin::AuditAllowed {
                        ALLOWED
                    } else {
                        DENIED
                    },
                    at_ms,
                    seq,
                })
            }
        };
        row.ok_or(Error::CorruptKey)
    }

    /// Deletes the row if it still holds `raw`; false if it does not (it
    /// was rewritten since it was read, or is gone).
    async fn remove_holding(&self, conn: &mut PgConnection, raw: &[u8]) -> Result<bool> {
        let query = match self {
            Row::Outbox(record) => {
                sqlx::query("DELETE FROM outbox WHERE record = $1 AND body = $2").bind(*record)
            }
            Row::Delivery(id) => {
                sqlx::query("DELETE FROM deliveries WHERE id = $1 AND body = $2").bind(*id)
            }
            Row::HookState(hook, name) => sqlx::query(
                "DELETE FROM hook_state WHERE hook_id = $1 AND name = $2 AND value = $3",
            )
            .bind(*hook)
            .bind(name.as_str()),
            Row::Entity(kind, id) => {
                sqlx::query("DELETE FROM entities WHERE kind = $1 AND id = $2 AND body = $3")
                    .bind(kind.as_str())
                    .bind(*id)
            }
            Row::Audit {
                verdict,
                at_ms,
                seq,
            } => sqlx::query(
                "DELETE FROM audit WHERE verdict = $1 AND at_ms = $2 AND seq = $3 AND body = $4",
            )
            .bind(*verdict)
            .bind(*at_ms)
            .bind(*seq),
        };
        Ok(query.bind(raw).execute(conn).await?.rows_affected() > 0)
    }

    /// Puts `raw` back in the row unless it holds a record again; false
    /// then. The identity columns of the outbox and the audit log take
    /// the record's own number back, so that it keeps its place.
    async fn restore(&self, conn: &mut PgConnection, raw: &[u8]) -> Result<bool> {
        let query = match self {
            Row::Delivery(_) => {
                let d: Delivery = decode(raw)?;
                let rows = DeliveryRows::of([&d])?;
                return Ok(rows.write(conn, Stored::Keep).await? > 0);
            }
            Row::Outbox(record) => sqlx::query(
                "INSERT INTO outbox (record, body) OVERRIDING SYSTEM VALUE VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(*record),
            Row::HookState(hook, name) => sqlx::query(
                "INSERT INTO hook_state (hook_id, name, value) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(*hook)
            .bind(name.as_str()),
            Row::Entity(kind, id) => sqlx::query(
                "INSERT INTO entities (kind, id, body) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(kind.as_str())
            .bind(*id),
            Row::Audit {
                verdict,
                at_ms,
                seq,
            } => sqlx::query(
                "INSERT INTO audit (verdict, at_ms, seq, body) OVERRIDING SYSTEM VALUE \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(*verdict)
            .bind(*at_ms)
            .bind(*seq),
        };
        Ok(query.bind(raw).execute(conn).await?.rows_affected() > 0)
    }
}

/// A quarantine row: id, origin tag, key, raw, error, at_ms.
type StoredRecord = (Uuid, i16, Vec<u8>, Vec<u8>, String, i64);

fn record_of((id, origin, key, raw, error, at_ms): StoredRecord) -> Result<Quarantined> {
    let origin = u8::try_from(origin)
        .ok()
        .and_then(Origin::of_tag)
        .ok_or(Error::CorruptKey)?;
    Ok(Quarantined {
        id,
        origin,
        key,
        raw,
        error,
        at_ms,
    })
}

/// Decodes the record as its loop will, without acting on it.
fn check_decodes(record: &Quarantined) -> Result<()> {
    let raw = &record.raw;
    match record.origin {
        Origin::Outbox => {
            let key = <[u8; 8]>::try_from(record.key.as_slice()).map_err(|_| Error::CorruptKey)?;
            crate::outbox::decode_record(u64::from_be_bytes(key), raw).map(drop)
        }
        Origin::Deliveries => decode::<Delivery>(raw).map(drop),
        Origin::HookState => crate::queue::decode_state(&record.key, raw).map(drop),
        Origin::Entities => decode::<serde_json::Value>(raw).map(drop),
        Origin::AuditAllowed | Origin::AuditDenied => decode::<AuditRecord>(raw).map(drop),
    }
}

impl Postgres {
    /// Moves the record under `key` of `origin` into the quarantine if it
    /// still holds `raw` (a record rewritten since it was read is left for
    /// its loop to read again), and announces it in the outbox, all in one
    /// transaction: the announcement cannot be lost apart from the move.
    pub(super) async fn quarantine(
        &self,
        origin: Origin,
        key: &[u8],
        raw: &[u8],
        error: &Error,
    ) -> Result<()> {
        let row = Row::of(origin, key)?;
        let record = Quarantined::now(origin, key, raw, error);
        let announcement = crate::outbox::encode_records(&[record.announcement()])?;
        let mut tx = self.pool().begin().await?;
        if !row.remove_holding(&mut tx, raw).await? {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO quarantine (id, origin, key, raw, error, at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(record.id)
        .bind(i16::from(origin.tag()))
        .bind(&record.key)
        .bind(&record.raw)
        .bind(&record.error)
        .bind(record.at_ms)
        .execute(&mut *tx)
        .await?;
        // Last before the commit, as every append (see `outbox`).
        super::outbox::append_records(&mut tx, &announcement).await?;
        tx.commit().await?;
        tracing::error!(origin = origin.as_str(), key = %record.key_text(),
            quarantined = %record.id, error = %record.error,
            "a stored record does not decode; moved to the quarantine");
        self.outbox_written();
        Ok(())
    }
}

#[async_trait]
impl Quarantine for Postgres {
    async fn quarantine_page(&self, page: &Page) -> Result<Listed<Quarantined>> {
        let start = match &page.offset {
            Some(offset) => offset.parse().map_err(|_| Error::InvalidOffset)?,
            None => Uuid::nil(),
        };
        let rows: Vec<StoredRecord> = sqlx::query_as(
            "SELECT id, origin, key, raw, error, at_ms FROM quarantine \
             WHERE id >= $1 ORDER BY id LIMIT $2",
        )
        .bind(start)
        .bind(i64::try_from(page.size.saturating_add(1)).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        let mut data = rows
            .into_iter()
            .map(record_of)
            .collect::<Result<Vec<_>>>()?;
        let next = (data.len() > page.size)
            .then(|| data.pop().map(|r| r.id.to_string()))
            .flatten();
        Ok(Listed { data, next })
    }

    async fn quarantined(&self, id: Uuid) -> Result<Option<Quarantined>> {
        let row: Option<StoredRecord> = sqlx::query_as(
            "SELECT id, origin, key, raw, error, at_ms FROM quarantine WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(record_of).transpose()
    }

    async fn quarantine_counts(&self) -> Result<Vec<(Origin, usize)>> {
        let rows: Vec<(i16, i64)> =
            sqlx::query_as("SELECT origin, count(*) FROM quarantine GROUP BY origin")
                .fetch_all(self.pool())
                .await?;
        Ok(Origin::ALL
            .into_iter()
            .map(|origin| {
                let n = rows
                    .iter()
                    .find(|(tag, _)| *tag == i16::from(origin.tag()))
                    .map_or(0, |(_, n)| usize::try_from(*n).unwrap_or(0));
                (origin, n)
            })
            .collect())
    }

    /// An entity gives up its unique values and references only while no
    /// entity holds its key again: one restored or written since owns
    /// them now.
    async fn delete_quarantined(&self, id: Uuid) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let deleted: Option<(i16, Vec<u8>)> =
            sqlx::query_as("DELETE FROM quarantine WHERE id = $1 RETURNING origin, key")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((origin, key)) = deleted else {
            return Ok(false);
        };
        if origin == i16::from(Origin::Entities.tag())
            && let Some((kind, id)) = split_entity_key(&key)
        {
            let vacant: bool = sqlx::query_scalar(
                "SELECT NOT EXISTS (SELECT 1 FROM entities WHERE kind = $1 AND id = $2)",
            )
            .bind(&kind)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            if vacant {
                sqlx::query("DELETE FROM unique_values WHERE kind = $1 AND id = $2")
                    .bind(&kind)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "DELETE FROM entity_refs WHERE (child_kind = $1 AND child_id = $2) \
                     OR (parent_kind = $1 AND parent_id = $2)",
                )
                .bind(&kind)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn retry_quarantined(&self, id: Uuid) -> Result<Option<Retried>> {
        let Some(mut record) = self.quarantined(id).await? else {
            return Ok(None);
        };
        if let Err(e) = check_decodes(&record) {
            record.error = hookd_model::error_chain(&e);
            record.at_ms = SystemClock.now_ms();
            let updated = sqlx::query("UPDATE quarantine SET error = $2, at_ms = $3 WHERE id = $1")
                .bind(id)
                .bind(&record.error)
                .bind(record.at_ms)
                .execute(self.pool())
                .await?
                .rows_affected();
            return Ok((updated > 0).then_some(Retried::StillCorrupt(record)));
        }
        let row = Row::of(record.origin, &record.key)?;
        let mut tx = self.pool().begin().await?;
        let taken = sqlx::query("DELETE FROM quarantine WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if taken == 0 {
            return Ok(None);
        }
        if !row.restore(&mut tx, &record.raw).await? {
            return Ok(Some(Retried::Superseded));
        }
        tx.commit().await?;
        if record.origin == Origin::Outbox {
            self.outbox_written();
        }
        Ok(Some(Retried::Restored))
    }
}

#[cfg(test)]
mod tests {
    use super::super::audit::audit_key;
    use super::*;
    use crate::codec::encode;
    use crate::entities::entity_key;
    use crate::queue::state_key;
    use crate::testing::{TestDatabase, due};
    use crate::{Audit, AuditFilter, Dispatch, HookStateUpdate, Queue};
    use hookd_model::Event;
    use hookd_model::audit::{CapabilityClass, GuestRef, Verdict};
    use serde_json::json;
    use sqlx::PgPool;

    const GARBAGE: &[u8] = b"[{\"id\": not json";

    async fn setup() -> Option<(TestDatabase, Postgres, PgPool)> {
        let db = TestDatabase::for_this_test().await?;
        let store = Postgres::connect(&db.connection, Uuid::new_v4())
            .await
            .unwrap();
        let pool = crate::postgres::pool(&db.connection).await.unwrap();
        Some((db, store, pool))
    }

    /// Queues `deliveries`, then makes every stored delivery unreadable.
    async fn queue_unreadable(store: &Postgres, pool: &PgPool, deliveries: &[Delivery]) {
        store
            .commit_dispatch(Dispatch::queue(deliveries))
            .await
            .unwrap();
        sqlx::query("UPDATE deliveries SET body = $1")
            .bind(GARBAGE)
            .execute(pool)
            .await
            .unwrap();
    }

    async fn all(store: &Postgres) -> Vec<Quarantined> {
        let page = Page {
            size: 100,
            offset: None,
        };
        store.quarantine_page(&page).await.unwrap().data
    }

    /// The quarantine ids the outbox announces, oldest first.
    async fn announced(pool: &PgPool) -> Vec<Uuid> {
        let bodies: Vec<Vec<u8>> = sqlx::query_scalar("SELECT body FROM outbox ORDER BY record")
            .fetch_all(pool)
            .await
            .unwrap();
        bodies
            .iter()
            .filter_map(|body| crate::outbox::decode_record(0, body).ok())
            .flatten()
            .filter(|(_, e)| e.event == hookd_model::operational::QUARANTINED)
            .map(|(_, e)| e.data["id"].as_str().unwrap().parse().unwrap())
            .collect()
    }

    async fn bytes(pool: &PgPool, sql: &str) -> Option<Vec<u8>> {
        sqlx::query_scalar(sql).fetch_optional(pool).await.unwrap()
    }

    /// As if an older build could not read it.
    fn unreadable() -> Error {
        Error::CorruptKey
    }

    #[tokio::test]
    async fn records_of_every_origin_go_aside_announced_and_come_back_in_place() {
        let Some((_db, store, pool)) = setup().await else {
            return;
        };
        let hook = Uuid::new_v4();

        // Outbox: a record under its number.
        let event = Event::new("s", "e", json!({}), 1);
        let [record_body] = crate::outbox::encode_records(std::slice::from_ref(&event))
            .unwrap()
            .try_into()
            .unwrap();
        let record: i64 =
            sqlx::query_scalar("INSERT INTO outbox (body) VALUES ($1) RETURNING record")
                .bind(&record_body)
                .fetch_one(&pool)
                .await
                .unwrap();
        // Deliveries and memory.
        let d = Delivery::new(hook, event, 0, 5);
        let memory = HookStateUpdate {
            hook,
            name: "on_change".into(),
            value: Some(json!({"digest": "abc"})),
        };
        store
            .commit_dispatch(Dispatch {
                deliveries: std::slice::from_ref(&d),
                state: std::slice::from_ref(&memory),
                ..Dispatch::default()
            })
            .await
            .unwrap();
        // An entity.
        let consumer = Uuid::new_v4();
        let entity = encode(&json!({"id": consumer, "username": "alice"})).unwrap();
        sqlx::query("INSERT INTO entities (kind, id, body) VALUES ('consumers', $1, $2)")
            .bind(consumer)
            .bind(&entity)
            .execute(&pool)
            .await
            .unwrap();
        // A denial.
        let denial = AuditRecord {
            at_ms: 7,
            hook_id: hook,
            guest: GuestRef {
                name: "g".into(),
                digest: "g-digest".into(),
            },
            capability: CapabilityClass::Http,
            target: "example.com:443".into(),
            verdict: Verdict::Denied,
            reason: None,
            count: 1,
        };
        store
            .append_audit(std::slice::from_ref(&denial))
            .await
            .unwrap();
        let (at_ms, seq, audit_body): (i64, i64, Vec<u8>) =
            sqlx::query_as("SELECT at_ms, seq, body FROM audit")
                .fetch_one(&pool)
                .await
                .unwrap();

        let delivery_body = bytes(&pool, "SELECT body FROM deliveries").await.unwrap();
        let memory_body = bytes(&pool, "SELECT value FROM hook_state").await.unwrap();
        let cases = [
            (
                Origin::Outbox,
                (record as u64).to_be_bytes().to_vec(),
                record_body.clone(),
                record.to_string(),
            ),
            (
                Origin::Deliveries,
                d.id.as_bytes().to_vec(),
                delivery_body,
                d.id.to_string(),
            ),
            (
                Origin::HookState,
                state_key(hook, "on_change"),
                memory_body,
                format!("{hook}/on_change"),
            ),
            (
                Origin::Entities,
                entity_key("consumers", consumer),
                entity,
                format!("consumers/{consumer}"),
            ),
            (
                Origin::AuditDenied,
                audit_key(at_ms, seq),
                audit_body,
                hex::encode(audit_key(at_ms, seq)),
            ),
        ];
        for (origin, key, raw, shown) in &cases {
            store
                .quarantine(*origin, key, raw, &unreadable())
                .await
                .unwrap();
            let q = all(&store).await.pop().unwrap();
            assert_eq!(
                (q.origin, &q.key, &q.raw, q.key_text()),
                (*origin, key, raw, shown.clone())
            );
            assert_eq!(q.error, unreadable().to_string());
            assert_eq!(announced(&pool).await.last(), Some(&q.id));
        }
        // Gone from where they were.
        assert_eq!(bytes(&pool, "SELECT body FROM deliveries").await, None);
        assert_eq!(bytes(&pool, "SELECT value FROM hook_state").await, None);
        assert_eq!(bytes(&pool, "SELECT body FROM entities").await, None);
        assert_eq!(bytes(&pool, "SELECT body FROM audit").await, None);
        assert_eq!(store.queue_depth().await.unwrap(), 0);
        assert!(store.hook_states().await.unwrap().is_empty());
        let counts = store.quarantine_counts().await.unwrap();
        assert_eq!(
            counts,
            [
                (Origin::Outbox, 1),
                (Origin::Deliveries, 1),
                (Origin::HookState, 1),
                (Origin::Entities, 1),
                (Origin::AuditAllowed, 0),
                (Origin::AuditDenied, 1)
            ]
        );

        for q in all(&store).await {
            assert_eq!(
                store.retry_quarantined(q.id).await.unwrap(),
                Some(Retried::Restored),
                "{:?}",
                q.origin
            );
        }
        assert!(all(&store).await.is_empty());
        let outbox: Vec<i64> = sqlx::query_scalar("SELECT record FROM outbox WHERE body = $1")
            .bind(&record_body)
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(outbox, [record], "back under its own number");
        assert_eq!(due(&store, 5, 10).await, [d]);
        assert_eq!(store.hooks_with_due(5).await.unwrap(), [hook]);
        assert_eq!(
            store.hook_states().await.unwrap(),
            [(hook, memory.name, memory.value.unwrap())]
        );
        assert!(bytes(&pool, "SELECT body FROM entities").await.is_some());
        let denials = store
            .audit_page(
                &AuditFilter::default(),
                &Page {
                    size: 10,
                    offset: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(denials.data, [denial]);
        let seq_back: i64 = sqlx::query_scalar("SELECT seq FROM audit")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(seq_back, seq);
    }

    #[tokio::test]
    async fn a_record_rewritten_since_it_was_read_stays() {
        let Some((_db, store, pool)) = setup().await else {
            return;
        };
        let d = Delivery::new(Uuid::new_v4(), Event::new("s", "e", json!({}), 0), 0, 5);
        store
            .commit_dispatch(Dispatch::queue(std::slice::from_ref(&d)))
            .await
            .unwrap();
        store
            .quarantine(Origin::Deliveries, d.id.as_bytes(), GARBAGE, &unreadable())
            .await
            .unwrap();
        assert!(all(&store).await.is_empty());
        assert!(announced(&pool).await.is_empty());
        assert_eq!(store.delivery(d.id).await.unwrap(), Some(d));
    }

    #[tokio::test]
    async fn retries_of_what_still_does_not_decode_or_was_replaced_leave_it_there() {
        let Some((_db, store, pool)) = setup().await else {
            return;
        };
        let hook = Uuid::new_v4();
        let d = Delivery::new(hook, Event::new("s", "e", json!({}), 0), 0, 5);
        queue_unreadable(&store, &pool, std::slice::from_ref(&d)).await;
        assert_eq!(store.delivery(d.id).await.unwrap(), None);
        let [q] = all(&store).await.try_into().unwrap();
        assert!(q.error.contains("line 1 column"), "{}", q.error);

        let Some(Retried::StillCorrupt(again)) = store.retry_quarantined(q.id).await.unwrap()
        else {
            panic!("garbage cannot be restored");
        };
        assert_eq!((again.id, &again.raw), (q.id, &q.raw));
        assert!(again.at_ms >= q.at_ms);
        assert_eq!(store.quarantined(q.id).await.unwrap(), Some(again));
        assert!(!store.delivery_exists(d.id).await.unwrap());

        // A record that decodes, whose key holds another record by now.
        let consumer = Uuid::new_v4();
        let key = entity_key("consumers", consumer);
        let old = encode(&json!({"id": consumer, "username": "old"})).unwrap();
        let new = encode(&json!({"id": consumer, "username": "new"})).unwrap();
        sqlx::query("INSERT INTO entities (kind, id, body) VALUES ('consumers', $1, $2)")
            .bind(consumer)
            .bind(&old)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO unique_values (key, kind, id) VALUES ('\\x01', 'consumers', $1)")
            .bind(consumer)
            .execute(&pool)
            .await
            .unwrap();
        store
            .quarantine(Origin::Entities, &key, &old, &unreadable())
            .await
            .unwrap();
        sqlx::query("INSERT INTO entities (kind, id, body) VALUES ('consumers', $1, $2)")
            .bind(consumer)
            .bind(&new)
            .execute(&pool)
            .await
            .unwrap();
        let entity = all(&store).await.pop().unwrap();
        assert_eq!(entity.origin, Origin::Entities);
        assert_eq!(
            store.retry_quarantined(entity.id).await.unwrap(),
            Some(Retried::Superseded)
        );
        assert_eq!(
            store.quarantined(entity.id).await.unwrap(),
            Some(entity.clone())
        );
        assert_eq!(bytes(&pool, "SELECT body FROM entities").await, Some(new));
        // Deleted for good, it leaves the unique values of the entity that
        // holds its key now.
        assert!(store.delete_quarantined(entity.id).await.unwrap());
        let claims: i64 = sqlx::query_scalar("SELECT count(*) FROM unique_values")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(claims, 1);
        assert_eq!(store.retry_quarantined(entity.id).await.unwrap(), None);
        assert!(!store.delete_quarantined(entity.id).await.unwrap());
    }

    #[tokio::test]
    async fn a_deleted_entity_gives_up_its_unique_values_and_references() {
        let Some((_db, store, pool)) = setup().await else {
            return;
        };
        let (gone, other, parent, child) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        sqlx::query("INSERT INTO entities (kind, id, body) VALUES ('routes', $1, $2)")
            .bind(gone)
            .bind(GARBAGE)
            .execute(&pool)
            .await
            .unwrap();
        for (key, id) in [(b"a".as_slice(), gone), (b"b", gone), (b"c", other)] {
            sqlx::query("INSERT INTO unique_values (key, kind, id) VALUES ($1, 'routes', $2)")
                .bind(key)
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
        // Its parent, its child, and a reference between others.
        for (parent_kind, parent_id, child_kind, child_id) in [
            ("services", parent, "routes", gone),
            ("routes", gone, "plugins", child),
            ("services", parent, "routes", other),
        ] {
            sqlx::query(
                "INSERT INTO entity_refs (parent_kind, parent_id, child_kind, child_id, field) \
                 VALUES ($1, $2, $3, $4, 'f')",
            )
            .bind(parent_kind)
            .bind(parent_id)
            .bind(child_kind)
            .bind(child_id)
            .execute(&pool)
            .await
            .unwrap();
        }
        store
            .quarantine(
                Origin::Entities,
                &entity_key("routes", gone),
                GARBAGE,
                &unreadable(),
            )
            .await
            .unwrap();
        let [q] = all(&store).await.try_into().unwrap();
        // Held while it may come back.
        let count = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(count("SELECT count(*) FROM unique_values").await, 3);
        assert!(store.delete_quarantined(q.id).await.unwrap());
        let owners: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM unique_values")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(owners, [other]);
        let refs: Vec<(Uuid, Uuid)> = sqlx::query_as("SELECT parent_id, child_id FROM entity_refs")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(refs, [(parent, other)]);
        assert_eq!(count("SELECT count(*) FROM quarantine").await, 0);
    }

    #[tokio::test]
    async fn pages_go_oldest_first_through_their_offsets() {
        let Some((_db, store, pool)) = setup().await else {
            return;
        };
        let hook = Uuid::new_v4();
        let deliveries: Vec<Delivery> = (0..5)
            .map(|n| Delivery::new(hook, Event::new("s", "e", json!({}), n), n as u64, n))
            .collect();
        queue_unreadable(&store, &pool, &deliveries).await;
        assert!(due(&store, 10, 10).await.is_empty());
        let every = all(&store).await;
        assert_eq!(every.len(), 5);
        let mut ids: Vec<Uuid> = every.iter().map(|q| q.id).collect();
        ids.sort();
        assert_eq!(every.iter().map(|q| q.id).collect::<Vec<_>>(), ids);

        let mut seen = Vec::new();
        let mut offset = None;
        loop {
            let listed = store
                .quarantine_page(&Page { size: 2, offset })
                .await
                .unwrap();
            seen.extend(listed.data.iter().map(|q| q.id));
            match listed.next {
                Some(next) => offset = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ids);
        assert!(matches!(
            store
                .quarantine_page(&Page {
                    size: 2,
                    offset: Some("x".into())
                })
                .await,
            Err(Error::InvalidOffset)
        ));
        assert_eq!(
            store.quarantine_counts().await.unwrap()[1],
            (Origin::Deliveries, 5)
        );
    }

    #[test]
    fn keys_name_their_rows() {
        let id = Uuid::new_v4();
        assert_eq!(
            Row::of(Origin::Outbox, &42u64.to_be_bytes()).unwrap(),
            Row::Outbox(42)
        );
        assert_eq!(
            Row::of(Origin::HookState, &state_key(id, "snooze:d")).unwrap(),
            Row::HookState(id, "snooze:d".into())
        );
        assert_eq!(
            Row::of(Origin::Entities, &entity_key("consumers", id)).unwrap(),
            Row::Entity("consumers".into(), id)
        );
        assert_eq!(
            Row::of(Origin::AuditAllowed, &audit_key(-3, 9)).unwrap(),
            Row::Audit {
                verdict: ALLOWED,
                at_ms: -3,
                seq: 9
            }
        );
        for origin in Origin::ALL {
            assert!(matches!(
                Row::of(origin, &[1, 2, 3]),
                Err(Error::CorruptKey)
            ));
        }
    }
}
