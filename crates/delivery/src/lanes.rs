//! Fair shares of the workers. Due deliveries wait in one lane per hook,
//! and free workers go round the lanes in turn, so a hook whose receiver
//! hangs holds at most its own `concurrency` of them and delays nobody
//! else's deliveries. A lane also keeps its hook's rate limit (a token
//! bucket) and, while the hook is paused, lets only its probe through.
//!
//! Lanes hold copies of deliveries that stay in the store's due index until
//! their attempt is committed, or deliveries in memory only whose outbox
//! record stays until then: losing the lanes loses nothing.

use crate::breaker::{Breakers, Paused};
use hookd_model::EventHook;
use hookd_model::delivery::Delivery;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How many attempts of one hook run at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HookConcurrency {
    /// For a hook that sets no `concurrency`.
    pub default: u32,
    /// The most a hook may set.
    pub max: u32,
}

impl Default for HookConcurrency {
    /// Half the default 128 workers: a hook whose receiver hangs takes no
    /// more than that, and a busy hook alone has as many in flight as all
    /// the workers had before hooks had shares (at 16 or 32, one hook on
    /// the `delivery` benchmark fell seconds behind its writes).
    fn default() -> Self {
        HookConcurrency {
            default: 64,
            max: 128,
        }
    }
}

/// What a hook's lane keeps to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rules {
    /// Whether the hook's deliveries are attempted at all.
    pub enabled: bool,
    /// Attempts at once, at most.
    pub concurrency: usize,
    /// Deliveries a second, at most; none is unlimited.
    pub rate: Option<f64>,
}

impl Rules {
    /// The rules of `hook`, with the server's default concurrency for a
    /// hook that sets none.
    pub(crate) fn of(hook: &EventHook, default_concurrency: u32) -> Self {
        Rules {
            enabled: hook.enabled,
            concurrency: hook.concurrency.unwrap_or(default_concurrency).max(1) as usize,
            rate: hook.rate_limit,
        }
    }

    /// Deliveries a lane holds, at most: enough to keep its attempts busy
    /// between two looks at the store, few enough that a hook with a long
    /// queue does not fill memory.
    fn holds(&self) -> usize {
        (self.concurrency * 4).clamp(16, 1024)
    }
}

/// A token bucket: `rate` tokens a second, at most a tenth of a second's
/// worth (and at least one) saved up, so that deliveries are spread evenly
/// rather than sent in bursts.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, now: Instant) -> Self {
        let capacity = (rate / 10.0).max(1.0);
        Bucket {
            rate,
            capacity,
            tokens: 1.0,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.capacity);
        self.at = now;
    }

    fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token is there (within the hour: a rate may be as
    /// small as a client likes, and whoever waits looks again sooner).
    fn ready_at(&self) -> Instant {
        const FAR: Duration = Duration::from_secs(3600);
        let missing = (1.0 - self.tokens).max(0.0);
        let wait = Duration::try_from_secs_f64(missing / self.rate).map_or(FAR, |w| w.min(FAR));
        self.at + wait
    }
}

#[derive(Debug)]
struct Lane {
    waiting: VecDeque<Delivery>,
    running: usize,
    rules: Rules,
    bucket: Option<Bucket>,
}

impl Lane {
    fn new(rules: Rules, now: Instant) -> Self {
        Lane {
            waiting: VecDeque::new(),
            running: 0,
            rules,
            bucket: rules.rate.map(|rate| Bucket::new(rate, now)),
        }
    }

    fn set_rules(&mut self, rules: Rules, now: Instant) {
        if rules.rate != self.rules.rate {
            self.bucket = rules.rate.map(|rate| Bucket::new(rate, now));
        }
        self.rules = rules;
    }

    /// Whether the lane is blocked by nothing but its hook's rate limit.
    fn waits_for_a_token(&self, paused: Option<Paused>) -> bool {
        self.rules.enabled
            && paused.is_none()
            && !self.waiting.is_empty()
            && self.running < self.rules.concurrency
    }

    /// The next delivery this lane may start now, if any.
    fn take(&mut self, paused: Option<Paused>, now: Instant) -> Option<Delivery> {
        if !self.rules.enabled || self.running >= self.rules.concurrency {
            return None;
        }
        let at = match paused {
            None => (!self.waiting.is_empty()).then_some(0)?,
            // A paused hook runs one attempt at a time: its probe's.
            Some(_) if self.running > 0 => return None,
            Some(Paused::AnyOne) => (!self.waiting.is_empty()).then_some(0)?,
            Some(Paused::Probe(id)) => self.waiting.iter().position(|d| d.id == id)?,
        };
        if let Some(bucket) = &mut self.bucket
            && !bucket.try_take(now)
        {
            return None;
        }
        self.running += 1;
        self.waiting.remove(at)
    }
}

