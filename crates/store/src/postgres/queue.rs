//! The delivery queue on PostgreSQL: a row per delivery whose columns are
//! the indexes sled keeps as trees of their own (due, finished, dead, by
//! hook), written in the same statement as the delivery so that they
//! cannot drift from it, and the hook memory of on_change and snooze.
//!
//! The hot paths (dispatch and attempt commits) write a whole batch with
//! one statement per table, its rows passed as arrays.

use super::Postgres;
use crate::codec::{decode, encode, encode_packed};
use crate::queue::{
    Attempted, Dispatch, Due, HookListing, HookStateUpdate, Queue, Skip, decode_state, finished_at,
    paged, state_key,
};
use crate::{Error, Listed, Origin, Page, Result};
use async_trait::async_trait;
use hookd_model::delivery::{Delivery, DeliveryState};
use serde_json::Value;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// Where `meta` keeps the last outbox record whose dispatch was committed.
const DISPATCHED_THROUGH: &str = "dispatched_through";

/// Due keys read at most per query when `skip` passes over many: the
/// first query asks for `limit` and a little more, and each one after it
/// for twice as many, up to this.
const DUE_CHUNK: usize = 4096;

/// Room left in the first due query for deliveries `skip` passes over.
const DUE_SLACK: usize = 16;

/// Deliveries read at most per query of a listing.
const LIST_CHUNK: usize = 1000;

/// Finished deliveries removed per transaction by retention, so that
/// pruning far behind never holds one long transaction.
const PRUNE_CHUNK: i64 = 500;

/// `deliveries` with every column of one batch: the columns come from the
/// delivery itself, so a write never reads what it replaces.
///
/// A row with more attempts recorded than the write is kept: a node that
/// lost a hook's shard while an attempt ran must not record over what the
/// node that took the shard over has recorded since.
const UPSERT: &str = "INSERT INTO deliveries \
     (id, hook_id, seq, created_at_ms, due_ms, finished_ms, dead, body, attempts) \
     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[], $4::int8[], \
                          $5::int8[], $6::int8[], $7::bool[], $8::bytea[], $9::int4[]) \
     ON CONFLICT (id) DO UPDATE SET hook_id = EXCLUDED.hook_id, seq = EXCLUDED.seq, \
         created_at_ms = EXCLUDED.created_at_ms, due_ms = EXCLUDED.due_ms, \
         finished_ms = EXCLUDED.finished_ms, dead = EXCLUDED.dead, body = EXCLUDED.body, \
         attempts = EXCLUDED.attempts \
     WHERE deliveries.attempts <= EXCLUDED.attempts";

/// As [`UPSERT`], leaving a delivery already stored as it is.
const INSERT_NEW: &str = "INSERT INTO deliveries \
     (id, hook_id, seq, created_at_ms, due_ms, finished_ms, dead, body, attempts) \
     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[], $4::int8[], \
                          $5::int8[], $6::int8[], $7::bool[], $8::bytea[], $9::int4[]) \
     ON CONFLICT (id) DO NOTHING";

/// What a write of deliveries does to one already stored under the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stored {
    /// Replaced.
    Replace,
    /// Kept: the new one is not written.
    Keep,
}

/// Deliveries as the columns of `deliveries`, an array each, sorted by id
/// with one row per id (the last given wins, as if written one after the
/// other): one statement may not touch a row twice, and transactions that
/// lock rows in the same order cannot deadlock on them.
#[derive(Default)]
pub(super) struct DeliveryRows {
    ids: Vec<Uuid>,
    hooks: Vec<Uuid>,
    seqs: Vec<i64>,
    created: Vec<i64>,
    due: Vec<Option<i64>>,
    finished: Vec<Option<i64>>,
    dead: Vec<bool>,
    bodies: Vec<Vec<u8>>,
    attempts: Vec<i32>,
}

impl DeliveryRows {
    pub(super) fn of<'a>(deliveries: impl IntoIterator<Item = &'a Delivery>) -> Result<Self> {
        let mut sorted: Vec<&Delivery> = deliveries.into_iter().collect();
        // Stable: of equal ids, the one given last stays last.
        sorted.sort_by_key(|d| d.id);
        let mut rows = DeliveryRows::default();
        for (i, d) in sorted.iter().enumerate() {
            if sorted.get(i + 1).is_some_and(|next| next.id == d.id) {
                continue;
            }
            rows.ids.push(d.id);
            rows.hooks.push(d.hook_id);
            // Positions stay far below 2^63: the cast keeps their order.
            rows.seqs.push(d.seq as i64);
            rows.created.push(d.created_at_ms);
            rows.due.push(d.next_attempt_at_ms);
            rows.finished
                .push(d.state.is_final().then(|| finished_at(d)));
            rows.dead.push(d.state == DeliveryState::Dead);
            rows.bodies.push(encode_packed(d)?);
            rows.attempts
                .push(i32::try_from(d.attempts.len()).unwrap_or(i32::MAX));
        }
        Ok(rows)
    }

    /// Writes the rows; returns how many were written.
    pub(super) async fn write(&self, conn: &mut PgConnection, stored: Stored) -> Result<u64> {
        if self.ids.is_empty() {
            return Ok(0);
        }
        let sql = match stored {
            Stored::Replace => UPSERT,
            Stored::Keep => INSERT_NEW,
        };
        Ok(sqlx::query(sql)
            .bind(&self.ids)
            .bind(&self.hooks)
            .bind(&self.seqs)
            .bind(&self.created)
            .bind(&self.due)
            .bind(&self.finished)
            .bind(&self.dead)
            .bind(&self.bodies)
            .bind(&self.attempts)
            .execute(conn)
            .await?
            .rows_affected())
    }
}

