//! on_change and snooze: which events a hook lets through, as Kong's
//! spec describes them. Pure: the dispatcher keeps the memory and
//! persists the changes this returns.

use hookd_model::{Event, EventHook};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// What one hook remembers between events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HookMemory {
    /// Digest of the last event seen (on_change).
    pub last_digest: Option<String>,
    /// Snooze windows by key: when each ends, unix ms.
    pub snoozed_until: HashMap<String, i64>,
}

/// Name of the on_change memory entry.
pub const ON_CHANGE: &str = "on_change";
/// Prefix of the snooze memory entries.
pub const SNOOZE: &str = "snooze:";

/// A change to remember: (name, value or none to forget).
pub type Remember = (String, Option<Value>);

/// Whether `hook` has on_change or snooze: whether [`admit`] decides
/// anything for it, and remembers what it decided.
pub fn applies(hook: &EventHook) -> bool {
    hook.on_change == Some(true) || hook.snooze.is_some_and(|s| s > 0)
}

/// Decides whether `hook` takes `event` now; `unique` is the event's
/// declared unique fields. Returns the decision and what to remember.
///
/// - on_change only: fire when the digest differs from the last one seen.
/// - snooze only: fire, then drop everything for `snooze` seconds from
///   that firing; dropped events do not extend the window.
/// - both: the digest is part of the snooze key, so identical data is
///   snoozed while different data fires.
pub fn admit(
    hook: &EventHook,
    event: &Event,
    unique: Option<&[String]>,
    memory: &mut HookMemory,
    now_ms: i64,
) -> (bool, Vec<Remember>) {
    if !applies(hook) {
        return (true, Vec::new());
    }
    let on_change = hook.on_change == Some(true);
    let snooze = hook.snooze.filter(|s| *s > 0);
    let digest = event.digest(unique);
    let mut remember = Vec::new();
    match snooze {
        None => {
            let fire = memory.last_digest.as_deref() != Some(digest.as_str());
            if fire {
                memory.last_digest = Some(digest.clone());
                remember.push((ON_CHANGE.to_string(), Some(Value::from(digest))));
            }
            (fire, remember)
        }
        Some(seconds) => {
            let key = if on_change { digest } else { "*".to_string() };
            // Windows that ended are forgotten as they are met.
            let expired: Vec<String> = memory
                .snoozed_until
                .iter()
                .filter(|(_, until)| **until <= now_ms)
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                memory.snoozed_until.remove(&k);
                remember.push((format!("{SNOOZE}{k}"), None));
            }
            if memory.snoozed_until.contains_key(&key) {
                return (false, remember);
            }
            let until = now_ms + seconds * 1000;
            memory.snoozed_until.insert(key.clone(), until);
            remember.retain(|(name, _)| name != &format!("{SNOOZE}{key}"));
            remember.push((format!("{SNOOZE}{key}"), Some(Value::from(until))));
            (true, remember)
        }
    }
}

/// What to forget of a hook's memory so that the store keeps none of it:
/// the inverse of what [`admit`] asked to remember.
pub fn forget(memory: &HookMemory) -> Vec<Remember> {
    let on_change = memory.last_digest.as_ref().map(|_| ON_CHANGE.to_string());
    let snoozes = memory.snoozed_until.keys().map(|k| format!("{SNOOZE}{k}"));
    on_change
        .into_iter()
        .chain(snoozes)
        .map(|name| (name, None))
        .collect()
}