/// The lanes of every hook with deliveries held or running.
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    lanes: HashMap<Uuid, Lane>,
    /// Hooks in the order of their next turn.
    turns: VecDeque<Uuid>,
    /// The ids of every delivery held in a lane.
    held: HashSet<Uuid>,
}

impl Lanes {
    /// Whether the delivery is held in a lane already.
    pub(crate) fn holds(&self, delivery: Uuid) -> bool {
        self.held.contains(&delivery)
    }

    /// How many more deliveries the lane of `hook` under `rules` may hold.
    pub(crate) fn room(&self, hook: Uuid, rules: &Rules) -> usize {
        let waiting = self.lanes.get(&hook).map_or(0, |lane| lane.waiting.len());
        rules.holds().saturating_sub(waiting)
    }

    /// How many held deliveries could start now, were there workers: the
    /// scheduler looks at the store for more only when these are fewer
    /// than its free workers.
    pub(crate) fn startable(&self, breakers: &Breakers, now: Instant) -> usize {
        self.lanes
            .iter()
            .map(|(hook, lane)| {
                let open = lane.rules.concurrency.saturating_sub(lane.running);
                let limited = lane.bucket.as_ref().is_some_and(|b| b.ready_at() > now);
                match breakers.paused(*hook) {
                    _ if !lane.rules.enabled || limited => 0,
                    None => lane.waiting.len().min(open),
                    Some(_) => usize::from(lane.running == 0 && !lane.waiting.is_empty()),
                }
            })
            .sum()
    }

    /// Updates a hook's rules (read afresh at every look at the store).
    pub(crate) fn set_rules(&mut self, hook: Uuid, rules: Rules, now: Instant) {
        if let Some(lane) = self.lanes.get_mut(&hook) {
            lane.set_rules(rules, now);
        }
    }

    /// Holds a due delivery in its hook's lane, behind the ones held before.
    pub(crate) fn hold(&mut self, delivery: Delivery, rules: Rules, now: Instant) {
        if !self.held.insert(delivery.id) {
            return;
        }
        let hook = delivery.hook_id;
        let lane = self.lanes.entry(hook).or_insert_with(|| {
            self.turns.push_back(hook);
            Lane::new(rules, now)
        });
        lane.waiting.push_back(delivery);
    }

    /// The next delivery to attempt: the first lane in turn that may start
    /// one gives it and goes to the back of the turns.
    pub(crate) fn next(&mut self, breakers: &mut Breakers, now: Instant) -> Option<Delivery> {
        for _ in 0..self.turns.len() {
            let hook = self.turns.pop_front()?;
            self.turns.push_back(hook);
            let Some(lane) = self.lanes.get_mut(&hook) else {
                continue;
            };
            let paused = breakers.paused(hook);
            if let Some(delivery) = lane.take(paused, now) {
                if paused == Some(Paused::AnyOne) {
                    breakers.choose_probe(hook, delivery.id);
                }
                self.held.remove(&delivery.id);
                return Some(delivery);
            }
        }
        None
    }

    /// An attempt of `hook` ended: its lane has a free place again, and
    /// goes when it holds nothing more.
    pub(crate) fn finished(&mut self, hook: Uuid) {
        let Some(lane) = self.lanes.get_mut(&hook) else {
            return;
        };
        lane.running = lane.running.saturating_sub(1);
        if lane.running == 0 && lane.waiting.is_empty() {
            self.lanes.remove(&hook);
            self.turns.retain(|h| *h != hook);
        }
    }

    /// Whether the lane of `hook` holds fewer deliveries than it may run
    /// at once (or is gone): time to look at the store for more.
    pub(crate) fn running_low(&self, hook: Uuid) -> bool {
        self.lanes
            .get(&hook)
            .is_none_or(|lane| lane.waiting.len() < lane.rules.concurrency)
    }

    /// Lets go of every delivery of a hook that is no longer attempted
    /// (disabled), and returns them: those read from the store stay
    /// queued there, those in memory only must be stored.
    pub(crate) fn release(&mut self, hook: Uuid) -> Vec<Delivery> {
        let Some(lane) = self.lanes.get_mut(&hook) else {
            return Vec::new();
        };
        let released: Vec<Delivery> = lane.waiting.drain(..).collect();
        for d in &released {
            self.held.remove(&d.id);
        }
        if lane.running == 0 {
            self.lanes.remove(&hook);
            self.turns.retain(|h| *h != hook);
        }
        released
    }

