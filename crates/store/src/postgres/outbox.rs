//! The outbox on PostgreSQL: records in `outbox` under an identity key.
//!
//! The dispatcher reads on from the last record it took, so a record must
//! never become visible after one with a greater key: it would be passed
//! over for good. Identity values are handed out when a row is inserted,
//! not when its transaction commits, so two writers may commit in the
//! other order. Writers therefore append under a shared transaction
//! advisory lock held until they commit, and a reader first takes that
//! lock exclusively for a moment: once it has it, every record with a key
//! up to the greatest one it then sees is committed (or rolled back for
//! good), and it reads no further than that. Writers still commit
//! concurrently; only a reader waits for those in flight.

use super::Postgres;
use super::retrying;
use crate::outbox::{OutboxBatch, decode_record, encode_records, record_len};
use crate::{Origin, Outbox, Result};
use async_trait::async_trait;
use hookd_model::Event;
use sqlx::PgConnection;

/// The advisory lock that orders appends before reads: "outbox" in ASCII.
const APPEND_LOCK: i64 = 0x6f_75_74_62_6f_78;

/// Records read at a time: the dispatcher's batches are a few hundred.
const CHUNK: i64 = 256;

/// Appends encoded outbox records, in order, to the transaction on `conn`.
/// Every insert into `outbox` must come through here (see the module's
/// doc), as the transaction's last statements before its commit: the lock
/// it takes holds up readers until then.
pub(super) async fn append_records(conn: &mut PgConnection, records: &[Vec<u8>]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    // One statement: no row reaches the insert, and no key is drawn,
    // before the materialized lock has been taken.
    sqlx::query(
        "WITH appending AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared($1)) \
         INSERT INTO outbox (body) \
         SELECT body FROM appending, unnest($2::bytea[]) WITH ORDINALITY AS r (body, n) \
         ORDER BY n",
    )
    .bind(APPEND_LOCK)
    .bind(records)
    .execute(conn)
    .await?;
    Ok(())
}

impl Postgres {
    /// The greatest key below which no record can appear any more, once
    /// the appends in flight have committed; none while the outbox is
    /// empty.
    async fn outbox_horizon(&self) -> Result<Option<i64>> {
        let mut tx = self.engine_pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await?;
        // A statement of its own: its snapshot is taken after the lock is.
        let last: Option<i64> = sqlx::query_scalar("SELECT max(record) FROM outbox")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(last)
    }

    async fn try_publish(&self, records: &[Vec<u8>]) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        append_records(&mut tx, records).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl Outbox for Postgres {
    async fn outbox_batch_after(&self, after: Option<u64>, limit: usize) -> Result<OutboxBatch> {
        let mut batch = OutboxBatch::default();
        // Keys are positive bigints: past i64::MAX there is nothing.
        let Ok(mut from) = i64::try_from(after.map_or(0, |key| key.saturating_add(1))) else {
            return Ok(batch);
        };
        if limit == 0 {
            return Ok(batch);
        }
        let Some(horizon) = self.outbox_horizon().await? else {
            return Ok(batch);
        };
        while from <= horizon {
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT record, body FROM outbox WHERE record >= $1 AND record <= $2 \
                 ORDER BY record LIMIT $3",
            )
            .bind(from)
            .bind(horizon)
            .bind(CHUNK)
            .fetch_all(self.engine_pool())
            .await?;
            let Some(&(last, _)) = rows.last() else {
                break;
            };
            for (record, body) in rows {
                if batch.events.len() >= limit {
                    return Ok(batch);
                }
                let key = record.cast_unsigned();
                match decode_record(key, &body) {
                    Ok(events) => {
                        batch.records.push(key);
                        batch.events.extend(events);
                    }
                    Err(e) => {
                        self.quarantine(Origin::Outbox, &key.to_be_bytes(), &body, &e)
                            .await?
                    }
                }
            }
            from = last + 1;
        }
        Ok(batch)
    }

    async fn outbox_last_record(&self) -> Result<Option<u64>> {
        let last: Option<i64> = sqlx::query_scalar("SELECT max(record) FROM outbox")
            .fetch_one(self.engine_pool())
            .await?;
        Ok(last.map(i64::cast_unsigned))
    }