/// A place in the due order: (due_ms, seq, id), soonest first.
type DueKey = (i64, i64, Uuid);

/// The place right after `key` in the due order, if there is one.
fn due_successor((due, seq, id): DueKey) -> Option<DueKey> {
    if let Some(next) = id.as_u128().checked_add(1) {
        return Some((due, seq, Uuid::from_u128(next)));
    }
    if let Some(next) = seq.checked_add(1) {
        return Some((due, next, Uuid::nil()));
    }
    due.checked_add(1).map(|next| (next, i64::MIN, Uuid::nil()))
}

/// A place in a newest-first listing: (time, id).
type ListKey = (i64, Uuid);

/// The place right after `key` in a newest-first listing, if there is one.
fn list_successor((at, id): ListKey) -> Option<ListKey> {
    if let Some(previous) = id.as_u128().checked_sub(1) {
        return Some((at, Uuid::from_u128(previous)));
    }
    at.checked_sub(1).map(|previous| (previous, Uuid::max()))
}

/// The first place of a newest-first listing: before every row.
const NEWEST: ListKey = (i64::MAX, Uuid::max());

const DUE_KEYS: &str = "SELECT due_ms, seq, id FROM deliveries \
     WHERE due_ms IS NOT NULL AND due_ms <= $1 AND (due_ms, seq, id) >= ($2, $3, $4) \
     ORDER BY due_ms, seq, id LIMIT $5";

const HOOK_DUE_KEYS: &str = "SELECT due_ms, seq, id FROM deliveries \
     WHERE hook_id = $1 AND due_ms IS NOT NULL AND due_ms <= $2 \
       AND (due_ms, seq, id) >= ($3, $4, $5) \
     ORDER BY due_ms, seq, id LIMIT $6";

/// A hook's deliveries, newest first, from a place on (included).
const HOOK_LISTING: &str = "SELECT created_at_ms, id, body FROM deliveries \
     WHERE hook_id = $1 AND (created_at_ms, id) <= ($2, $3) \
     ORDER BY created_at_ms DESC, id DESC LIMIT $4";

/// Dead deliveries, the latest to die first, from a place on (included).
const DEAD_LISTING: &str = "SELECT finished_ms, id, body FROM deliveries \
     WHERE dead AND (finished_ms, id) <= ($1, $2) \
     ORDER BY finished_ms DESC, id DESC LIMIT $3";

/// The hooks with a delivery scheduled, one index look each (a skip scan:
/// the backlog of one hook is never read through), kept when their
/// soonest is due.
const HOOKS_WITH_DUE: &str = "WITH RECURSIVE scheduled(hook_id) AS ( \
         (SELECT hook_id FROM deliveries WHERE due_ms IS NOT NULL ORDER BY hook_id LIMIT 1) \
         UNION ALL \
         SELECT (SELECT d.hook_id FROM deliveries d \
                 WHERE d.due_ms IS NOT NULL AND d.hook_id > s.hook_id \
                 ORDER BY d.hook_id LIMIT 1) \
         FROM scheduled s WHERE s.hook_id IS NOT NULL) \
     SELECT s.hook_id FROM scheduled s \
     WHERE s.hook_id IS NOT NULL AND EXISTS ( \
         SELECT 1 FROM deliveries d \
         WHERE d.hook_id = s.hook_id AND d.due_ms IS NOT NULL AND d.due_ms <= $1) \
     ORDER BY s.hook_id";