    /// When the soonest lane blocked only by its rate limit gets a token.
    pub(crate) fn next_token_at(&self, breakers: &Breakers) -> Option<Instant> {
        self.lanes
            .iter()
            .filter(|(hook, lane)| lane.waits_for_a_token(breakers.paused(**hook)))
            .filter_map(|(_, lane)| lane.bucket.as_ref().map(Bucket::ready_at))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_model::Event;
    use serde_json::json;

    fn rules(concurrency: usize) -> Rules {
        Rules {
            enabled: true,
            concurrency,
            rate: None,
        }
    }

    fn delivery(hook: Uuid, n: i64) -> Delivery {
        Delivery::new(hook, Event::new("s", "e", json!({"n": n}), n), 0, n)
    }

    fn drain(lanes: &mut Lanes, breakers: &mut Breakers, now: Instant) -> Vec<Delivery> {
        std::iter::from_fn(|| lanes.next(breakers, now)).collect()
    }

    #[test]
    fn lanes_take_turns_and_keep_to_their_concurrency() {
        let (slow, fast) = (Uuid::new_v4(), Uuid::new_v4());
        let now = Instant::now();
        let mut lanes = Lanes::default();
        let mut breakers = Breakers::default();
        for n in 0..10 {
            lanes.hold(delivery(slow, n), rules(2), now);
        }
        for n in 0..3 {
            lanes.hold(delivery(fast, n), rules(8), now);
        }
        let started: Vec<Uuid> = drain(&mut lanes, &mut breakers, now)
            .iter()
            .map(|d| d.hook_id)
            .collect();
        assert_eq!(started, [slow, fast, slow, fast, fast]);
        // The slow hook's attempts hang; an ended one lets the next start.
        lanes.finished(slow);
        let next = lanes.next(&mut breakers, now).unwrap();
        assert_eq!(next.hook_id, slow);
        assert_eq!(next.event.data["n"], 2, "in order");
    }

    #[test]
    fn a_full_lane_takes_no_more() {
        let hook = Uuid::new_v4();
        let now = Instant::now();
        let mut lanes = Lanes::default();
        let r = rules(1);
        for n in 0..r.holds() as i64 {
            assert_eq!(lanes.room(hook, &r), r.holds() - n as usize);
            lanes.hold(delivery(hook, n), r, now);
        }
        assert_eq!(lanes.room(hook, &r), 0);
        assert_eq!(lanes.room(Uuid::new_v4(), &r), r.holds());
        assert_eq!(
            lanes.startable(&Breakers::default(), now),
            1,
            "one at a time"
        );
    }

    #[test]
    fn the_rate_limit_spreads_deliveries_evenly() {
        let hook = Uuid::new_v4();
        let t0 = Instant::now();
        let mut lanes = Lanes::default();
        let mut breakers = Breakers::default();
        let limited = Rules {
            rate: Some(4.0),
            ..rules(100)
        };
        for n in 0..10 {
            lanes.hold(delivery(hook, n), limited, t0);
        }
        assert_eq!(drain(&mut lanes, &mut breakers, t0).len(), 1);
        let ready = lanes.next_token_at(&breakers).unwrap();
        assert_eq!(ready - t0, Duration::from_millis(250));
        assert!(
            lanes
                .next(&mut breakers, ready - Duration::from_millis(1))
                .is_none()
        );
        assert_eq!(drain(&mut lanes, &mut breakers, ready).len(), 1);
        // Idle for a long time, it saves up one token, not a burst.
        let later = ready + Duration::from_secs(60);
        assert_eq!(drain(&mut lanes, &mut breakers, later).len(), 1);
    }

    #[test]
    fn any_positive_rate_is_safe_to_wait_for() {
        let t0 = Instant::now();
        for rate in [f64::MIN_POSITIVE, 1e-300, 1e300, f64::MAX] {
            let mut bucket = Bucket::new(rate, t0);
            assert!(bucket.try_take(t0));
            assert!(
                bucket.ready_at() <= t0 + Duration::from_secs(3600),
                "{rate}"
            );
        }
    }

    #[test]
    fn a_paused_hook_attempts_only_its_probe_one_at_a_time() {
        use crate::breaker::{BreakerPolicy, with_attempt};
        use hookd_model::delivery::DeliveryState;
        let hook = Uuid::new_v4();
        let now = Instant::now();
        let mut lanes = Lanes::default();
        let mut breakers = Breakers::default();
        let policy = BreakerPolicy {
            pause_after: 1,
            ..BreakerPolicy::default()
        };
        let probe = with_attempt(delivery(hook, 0), false, DeliveryState::Failed);
        breakers.record(&probe, &policy, 0);
        for n in 1..4 {
            lanes.hold(delivery(hook, n), rules(8), now);
        }
        assert!(
            lanes.next(&mut breakers, now).is_none(),
            "the probe is not due yet"
        );
        lanes.hold(probe.clone(), rules(8), now);
        let started = drain(&mut lanes, &mut breakers, now);
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].id, probe.id);
    }

    #[test]
    fn a_released_hook_lets_go_of_what_it_held() {
        let hook = Uuid::new_v4();
        let now = Instant::now();
        let mut lanes = Lanes::default();
        let d = delivery(hook, 0);
        lanes.hold(d.clone(), rules(1), now);
        assert!(lanes.holds(d.id));
        lanes.release(hook);
        assert!(!lanes.holds(d.id));
        assert!(lanes.next(&mut Breakers::default(), now).is_none());
    }
}
