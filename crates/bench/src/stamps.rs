//! Per-event timestamps, written from many tasks without locks: when each
//! event's write started, when it was answered, when its webhook arrived.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The one time base of a run: monotonic nanoseconds since it started,
/// plus one, so that zero can mean "not yet" (latencies, not the wall
/// clock of `hookd_model::clock`).
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts the run's clock.
    pub fn start() -> Self {
        Stopwatch(Instant::now())
    }

    /// Nanoseconds since the start, plus one.
    pub fn now(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64 + 1
    }
}

/// One timestamp per event index, kept from its first mark.
pub struct Stamps {
    at: Vec<AtomicU64>,
    distinct: AtomicUsize,
    repeated: AtomicUsize,
    marked: Notify,
}

impl Stamps {
    /// Room for `events` events, none marked.
    pub fn new(events: usize) -> Self {
        Stamps {
            at: (0..events).map(|_| AtomicU64::new(0)).collect(),
            distinct: AtomicUsize::new(0),
            repeated: AtomicUsize::new(0),
            marked: Notify::new(),
        }
    }

    /// Records event `i` at `now`; a second mark of it only counts as
    /// a repeat (hookd delivers at least once). Out of range: ignored.
    pub fn mark(&self, i: usize, now: u64) {
        let Some(slot) = self.at.get(i) else {
            return;
        };
        if slot
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            if self.distinct.fetch_add(1, Ordering::Relaxed) + 1 == self.at.len() {
                self.marked.notify_one();
            }
        } else {
            self.repeated.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// When event `i` was first marked, if it was.
    pub fn get(&self, i: usize) -> Option<u64> {
        match self.at[i].load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// Events marked at least once.
    pub fn distinct(&self) -> usize {
        self.distinct.load(Ordering::Relaxed)
    }

    /// Marks of events already marked.
    pub fn repeated(&self) -> usize {
        self.repeated.load(Ordering::Relaxed)
    }

    /// The earliest and the latest mark (`(0, 0)` when none).
    pub fn span(&self) -> (u64, u64) {
        let marks = || self.at.iter().map(|a| a.load(Ordering::Relaxed));
        let first = marks().filter(|&t| t > 0).min().unwrap_or(0);
        (first, marks().max().unwrap_or(0))
    }

    /// Waits until every event is marked; gives up once no new mark came
    /// for `stall`, answering how many are missing.
    pub async fn wait_all(&self, stall: Duration) -> Result<(), usize> {
        let mut seen = self.distinct();
        let mut since = Instant::now();
        while seen < self.at.len() {
            let _ = tokio::time::timeout(Duration::from_millis(200), self.marked.notified()).await;
            let now = self.distinct();
            if now > seen {
                (seen, since) = (now, Instant::now());
            } else if since.elapsed() > stall {
                return Err(self.at.len() - seen);
            }
        }
        Ok(())
    }

    /// The first few indices never marked.
    pub fn missing(&self, at_most: usize) -> Vec<usize> {
        (0..self.at.len())
            .filter(|&i| self.get(i).is_none())
            .take(at_most)
            .collect()
    }
}

/// `to[i] - from[i]` for every event marked in both.
pub fn latencies(from: &Stamps, to: &Stamps) -> Vec<Duration> {
    (0..from.at.len())
        .filter_map(|i| {
            Some(Duration::from_nanos(
                to.get(i)?.saturating_sub(from.get(i)?),
            ))
        })
        .collect()
}
