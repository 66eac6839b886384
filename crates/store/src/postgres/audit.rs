//! The audit log on PostgreSQL: one table for both verdicts whose rows
//! one sequence numbers, so that the log's newest-first order across
//! verdicts is (at_ms, seq) descending, and a place in it (the offset of
//! a page) is one pair whatever the verdict.

use super::Postgres;
use crate::audit::{Audit, AuditFilter, Retention};
use crate::codec::{decode, encode};
use crate::entities::Filling;
use crate::{Error, Listed, Origin, Page, Result};
use async_trait::async_trait;
use hookd_model::audit::{AuditRecord, Verdict};

/// The `verdict` of allowed decisions.
pub(super) const ALLOWED: i16 = 0;
/// The `verdict` of denied decisions.
pub(super) const DENIED: i16 = 1;

fn verdict_code(verdict: Verdict) -> i16 {
    match verdict {
        Verdict::Allowed => ALLOWED,
        Verdict::Denied => DENIED,
    }
}

fn origin_of(verdict: i16) -> Origin {
    if verdict == ALLOWED {
        Origin::AuditAllowed
    } else {
        Origin::AuditDenied
    }
}

/// A row's key as the quarantine keeps it: at_ms then seq, big-endian,
/// which is also how sled's audit keys begin and sort.
pub(super) fn audit_key(at_ms: i64, seq: i64) -> Vec<u8> {
    let mut key = at_ms.to_be_bytes().to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The (at_ms, seq) of an [`audit_key`].
pub(super) fn split_audit_key(key: &[u8]) -> Option<(i64, i64)> {
    let (at_ms, seq) = key.split_first_chunk::<8>()?;
    let seq = <[u8; 8]>::try_from(seq).ok()?;
    Some((i64::from_be_bytes(*at_ms), i64::from_be_bytes(seq)))
}

/// A place in the log: (at_ms, seq), newest first.
type Place = (i64, i64);

/// The place right after `place`, newest first, if there is one.
fn older(place: Place) -> Option<Place> {
    match place {
        (at_ms, seq) if seq > i64::MIN => Some((at_ms, seq - 1)),
        (at_ms, _) => at_ms.checked_sub(1).map(|at_ms| (at_ms, i64::MAX)),
    }
}

/// An offset: the place of the first record of the page it starts.
fn offset_of((at_ms, seq): Place) -> String {
    format!("{at_ms}.{seq}")
}

fn parse_offset(offset: &str) -> Result<Place> {
    let (at_ms, seq) = offset.split_once('.').ok_or(Error::InvalidOffset)?;
    let number = |s: &str| s.parse::<i64>().map_err(|_| Error::InvalidOffset);
    Ok((number(at_ms)?, number(seq)?))
}

/// Rows read at most per query of a page: filters on the records' bodies
/// may pass over many.
const PAGE_CHUNK: usize = 1000;

/// Rows removed per transaction by retention.
const PRUNE_CHUNK: i64 = 1000;

/// Both verdicts newest first: each from its end of the primary key,
/// merged.
const NEWEST: &str = "SELECT verdict, at_ms, seq, body FROM ( \
         (SELECT verdict, at_ms, seq, body FROM audit \
          WHERE verdict = 0 AND (at_ms, seq) <= ($1, $2) \
          ORDER BY at_ms DESC, seq DESC LIMIT $3) \
         UNION ALL \
         (SELECT verdict, at_ms, seq, body FROM audit \
          WHERE verdict = 1 AND (at_ms, seq) <= ($1, $2) \
          ORDER BY at_ms DESC, seq DESC LIMIT $3)) newest \
     ORDER BY at_ms DESC, seq DESC LIMIT $3";

/// One verdict newest first.
const NEWEST_OF: &str = "SELECT verdict, at_ms, seq, body FROM audit \
     WHERE verdict = $4 AND (at_ms, seq) <= ($1, $2) \
     ORDER BY at_ms DESC, seq DESC LIMIT $3";

/// The oldest rows of a verdict up to a place, a chunk of them, found by
/// their row addresses (a join on the key reads the whole table). Audit
/// rows are never updated, so the addresses read are the rows deleted.
const PRUNE: &str = "DELETE FROM audit WHERE ctid = ANY(ARRAY( \
         SELECT ctid FROM audit WHERE verdict = $1 AND (at_ms, seq) <= ($2, $3) \
         ORDER BY at_ms, seq LIMIT $4))";

impl Postgres {
    /// Forgets the oldest decisions of one verdict: those beyond
    /// `retention.keep` and those older than `retention.before_ms`, a run
    /// from the oldest up to whichever of the two reaches further.
    async fn prune_verdict(&self, verdict: i16, retention: Retention) -> Result<usize> {
        let beyond_keep: Option<Place> = sqlx::query_as(
            "SELECT at_ms, seq FROM audit WHERE verdict = $1 \
             ORDER BY at_ms DESC, seq DESC OFFSET $2 LIMIT 1",
        )
        .bind(verdict)
        .bind(i64::try_from(retention.keep).unwrap_or(i64::MAX))
        .fetch_optional(self.pool())
        .await?;
        let too_old = retention
            .before_ms
            .checked_sub(1)
            .map(|last| (last, i64::MAX));
        let Some((at_ms, seq)) = beyond_keep.max(too_old) else {
            return Ok(0);
        };
        super::delete_in_chunks(self.pool(), PRUNE_CHUNK, || {
            sqlx::query(PRUNE).bind(verdict).bind(at_ms).bind(seq)
        })
        .await
    }
}

#[async_trait]
impl Audit for Postgres {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let verdicts: Vec<i16> = records.iter().map(|r| verdict_code(r.verdict)).collect();
        let times: Vec<i64> = records.iter().map(|r| r.at_ms).collect();
        let bodies = records.iter().map(encode).collect::<Result<Vec<_>>>()?;
        sqlx::query(
            "INSERT INTO audit (verdict, at_ms, body) \
             SELECT * FROM UNNEST($1::int2[], $2::int8[], $3::bytea[])",
        )
        .bind(verdicts)
        .bind(times)
        .bind(bodies)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The verdict filter is a condition of the query; the others are on
    /// the records' bodies, read in chunks until the page and the first
    /// record of the next are found. The offset is that record's place.
    async fn audit_page(&self, filter: &AuditFilter, page: &Page) -> Result<Listed<AuditRecord>> {
        let mut from = match &page.offset {
            Some(offset) => parse_offset(offset)?,
            None => (i64::MAX, i64::MAX),
        };
        let mut data = Filling::new(page);
        let mut chunk = page.size.saturating_add(1).min(PAGE_CHUNK);
        loop {
            let sql = if filter.verdict.is_some() {
                NEWEST_OF
            } else {
                NEWEST
            };
            let mut query = sqlx::query_as(sql)
                .bind(from.0)
                .bind(from.1)
                .bind(i64::try_from(chunk).unwrap_or(i64::MAX));
            if let Some(verdict) = filter.verdict {
                query = query.bind(verdict_code(verdict));
            }
            let rows: Vec<(i16, i64, i64, Vec<u8>)> = query.fetch_all(self.pool()).await?;
            for (verdict, at_ms, seq, body) in &rows {
                let record: AuditRecord = match decode(body) {
                    Ok(record) => record,
                    Err(e) => {
                        let key = audit_key(*at_ms, *seq);
                        self.quarantine(origin_of(*verdict), &key, body, &e).await?;
                        continue;
                    }
                };
                if !filter.admits(&record) {
                    continue;
                }
                if data.is_full() {
                    return Ok(data.continued_at(offset_of((*at_ms, *seq))));
                }
                data.push(record);
            }
            let next = rows
                .last()
                .and_then(|(_, at_ms, seq, _)| older((*at_ms, *seq)));
            match next {
                Some(place) if rows.len() == chunk => from = place,
                _ => return Ok(data.last()),
            }
            chunk = chunk.saturating_mul(2).min(PAGE_CHUNK);
        }
    }

    async fn prune_audit(&self, allowed: Retention, denied: Retention) -> Result<usize> {
        let removed = self.prune_verdict(ALLOWED, allowed).await?;
        Ok(removed + self.prune_verdict(DENIED, denied).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;
    use crate::{Retried, Store};
    use hookd_model::audit::{CapabilityClass, GuestRef};
    use sqlx::PgPool;
    use uuid::Uuid;

    fn record(at_ms: i64, hook: Uuid, n: usize, verdict: Verdict) -> AuditRecord {
        AuditRecord {
            at_ms,
            hook_id: hook,
            guest: GuestRef {
                name: "g".into(),
                digest: "g-digest".into(),
            },
            capability: CapabilityClass::Http,
            target: format!("host-{n}:443"),
            verdict,
            reason: None,
            count: 1,
        }
    }

    async fn setup() -> Option<(TestDatabase, Store, PgPool)> {
        let (db, store) = TestDatabase::with_store().await?;
        let pool = crate::postgres::pool(&db.connection).await.unwrap();
        Some((db, store, pool))
    }

    /// Every record a filter admits, page after page.
    async fn all_pages(store: &Store, filter: &AuditFilter, size: usize) -> Vec<AuditRecord> {
        let mut seen = Vec::new();
        let mut offset = None;
        loop {
            let listed = store
                .audit_page(filter, &Page { size, offset })
                .await
                .unwrap();
            assert!(listed.data.len() <= size);
            seen.extend(listed.data);
            match listed.next {
                Some(next) => offset = Some(next),
                None => return seen,
            }
        }
    }

    #[tokio::test]
    async fn pages_merge_both_verdicts_newest_first_and_resume_where_they_stopped() {
        let Some((_db, store, _pool)) = setup().await else {
            return;
        };
        let (busy, rare) = (Uuid::new_v4(), Uuid::new_v4());
        // Appended in batches of mixed verdicts, times repeating across
        // batches: equal times are told apart by when they were appended.
        let mut appended = Vec::new();
        for batch in 0..4 {
            let records: Vec<AuditRecord> = (0..700)
                .map(|n| {
                    let verdict = if (n + batch) % 3 == 0 {
                        Verdict::Denied
                    } else {
                        Verdict::Allowed
                    };
                    let hook = if n % 500 == 7 { rare } else { busy };
                    record((n % 10) as i64, hook, appended.len() + n, verdict)
                })
                .collect();
            store.append_audit(&records).await.unwrap();
            appended.extend(records);
        }
        let newest = |admits: &dyn Fn(&AuditRecord) -> bool| -> Vec<AuditRecord> {
            let mut order: Vec<(usize, &AuditRecord)> = appended
                .iter()
                .enumerate()
                .filter(|(_, r)| admits(r))
                .collect();
            order.sort_by_key(|(i, r)| std::cmp::Reverse((r.at_ms, *i)));
            order.into_iter().map(|(_, r)| r.clone()).collect()
        };

        let everything = AuditFilter::default();
        assert_eq!(all_pages(&store, &everything, 997).await, newest(&|_| true));
        let denied = AuditFilter {
            verdict: Some(Verdict::Denied),
            ..Default::default()
        };
        assert_eq!(
            all_pages(&store, &denied, 300).await,
            newest(&|r| r.verdict == Verdict::Denied)
        );
        // A filter on the bodies passes over all but a few: the page reads
        // on, chunk after chunk.
        let rare_only = AuditFilter {
            hook: Some(rare),
            ..Default::default()
        };
        let expected = newest(&|r| r.hook_id == rare);
        assert_eq!(expected.len(), 8);
        assert_eq!(all_pages(&store, &rare_only, 5).await, expected);
        let allowed_rare = AuditFilter {
            hook: Some(rare),
            verdict: Some(Verdict::Allowed),
            ..Default::default()
        };
        assert_eq!(
            all_pages(&store, &allowed_rare, 1).await,
            newest(&|r| r.hook_id == rare && r.verdict == Verdict::Allowed)
        );

        for offset in ["x", "1", "a.b", "", "1.2.3"] {
            assert!(matches!(
                store
                    .audit_page(
                        &everything,
                        &Page {
                            size: 1,
                            offset: Some(offset.into())
                        }
                    )
                    .await,
                Err(Error::InvalidOffset)
            ));
        }
    }

    #[tokio::test]
    async fn a_corrupt_record_is_quarantined_and_retried_back_into_its_place() {
        let Some((_db, store, pool)) = setup().await else {
            return;
        };
        let hook = Uuid::new_v4();
        let records: Vec<AuditRecord> = (0..6)
            .map(|n| {
                let verdict = if n % 2 == 0 {
                    Verdict::Allowed
                } else {
                    Verdict::Denied
                };
                record(n as i64, hook, n, verdict)
            })
            .collect();
        store.append_audit(&records).await.unwrap();
        sqlx::query("UPDATE audit SET body = 'garbage'::bytea WHERE at_ms IN (3, 4)")
            .execute(&pool)
            .await
            .unwrap();
        let listed = store
            .audit_page(
                &AuditFilter::default(),
                &Page {
                    size: 2,
                    offset: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(listed.data, [records[5].clone(), records[2].clone()]);
        let rest = all_pages(&store, &AuditFilter::default(), 2).await;
        assert_eq!(
            rest,
            [&records[5], &records[2], &records[1], &records[0]].map(Clone::clone)
        );
        let quarantined = store
            .quarantine_page(&Page {
                size: 10,
                offset: None,
            })
            .await
            .unwrap()
            .data;
        let mut origins: Vec<Origin> = quarantined.iter().map(|q| q.origin).collect();
        origins.sort_by_key(|o| o.tag());
        assert_eq!(origins, [Origin::AuditAllowed, Origin::AuditDenied]);

        // Put right (an upgrade that reads them), they come back in place.
        for q in &quarantined {
            let (at_ms, _) = split_audit_key(&q.key).unwrap();
            let fixed = encode(&records[usize::try_from(at_ms).unwrap()]).unwrap();
            sqlx::query("UPDATE quarantine SET raw = $2 WHERE id = $1")
                .bind(q.id)
                .bind(fixed)
                .execute(&pool)
                .await
                .unwrap();
            assert_eq!(
                store.retry_quarantined(q.id).await.unwrap(),
                Some(Retried::Restored)
            );
        }
        let mut newest = records.clone();
        newest.reverse();
        assert_eq!(all_pages(&store, &AuditFilter::default(), 4).await, newest);
    }

    #[tokio::test]
    async fn retention_goes_per_verdict_in_chunks_by_count_and_age() {
        let Some((_db, store, _pool)) = setup().await else {
            return;
        };
        let hook = Uuid::new_v4();
        let allowed = 2 * PRUNE_CHUNK as usize + 7;
        let mut records: Vec<AuditRecord> = (0..allowed)
            .map(|n| record(n as i64 / 2, hook, n, Verdict::Allowed))
            .collect();
        records.extend((0..10).map(|n| record(n * 100, hook, n as usize, Verdict::Denied)));
        store.append_audit(&records).await.unwrap();
        let keep_all = Retention {
            keep: usize::MAX,
            before_ms: 0,
        };
        assert_eq!(store.prune_audit(keep_all, keep_all).await.unwrap(), 0);

        // Allowed: keep 10; denied: nothing before 450 (five go).
        let allowed_keep = Retention {
            keep: 10,
            before_ms: 0,
        };
        let denied_age = Retention {
            keep: usize::MAX,
            before_ms: 450,
        };
        assert_eq!(
            store.prune_audit(allowed_keep, denied_age).await.unwrap(),
            allowed - 10 + 5
        );
        let left = all_pages(&store, &AuditFilter::default(), 100).await;
        let summary: Vec<(Verdict, i64)> = left.iter().map(|r| (r.verdict, r.at_ms)).collect();
        let mut expected: Vec<(Verdict, i64)> = (allowed - 10..allowed)
            .map(|n| (Verdict::Allowed, n as i64 / 2))
            .chain((5..10).map(|n| (Verdict::Denied, n * 100)))
            .collect();
        expected.sort_by_key(|(v, at)| std::cmp::Reverse((*at, *v == Verdict::Denied)));
        assert_eq!(summary, expected);

        // Age reaches further than count: ties at the cutoff stay.
        let cutoff = (allowed as i64 - 1) / 2;
        let allowed_age = Retention {
            keep: 3,
            before_ms: cutoff,
        };
        let denied_keep = Retention {
            keep: 1,
            before_ms: 0,
        };
        let old = (allowed - 10..allowed)
            .filter(|n| (*n as i64 / 2) < cutoff)
            .count();
        assert_eq!(
            store.prune_audit(allowed_age, denied_keep).await.unwrap(),
            old + 4
        );
        let left = all_pages(&store, &AuditFilter::default(), 100).await;
        let summary: Vec<(Verdict, i64)> = left.iter().map(|r| (r.verdict, r.at_ms)).collect();
        assert_eq!(
            summary,
            [(Verdict::Allowed, cutoff), (Verdict::Denied, 900)]
        );
    }

    #[test]
    fn keys_and_offsets_read_back() {
        for (at_ms, seq) in [(0, 1), (-5, i64::MAX), (i64::MAX, i64::MIN)] {
            assert_eq!(split_audit_key(&audit_key(at_ms, seq)), Some((at_ms, seq)));
            assert_eq!(
                parse_offset(&offset_of((at_ms, seq))).unwrap(),
                (at_ms, seq)
            );
        }
        assert_eq!(split_audit_key(&[0; 15]), None);
        assert_eq!(older((5, i64::MIN)), Some((4, i64::MAX)));
        assert_eq!(older((i64::MIN, i64::MIN)), None);
    }
}