    async fn outbox_len(&self) -> Result<usize> {
        let mut len = 0;
        let mut from = 0_i64;
        loop {
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT record, body FROM outbox WHERE record >= $1 ORDER BY record LIMIT $2",
            )
            .bind(from)
            .bind(CHUNK)
            .fetch_all(self.pool())
            .await?;
            let Some(&(last, _)) = rows.last() else {
                return Ok(len);
            };
            len += rows
                .iter()
                .map(|(_, body)| record_len(body).unwrap_or(1))
                .sum::<usize>();
            from = last + 1;
        }
    }

    async fn outbox_changed(&self) {
        self.inner.signals.outbox.notified().await;
    }

    async fn publish(&self, events: &[Event]) -> Result<()> {
        let records = encode_records(events)?;
        if records.is_empty() {
            return Ok(());
        }
        retrying(|| self.try_publish(&records)).await?;
        self.outbox_written();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::TestDatabase;
    use crate::{Origin, Page};
    use hookd_model::Event;
    use serde_json::json;
    use std::collections::HashMap;

    fn event(publisher: i64, n: i64) -> Event {
        Event::new("s", "e", json!({"publisher": publisher}), n)
    }

    #[tokio::test]
    async fn whole_records_come_out_in_order_up_to_the_limit() {
        let Some((_db, store)) = TestDatabase::with_store().await else {
            return;
        };
        assert_eq!(store.outbox_last_record().await.unwrap(), None);
        assert!(store.outbox_batch(10).await.unwrap().records.is_empty());
        store.publish(&[event(0, 1), event(0, 2)]).await.unwrap();
        store.publish(&[event(0, 3)]).await.unwrap();
        store.publish(&[]).await.unwrap();
        assert_eq!(store.outbox_len().await.unwrap(), 3);
        let first = store.outbox_batch(1).await.unwrap();
        assert_eq!(first.records.len(), 1, "whole records until the limit");
        assert_eq!(first.events.len(), 2);
        let rest = store
            .outbox_batch_after(first.records.last().copied(), 10)
            .await
            .unwrap();
        assert_eq!(rest.events.len(), 1);
        assert!(first.events[1].0 < rest.events[0].0);
        assert_eq!(
            store.outbox_last_record().await.unwrap(),
            rest.records.last().copied()
        );
        let none = store.outbox_batch_after(Some(u64::MAX), 10).await.unwrap();
        assert!(none.records.is_empty());
        let ats: Vec<i64> = store
            .outbox_events()
            .await
            .unwrap()
            .iter()
            .map(|e| e.at_ms)
            .collect();
        assert_eq!(ats, [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_corrupt_record_is_counted_then_quarantined_and_passed() {
        let Some((db, store)) = TestDatabase::with_store().await else {
            return;
        };
        store.publish(&[event(0, 1)]).await.unwrap();
        let pool = crate::postgres::pool(&db.connection).await.unwrap();
        let corrupt: i64 =
            sqlx::query_scalar("INSERT INTO outbox (body) VALUES ($1) RETURNING record")
                .bind(b"[{\"nope\"".as_slice())
                .fetch_one(&pool)
                .await
                .unwrap();
        store.publish(&[event(0, 2)]).await.unwrap();
        assert_eq!(store.outbox_len().await.unwrap(), 3);
        let batch = store.outbox_batch(10).await.unwrap();
        let ats: Vec<i64> = batch.events.iter().map(|(_, e)| e.at_ms).collect();
        assert_eq!(ats, [1, 2]);
        assert_eq!(batch.records.len(), 2);
        // The corrupt record is gone; its announcement follows the others.
        let announced = store
            .outbox_batch_after(batch.records.last().copied(), 10)
            .await
            .unwrap();
        assert_eq!(announced.events.len(), 1);
        assert_eq!(
            announced.events[0].1.source,
            hookd_model::operational::SOURCE
        );
        assert_eq!(store.outbox_len().await.unwrap(), 3);
        let quarantined = store
            .quarantine_page(&Page {
                size: 10,
                offset: None,
            })
            .await;
        let quarantined = quarantined.unwrap().data;
        assert_eq!(quarantined.len(), 1);
        assert_eq!(quarantined[0].origin, Origin::Outbox);
        assert_eq!(quarantined[0].key_text(), corrupt.to_string());
    }

    /// A record that commits after a later one is not passed over: the
    /// reader waits for it.
    #[tokio::test]
    async fn a_reader_waits_for_an_earlier_record_still_committing() {
        let Some((db, store)) = TestDatabase::with_store().await else {
            return;
        };
        let pool = crate::postgres::pool(&db.connection).await.unwrap();
        let mut slow = pool.begin().await.unwrap();
        let record = crate::outbox::encode_records(&[event(0, 1)]).unwrap();
        super::append_records(&mut slow, &record).await.unwrap();
        store.publish(&[event(1, 2)]).await.unwrap();
        let reader = tokio::spawn({
            let store = store.clone();
            async move { store.outbox_batch(10).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!reader.is_finished(), "read past a record still committing");
        slow.commit().await.unwrap();
        let batch = reader.await.unwrap().unwrap();
        let ats: Vec<i64> = batch.events.iter().map(|(_, e)| e.at_ms).collect();
        assert_eq!(ats, [1, 2]);
    }

    /// The dispatcher reads on from the last record it took: a record
    /// that became visible after a later one would be lost to it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_reader_moving_on_misses_nothing_of_concurrent_publishers() {
        let Some((_db, store)) = TestDatabase::with_store().await else {
            return;
        };
        const PUBLISHERS: i64 = 6;
        const EACH: i64 = 40;
        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|p| {
                let store = store.clone();
                tokio::spawn(async move {
                    for n in 0..EACH {
                        store.publish(&[event(p, n)]).await.unwrap();
                    }
                })
            })
            .collect();
        let mut after = None;
        let mut seen: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut taken = 0;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while taken < PUBLISHERS * EACH {
            assert!(
                tokio::time::Instant::now() < deadline,
                "took {taken} events"
            );
            let batch = store.outbox_batch_after(after, 7).await.unwrap();
            if let Some(&last) = batch.records.last() {
                after = Some(last);
            }
            for (_, e) in batch.events {
                seen.entry(e.data["publisher"].as_i64().unwrap())
                    .or_default()
                    .push(e.at_ms);
                taken += 1;
            }
        }
        for publisher in publishers {
            publisher.await.unwrap();
        }
        let rest = store.outbox_batch_after(after, usize::MAX).await.unwrap();
        assert!(rest.events.is_empty());
        for p in 0..PUBLISHERS {
            assert_eq!(seen[&p], (0..EACH).collect::<Vec<_>>(), "publisher {p}");
        }
    }

    #[tokio::test]
    async fn a_write_wakes_the_dispatcher() {
        let Some((_db, store)) = TestDatabase::with_store().await else {
            return;
        };
        store.publish(&[event(0, 1)]).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), store.outbox_changed())
            .await
            .unwrap();
    }
}
