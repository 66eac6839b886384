//! Circuit breaking: a hook whose attempts keep failing stops being
//! hammered. After `pause_after` failures in a row its deliveries pause and
//! one of them, the probe, is retried on its backoff schedule; the probe's
//! first success resumes the others, in order. A hook that has failed
//! without a success for `disable_after` is disabled.
//!
//! The state of each failing hook is kept in the store beside its
//! on_change and snooze memory, so that a restart neither forgets a pause
//! nor starts a failing hook's clock again.

use hookd_model::delivery::{Delivery, DeliveryState};
use hookd_store::HookStateUpdate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// The name of a hook's breaker in the store's hook memory.
const STATE_NAME: &str = "breaker";

/// When hooks pause and when they are disabled.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerPolicy {
    /// Failed attempts in a row after which a hook pauses; 0 never pauses.
    pub pause_after: u32,
    /// A hook that has failed for this long without a success is
    /// disabled; zero never disables.
    pub disable_after: Duration,
}

impl Default for BreakerPolicy {
    /// Ten failures in a row pause a hook; five days of failures disable
    /// it, as Svix disables an endpoint.
    fn default() -> Self {
        BreakerPolicy {
            pause_after: 10,
            disable_after: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

/// A failing hook's breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Breaker {
    /// Failed attempts in a row.
    failures: u32,
    /// When the first of them was made, unix milliseconds.
    failing_since_ms: i64,
    /// Since when the hook is paused, if it is.
    paused_at_ms: Option<i64>,
    /// While paused, the one delivery that is attempted; none until the
    /// next one is chosen (the first one died).
    probe: Option<Uuid>,
    /// Whether the hook was disabled for this run of failures.
    disabled: bool,
}

/// A change of a hook's standing, each published as an operational event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Turn {
    /// The hook paused after `failures` failures in a row, the last of
    /// them an attempt at `delivery`.
    Paused {
        failures: u32,
        delivery: Uuid,
        error: Option<String>,
    },
    /// The probe succeeded.
    Resumed { paused_at_ms: i64 },
    /// The hook failed for too long: disable it.
    Disable { failing_since_ms: i64 },
}

/// A hook failing now, as the breakers hold it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailingHook {
    /// The hook.
    pub hook: Uuid,
    /// Failed attempts in a row.
    pub failures: u32,
    /// When the first of them was made, unix milliseconds.
    pub failing_since_ms: i64,
    /// Since when its deliveries are paused, if they are.
    pub paused_at_ms: Option<i64>,
}

/// What a paused hook may attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Paused {
    /// Only this delivery.
    Probe(Uuid),
    /// Any one delivery, which becomes the probe.
    AnyOne,
}

/// The breakers of every failing hook.
#[derive(Debug, Default)]
pub(crate) struct Breakers {
    failing: HashMap<Uuid, Breaker>,
}

impl Breakers {
    /// Takes the stored breakers of the hooks `adopted` names as they
    /// are in `stored` (or none): hooks whose attempts another node ran
    /// until now, with their failures counted there.
    pub(crate) fn adopt(&mut self, stored: Breakers, adopted: impl Fn(Uuid) -> bool) {
        self.failing.retain(|hook, _| !adopted(*hook));
        self.failing.extend(
            stored
                .failing
                .into_iter()
                .filter(|(hook, _)| adopted(*hook)),
        );
    }

    /// The breakers kept in the store's hook memory. One that does not
    /// decode is dropped: its hook starts counting again.
    pub(crate) fn load(entries: &[(Uuid, String, Value)]) -> Self {
        let failing = entries
            .iter()
            .filter(|(_, name, _)| name == STATE_NAME)
            .filter_map(|(hook, _, value)| match serde_json::from_value(value.clone()) {
                Ok(breaker) => Some((*hook, breaker)),
                Err(e) => {
                    tracing::warn!(%hook, error = %e, "a stored breaker does not decode; dropped");
                    None
                }
            })
            .collect();
        Breakers { failing }
    }

    /// Every hook failing now, the longest failing first.
    pub(crate) fn failing(&self) -> Vec<FailingHook> {
        let mut failing: Vec<FailingHook> = self
            .failing
            .iter()
            .filter(|(_, b)| b.failures > 0)
            .map(|(hook, b)| FailingHook {
                hook: *hook,
                failures: b.failures,
                failing_since_ms: b.failing_since_ms,
                paused_at_ms: b.paused_at_ms,
            })
            .collect();
        failing.sort_by_key(|f| (f.failing_since_ms, f.hook));
        failing
    }