/// Rebuilds the memory of every hook from what the store kept.
pub fn load(entries: Vec<(Uuid, String, Value)>) -> HashMap<Uuid, HookMemory> {
    let mut all: HashMap<Uuid, HookMemory> = HashMap::new();
    for (hook, name, value) in entries {
        let memory = all.entry(hook).or_default();
        if name == ON_CHANGE {
            memory.last_digest = value.as_str().map(str::to_string);
        } else if let (Some(key), Some(until)) = (name.strip_prefix(SNOOZE), value.as_i64()) {
            memory.snoozed_until.insert(key.to_string(), until);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_model::hook::{Handler, LogConfig};
    use serde_json::json;

    fn hook(on_change: Option<bool>, snooze: Option<i64>) -> EventHook {
        EventHook {
            id: Uuid::nil(),
            created_at: 0,
            source: "s".into(),
            event: None,
            on_change,
            snooze,
            enabled: true,
            concurrency: None,
            rate_limit: None,
            condition: None,
            handler: Handler::Log(LogConfig {}),
        }
    }

    fn event(data: Value) -> Event {
        Event::new("s", "e", data, 0)
    }

    /// Runs (second, data) events through a hook; returns which fired.
    fn run(hook: &EventHook, events: &[(i64, Value)]) -> Vec<bool> {
        let mut memory = HookMemory::default();
        events
            .iter()
            .map(|(s, data)| admit(hook, &event(data.clone()), None, &mut memory, s * 1000).0)
            .collect()
    }

    #[test]
    fn on_change_sequence_of_the_spec() {
        let h = hook(Some(true), None);
        let (a, b) = (json!({"v": "A"}), json!({"v": "B"}));
        assert_eq!(
            run(&h, &[(0, a.clone()), (1, a.clone()), (2, b), (3, a)]),
            [true, false, true, true]
        );
    }

    #[test]
    fn on_change_sees_numbers_and_booleans() {
        let h = hook(Some(true), None);
        assert_eq!(
            run(
                &h,
                &[
                    (0, json!({"n": 1})),
                    (1, json!({"n": 2})),
                    (2, json!({"n": 2, "b": true})),
                    (3, json!({"n": 2, "b": false}))
                ]
            ),
            [true, true, true, true]
        );
    }

    #[test]
    fn snooze_sequence_of_the_spec() {
        let h = hook(None, Some(60));
        let d = json!({"v": 1});
        let at = |s| (s, d.clone());
        assert_eq!(
            run(&h, &[at(0), at(50), at(70), at(100), at(131)]),
            [true, false, true, false, true]
        );
    }

    #[test]
    fn both_snooze_identical_data_only() {
        let h = hook(Some(true), Some(60));
        let (a, b) = (json!({"v": "A"}), json!({"v": "B"}));
        assert_eq!(
            run(
                &h,
                &[
                    (0, a.clone()),
                    (10, a.clone()),
                    (20, b.clone()),
                    (30, b),
                    (61, a)
                ]
            ),
            [true, false, true, false, true]
        );
    }

    #[test]
    fn unique_fields_decide_the_digest() {
        let h = hook(Some(true), None);
        let unique = vec!["consumer".to_string()];
        let mut memory = HookMemory::default();
        let mut fire = |data: Value| admit(&h, &event(data), Some(&unique), &mut memory, 0).0;
        assert!(fire(json!({"consumer": "c", "rate": 1})));
        assert!(!fire(json!({"consumer": "c", "rate": 2})));
        assert!(fire(json!({"consumer": "d", "rate": 2})));
    }

    #[test]
    fn memory_round_trips_through_the_store_form() {
        let h = hook(Some(true), Some(60));
        let mut memory = HookMemory::default();
        let (_, remember) = admit(&h, &event(json!({"v": 1})), None, &mut memory, 0);
        let entries = remember
            .into_iter()
            .filter_map(|(name, value)| Some((Uuid::nil(), name, value?)))
            .collect();
        assert_eq!(load(entries)[&Uuid::nil()], memory);
    }

    #[test]
    fn forgetting_names_every_entry_remembered() {
        let h = hook(Some(true), Some(60));
        let mut memory = HookMemory::default();
        let mut remembered = Vec::new();
        for (second, v) in [(0, 1), (1, 2)] {
            let (_, remember) = admit(
                &h,
                &event(json!({"v": v})),
                None,
                &mut memory,
                second * 1000,
            );
            remembered.extend(remember.into_iter().map(|(name, _)| name));
        }
        let mut forgotten: Vec<String> = forget(&memory)
            .into_iter()
            .map(|(name, value)| {
                assert_eq!(value, None);
                name
            })
            .collect();
        forgotten.sort();
        remembered.sort();
        remembered.dedup();
        assert_eq!(forgotten, remembered);
        let on_change_only = hook(Some(true), None);
        let mut memory = HookMemory::default();
        admit(
            &on_change_only,
            &event(json!({"v": 1})),
            None,
            &mut memory,
            0,
        );
        assert_eq!(forget(&memory), [(ON_CHANGE.to_string(), None)]);
    }
}
