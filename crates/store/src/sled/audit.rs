//! The audit log in sled: one tree per verdict, keyed by time then the
//! database's id sequence.

use super::Sled;
use super::quarantine::open_tree;
use crate::audit::{AuditFilter, Retention};
use crate::entities::Filling;
use crate::{Error, Listed, Origin, Page, Result};
use hookd_model::audit::{AuditRecord, Verdict};
use std::iter::Peekable;

/// The trees of the audit log, keyed by time then sequence.
pub(crate) struct AuditTrees {
    pub allowed: sled::Tree,
    pub denied: sled::Tree,
}

impl AuditTrees {
    pub(crate) fn open(db: &sled::Db) -> Result<Self> {
        Ok(AuditTrees {
            allowed: open_tree(db, Origin::AuditAllowed)?,
            denied: open_tree(db, Origin::AuditDenied)?,
        })
    }

    fn of(&self, verdict: Verdict) -> &sled::Tree {
        match verdict {
            Verdict::Allowed => &self.allowed,
            Verdict::Denied => &self.denied,
        }
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

impl Sled {
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
        let mut data = Filling::new(page);
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
                (None, None) => return Ok(data.last()),
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
            if data.is_full() {
                return Ok(data.continued_at(format!("{tag}-{}", hex::encode(&key))));
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