/// The oldest finished deliveries up to a place, a chunk of them, found
/// by their ids (a join would read every row up to the place, each
/// chunk). The outer conditions are checked again on a row changed
/// meanwhile: a delivery redelivered since it was picked is no longer
/// finished, or finished later, and stays.
const PRUNE: &str = "DELETE FROM deliveries WHERE id = ANY(ARRAY( \
         SELECT id FROM deliveries \
         WHERE finished_ms IS NOT NULL AND (finished_ms, id) <= ($1, $2) \
         ORDER BY finished_ms, id LIMIT $3)) \
     AND finished_ms IS NOT NULL AND (finished_ms, id) <= ($1, $2)";

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Postgres {
    /// A delivery from its stored bytes; none when they do not decode, and
    /// then it is in the quarantine.
    async fn decoded(&self, id: Uuid, raw: &[u8]) -> Result<Option<Delivery>> {
        match decode(raw) {
            Ok(d) => Ok(Some(d)),
            Err(e) => {
                self.quarantine(Origin::Deliveries, id.as_bytes(), raw, &e)
                    .await?;
                Ok(None)
            }
        }
    }

    /// Due deliveries of one hook or of all, soonest first. Keys are read
    /// first and `skip` asked about each, so that bodies are fetched only
    /// for the deliveries returned; more keys are read while some of
    /// those wanted are skipped, gone or quarantined.
    async fn read_due(&self, due: Due, skip: Skip<'_>) -> Result<Vec<Delivery>> {
        let Due {
            hook,
            now_ms,
            limit,
        } = due;
        let mut out = Vec::new();
        let mut from: DueKey = (i64::MIN, i64::MIN, Uuid::nil());
        let mut chunk = limit.saturating_add(DUE_SLACK).min(DUE_CHUNK);
        while out.len() < limit {
            let query = match hook {
                Some(hook) => sqlx::query_as(HOOK_DUE_KEYS).bind(hook),
                None => sqlx::query_as(DUE_KEYS),
            };
            let keys: Vec<DueKey> = query
                .bind(now_ms)
                .bind(from.0)
                .bind(from.1)
                .bind(from.2)
                .bind(sql_limit(chunk))
                .fetch_all(self.engine_pool())
                .await?;
            let mut wanted = Vec::new();
            // The first key not looked at, when enough were wanted before
            // the chunk ended.
            let mut unread = None;
            for &key in &keys {
                if out.len() + wanted.len() == limit {
                    unread = Some(key);
                    break;
                }
                if !skip(key.2) {
                    wanted.push(key.2);
                }
            }
            if !wanted.is_empty() {
                let mut bodies: HashMap<Uuid, Vec<u8>> =
                    sqlx::query_as("SELECT id, body FROM deliveries WHERE id = ANY($1)")
                        .bind(&wanted)
                        .fetch_all(self.engine_pool())
                        .await?
                        .into_iter()
                        .collect();
                for id in wanted {
                    // Gone since its key was read: finished and pruned.
                    let Some(raw) = bodies.remove(&id) else {
                        continue;
                    };
                    if let Some(d) = self.decoded(id, &raw).await? {
                        out.push(d);
                    }
                }
            }
            from = match unread {
                Some(key) => key,
                None if keys.len() < chunk => break,
                None => match keys.last().copied().and_then(due_successor) {
                    Some(key) => key,
                    None => break,
                },
            };
            chunk = chunk.saturating_mul(2).min(DUE_CHUNK);
        }
        Ok(out)
    }

    /// Up to `limit` deliveries of a newest-first listing (`sql`, scoped to
    /// a hook or not) from `from` (included) on; one that does not decode
    /// is quarantined and the listing goes on past it.
    async fn read_listing(
        &self,
        sql: &'static str,
        hook: Option<Uuid>,
        mut from: ListKey,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let mut data = Vec::new();
        while data.len() < limit {
            let chunk = (limit - data.len()).min(LIST_CHUNK);
            let query = match hook {
                Some(hook) => sqlx::query_as(sql).bind(hook),
                None => sqlx::query_as(sql),
            };
            let rows: Vec<(i64, Uuid, Vec<u8>)> = query
                .bind(from.0)
                .bind(from.1)
                .bind(sql_limit(chunk))
                .fetch_all(self.pool())
                .await?;
            for (_, id, raw) in &rows {
                if let Some(d) = self.decoded(*id, raw).await? {
                    data.push(d);
                }
            }
            if rows.len() < chunk {
                break;
            }
            match rows
                .last()
                .and_then(|(at, id, _)| list_successor((*at, *id)))
            {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(data)
    }
}

/// Removes outbox records by key.
pub(super) async fn delete_records(conn: &mut PgConnection, records: &[u64]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let keys: Vec<i64> = records
        .iter()
        .filter_map(|&r| i64::try_from(r).ok())
        .collect();
    sqlx::query("DELETE FROM outbox WHERE record = ANY($1)")
        .bind(keys)
        .execute(conn)
        .await?;
    Ok(())
}

/// Changes to the hook memory, one per entry (the last given wins), in
/// key order: what is remembered and what is forgotten.
#[derive(Default)]
struct MemoryRows {
    put_hooks: Vec<Uuid>,
    put_names: Vec<String>,
    put_values: Vec<Vec<u8>>,
    forget_hooks: Vec<Uuid>,
    forget_names: Vec<String>,
}

impl MemoryRows {
    fn of(updates: &[HookStateUpdate]) -> Result<Self> {
        let mut sorted: Vec<&HookStateUpdate> = updates.iter().collect();
        sorted.sort_by(|a, b| (a.hook, &a.name).cmp(&(b.hook, &b.name)));
        let mut rows = MemoryRows::default();
        for (i, u) in sorted.iter().enumerate() {
            if sorted
                .get(i + 1)
                .is_some_and(|next| (next.hook, &next.name) == (u.hook, &u.name))
            {
                continue;
            }
            match &u.value {
                Some(value) => {
                    rows.put_hooks.push(u.hook);
                    rows.put_names.push(u.name.clone());
                    rows.put_values.push(encode(value)?);
                }
                None => {
                    rows.forget_hooks.push(u.hook);
                    rows.forget_names.push(u.name.clone());
                }
            }
        }
        Ok(rows)
    }

    async fn write(&self, conn: &mut PgConnection) -> Result<()> {
        if !self.put_hooks.is_empty() {
            sqlx::query(
                "INSERT INTO hook_state (hook_id, name, value) \
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bytea[]) \
                 ON CONFLICT (hook_id, name) DO UPDATE SET value = EXCLUDED.value",
            )
            .bind(&self.put_hooks)
            .bind(&self.put_names)
            .bind(&self.put_values)
            .execute(&mut *conn)
            .await?;
        }
        if !self.forget_hooks.is_empty() {
            sqlx::query(
                "DELETE FROM hook_state WHERE (hook_id, name) IN \
                 (SELECT * FROM UNNEST($1::uuid[], $2::text[]))",
            )
            .bind(&self.forget_hooks)
            .bind(&self.forget_names)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Queue for Postgres {
    fn announce_due(&self) {
        self.inner.signals.due_written();
    }

    async fn queue_changed(&self) {
        self.inner.signals.due.notified().await;
    }

    /// A delivery stored before is replaced without being read, so one
    /// that no longer decodes cannot fail the batch: the new record takes
    /// its place (sled moves the old one to the quarantine on the way,
    /// because it must read it to move its index entries).
    async fn commit_dispatch(&self, batch: Dispatch<'_>) -> Result<()> {
        let rows = DeliveryRows::of(batch.deliveries)?;
        let memory = MemoryRows::of(batch.state)?;
        let mut tx = self.engine_pool().begin().await?;
        delete_records(&mut tx, batch.records).await?;
        if let Some(through) = batch.through {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            )
            .bind(DISPATCHED_THROUGH)
            .bind(through.to_be_bytes().as_slice())
            .execute(&mut *tx)
            .await?;
        }
        rows.write(&mut tx, Stored::Replace).await?;
        memory.write(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn dispatched_through(&self) -> Result<Option<u64>> {
        let value: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(DISPATCHED_THROUGH)
            .fetch_optional(self.engine_pool())
            .await?;
        value
            .map(|bytes| {
                <[u8; 8]>::try_from(bytes.as_slice())
                    .map(u64::from_be_bytes)
                    .map_err(|_| Error::CorruptKey)
            })
            .transpose()
    }

    async fn hook_states(&self) -> Result<Vec<(Uuid, String, Value)>> {
        // Byte order of the names, as sled keeps them.
        let rows: Vec<(Uuid, String, Vec<u8>)> = sqlx::query_as(
            "SELECT hook_id, name, value FROM hook_state ORDER BY hook_id, name COLLATE \"C\"",
        )
        .fetch_all(self.pool())
        .await?;
        let mut states = Vec::with_capacity(rows.len());
        for (hook, name, value) in rows {
            let key = state_key(hook, &name);
            match decode_state(&key, &value) {
                Ok(state) => states.push(state),
                Err(e) => {
                    self.quarantine(Origin::HookState, &key, &value, &e).await?;
                }
            }
        }
        Ok(states)
    }

    async fn due_deliveries(&self, due: Due, skip: Skip<'_>) -> Result<Vec<Delivery>> {
        self.read_due(due, skip).await
    }

    async fn hooks_with_due(&self, now_ms: i64) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar(HOOKS_WITH_DUE)
            .bind(now_ms)
            .fetch_all(self.engine_pool())
            .await?)
    }

    async fn next_due_ms(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT min(due_ms) FROM deliveries WHERE due_ms IS NOT NULL")
                .fetch_one(self.pool())
                .await?,
        )
    }

    async fn next_due_after(&self, now_ms: i64) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT min(due_ms) FROM deliveries WHERE due_ms > $1")
                .bind(now_ms)
                .fetch_one(self.engine_pool())
                .await?,
        )
    }

    async fn queue_depth(&self) -> Result<usize> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE due_ms IS NOT NULL")
            .fetch_one(self.pool())
            .await?;
        Ok(count(n))
    }

    async fn commit_attempts(&self, batch: Attempted<'_>) -> Result<()> {
        // Stored before or not, a delivery's row is written whole: no
        // difference to make between the two.
        let rows = DeliveryRows::of(batch.updated.iter().chain(batch.first))?;
        let mut tx = self.engine_pool().begin().await?;
        rows.write(&mut tx, Stored::Replace).await?;
        delete_records(&mut tx, batch.ended).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delivery_exists(&self, id: Uuid) -> Result<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM deliveries WHERE id = $1)")
                .bind(id)
                .fetch_one(self.engine_pool())
                .await?,
        )
    }

    async fn delivery(&self, id: Uuid) -> Result<Option<Delivery>> {
        let raw: Option<Vec<u8>> = sqlx::query_scalar("SELECT body FROM deliveries WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        match raw {
            Some(raw) => self.decoded(id, &raw).await,
            None => Ok(None),
        }
    }

    async fn hook_deliveries_from(&self, from: HookListing, limit: usize) -> Result<Vec<Delivery>> {
        let through = from.through.map_or(NEWEST, |at| (at.created_at_ms, at.id));
        self.read_listing(HOOK_LISTING, Some(from.hook), through, limit)
            .await
    }

    async fn dead_deliveries(&self, page: &Page) -> Result<Listed<Delivery>> {
        let from = match &page.offset {
            Some(offset) => {
                let start: Uuid = offset.parse().map_err(|_| Error::InvalidOffset)?;
                let died: Option<i64> =
                    sqlx::query_scalar("SELECT finished_ms FROM deliveries WHERE id = $1 AND dead")
                        .bind(start)
                        .fetch_optional(self.pool())
                        .await?
                        .flatten();
                (died.ok_or(Error::InvalidOffset)?, start)
            }
            None => NEWEST,
        };
        let data = self
            .read_listing(DEAD_LISTING, None, from, page.size.saturating_add(1))
            .await?;
        Ok(paged(data, page.size))
    }

    /// What goes is a run of the oldest finished deliveries: up to the
    /// newest of those beyond `keep` or of those finished before the
    /// cutoff, whichever is later. That place is found once; then the run
    /// goes [`PRUNE_CHUNK`] at a time, each chunk a transaction of its
    /// own. A delivery that does not decode goes like any other: retention
    /// needs only its columns.
    async fn prune_deliveries(&self, keep: usize, finished_before_ms: i64) -> Result<usize> {
        let beyond_keep: Option<ListKey> = sqlx::query_as(
            "SELECT finished_ms, id FROM deliveries WHERE finished_ms IS NOT NULL \
             ORDER BY finished_ms DESC, id DESC OFFSET $1 LIMIT 1",
        )
        .bind(sql_limit(keep))
        .fetch_optional(self.engine_pool())
        .await?;
        let too_old = finished_before_ms
            .checked_sub(1)
            .map(|last| (last, Uuid::max()));
        let Some((upto_ms, upto_id)) = beyond_keep.max(too_old) else {
            return Ok(0);
        };
        super::delete_in_chunks(self.engine_pool(), PRUNE_CHUNK, || {
            sqlx::query(PRUNE).bind(upto_ms).bind(upto_id)
        })
        .await
    }

    async fn finished_count(&self) -> Result<usize> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE finished_ms IS NOT NULL")
                .fetch_one(self.pool())
                .await?;
        Ok(count(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::queue::ListedAt;
    use crate::testing::{TestDatabase, due, finished};
    use hookd_model::Event;
    use serde_json::json;
    use sqlx::PgPool;

    fn delivery(hook: Uuid, seq: u64, created_at_ms: i64, due_ms: i64) -> Delivery {
        let mut d = Delivery::new(hook, Event::new("s", "e", json!({"n": seq}), 0), seq, 0);
        d.created_at_ms = created_at_ms;
        d.next_attempt_at_ms = Some(due_ms);
        d
    }

    fn ids(deliveries: &[Delivery]) -> Vec<Uuid> {
        deliveries.iter().map(|d| d.id).collect()
    }

    fn page(size: usize, offset: Option<String>) -> Page {
        Page { size, offset }
    }

    async fn setup() -> Option<(TestDatabase, Store, PgPool)> {
        let (db, store) = TestDatabase::with_store().await?;
        let pool = crate::postgres::pool(&db.connection).await.unwrap();
        Some((db, store, pool))
    }

    async fn corrupt(pool: &PgPool, id: Uuid) {
        sqlx::query("UPDATE deliveries SET body = $2 WHERE id = $1")
            .bind(id)
            .bind(b"{\"id\": not json".as_slice())
            .execute(pool)
            .await
            .unwrap();
    }

    /// Every page of a listing, followed through its offsets.
    async fn all_pages<F, Fut>(size: usize, mut read: F) -> Vec<Uuid>
    where
        F: FnMut(Page) -> Fut,
        Fut: std::future::Future<Output = Result<Listed<Delivery>>>,
    {
        let mut seen = Vec::new();
        let mut offset = None;
        loop {
            let listed = read(page(size, offset)).await.unwrap();
            assert!(listed.data.len() <= size);
            seen.extend(ids(&listed.data));
            match listed.next {
                Some(next) => offset = Some(next),
                None => return seen,
            }
        }
    }

    #[tokio::test]
    async fn due_reads_pass_over_skipped_ids_before_counting_them_across_chunks() {
        let Some((_db, store, _pool)) = setup().await else {
            return;
        };
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        // Due times repeat, so the order rests on seq and id as well.
        let all: Vec<Delivery> = (0..300u64)
            .map(|n| delivery(if n % 3 == 0 { b } else { a }, n % 50, 0, (n % 7) as i64))
            .collect();
        store.commit_dispatch(Dispatch::queue(&all)).await.unwrap();
        let mut by_due: Vec<&Delivery> = all
            .iter()
            .filter(|d| d.next_attempt_at_ms <= Some(4))
            .collect();
        by_due.sort_by_key(|d| (d.next_attempt_at_ms, d.seq, d.id));

        // Half of those due are held elsewhere: far more than the first
        // query's slack, so the read goes on past its first chunk.
        let held: std::collections::HashSet<Uuid> =
            by_due.iter().step_by(2).map(|d| d.id).collect();
        let mut asked = 0;
        let mut skip = |id: Uuid| {
            asked += 1;
            held.contains(&id)
        };
        let read = store
            .due_deliveries(Due::every_hook(4, 60), &mut skip)
            .await
            .unwrap();
        let wanted: Vec<Uuid> = by_due
            .iter()
            .map(|d| d.id)
            .filter(|id| !held.contains(id))
            .take(60)
            .collect();
        assert_eq!(ids(&read), wanted);
        assert_eq!(
            asked, 120,
            "asked about each up to the 60th taken, no further"
        );

        let of_b: Vec<Uuid> = by_due
            .iter()
            .filter(|d| d.hook_id == b && !held.contains(&d.id))
            .map(|d| d.id)
            .take(30)
            .collect();
        let read = store
            .due_deliveries(Due::of_hook(b, 4, 30), &mut |id| held.contains(&id))
            .await
            .unwrap();
        assert_eq!(ids(&read), of_b);

        // Everything skipped, or nothing wanted: nothing read.
        assert!(
            store
                .due_deliveries(Due::every_hook(4, 10), &mut |_| true)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(due(&*store, 4, 0).await.is_empty());
        // Nothing due before the soonest.
        assert!(due(&*store, -1, 10).await.is_empty());
        let every = due(&*store, 100, usize::MAX).await;
        assert_eq!(every.len(), 300);

        assert_eq!(store.hooks_with_due(-1).await.unwrap(), Vec::<Uuid>::new());
        assert_eq!(store.hooks_with_due(0).await.unwrap(), [a, b]);
        assert_eq!(store.next_due_ms().await.unwrap(), Some(0));
        assert_eq!(store.next_due_after(0).await.unwrap(), Some(1));
        assert_eq!(store.next_due_after(6).await.unwrap(), None);
        assert_eq!(store.queue_depth().await.unwrap(), 300);
    }

    #[tokio::test]
    async fn hooks_with_due_looks_at_each_hooks_soonest_only() {
        let Some((_db, store, _pool)) = setup().await else {
            return;
        };
        let hooks: Vec<Uuid> = (1..=5).map(Uuid::from_u128).collect();
        let mut all: Vec<Delivery> = Vec::new();
        for (i, hook) in hooks.iter().enumerate() {
            // A backlog for each, due from 10 * i on.
            all.extend((0..20).map(|n| delivery(*hook, n, 0, 10 * i as i64 + n as i64)));
        }
        store.commit_dispatch(Dispatch::queue(&all)).await.unwrap();
        assert_eq!(store.hooks_with_due(25).await.unwrap(), hooks[..3]);
        // A hook whose deliveries all finished is no longer scheduled.
        let finished: Vec<Delivery> = all[..20]
            .iter()
            .map(|d| finished(d.clone(), 1, DeliveryState::Succeeded))
            .collect();
        store.commit_deliveries(&finished).await.unwrap();
        assert_eq!(store.hooks_with_due(25).await.unwrap(), hooks[1..3]);
        assert_eq!(store.hooks_with_due(i64::MAX).await.unwrap(), hooks[1..]);
    }

    #[tokio::test]
    async fn a_corrupt_due_delivery_is_quarantined_and_the_read_still_fills_its_limit() {
        let Some((_db, store, pool)) = setup().await else {
            return;
        };
        let hook = Uuid::new_v4();
        let all: Vec<Delivery> = (0..10)
            .map(|n| delivery(hook, n, n as i64, n as i64))
            .collect();
        store.commit_dispatch(Dispatch::queue(&all)).await.unwrap();
        corrupt(&pool, all[1].id).await;
        corrupt(&pool, all[2].id).await;

        let read = due(&*store, 100, 3).await;
        assert_eq!(ids(&read), [all[0].id, all[3].id, all[4].id]);
        assert_eq!(store.queue_depth().await.unwrap(), 8);
        assert_eq!(store.delivery(all[1].id).await.unwrap(), None);
        assert!(!store.delivery_exists(all[1].id).await.unwrap());
        let quarantined = store.quarantine_page(&page(10, None)).await.unwrap().data;
        assert_eq!(quarantined.len(), 2);
        assert!(quarantined.iter().all(|q| q.origin == Origin::Deliveries));
        let mut keys: Vec<String> = quarantined.iter().map(|q| q.key_text()).collect();
        keys.sort();
        let mut expected = vec![all[1].id.to_string(), all[2].id.to_string()];
        expected.sort();
        assert_eq!(keys, expected);

        // In a listing as well: the page still holds as many.
        corrupt(&pool, all[8].id).await;
        let listed = store.hook_deliveries(hook, &page(2, None)).await.unwrap();
        assert_eq!(ids(&listed.data), [all[9].id, all[7].id]);
        assert_eq!(listed.next, Some(all[6].id.to_string()));

        // A dispatch that writes over a corrupt delivery does not fail.
        corrupt(&pool, all[5].id).await;
        store
            .commit_dispatch(Dispatch::queue(&[all[5].clone(), all[6].clone()]))
            .await
            .unwrap();
        assert_eq!(
            store.delivery(all[5].id).await.unwrap(),
            Some(all[5].clone())
        );
    }

    #[tokio::test]
    async fn hook_and_dead_listings_page_through_their_offsets() {
        let Some((_db, store, _pool)) = setup().await else {
            return;
        };
        let (hook, other) = (Uuid::new_v4(), Uuid::new_v4());
        // Equal creation times: the id decides, newest first.
        let mine: Vec<Delivery> = (0..7)
            .map(|n| delivery(hook, n, n as i64 / 2, 100))
            .collect();
        let theirs = delivery(other, 99, 3, 100);
        store.commit_dispatch(Dispatch::queue(&mine)).await.unwrap();
        store
            .commit_dispatch(Dispatch::queue(std::slice::from_ref(&theirs)))
            .await
            .unwrap();
        let mut newest: Vec<&Delivery> = mine.iter().collect();
        newest.sort_by_key(|d| std::cmp::Reverse(ListedAt::of(d)));
        let newest: Vec<Uuid> = newest.iter().map(|d| d.id).collect();
        for size in [1, 2, 3, 7, 8] {
            let seen = all_pages(size, |p| {
                let store = store.clone();
                async move { store.hook_deliveries(hook, &p).await }
            })
            .await;
            assert_eq!(seen, newest, "pages of {size}");
        }
        let through = store
            .hook_deliveries_from(
                HookListing {
                    hook,
                    through: Some(ListedAt::of(&mine[3])),
                },
                3,
            )
            .await
            .unwrap();
        let at = newest.iter().position(|id| *id == mine[3].id).unwrap();
        assert_eq!(ids(&through), newest[at..(at + 3).min(7)]);
        for offset in [
            theirs.id.to_string(),
            Uuid::new_v4().to_string(),
            "x".into(),
        ] {
            assert!(matches!(
                store.hook_deliveries(hook, &page(2, Some(offset))).await,
                Err(Error::InvalidOffset)
            ));
        }

        // Dead letters: the latest to die first, ties by id.
        let dead: Vec<Delivery> = mine
            .iter()
            .enumerate()
            .map(|(i, d)| finished(d.clone(), 50 + i as i64 / 3, DeliveryState::Dead))
            .collect();
        let succeeded = finished(theirs.clone(), 60, DeliveryState::Succeeded);
        store.commit_deliveries(&dead).await.unwrap();
        store
            .commit_deliveries(std::slice::from_ref(&succeeded))
            .await
            .unwrap();
        let mut latest: Vec<&Delivery> = dead.iter().collect();
        latest.sort_by_key(|d| std::cmp::Reverse((finished_at(d), d.id)));
        let latest: Vec<Uuid> = latest.iter().map(|d| d.id).collect();
        for size in [1, 3, 7] {
            let seen = all_pages(size, |p| {
                let store = store.clone();
                async move { store.dead_deliveries(&p).await }
            })
            .await;
            assert_eq!(seen, latest, "pages of {size}");
        }
        assert!(matches!(
            store
                .dead_deliveries(&page(2, Some(succeeded.id.to_string())))
                .await,
            Err(Error::InvalidOffset)
        ));
        assert_eq!(store.queue_depth().await.unwrap(), 0);
        assert_eq!(store.finished_count().await.unwrap(), 8);
    }

    #[tokio::test]
    async fn retention_prunes_chunk_by_chunk_beyond_keep_or_cutoff() {
        let Some((_db, store, pool)) = setup().await else {
            return;
        };
        let hook = Uuid::new_v4();
        let total = 2 * PRUNE_CHUNK as usize + 7;
        // Finish times repeat: ties are broken by id, as the index orders.
        let finished: Vec<Delivery> = (0..total)
            .map(|n| {
                let d = delivery(hook, n as u64, 0, 0);
                let state = if n % 2 == 0 {
                    DeliveryState::Succeeded
                } else {
                    DeliveryState::Dead
                };
                finished(d, 1_000 + n as i64 / 2, state)
            })
            .collect();
        let pending = delivery(hook, 0, 0, 5);
        let queued: Vec<Delivery> = finished.iter().chain([&pending]).cloned().collect();
        store
            .commit_dispatch(Dispatch::queue(&queued))
            .await
            .unwrap();
        // One that no longer decodes goes like the others.
        corrupt(&pool, finished[0].id).await;
        let mut oldest: Vec<&Delivery> = finished.iter().collect();
        oldest.sort_by_key(|d| (finished_at(d), d.id));

        assert_eq!(store.prune_deliveries(usize::MAX, 0).await.unwrap(), 0);
        assert_eq!(store.prune_deliveries(10, 0).await.unwrap(), total - 10);
        assert_eq!(store.finished_count().await.unwrap(), 10);
        for d in &oldest[total - 10..] {
            assert!(store.delivery_exists(d.id).await.unwrap());
        }
        assert!(store.delivery(pending.id).await.unwrap().is_some());
        assert_eq!(store.prune_deliveries(10, 0).await.unwrap(), 0);

        // The cutoff reaches further than keep: everything finished before
        // it goes, ties at the cutoff stay.
        let cutoff = finished_at(oldest[total - 4]);
        let before = oldest[total - 10..]
            .iter()
            .filter(|d| finished_at(d) < cutoff)
            .count();
        assert_eq!(store.prune_deliveries(8, cutoff).await.unwrap(), before);
        // Keep reaches further than the cutoff.
        let left = 10 - before;
        assert_eq!(store.prune_deliveries(1, 0).await.unwrap(), left - 1);
        assert_eq!(store.finished_count().await.unwrap(), 1);
        assert!(store.delivery_exists(oldest[total - 1].id).await.unwrap());
        assert_eq!(store.queue_depth().await.unwrap(), 1);
        assert!(
            store
                .quarantine_page(&page(10, None))
                .await
                .unwrap()
                .data
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_delivery_is_never_overwritten_by_one_with_fewer_attempts() {
        let Some((_db, store, _pool)) = setup().await else {
            return;
        };
        let attempted = |mut d: Delivery, n: u32| {
            d.attempts = (1..=n)
                .map(|number| hookd_model::delivery::Attempt {
                    number,
                    at_ms: i64::from(number),
                    latency_ms: 1,
                    ok: false,
                    status: Some(500),
                    error: None,
                    response: None,
                    result: None,
                })
                .collect();
            d
        };
        let d = delivery(Uuid::new_v4(), 1, 0, 10);
        let two = attempted(d.clone(), 2);
        store
            .commit_deliveries(std::slice::from_ref(&two))
            .await
            .unwrap();
        // A node that lost the hook's shard records its first attempt late.
        let stale = attempted(d.clone(), 1);
        store
            .commit_attempts(Attempted::updated(&[stale]))
            .await
            .unwrap();
        assert_eq!(store.delivery(d.id).await.unwrap(), Some(two.clone()));
        // The same count (a redelivery of what is stored) and more go in.
        let mut requeued = two.clone();
        requeued.next_attempt_at_ms = Some(99);
        store
            .commit_deliveries(std::slice::from_ref(&requeued))
            .await
            .unwrap();
        assert_eq!(store.delivery(d.id).await.unwrap(), Some(requeued));
        let three = attempted(d.clone(), 3);
        store
            .commit_deliveries(std::slice::from_ref(&three))
            .await
            .unwrap();
        assert_eq!(store.delivery(d.id).await.unwrap(), Some(three));
    }

    #[tokio::test]
    async fn commits_take_outbox_records_memory_and_repeated_ids_in_one_go() {
        let Some((_db, store, pool)) = setup().await else {
            return;
        };
        let records: Vec<u64> = sqlx::query_scalar(
            "INSERT INTO outbox (body) SELECT '\\x00'::bytea FROM generate_series(1, 4) \
             RETURNING record",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|r: i64| r as u64)
        .collect();
        let outbox_len = || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox")
                .fetch_one(&pool)
                .await
                .unwrap()
        };
        let hook = Uuid::new_v4();
        let d = delivery(hook, 1, 0, 10);
        let mut later = d.clone();
        later.next_attempt_at_ms = Some(20);
        let remember = |name: &str, value: Option<Value>| HookStateUpdate {
            hook,
            name: name.into(),
            value,
        };
        assert_eq!(store.dispatched_through().await.unwrap(), None);
        store
            .commit_dispatch(Dispatch {
                through: Some(records[1]),
                records: &records[..2],
                deliveries: &[d.clone(), later.clone()],
                state: &[
                    remember("on_change", Some(json!("a"))),
                    remember("snooze:x", Some(json!(1))),
                    remember("on_change", Some(json!("b"))),
                ],
            })
            .await
            .unwrap();
        assert_eq!(outbox_len().await, 2);
        assert_eq!(store.dispatched_through().await.unwrap(), Some(records[1]));
        assert_eq!(store.delivery(d.id).await.unwrap(), Some(later.clone()));
        assert_eq!(store.next_due_ms().await.unwrap(), Some(20));
        assert_eq!(
            store.hook_states().await.unwrap(),
            [
                (hook, "on_change".into(), json!("b")),
                (hook, "snooze:x".into(), json!(1))
            ]
        );
        store
            .commit_dispatch(Dispatch::remember(&[remember("snooze:x", None)]))
            .await
            .unwrap();
        assert_eq!(store.dispatched_through().await.unwrap(), Some(records[1]));

        // Attempts: the one stored before and one stored at its first
        // attempt's end, which takes its outbox record with it.
        let first = finished(delivery(hook, 2, 1, 1), 5, DeliveryState::Succeeded);
        let done = finished(later, 30, DeliveryState::Dead);
        store
            .commit_attempts(Attempted {
                updated: std::slice::from_ref(&done),
                first: std::slice::from_ref(&first),
                ended: &records[2..3],
            })
            .await
            .unwrap();
        assert_eq!(outbox_len().await, 1);
        assert_eq!(store.queue_depth().await.unwrap(), 0);
        assert_eq!(store.finished_count().await.unwrap(), 2);
        assert_eq!(store.delivery(first.id).await.unwrap(), Some(first));
        assert_eq!(
            ids(&store.dead_deliveries(&page(5, None)).await.unwrap().data),
            [done.id]
        );

        // A memory entry that does not decode is forgotten, into the
        // quarantine.
        sqlx::query("UPDATE hook_state SET value = 'garbage'::bytea")
            .execute(&pool)
            .await
            .unwrap();
        assert!(store.hook_states().await.unwrap().is_empty());
        let [q] = store
            .quarantine_page(&page(5, None))
            .await
            .unwrap()
            .data
            .try_into()
            .unwrap();
        assert_eq!(
            (q.origin, q.key_text()),
            (Origin::HookState, format!("{hook}/on_change"))
        );
    }
}
