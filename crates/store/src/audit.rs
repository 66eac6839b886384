//! The audit log: every checked decision of a sandboxed guest (an HTTP
//! request to a host, an address dialled, a directory opened), newest
//! first. Allowed and denied decisions are kept apart so that retention
//! can keep denials far longer: they are what an auditor looks for.

use crate::{Error, Listed, Origin, Page, Result, Store};
use hookd_model::audit::{AuditRecord, CapabilityClass, Verdict};
use std::iter::Peekable;

/// The trees of the audit log, keyed by time then sequence.
pub(crate) struct AuditTrees {
    pub allowed: sled::Tree,
    pub denied: sled::Tree,
}

impl AuditTrees {
    pub(crate) fn open(db: &sled::Db) -> Result<Self> {
        Ok(AuditTrees {
            allowed: Origin::AuditAllowed.open(db)?,
            denied: Origin::AuditDenied.open(db)?,
        })
    }

    fn of(&self, verdict: Verdict) -> &sled::Tree {
        match verdict {
            Verdict::Allowed => &self.allowed,
            Verdict::Denied => &self.denied,
        }
    }
}

/// How much of one verdict's decisions the audit log keeps.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Records kept, at most (the newest).
    pub keep: usize,
    /// Records from before this instant (unix milliseconds) go.
    pub before_ms: i64,
}

/// Which records a listing wants.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this hook's.
    pub hook: Option<uuid::Uuid>,
    /// Only this guest's, by name or digest.
    pub guest: Option<String>,
    /// Only allowed, or only denied.
    pub verdict: Option<Verdict>,
    /// Only decisions about this capability.
    pub capability: Option<CapabilityClass>,
}

impl AuditFilter {
    fn admits(&self, r: &AuditRecord) -> bool {
        self.hook.is_none_or(|h| r.hook_id == h)
            && self
                .guest
                .as_deref()
                .is_none_or(|g| r.guest.name == g || r.guest.digest == g)
            && self.verdict.is_none_or(|v| r.verdict == v)
            && self.capability.is_none_or(|c| r.capability == c)
    }
}

type Entries = Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>>;

/// Newest-first iteration of one tree, from an offset key down.
fn newest_first(tree: &sled::Tree, upto: Option<&[u8]>) -> Peekable<Entries> {
    let iter: Entries = match upto {
        Some(key) => Box::new(tree.range(..=key.to_vec()).rev()),
        None => Box::new(tree.iter().rev()),
    };
    iter.peekable()
}

fn peek_key(iter: &mut Peekable<Entries>) -> Option<Vec<u8>> {
    match iter.peek() {
        Some(Ok((k, _))) => Some(k.to_vec()),
        _ => None,
    }
}

impl Store {
    /// Appends decisions to the audit log (made durable by the next flush).
    pub fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        for r in records {
            let tree = self.inner.audit.of(r.verdict);
            let mut key = (r.at_ms.max(0) as u64).to_be_bytes().to_vec();
            key.extend_from_slice(&self.inner.db.generate_id()?.to_be_bytes());
            tree.insert(key, crate::codec::encode(r)?)?;
        }
        Ok(())
    }

    /// A page of the audit log, newest first. The offset is the key of the
    /// first record of the next page, hex, prefixed by its verdict.
    pub fn audit_page(&self, filter: &AuditFilter, page: &Page) -> Result<Listed<AuditRecord>> {
        let (mut start_allowed, mut start_denied) = (None, None);
        if let Some(offset) = &page.offset {
            let (verdict, key) = offset.split_once('-').ok_or(Error::InvalidOffset)?;
            let key = hex::decode(key).map_err(|_| Error::InvalidOffset)?;
            // Both trees continue from the same instant; the offset's own
            // tree from its exact key.
            let instant = key.get(..8).ok_or(Error::InvalidOffset)?.to_vec();
            let mut just_after = instant.clone();
            just_after.extend_from_slice(&[0xff; 8]);
            match verdict {
                "a" => (start_allowed, start_denied) = (Some(key), Some(just_after)),
                "d" => (start_allowed, start_denied) = (Some(just_after), Some(key)),
                _ => return Err(Error::InvalidOffset),
            }
        }
        let audit = &self.inner.audit;
        let mut allowed = newest_first(&audit.allowed, start_allowed.as_deref());
        let mut denied = newest_first(&audit.denied, start_denied.as_deref());
        let want_allowed = filter.verdict != Some(Verdict::Denied);
        let want_denied = filter.verdict != Some(Verdict::Allowed);
        let mut data = Vec::new();
        loop {
            let a = if want_allowed {
                peek_key(&mut allowed)
            } else {
                None
            };
            let d = if want_denied {
                peek_key(&mut denied)
            } else {
                None
            };
            let (iter, tag) = match (a, d) {
                (None, None) => return Ok(Listed { data, next: None }),
                (Some(a), Some(d)) if d > a => (&mut denied, 'd'),
                (Some(_), _) => (&mut allowed, 'a'),
                (None, Some(_)) => (&mut denied, 'd'),
            };
            let (key, value) = iter.next().expect("peeked")?;
            let record: AuditRecord = match crate::codec::decode(&value) {
                Ok(record) => record,
                Err(e) => {
                    let origin = match tag {
                        'a' => Origin::AuditAllowed,
                        _ => Origin::AuditDenied,
                    };
                    self.quarantine(origin, &key, &value, &e)?;
                    continue;
                }
            };
            if !filter.admits(&record) {
                continue;
            }
            if data.len() == page.size {
                return Ok(Listed {
                    data,
                    next: Some(format!("{tag}-{}", hex::encode(&key))),
                });
            }
            data.push(record);
        }
    }

    /// Forgets, oldest first, allowed decisions beyond `allowed.keep` or
    /// older than `allowed.before_ms`, and denials beyond `denied.keep` or
    /// older than `denied.before_ms`. Returns how many went.
    pub fn prune_audit(&self, allowed: Retention, denied: Retention) -> Result<usize> {
        let audit = &self.inner.audit;
        let mut removed = prune_tree(&audit.allowed, allowed.keep, allowed.before_ms)?;
        removed += prune_tree(&audit.denied, denied.keep, denied.before_ms)?;
        Ok(removed)
    }
}

