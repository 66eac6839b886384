//! The quarantine in sled: a record is moved in one transaction out of
//! its tree into the `quarantine` tree with its origin, its key, its raw
//! bytes, the error and the time.
//!
//! Quarantine records have their own fixed binary layout rather than JSON:
//! the raw bytes they keep are whatever failed to decode, and the record
//! that holds them must never fail the same way.

use super::{Sled, tx_error};
use crate::codec::decode;
use crate::entities::Filling;
use crate::quarantine::{Origin, Quarantined, Retried};
use crate::{Error, Listed, Page, Result};
use hookd_model::audit::AuditRecord;
use hookd_model::clock::{Clock, SystemClock};
use hookd_model::delivery::Delivery;
use sled::Transactional;
use uuid::Uuid;

/// Opens the tree of `origin` in `db`, under [`Origin::as_str`]: the name
/// the API and the metrics show is the tree's by construction.
pub(crate) fn open_tree(db: &sled::Db, origin: Origin) -> Result<sled::Tree> {
    Ok(db.open_tree(origin.as_str())?)
}

impl Quarantined {
    /// origin tag, at_ms, key length and key, error length and error, raw.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + self.key.len() + self.error.len() + self.raw.len());
        out.push(self.origin.tag());
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        for part in [self.key.as_slice(), self.error.as_bytes()] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&self.raw);
        out
    }

    fn decode(id: Uuid, bytes: &[u8]) -> Result<Self> {
        let mut rest = bytes;
        let origin = Origin::of_tag(take(&mut rest, 1)?[0]).ok_or(Error::CorruptKey)?;
        let at_ms = i64::from_be_bytes(take_array(&mut rest)?);
        let key = take_part(&mut rest)?.to_vec();
        let error = String::from_utf8_lossy(take_part(&mut rest)?).into_owned();
        Ok(Quarantined {
            id,
            origin,
            key,
            raw: rest.to_vec(),
            error,
            at_ms,
        })
    }
}

/// The first `n` bytes of `rest`, which moves past them.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    let whole: &'a [u8] = rest;
    let (head, tail) = whole.split_at_checked(n).ok_or(Error::CorruptKey)?;
    *rest = tail;
    Ok(head)
}

fn take_array<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N]> {
    take(rest, N)?.try_into().map_err(|_| Error::CorruptKey)
}

/// A part written with its length before it.
fn take_part<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8]> {
    let len = u32::from_be_bytes(take_array(rest)?);
    take(rest, len as usize)
}

impl Sled {
    fn origin_tree(&self, origin: Origin) -> &sled::Tree {
        let i = &self.inner;
        match origin {
            Origin::Outbox => &i.outbox,
            Origin::Deliveries => &i.queue.deliveries,
            Origin::HookState => &i.queue.hook_state,
            Origin::Entities => &i.entities,
            Origin::AuditAllowed => &i.audit.allowed,
            Origin::AuditDenied => &i.audit.denied,
        }
    }

    /// Moves the record under `key` of `origin` into the quarantine, in one
    /// transaction, if it still holds `raw` (a record rewritten since it was
    /// read is left for its loop to read again).
    pub(crate) fn quarantine(
        &self,
        origin: Origin,
        key: &[u8],
        raw: &[u8],
        error: &dyn std::error::Error,
    ) -> Result<()> {
        let record = Quarantined::now(origin, key, raw, error);
        let moved = (self.origin_tree(origin), &self.inner.quarantine)
            .transaction(|(tree, quarantine)| {
                if tree.get(key)?.as_deref() != Some(raw) {
                    return Ok(false);
                }
                tree.remove(key)?;
                quarantine.insert(record.id.as_bytes(), record.encode())?;
                Ok(true)
            })
            .map_err(tx_error)?;
        if moved {
            tracing::error!(origin = origin.as_str(), key = %record.key_text(),
                quarantined = %record.id, error = %record.error,
                "a stored record does not decode; moved to the quarantine");
            self.announce(&record)?;
            if origin == Origin::Deliveries
                && let Ok(id) = Uuid::from_slice(key)
            {
                self.forget_delivery_indexes(id)?;
            }
        }
        Ok(())
    }

    /// Puts the operational event of a quarantined record in the outbox.
    /// Not in the move's transaction (the outbox is one of the trees a
    /// record is moved from), nor flushed here: a crash in between loses
    /// the announcement, never the record.
    fn announce(&self, record: &Quarantined) -> Result<()> {
        let event = record.announcement();
        let outbox = &self.inner.outbox;
        for encoded in crate::outbox::encode_records(&[event])? {
            outbox.insert(self.inner.db.generate_id()?.to_be_bytes(), encoded)?;
        }
        self.outbox_written();
        Ok(())
    }

