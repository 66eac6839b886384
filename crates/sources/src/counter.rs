//! The health of one address and the counters that move it, as
//! lua-resty-healthcheck keeps them. Pure: no time, no I/O.

pub(crate) use hookd_model::balancer::Health;

/// What one probe tells about an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Connected (tcp), or a status in `healthy.http_statuses`.
    Success,
    /// A status in `unhealthy.http_statuses`, or no parsable status.
    HttpFailure,
    /// The connection or the TLS handshake failed, or was cut.
    TcpFailure,
    /// A step took longer than the timeout.
    Timeout,
    /// A status in neither list: counts for nothing.
    Neutral,
}

/// How many reports of a kind change the health; 0 switches the kind off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Thresholds {
    /// `healthy.successes`.
    pub(crate) successes: u32,
    /// `unhealthy.http_failures`.
    pub(crate) http_failures: u32,
    /// `unhealthy.tcp_failures`.
    pub(crate) tcp_failures: u32,
    /// `unhealthy.timeouts`.
    pub(crate) timeouts: u32,
}

/// An address's health and its four counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Counter {
    health: Health,
    successes: u32,
    http_failures: u32,
    tcp_failures: u32,
    timeouts: u32,
}

impl Counter {
    /// The current health.
    pub(crate) fn health(&self) -> Health {
        self.health
    }

    /// Counts one outcome; returns the new health when it changed.
    ///
    /// lua-resty-healthcheck also has "mostly healthy" and "mostly
    /// unhealthy" states (counting has begun) and reports reaching a
    /// threshold even when the health does not change. Both collapse into
    /// this: a report agreeing with the current health only clears the
    /// opposite counters, which is all Kong's extra states ever changed.
    pub(crate) fn observe(&mut self, outcome: Outcome, thresholds: &Thresholds) -> Option<Health> {
        let (toward, limit) = match outcome {
            Outcome::Neutral => return None,
            Outcome::Success => (Health::Healthy, thresholds.successes),
            Outcome::HttpFailure => (Health::Unhealthy, thresholds.http_failures),
            Outcome::TcpFailure => (Health::Unhealthy, thresholds.tcp_failures),
            Outcome::Timeout => (Health::Unhealthy, thresholds.timeouts),
        };
        // Kong returns before touching any counter for a kind switched off,
        // so such a report does not even clear the others.
        if limit == 0 {
            return None;
        }
        let count = match outcome {
            Outcome::Success => {
                self.http_failures = 0;
                self.tcp_failures = 0;
                self.timeouts = 0;
                &mut self.successes
            }
            Outcome::HttpFailure => {
                self.successes = 0;
                &mut self.http_failures
            }
            Outcome::TcpFailure => {
                self.successes = 0;
                &mut self.tcp_failures
            }
            Outcome::Timeout => {
                self.successes = 0;
                &mut self.timeouts
            }
            Outcome::Neutral => return None,
        };
        if self.health == toward {
            return None;
        }
        *count = count.saturating_add(1);
        // `>=`, not `==`: a threshold lowered below a running count trips
        // on the next report, as in Kong.
        if *count < limit {
            return None;
        }
        *self = Counter {
            health: toward,
            ..Counter::default()
        };
        Some(toward)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;

    const T: Thresholds = Thresholds {
        successes: 2,
        http_failures: 3,
        tcp_failures: 2,
        timeouts: 2,
    };

    /// Feeds outcomes and returns the transitions, with the index of the
    /// outcome that caused each.
    fn run(outcomes: &[Outcome], t: &Thresholds) -> Vec<(usize, Health)> {
        let mut c = Counter::default();
        outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| c.observe(*o, t).map(|h| (i, h)))
            .collect()
    }

    #[test]
    fn starts_healthy_and_successes_change_nothing() {
        assert_eq!(Counter::default().health(), Health::Healthy);
        assert_eq!(run(&[Success; 10], &T), []);
    }

    #[test]
    fn unhealthy_when_a_failure_counter_reaches_its_threshold() {
        assert_eq!(
            run(&[HttpFailure, HttpFailure, HttpFailure], &T),
            [(2, Health::Unhealthy)]
        );
        assert_eq!(run(&[TcpFailure, TcpFailure], &T), [(1, Health::Unhealthy)]);
        assert_eq!(run(&[Timeout, Timeout], &T), [(1, Health::Unhealthy)]);
    }

