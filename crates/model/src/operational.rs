//! hookd's own source, `hookd`: what happens to hooks and deliveries, so
//! that operators subscribe a hook to it instead of reading logs. Its
//! events go through the outbox like any other; only hookd publishes them.
//!
//! An event about a hook names it in `hook`, and is never delivered to that
//! hook itself: a failing hook subscribed to its own failures would feed
//! itself forever. No field is named `source` or `event`: Kong's webhook
//! body adds those two to the data, over whatever the data has.

use crate::catalogue::{Catalogue, EventInfo};
use crate::event::Event;
use serde_json::{Value, json};
use uuid::Uuid;

/// The source's name.
pub const SOURCE: &str = "hookd";

/// The events of the source, each with its fields, its unique fields and
/// what it means.
const EVENTS: &[(&str, &[&str], &[&str], &str)] = &[
    (
        HOOK_PAUSED,
        &["hook", "failures", "delivery", "error"],
        &["hook"],
        "A hook failed too many times in a row: its deliveries wait while one probe is retried",
    ),
    (
        HOOK_RESUMED,
        &["hook", "paused_at"],
        &["hook"],
        "A paused hook's probe succeeded: its deliveries go out again, in order",
    ),
    (
        HOOK_DISABLED,
        &["hook", "failing_since"],
        &["hook"],
        "A hook failed for too long and was disabled; its queue is kept",
    ),
    (
        DELIVERY_DEAD,
        &[
            "hook",
            "delivery",
            "event_id",
            "event_source",
            "event_name",
            "attempts",
            "error",
        ],
        &["hook"],
        "A delivery ran out of attempts and is a dead letter",
    ),
    (
        QUARANTINED,
        &["id", "origin", "key", "error"],
        &["origin"],
        "A stored record did not decode and was moved to the quarantine",
    ),
];

/// A hook paused after consecutive failures.
pub const HOOK_PAUSED: &str = "hook-paused";
/// A paused hook resumed.
pub const HOOK_RESUMED: &str = "hook-resumed";
/// A hook disabled after failing for too long.
pub const HOOK_DISABLED: &str = "hook-disabled";
/// A delivery out of attempts.
pub const DELIVERY_DEAD: &str = "delivery-dead";
/// A stored record moved to the quarantine.
pub const QUARANTINED: &str = "quarantined";

/// Adds the source to a catalogue.
pub fn register(catalogue: &mut Catalogue) {
    for (event, fields, unique, description) in EVENTS {
        catalogue.add(
            SOURCE,
            event,
            EventInfo::new(fields).with_unique(unique, description),
        );
    }
}

/// An operational event about `hook`, happened at `now_ms`.
pub fn about_hook(event: &str, hook: Uuid, mut data: Value, now_ms: i64) -> Event {
    data["hook"] = json!(hook);
    Event::new(SOURCE, event, data, now_ms)
}

/// The event of a stored record moved to the quarantine: the
/// quarantine's id of it, the tree it came from, its key and why.
pub fn quarantined(id: Uuid, origin: &str, key: &str, error: &str, now_ms: i64) -> Event {
    let data = json!({"id": id, "origin": origin, "key": key, "error": error});
    Event::new(SOURCE, QUARANTINED, data, now_ms)
}

/// The hook an event is about, when it is an operational event about one:
/// that hook does not take it.
pub fn hook_of(event: &Event) -> Option<Uuid> {
    if event.source != SOURCE {
        return None;
    }
    Uuid::try_parse(event.data.get("hook")?.as_str()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_is_in_the_catalogue_with_its_fields() {
        let mut c = Catalogue::default();
        register(&mut c);
        let names: Vec<&str> = c
            .source(SOURCE)
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            names,
            [
                DELIVERY_DEAD,
                HOOK_DISABLED,
                HOOK_PAUSED,
                HOOK_RESUMED,
                QUARANTINED
            ]
        );
        assert_eq!(
            c.event(SOURCE, HOOK_PAUSED).unwrap().unique,
            Some(vec!["hook".into()])
        );
    }

    #[test]
    fn an_event_about_a_hook_names_it() {
        let hook = Uuid::new_v4();
        let e = about_hook(HOOK_RESUMED, hook, json!({"paused_at": 5}), 7);
        assert_eq!(
            (e.source.as_str(), e.event.as_str(), e.at_ms),
            (SOURCE, HOOK_RESUMED, 7)
        );
        assert_eq!(hook_of(&e), Some(hook));
        let elsewhere = Event::new("crud", "consumers", json!({"hook": hook}), 0);
        assert_eq!(hook_of(&elsewhere), None);
    }
}