    /// Quarantined records, oldest first. Offsets are the id of the first
    /// record of the next page.
    pub fn quarantine_page(&self, page: &Page) -> Result<Listed<Quarantined>> {
        let start = match &page.offset {
            Some(offset) => offset
                .parse::<Uuid>()
                .map_err(|_| Error::InvalidOffset)?
                .as_bytes()
                .to_vec(),
            None => Vec::new(),
        };
        let mut data = Filling::new(page);
        for item in self.inner.quarantine.range(start..) {
            let (key, value) = item?;
            let id = Uuid::from_slice(&key).map_err(|_| Error::CorruptKey)?;
            if data.is_full() {
                return Ok(data.continued_at(id.to_string()));
            }
            data.push(Quarantined::decode(id, &value)?);
        }
        Ok(data.last())
    }

    /// One quarantined record.
    pub fn quarantined(&self, id: Uuid) -> Result<Option<Quarantined>> {
        self.inner
            .quarantine
            .get(id.as_bytes())?
            .map(|bytes| Quarantined::decode(id, &bytes))
            .transpose()
    }

    /// Records in the quarantine, by origin: for `/metrics`.
    pub fn quarantine_counts(&self) -> Result<Vec<(Origin, usize)>> {
        let mut counts = [0usize; Origin::ALL.len()];
        for value in self.inner.quarantine.iter().values() {
            if let Some(n) = value?
                .first()
                .and_then(|tag| counts.get_mut(usize::from(*tag)))
            {
                *n += 1;
            }
        }
        Ok(Origin::ALL.into_iter().zip(counts).collect())
    }

    /// Deletes a quarantined record for good; false if there is none. An
    /// entity also gives up the unique values and references it held.
    pub async fn delete_quarantined(&self, id: Uuid) -> Result<bool> {
        let Some(record) = self.inner.quarantine.remove(id.as_bytes())? else {
            return Ok(false);
        };
        if record.first() == Some(&Origin::Entities.tag()) {
            let record = Quarantined::decode(id, &record)?;
            self.release_entity_indexes(&record.key).await?;
        }
        self.durable().await?;
        Ok(true)
    }

    /// Puts a quarantined record back where it came from if it decodes
    /// now, for its loop to take again; if it does not, it stays with the
    /// new error. None if there is no such record.
    pub async fn retry_quarantined(&self, id: Uuid) -> Result<Option<Retried>> {
        let Some(mut record) = self.quarantined(id)? else {
            return Ok(None);
        };
        if let Err(e) = self.check_decodes(&record) {
            record.error = hookd_model::error_chain(&e);
            record.at_ms = SystemClock.now_ms();
            self.inner
                .quarantine
                .insert(id.as_bytes(), record.encode())?;
            self.durable().await?;
            return Ok(Some(Retried::StillCorrupt(record)));
        }
        let restored = match record.origin {
            Origin::Deliveries => self.restore_delivery(&record)?,
            origin => (self.origin_tree(origin), &self.inner.quarantine)
                .transaction(|(tree, quarantine)| {
                    if tree.get(&record.key)?.is_some() {
                        return Ok(false);
                    }
                    tree.insert(record.key.as_slice(), record.raw.as_slice())?;
                    quarantine.remove(id.as_bytes())?;
                    Ok(true)
                })
                .map_err(tx_error)?,
        };
        if !restored {
            return Ok(Some(Retried::Superseded));
        }
        self.durable().await?;
        if record.origin == Origin::Outbox {
            self.outbox_written();
        }
        Ok(Some(Retried::Restored))
    }

