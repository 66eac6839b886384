//! Deliveries: one event on its way to one hook, with every attempt.

use crate::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first attempt.
    Queued,
    /// An attempt is running now.
    InFlight,
    /// An attempt succeeded; nothing more to do.
    Succeeded,
    /// The last attempt failed; another is scheduled.
    Failed,
    /// Out of attempts: a dead letter, until redelivered.
    Dead,
}

impl DeliveryState {
    /// Whether no attempt will follow by itself.
    pub fn is_final(self) -> bool {
        matches!(self, DeliveryState::Succeeded | DeliveryState::Dead)
    }

    /// The name used in the API and in filters.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::InFlight => "in_flight",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
            DeliveryState::Dead => "dead",
        }
    }
}

/// Most bytes of a response body kept on an attempt.
pub const RESPONSE_EXCERPT_LIMIT: usize = 4096;

/// One try at handling a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// When it started, unix milliseconds.
    pub at_ms: i64,
    /// How long it took, milliseconds.
    pub latency_ms: u64,
    /// Whether it succeeded.
    pub ok: bool,
    /// HTTP status of the answer, for webhook handlers that got one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The start of the answer's body (at most 4 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// What the handler produced (a lambda chain's final data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

/// One event on its way to one hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Stable across retries and redelivery; sent as `webhook-id`.
    pub id: Uuid,
    /// The hook it is for.
    pub hook_id: Uuid,
    /// The event.
    pub event: Event,
    /// The event's place in the outbox: deliveries due at the same time
    /// are attempted in the order their events happened.
    #[serde(default)]
    pub seq: u64,
    /// Where it stands.
    pub state: DeliveryState,
    /// Every attempt so far, oldest first.
    pub attempts: Vec<Attempt>,
    /// When it was queued, unix milliseconds.
    pub created_at_ms: i64,
    /// When the next attempt is due, while one is scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at_ms: Option<i64>,
}

/// The namespace of the name hash in delivery ids.
const DELIVERY_NAMESPACE: Uuid = Uuid::from_u128(0x6b1d_3c9e_4a52_4f0e_9d7a_2e8c_51f0_a3b4);

impl Delivery {
    /// The id of the delivery of `event`, at outbox position `seq`, to
    /// `hook`: the same every time that record is dispatched, so a
    /// dispatch repeated after a crash makes the same delivery and
    /// receivers can deduplicate by `webhook-id`.
    ///
    /// A UUIDv8 that begins with the position (its low 48 bits), as a
    /// UUIDv7 begins with a time, followed by the SHA-1 name hash a UUIDv5
    /// of event and hook would carry. The store keeps deliveries under
    /// their ids, and sled writes keys that arrive in order at a fraction
    /// of the cost of random ones: with UUIDv5 ids, a retained delivery
    /// took about twice the bytes on disk. Should the position outgrow 48
    /// bits, the order restarts from the bottom; ids stay apart by the hash.
    pub fn id_for(seq: u64, event: Uuid, hook: Uuid) -> Uuid {
        let mut name = [0u8; 32];
        name[..16].copy_from_slice(event.as_bytes());
        name[16..].copy_from_slice(hook.as_bytes());
        let mut bytes = Uuid::new_v5(&DELIVERY_NAMESPACE, &name).into_bytes();
        bytes[..6].copy_from_slice(&seq.to_be_bytes()[2..]);
        // Sets the version and variant bits, over bits of the hash.
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    }

    /// A new delivery of the event at outbox position `seq`, due at once.
    pub fn new(hook_id: Uuid, event: Event, seq: u64, now_ms: i64) -> Self {
        Delivery {
            id: Delivery::id_for(seq, event.id, hook_id),
            hook_id,
            event,
            seq,
            state: DeliveryState::Queued,
            attempts: Vec::new(),
            created_at_ms: now_ms,
            next_attempt_at_ms: Some(now_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_stable_per_record_event_and_hook() {
        let (e, h) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(Delivery::id_for(7, e, h), Delivery::id_for(7, e, h));
        assert_ne!(Delivery::id_for(7, e, h), Delivery::id_for(7, h, e));
        assert_ne!(Delivery::id_for(7, e, h), Delivery::id_for(8, e, h));
        assert_eq!(Delivery::id_for(7, e, h).get_version_num(), 8);
        assert_eq!(
            Delivery::id_for(7, e, h).get_variant(),
            uuid::Variant::RFC4122
        );
    }

    #[test]
    fn delivery_ids_sort_by_outbox_position() {
        let ids: Vec<Uuid> = [1, 2, 255, 256, 65_536, 1 << 40]
            .into_iter()
            .map(|seq| Delivery::id_for(seq, Uuid::new_v4(), Uuid::new_v4()))
            .collect();
        assert!(ids.is_sorted(), "{ids:?}");
    }

    #[test]
    fn states_serialise_as_the_api_names_them() {
        assert_eq!(
            serde_json::to_value(DeliveryState::InFlight).unwrap(),
            serde_json::json!("in_flight")
        );
        assert!(DeliveryState::Dead.is_final() && !DeliveryState::Failed.is_final());
    }
}