    /// Whether the hook is paused, and what it may attempt then.
    pub(crate) fn paused(&self, hook: Uuid) -> Option<Paused> {
        let breaker = self.failing.get(&hook)?;
        breaker.paused_at_ms?;
        Some(match breaker.probe {
            Some(id) => Paused::Probe(id),
            None => Paused::AnyOne,
        })
    }

    /// Makes `delivery` the probe of a paused hook.
    pub(crate) fn choose_probe(&mut self, hook: Uuid, delivery: Uuid) {
        if let Some(breaker) = self.failing.get_mut(&hook) {
            breaker.probe = Some(delivery);
        }
    }

    /// Forgets a hook's failures (it was written, or deleted); returns what
    /// to remove from the store, if anything was kept.
    pub(crate) fn reset(&mut self, hook: Uuid) -> Option<HookStateUpdate> {
        self.failing.remove(&hook).map(|_| update(hook, None))
    }

    /// Counts an attempt at `delivery`, of a hook that still exists, made
    /// at `now_ms`: returns what to write to the store and how the hook's
    /// standing turned.
    pub(crate) fn record(
        &mut self,
        delivery: &Delivery,
        policy: &BreakerPolicy,
        now_ms: i64,
    ) -> (Option<HookStateUpdate>, Vec<Turn>) {
        let hook = delivery.hook_id;
        let Some(last) = delivery.attempts.last() else {
            return (None, Vec::new());
        };
        if last.ok {
            // The common case costs nothing: a hook that is not failing
            // has no breaker to write.
            let Some(breaker) = self.failing.remove(&hook) else {
                return (None, Vec::new());
            };
            let turns = breaker
                .paused_at_ms
                .map(|paused_at_ms| Turn::Resumed { paused_at_ms })
                .into_iter()
                .collect();
            return (Some(update(hook, None)), turns);
        }
        let breaker = self.failing.entry(hook).or_insert(Breaker {
            failures: 0,
            failing_since_ms: now_ms,
            paused_at_ms: None,
            probe: None,
            disabled: false,
        });
        breaker.failures = breaker.failures.saturating_add(1);
        let mut turns = Vec::new();
        if breaker.paused_at_ms.is_none()
            && policy.pause_after > 0
            && breaker.failures >= policy.pause_after
        {
            breaker.paused_at_ms = Some(now_ms);
            turns.push(Turn::Paused {
                failures: breaker.failures,
                delivery: delivery.id,
                error: last.error.clone(),
            });
        }
        if breaker.paused_at_ms.is_some() {
            // The delivery that failed goes on being the probe while it
            // has attempts left; a dead one hands over to the next.
            breaker.probe = (delivery.state != DeliveryState::Dead).then_some(delivery.id);
        }
        let failing_for = now_ms.saturating_sub(breaker.failing_since_ms);
        if !breaker.disabled
            && !policy.disable_after.is_zero()
            && failing_for >= policy.disable_after.as_millis() as i64
        {
            breaker.disabled = true;
            turns.push(Turn::Disable {
                failing_since_ms: breaker.failing_since_ms,
            });
        }
        let stored = serde_json::to_value(&*breaker).ok();
        (Some(update(hook, stored)), turns)
    }
}

fn update(hook: Uuid, value: Option<Value>) -> HookStateUpdate {
    HookStateUpdate {
        hook,
        name: STATE_NAME.to_string(),
        value,
    }
}