    /// Decodes the record as its loop will, without acting on it.
    fn check_decodes(&self, record: &Quarantined) -> Result<()> {
        let raw = &record.raw;
        match record.origin {
            Origin::Outbox => super::outbox::decode_stored(&record.key, raw).map(drop),
            Origin::Deliveries => decode::<Delivery>(raw).map(drop),
            Origin::HookState => crate::queue::decode_state(&record.key, raw).map(drop),
            Origin::Entities => decode::<serde_json::Value>(raw).map(drop),
            Origin::AuditAllowed | Origin::AuditDenied => decode::<AuditRecord>(raw).map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dispatch, Due, HookListing};
    use hookd_model::Event;
    use hookd_model::delivery::Delivery;
    use serde_json::json;

    fn all(store: &Sled) -> Vec<Quarantined> {
        let page = Page {
            size: 100,
            offset: None,
        };
        store.quarantine_page(&page).unwrap().data
    }

    const GARBAGE: &[u8] = b"[{\"id\": not json";

    #[test]
    fn an_origin_is_named_as_its_tree() {
        let (_dir, store) = Sled::temporary();
        for origin in Origin::ALL {
            assert_eq!(
                &*store.origin_tree(origin).name(),
                origin.as_str().as_bytes()
            );
        }
    }

    #[tokio::test]
    async fn a_corrupt_outbox_record_is_moved_aside_and_later_events_come_out() {
        let (_dir, store) = Sled::temporary();
        let event = |n| Event::new("s", "e", json!({ "n": n }), n);
        store.publish(&[event(1)]).await.unwrap();
        let bad_key = store.inner.db.generate_id().unwrap().to_be_bytes();
        store.inner.outbox.insert(bad_key, GARBAGE).unwrap();
        store.publish(&[event(2)]).await.unwrap();

        let batch = store.outbox_batch_after(None, 10).unwrap();
        let taken: Vec<i64> = batch.events.iter().map(|(_, e)| e.at_ms).collect();
        assert_eq!(taken, [1, 2], "the events on both sides of it");
        assert_eq!(batch.records.len(), 2);
        assert_eq!(store.inner.outbox.get(bad_key).unwrap(), None);
        let [record] = all(&store).try_into().unwrap();
        assert_eq!(record.origin, Origin::Outbox);
        assert_eq!(record.key, bad_key);
        assert_eq!(record.raw, GARBAGE);
        assert!(record.error.contains("line 1 column"), "{}", record.error);
        assert_eq!(store.quarantine_counts().unwrap()[0], (Origin::Outbox, 1));

        // Still garbage: it stays, with the error of this try.
        let Some(Retried::StillCorrupt(again)) = store.retry_quarantined(record.id).await.unwrap()
        else {
            panic!("a record that does not decode cannot be restored");
        };
        assert_eq!(again.id, record.id);
        assert_eq!(store.inner.outbox.get(bad_key).unwrap(), None);
        assert!(store.delete_quarantined(record.id).await.unwrap());
        assert!(all(&store).is_empty());
        assert!(!store.delete_quarantined(record.id).await.unwrap());
        assert_eq!(store.retry_quarantined(record.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_corrupt_delivery_is_moved_aside_with_its_indexes_and_the_rest_run() {
        let (_dir, store) = Sled::temporary();
        let hook = Uuid::new_v4();
        let [bad, good] =
            [1, 2].map(|n| Delivery::new(hook, Event::new("s", "e", json!({}), n), n as u64, n));
        store
            .commit_dispatch(Dispatch::queue(&[bad.clone(), good.clone()]))
            .unwrap();
        assert_eq!(store.queue_depth(), 2);
        store
            .inner
            .queue
            .deliveries
            .insert(bad.id.as_bytes(), GARBAGE)
            .unwrap();

        let due = store
            .due_deliveries(Due::every_hook(10, 10), |_| false)
            .unwrap();
        assert_eq!(due, vec![good.clone()]);
        assert_eq!(store.queue_depth(), 1);
        assert_eq!(
            store.next_due_ms().unwrap(),
            Some(2),
            "its due entry went with it"
        );
        let from = HookListing {
            hook,
            through: None,
        };
        assert_eq!(store.hook_deliveries_from(from, 10).unwrap(), vec![good]);
        let [record] = all(&store).try_into().unwrap();
        assert_eq!(
            (record.origin, record.key_text()),
            (Origin::Deliveries, bad.id.to_string())
        );
    }

    #[tokio::test]
    async fn a_corrupt_delivery_that_a_dispatch_overwrites_does_not_fail_the_batch() {
        let (_dir, store) = Sled::temporary();
        let hook = Uuid::new_v4();
        let [d, other] =
            [1, 2].map(|n| Delivery::new(hook, Event::new("s", "e", json!({}), n), n as u64, n));
        store
            .commit_dispatch(Dispatch::queue(std::slice::from_ref(&d)))
            .unwrap();
        store
            .inner
            .queue
            .deliveries
            .insert(d.id.as_bytes(), GARBAGE)
            .unwrap();
        // The same delivery again (a dispatch repeated after a crash), in a
        // batch with another.
        store
            .commit_dispatch(Dispatch::queue(&[d.clone(), other.clone()]))
            .unwrap();
        assert_eq!(store.delivery(d.id).unwrap(), Some(d));
        assert_eq!(store.delivery(other.id).unwrap(), Some(other));
        assert_eq!(store.queue_depth(), 2);
        assert_eq!(all(&store)[0].raw, GARBAGE);
    }

    #[tokio::test]
    async fn a_retried_delivery_that_decodes_is_due_again() {
        let (_dir, store) = Sled::temporary();
        let d = Delivery::new(Uuid::new_v4(), Event::new("s", "e", json!({}), 0), 0, 5);
        store
            .commit_dispatch(Dispatch::queue(std::slice::from_ref(&d)))
            .unwrap();
        // As if an older build could not read it.
        let raw = store
            .inner
            .queue
            .deliveries
            .get(d.id.as_bytes())
            .unwrap()
            .unwrap();
        let old_build = Error::CorruptKey;
        store
            .quarantine(Origin::Deliveries, d.id.as_bytes(), &raw, &old_build)
            .unwrap();
        assert_eq!(store.queue_depth(), 0);
        assert_eq!(store.delivery(d.id).unwrap(), None);

        let id = all(&store)[0].id;
        assert_eq!(
            store.retry_quarantined(id).await.unwrap(),
            Some(Retried::Restored)
        );
        assert!(all(&store).is_empty());
        assert_eq!(
            store
                .due_deliveries(Due::every_hook(5, 10), |_| false)
                .unwrap(),
            vec![d]
        );
        assert_eq!(store.queue_depth(), 1);
    }

    #[tokio::test]
    async fn a_corrupt_entity_leaves_listings_and_its_names_free_once_deleted() {
        let (_dir, store) = Sled::temporary();
        let consumer = |name: &str| json!({ "id": Uuid::new_v4().to_string(), "username": name });
        let alice = store
            .insert("consumers", consumer("alice"), 0)
            .await
            .unwrap();
        let bob = store.insert("consumers", consumer("bob"), 0).await.unwrap();
        let id: Uuid = alice["id"].as_str().unwrap().parse().unwrap();
        let key = crate::entities::entity_key("consumers", id);
        store.inner.entities.insert(&key, GARBAGE).unwrap();

        let listed = store
            .list(
                "consumers",
                &Page {
                    size: 10,
                    offset: None,
                },
            )
            .unwrap();
        assert_eq!(listed.data, vec![bob]);
        assert_eq!(store.get("consumers", id).unwrap(), None);
        let [record] = all(&store).try_into().unwrap();
        assert_eq!(record.key_text(), format!("consumers/{id}"));
        // Its name stays claimed while it may come back...
        let again = store.insert("consumers", consumer("alice"), 0).await;
        assert!(matches!(again, Err(Error::Unique { .. })), "{again:?}");
        // ... and is free once it is deleted for good.
        assert!(store.delete_quarantined(record.id).await.unwrap());
        store
            .insert("consumers", consumer("alice"), 0)
            .await
            .unwrap();
    }

    #[test]
    fn records_round_trip_through_their_layout() {
        for origin in Origin::ALL {
            let record = Quarantined {
                id: Uuid::now_v7(),
                origin,
                key: vec![0, 1, 2, 255],
                raw: b"{\"not\": json".to_vec(),
                error: "a stored value is corrupt: EOF".into(),
                at_ms: -5,
            };
            let decoded = Quarantined::decode(record.id, &record.encode()).unwrap();
            assert_eq!(decoded, record);
        }
    }

    #[test]
    fn a_truncated_record_is_an_error_not_a_panic() {
        let record = Quarantined {
            id: Uuid::now_v7(),
            origin: Origin::Outbox,
            key: vec![1; 8],
            raw: vec![],
            error: "e".into(),
            at_ms: 1,
        };
        let bytes = record.encode();
        for len in 0..bytes.len() - 1 {
            assert!(Quarantined::decode(record.id, &bytes[..len]).is_err());
        }
    }

    #[test]
    fn keys_read_as_their_origin_writes_them() {
        let id = Uuid::new_v4();
        let shown = |origin, key: Vec<u8>| {
            Quarantined {
                id,
                origin,
                key,
                raw: vec![],
                error: String::new(),
                at_ms: 0,
            }
            .key_text()
        };
        assert_eq!(shown(Origin::Outbox, 42u64.to_be_bytes().to_vec()), "42");
        assert_eq!(
            shown(Origin::Deliveries, id.as_bytes().to_vec()),
            id.to_string()
        );
        let mut entity = b"consumers/".to_vec();
        entity.extend_from_slice(id.as_bytes());
        assert_eq!(shown(Origin::Entities, entity), format!("consumers/{id}"));
        assert_eq!(shown(Origin::Outbox, vec![0xab]), "ab");
    }
}
