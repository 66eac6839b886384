//! Delivery attempts minute by minute over the last hour: what the
//! console's overview charts and `GET /status` reports. Counters since
//! start (`/metrics`) need a scraper to become a rate; this keeps the rate
//! itself, in a fixed 60 slots, so it costs the same whatever the load.

use std::sync::Mutex;

/// Minutes kept.
pub const MINUTES: usize = 60;

/// Attempts made in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Minute {
    /// The minute's start, unix seconds.
    pub start: i64,
    /// Attempts that delivered.
    pub ok: u64,
    /// Attempts that failed.
    pub failed: u64,
}

/// The last hour of attempts, one slot a minute, reused as time goes on.
#[derive(Debug)]
pub struct LastHour {
    slots: Mutex<[Minute; MINUTES]>,
}

impl Default for LastHour {
    fn default() -> Self {
        LastHour {
            slots: Mutex::new([Minute::default(); MINUTES]),
        }
    }
}

fn minute_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(60_000) * 60
}

fn slot_of(start: i64) -> usize {
    (start / 60).rem_euclid(MINUTES as i64) as usize
}

impl LastHour {
    /// Counts an attempt made at `now_ms` (unix milliseconds).
    pub fn record(&self, now_ms: i64, ok: bool) {
        let start = minute_of(now_ms);
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut slots[slot_of(start)];
        if slot.start != start {
            *slot = Minute {
                start,
                ..Minute::default()
            };
        }
        if ok {
            slot.ok += 1;
        } else {
            slot.failed += 1;
        }
    }

    /// The hour up to `now_ms`, oldest minute first, the current one
    /// last; a minute without attempts is there with zeros.
    pub fn minutes(&self, now_ms: i64) -> Vec<Minute> {
        let now = minute_of(now_ms);
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        (0..MINUTES as i64)
            .rev()
            .map(|ago| {
                let start = now - ago * 60;
                let slot = slots[slot_of(start)];
                if slot.start == start {
                    slot
                } else {
                    Minute {
                        start,
                        ..Minute::default()
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    #[test]
    fn attempts_land_in_their_minute_and_the_hour_ends_now() {
        let hour = LastHour::default();
        hour.record(T, true);
        hour.record(T + 1, false);
        hour.record(T + 60_000, true);
        let minutes = hour.minutes(T + 60_000);
        assert_eq!(minutes.len(), MINUTES);
        let last = minutes[MINUTES - 1];
        let before = minutes[MINUTES - 2];
        assert_eq!((last.ok, last.failed), (1, 0));
        assert_eq!((before.ok, before.failed), (1, 1));
        assert_eq!(last.start - before.start, 60);
        assert!(minutes.windows(2).all(|w| w[1].start - w[0].start == 60));
    }

    #[test]
    fn a_minute_an_hour_old_is_forgotten_when_its_slot_comes_round() {
        let hour = LastHour::default();
        hour.record(T, true);
        let an_hour_later = T + 60 * 60_000;
        assert!(hour.minutes(an_hour_later).iter().all(|m| m.ok == 0));
        hour.record(an_hour_later, false);
        let last = hour.minutes(an_hour_later)[MINUTES - 1];
        assert_eq!((last.ok, last.failed), (0, 1));
    }
}
