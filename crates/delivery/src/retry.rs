//! When a failed delivery is tried again: a schedule of delays, jitter,
//! and the receiver's `Retry-After` honoured within bounds.

use crate::random::Random;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How failed deliveries are retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Delay before each attempt after a failure: entry 0 before the
    /// second attempt, and so on; the last entry repeats.
    pub schedule: Vec<Duration>,
    /// Attempts in all, the first included; then the delivery is dead.
    pub max_attempts: u32,
    /// Each delay varies by up to this fraction either way, so that
    /// deliveries failed together do not retry together.
    pub jitter: f64,
    /// The longest `Retry-After` obeyed; longer ones are cut to this.
    pub retry_after_max: Duration,
}

impl Default for RetryPolicy {
    /// In the spirit of Standard Webhooks: at once, 5 s, 30 s, 2 min,
    /// 10 min, 30 min, 1 h, then hourly; 30 attempts cover about a day.
    fn default() -> Self {
        RetryPolicy {
            schedule: [0, 5, 30, 120, 600, 1800, 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_attempts: 30,
            jitter: 0.2,
            retry_after_max: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt after `attempts` failed ones, or
    /// none when the delivery is out of attempts. A `Retry-After` from the
    /// receiver lengthens the delay, up to `retry_after_max`, and is not
    /// jittered: the receiver asked for that time.
    pub fn next_delay(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        random: &dyn Random,
    ) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let index =
            (attempts.saturating_sub(1) as usize).min(self.schedule.len().saturating_sub(1));
        let base = self.schedule.get(index).copied().unwrap_or_default();
        let spread = 1.0 + self.jitter * (2.0 * random.unit() - 1.0);
        let jittered = base.mul_f64(spread.max(0.0));
        Some(match retry_after {
            Some(asked) => jittered.max(asked.min(self.retry_after_max)),
            None => jittered,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::FixedRandom;

    const MIDDLE: FixedRandom = FixedRandom(0.5);

    #[test]
    fn follows_the_schedule_then_repeats_its_last_step() {
        let p = RetryPolicy::default();
        let delays: Vec<u64> = (1..=9)
            .map(|n| p.next_delay(n, None, &MIDDLE).unwrap().as_secs())
            .collect();
        assert_eq!(delays, [0, 5, 30, 120, 600, 1800, 3600, 3600, 3600]);
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(p.next_delay(2, None, &MIDDLE).is_some());
        assert_eq!(p.next_delay(3, None, &MIDDLE), None);
    }

    #[test]
    fn jitter_spreads_both_ways() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.next_delay(2, None, &FixedRandom(0.0)).unwrap(),
            Duration::from_secs(4)
        );
        assert_eq!(
            p.next_delay(2, None, &FixedRandom(0.999_999_9))
                .unwrap()
                .as_secs(),
            5
        );
        assert!(
            p.next_delay(2, None, &FixedRandom(0.999_999_9)).unwrap() > Duration::from_millis(5990)
        );
    }

    #[test]
    fn retry_after_lengthens_within_bounds() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.next_delay(2, Some(Duration::from_secs(90)), &MIDDLE),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            p.next_delay(2, Some(Duration::from_secs(1)), &MIDDLE),
            Some(Duration::from_secs(5)),
            "a shorter Retry-After does not hurry the schedule"
        );
        assert_eq!(
            p.next_delay(2, Some(Duration::from_secs(86_400)), &MIDDLE),
            Some(Duration::from_secs(3600))
        );
    }
}