/// `d` after one attempt at 0 that succeeded (200) or failed (500), in
/// `state`: the attempts the breaker's tests, and the scheduler's, count.
#[cfg(test)]
pub(crate) fn with_attempt(mut d: Delivery, ok: bool, state: DeliveryState) -> Delivery {
    d.attempts.push(hookd_model::delivery::Attempt {
        number: 1,
        at_ms: 0,
        latency_ms: 1,
        ok,
        status: Some(if ok { 200 } else { 500 }),
        error: (!ok).then(|| "the receiver answered 500".to_string()),
        response: None,
        result: None,
    });
    d.state = state;
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_model::Event;
    use serde_json::json;

    const HOUR_MS: i64 = 3_600_000;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            pause_after: 3,
            disable_after: Duration::from_secs(24 * 3600),
        }
    }

    fn attempted(hook: Uuid, ok: bool, state: DeliveryState) -> Delivery {
        let d = Delivery::new(hook, Event::new("s", "e", json!({}), 0), 0, 0);
        with_attempt(d, ok, state)
    }

    #[test]
    fn a_hook_pauses_after_failures_in_a_row_and_the_probe_resumes_it() {
        let hook = Uuid::new_v4();
        let mut breakers = Breakers::default();
        for n in 1..3 {
            let (stored, turns) =
                breakers.record(&attempted(hook, false, DeliveryState::Failed), &policy(), n);
            assert!(stored.unwrap().value.is_some());
            assert!(turns.is_empty());
            assert_eq!(breakers.paused(hook), None);
        }
        let third = attempted(hook, false, DeliveryState::Failed);
        let (_, turns) = breakers.record(&third, &policy(), 3);
        assert!(matches!(
            turns.as_slice(),
            [Turn::Paused { failures: 3, delivery, .. }] if *delivery == third.id
        ));
        assert_eq!(breakers.paused(hook), Some(Paused::Probe(third.id)));

        // The probe dies: the next delivery attempted becomes the probe.
        let (_, turns) =
            breakers.record(&attempted(hook, false, DeliveryState::Dead), &policy(), 4);
        assert!(turns.is_empty(), "paused once per run of failures");
        assert_eq!(breakers.paused(hook), Some(Paused::AnyOne));

        let (stored, turns) = breakers.record(
            &attempted(hook, true, DeliveryState::Succeeded),
            &policy(),
            5,
        );
        assert_eq!(stored, Some(update(hook, None)));
        assert_eq!(turns, [Turn::Resumed { paused_at_ms: 3 }]);
        assert_eq!(breakers.paused(hook), None);
    }

    #[test]
    fn failing_lists_each_failing_hook_once_longest_first() {
        let (early, late) = (Uuid::new_v4(), Uuid::new_v4());
        let mut breakers = Breakers::default();
        breakers.record(
            &attempted(early, false, DeliveryState::Failed),
            &policy(),
            1,
        );
        breakers.record(&attempted(late, false, DeliveryState::Failed), &policy(), 2);
        breakers.record(
            &attempted(early, false, DeliveryState::Failed),
            &policy(),
            3,
        );
        let failing = breakers.failing();
        assert_eq!(
            failing
                .iter()
                .map(|f| (f.hook, f.failures))
                .collect::<Vec<_>>(),
            [(early, 2), (late, 1)]
        );
        assert_eq!(failing[0].failing_since_ms, 1);
        breakers.record(
            &attempted(late, true, DeliveryState::Succeeded),
            &policy(),
            4,
        );
        assert_eq!(breakers.failing().len(), 1);
    }

    #[test]
    fn successes_of_a_healthy_hook_write_nothing() {
        let mut breakers = Breakers::default();
        let ok = attempted(Uuid::new_v4(), true, DeliveryState::Succeeded);
        assert_eq!(breakers.record(&ok, &policy(), 0), (None, Vec::new()));
    }

    #[test]
    fn a_hook_failing_for_too_long_is_disabled_once() {
        let hook = Uuid::new_v4();
        let mut breakers = Breakers::default();
        let failed = || attempted(hook, false, DeliveryState::Failed);
        breakers.record(&failed(), &policy(), 0);
        let (_, turns) = breakers.record(&failed(), &policy(), 23 * HOUR_MS);
        assert!(turns.is_empty());
        let (_, turns) = breakers.record(&failed(), &policy(), 24 * HOUR_MS);
        assert!(turns.contains(&Turn::Disable {
            failing_since_ms: 0
        }));
        let (_, turns) = breakers.record(&failed(), &policy(), 25 * HOUR_MS);
        assert!(!turns.iter().any(|t| matches!(t, Turn::Disable { .. })));
    }

    #[test]
    fn zero_never_pauses_nor_disables() {
        let hook = Uuid::new_v4();
        let never = BreakerPolicy {
            pause_after: 0,
            disable_after: Duration::ZERO,
        };
        let mut breakers = Breakers::default();
        for n in 0..100 {
            let (_, turns) = breakers.record(
                &attempted(hook, false, DeliveryState::Failed),
                &never,
                n * HOUR_MS,
            );
            assert!(turns.is_empty());
        }
        assert_eq!(breakers.paused(hook), None);
    }

    #[test]
    fn breakers_survive_the_store() {
        let hook = Uuid::new_v4();
        let mut breakers = Breakers::default();
        let mut stored = None;
        for n in 0..3 {
            stored = breakers
                .record(&attempted(hook, false, DeliveryState::Failed), &policy(), n)
                .0;
        }
        let entry = stored.unwrap();
        let loaded = Breakers::load(&[
            (hook, entry.name, entry.value.unwrap()),
            (Uuid::new_v4(), "on_change".into(), json!("digest")),
            (Uuid::new_v4(), STATE_NAME.into(), json!("not a breaker")),
        ]);
        assert_eq!(loaded.failing.len(), 1);
        assert_eq!(loaded.paused(hook), breakers.paused(hook));
        assert!(loaded.paused(hook).is_some());
    }
}
