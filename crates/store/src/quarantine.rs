//! The quarantine: stored records that cannot be decoded, moved aside so
//! that the loop that met one goes on with the records behind it. From
//! there the Admin API shows them, deletes them, or puts them back where
//! they came from once they decode (after an upgrade, say).

use crate::{Listed, Page, Result};
use async_trait::async_trait;
use hookd_model::Event;
use hookd_model::clock::{Clock, SystemClock};
use uuid::Uuid;

/// The tree a quarantined record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// An outbox record: events waiting for the dispatcher.
    Outbox,
    /// A delivery of the queue.
    Deliveries,
    /// on_change / snooze memory of a hook.
    HookState,
    /// An entity (event hooks included).
    Entities,
    /// An allowed decision of the audit log.
    AuditAllowed,
    /// A denied decision of the audit log.
    AuditDenied,
}

impl Origin {
    /// Every origin, in the order of their tags.
    pub const ALL: [Origin; 6] = [
        Origin::Outbox,
        Origin::Deliveries,
        Origin::HookState,
        Origin::Entities,
        Origin::AuditAllowed,
        Origin::AuditDenied,
    ];

    /// Its name, as the API and the metrics show it (and the name of its
    /// sled tree).
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Outbox => "outbox",
            Origin::Deliveries => "deliveries",
            Origin::HookState => "hook_state",
            Origin::Entities => "entities",
            Origin::AuditAllowed => "audit_allowed",
            Origin::AuditDenied => "audit_denied",
        }
    }

    pub(crate) fn tag(self) -> u8 {
        self as u8
    }

    pub(crate) fn of_tag(tag: u8) -> Option<Origin> {
        Origin::ALL.get(usize::from(tag)).copied()
    }
}

/// A record moved aside.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    /// Its id in the quarantine (UUIDv7: listings come oldest first).
    pub id: Uuid,
    /// The tree it came from.
    pub origin: Origin,
    /// Its key there.
    pub key: Vec<u8>,
    /// Its bytes, as stored.
    pub raw: Vec<u8>,
    /// Why it was moved: the decode error, with its causes.
    pub error: String,
    /// When it was moved (or last retried), unix milliseconds.
    pub at_ms: i64,
}

impl Quarantined {
    /// `raw`, under `key` of `origin`, moved aside now for `error`.
    pub(crate) fn now(
        origin: Origin,
        key: &[u8],
        raw: &[u8],
        error: &dyn std::error::Error,
    ) -> Self {
        Quarantined {
            id: Uuid::now_v7(),
            origin,
            key: key.to_vec(),
            raw: raw.to_vec(),
            error: hookd_model::error_chain(error),
            at_ms: SystemClock.now_ms(),
        }
    }

    /// The operational event that tells subscribers of it.
    pub(crate) fn announcement(&self) -> Event {
        hookd_model::operational::quarantined(
            self.id,
            self.origin.as_str(),
            &self.key_text(),
            &self.error,
            self.at_ms,
        )
    }

    /// The key as a person reads it: the outbox position, the delivery id,
    /// `hook id/name`, `entity/id`, or hex when it is none of these.
    pub fn key_text(&self) -> String {
        let k = &self.key;
        let uuid = |b: &[u8]| Uuid::from_slice(b).ok();
        let shown = match self.origin {
            Origin::Outbox => <[u8; 8]>::try_from(k.as_slice())
                .ok()
                .map(|b| u64::from_be_bytes(b).to_string()),
            Origin::Deliveries => uuid(k).map(|id| id.to_string()),
            Origin::HookState => k.get(..16).and_then(uuid).and_then(|hook| {
                let name = std::str::from_utf8(&k[16..]).ok()?;
                Some(format!("{hook}/{name}"))
            }),
            // name ++ '/' ++ 16 id bytes (which may hold a '/' themselves).
            Origin::Entities => k
                .len()
                .checked_sub(17)
                .filter(|&slash| k[slash] == b'/')
                .and_then(|slash| {
                    let name = std::str::from_utf8(&k[..slash]).ok()?;
                    Some(format!("{name}/{}", uuid(&k[slash + 1..])?))
                }),
            Origin::AuditAllowed | Origin::AuditDenied => None,
        };
        shown.unwrap_or_else(|| hex::encode(k))
    }
}

/// What a retry came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Retried {
    /// Back where it came from, for its loop to take.
    Restored,
    /// It still does not decode: it stays, with the new error and time.
    StillCorrupt(Quarantined),
    /// Its key holds a newer record now; the quarantined one stays.
    Superseded,
}

/// The quarantine of a store.
#[async_trait]
pub trait Quarantine: Send + Sync {
    /// Quarantined records, oldest first. Offsets are the id of the first
    /// record of the next page.
    async fn quarantine_page(&self, page: &Page) -> Result<Listed<Quarantined>>;

    /// One quarantined record.
    async fn quarantined(&self, id: Uuid) -> Result<Option<Quarantined>>;

    /// Records in the quarantine, by origin: for `/metrics`.
    async fn quarantine_counts(&self) -> Result<Vec<(Origin, usize)>>;

    /// Deletes a quarantined record for good; false if there is none. An
    /// entity also gives up the unique values and references it held.
    async fn delete_quarantined(&self, id: Uuid) -> Result<bool>;

    /// Puts a quarantined record back where it came from if it decodes
    /// now, for its loop to take again; if it does not, it stays with the
    /// new error. None if there is no such record.
    async fn retry_quarantined(&self, id: Uuid) -> Result<Option<Retried>>;
}