fn prune_tree(tree: &sled::Tree, keep: usize, before_ms: i64) -> Result<usize> {
    let excess = tree.len().saturating_sub(keep);
    let cutoff = (before_ms.max(0) as u64).to_be_bytes();
    let mut removed = 0;
    for item in tree.iter().keys() {
        let key = item?;
        if removed >= excess && key[..8] >= cutoff[..] {
            break;
        }
        tree.remove(key)?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_model::audit::GuestRef;
    use uuid::Uuid;

    fn record(at_ms: i64, hook: Uuid, guest: &str, verdict: Verdict) -> AuditRecord {
        AuditRecord {
            at_ms,
            hook_id: hook,
            guest: GuestRef {
                name: guest.into(),
                digest: format!("{guest}-digest"),
            },
            capability: CapabilityClass::Http,
            target: "example.com:443".into(),
            verdict,
            reason: None,
            count: 1,
        }
    }

    #[test]
    fn pages_newest_first_across_verdicts_with_filters() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (h1, h2) = (Uuid::new_v4(), Uuid::new_v4());
        let records: Vec<AuditRecord> = (0..6)
            .map(|i| {
                let verdict = if i % 2 == 0 {
                    Verdict::Allowed
                } else {
                    Verdict::Denied
                };
                let mut r = record(
                    i,
                    if i < 3 { h1 } else { h2 },
                    if i < 4 { "g" } else { "k" },
                    verdict,
                );
                if i == 4 {
                    r.capability = CapabilityClass::Network;
                }
                r
            })
            .collect();
        store.append_audit(&records).unwrap();
        let all = |filter: AuditFilter| {
            let mut seen = Vec::new();
            let mut page = Page {
                size: 2,
                offset: None,
            };
            loop {
                let listed = store.audit_page(&filter, &page).unwrap();
                seen.extend(listed.data.iter().map(|r| r.at_ms));
                match listed.next {
                    Some(next) => page.offset = Some(next),
                    None => return seen,
                }
            }
        };
        assert_eq!(all(AuditFilter::default()), [5, 4, 3, 2, 1, 0]);
        assert_eq!(
            all(AuditFilter {
                verdict: Some(Verdict::Denied),
                ..Default::default()
            }),
            [5, 3, 1]
        );
        assert_eq!(
            all(AuditFilter {
                hook: Some(h1),
                ..Default::default()
            }),
            [2, 1, 0]
        );
        assert_eq!(
            all(AuditFilter {
                guest: Some("k-digest".into()),
                ..Default::default()
            }),
            [5, 4]
        );
        assert_eq!(
            all(AuditFilter {
                capability: Some(CapabilityClass::Network),
                ..Default::default()
            }),
            [4]
        );
        assert!(matches!(
            store.audit_page(
                &AuditFilter::default(),
                &Page {
                    size: 1,
                    offset: Some("x-00".into())
                }
            ),
            Err(Error::InvalidOffset)
        ));
    }

    #[test]
    fn retention_keeps_denials_longer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let h = Uuid::new_v4();
        let records: Vec<AuditRecord> = (0..4)
            .flat_map(|i| {
                [
                    record(i * 10, h, "g", Verdict::Allowed),
                    record(i * 10, h, "g", Verdict::Denied),
                ]
            })
            .collect();
        store.append_audit(&records).unwrap();
        // Allowed: keep 3 and nothing before 15 → 0 and 10 go. Denied: nothing before 5 → 0 goes.
        let (keep, before_ms) = (usize::MAX, 5);
        let denied = Retention { keep, before_ms };
        let allowed = Retention {
            keep: 3,
            before_ms: 15,
        };
        assert_eq!(store.prune_audit(allowed, denied).unwrap(), 3);
        let left = store
            .audit_page(
                &AuditFilter::default(),
                &Page {
                    size: 100,
                    offset: None,
                },
            )
            .unwrap()
            .data;
        let summary: Vec<(i64, Verdict)> = left.iter().map(|r| (r.at_ms, r.verdict)).collect();
        assert_eq!(
            summary,
            [
                (30, Verdict::Denied),
                (30, Verdict::Allowed),
                (20, Verdict::Denied),
                (20, Verdict::Allowed),
                (10, Verdict::Denied)
            ]
        );
        // Denials have a count cap as well as an age: the newest stay.
        let denied = Retention {
            keep: 1,
            before_ms: 0,
        };
        assert_eq!(store.prune_audit(allowed, denied).unwrap(), 2);
        let denials = store
            .audit_page(
                &AuditFilter {
                    verdict: Some(Verdict::Denied),
                    ..Default::default()
                },
                &Page {
                    size: 100,
                    offset: None,
                },
            )
            .unwrap()
            .data;
        assert_eq!(denials.iter().map(|r| r.at_ms).collect::<Vec<_>>(), [30]);
    }
}