    #[test]
    fn failure_kinds_count_separately() {
        // Two HTTP failures, one TCP failure, one timeout: no counter at its
        // threshold yet; the next HTTP failure is the third of its kind.
        assert_eq!(
            run(
                &[HttpFailure, TcpFailure, HttpFailure, Timeout, HttpFailure],
                &T
            ),
            [(4, Health::Unhealthy)]
        );
    }

    #[test]
    fn a_success_clears_the_failure_counters() {
        assert_eq!(
            run(
                &[HttpFailure, HttpFailure, Success, HttpFailure, HttpFailure],
                &T
            ),
            []
        );
        assert_eq!(
            run(&[TcpFailure, Success, TcpFailure, TcpFailure], &T),
            [(3, Health::Unhealthy)]
        );
    }

    #[test]
    fn healthy_again_after_enough_successes_and_a_failure_clears_them() {
        let outcomes = [
            TcpFailure, TcpFailure, // unhealthy at 1
            Success, TcpFailure, // the failure clears the first success
            Success, Success, // healthy at 5
        ];
        assert_eq!(
            run(&outcomes, &T),
            [(1, Health::Unhealthy), (5, Health::Healthy)]
        );
    }

    #[test]
    fn neutral_outcomes_count_for_nothing() {
        assert_eq!(
            run(&[HttpFailure, HttpFailure, Neutral, HttpFailure], &T),
            [(3, Health::Unhealthy)]
        );
    }

    #[test]
    fn a_threshold_of_zero_switches_its_kind_off() {
        let off = Thresholds {
            successes: 0,
            http_failures: 0,
            tcp_failures: 1,
            timeouts: 0,
        };
        assert_eq!(run(&[HttpFailure; 5], &off), []);
        assert_eq!(run(&[Timeout; 5], &off), []);
        // With successes off nothing brings an address back.
        assert_eq!(
            run(&[TcpFailure, Success, Success, Success], &off),
            [(0, Health::Unhealthy)]
        );
    }

    #[test]
    fn a_success_of_a_kind_switched_off_clears_nothing() {
        let t = Thresholds {
            successes: 0,
            tcp_failures: 2,
            ..Thresholds::default()
        };
        // Kong ignores the success entirely: the two failures still add up.
        assert_eq!(
            run(&[TcpFailure, Success, TcpFailure], &t),
            [(2, Health::Unhealthy)]
        );
    }

    #[test]
    fn failures_while_unhealthy_clear_the_successes() {
        let outcomes = [
            TcpFailure,
            TcpFailure, // unhealthy at 1
            Success,
            HttpFailure,
            Success,
            Success, // healthy at 5, not 4
        ];
        assert_eq!(
            run(&outcomes, &T),
            [(1, Health::Unhealthy), (5, Health::Healthy)]
        );
    }

    #[test]
    fn counters_start_over_after_each_transition() {
        let outcomes = [
            HttpFailure,
            HttpFailure,
            HttpFailure, // unhealthy at 2
            Success,
            Success, // healthy at 4
            HttpFailure,
            HttpFailure,
            HttpFailure, // unhealthy at 7, three more needed
        ];
        assert_eq!(
            run(&outcomes, &T),
            [
                (2, Health::Unhealthy),
                (4, Health::Healthy),
                (7, Health::Unhealthy)
            ]
        );
    }

    #[test]
    fn a_lowered_threshold_trips_on_the_next_report() {
        let mut c = Counter::default();
        assert_eq!(c.observe(HttpFailure, &T), None);
        assert_eq!(c.observe(HttpFailure, &T), None);
        let lowered = Thresholds {
            http_failures: 1,
            ..T
        };
        assert_eq!(c.observe(HttpFailure, &lowered), Some(Health::Unhealthy));
    }

    #[test]
    fn a_threshold_of_one_changes_health_at_once() {
        let t = Thresholds {
            successes: 1,
            http_failures: 1,
            tcp_failures: 1,
            timeouts: 1,
        };
        assert_eq!(
            run(&[Timeout, Success, HttpFailure, Success, TcpFailure], &t),
            [
                (0, Health::Unhealthy),
                (1, Health::Healthy),
                (2, Health::Unhealthy),
                (3, Health::Healthy),
                (4, Health::Unhealthy)
            ]
        );
    }
}
