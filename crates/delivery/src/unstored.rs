//! Deliveries that live in memory only, from their dispatch until their
//! first attempt ends. They need no queued or in-flight records of their
//! own: the outbox record of their event stays until every delivery made
//! of it is stored, and a hookd that stops before then dispatches the
//! record again, making the same deliveries under the same ids. A delivery
//! is stored once, when its first attempt ends (or when it must wait: a
//! retry, a paused or disabled hook, a full lane), with the removal of the
//! record if it was the last one the record held.

use hookd_model::delivery::Delivery;
use hookd_store::{ListedAt, record_of};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

#[derive(Debug, Default)]
struct Held {
    deliveries: HashMap<Uuid, Delivery>,
    /// Each outbox record with deliveries here: how many.
    records: HashMap<u64, usize>,
}

/// The deliveries in memory only, and the outbox records they hold.
#[derive(Debug)]
pub(crate) struct Unstored {
    held: Mutex<Held>,
    max: usize,
}

impl Unstored {
    /// Room for `max` deliveries: beyond, the dispatcher stores new
    /// deliveries in the queue as they are made.
    pub fn new(max: usize) -> Self {
        Unstored {
            held: Mutex::new(Held::default()),
            max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `more` deliveries fit.
    pub fn has_room(&self, more: usize) -> bool {
        self.lock().deliveries.len().saturating_add(more) <= self.max
    }

    /// How many deliveries are in memory only.
    pub fn len(&self) -> usize {
        self.lock().deliveries.len()
    }

    /// Takes in deliveries just dispatched, each holding the outbox record
    /// of its event.
    pub fn add(&self, deliveries: &[Delivery]) {
        let mut held = self.lock();
        for d in deliveries {
            if held.deliveries.insert(d.id, d.clone()).is_none() {
                *held.records.entry(record_of(d.seq)).or_default() += 1;
            }
        }
    }

    /// Whether the delivery is in memory only.
    pub fn contains(&self, id: Uuid) -> bool {
        self.lock().deliveries.contains_key(&id)
    }

    /// The delivery, if it is in memory only.
    pub fn get(&self, id: Uuid) -> Option<Delivery> {
        self.lock().deliveries.get(&id).cloned()
    }

    /// A hook's deliveries in memory only, from `through` (included) on in
    /// its listing's order, newest first.
    pub fn of_hook(&self, hook: Uuid, through: Option<ListedAt>) -> Vec<Delivery> {
        let mut of_hook: Vec<Delivery> = self
            .lock()
            .deliveries
            .values()
            .filter(|d| d.hook_id == hook && through.is_none_or(|t| ListedAt::of(d) <= t))
            .cloned()
            .collect();
        of_hook.sort_by_key(|d| std::cmp::Reverse(ListedAt::of(d)));
        of_hook
    }

    /// These deliveries, in memory only until now, are about to be
    /// stored: the outbox records that then hold none are returned, to be
    /// removed in the same transaction. They stay readable here until
    /// [`Unstored::forget`], once stored.
    pub fn storing<'a>(&self, deliveries: impl IntoIterator<Item = &'a Delivery>) -> Vec<u64> {
        let mut held = self.lock();
        let mut ended = Vec::new();
        for d in deliveries {
            let record = record_of(d.seq);
            if let Some(count) = held.records.get_mut(&record) {
                *count -= 1;
                if *count == 0 {
                    held.records.remove(&record);
                    ended.push(record);
                }
            }
        }
        ended
    }

    /// Deliveries now stored durably: from here on the store shows them.
    pub fn forget(&self, ids: impl IntoIterator<Item = Uuid>) {
        let mut held = self.lock();
        for id in ids {
            held.deliveries.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_model::Event;
    use serde_json::json;

    fn delivery(hook: Uuid, record: u64, index: u64, created: i64) -> Delivery {
        let event = Event::new("s", "e", json!({}), 0);
        Delivery::new(hook, event, (record << 16) + index, created)
    }

    #[test]
    fn a_record_ends_with_the_last_of_its_deliveries() {
        let unstored = Unstored::new(3);
        let hook = Uuid::new_v4();
        let (a, b, c) = (
            delivery(hook, 7, 0, 1),
            delivery(hook, 7, 1, 2),
            delivery(hook, 8, 0, 3),
        );
        unstored.add(&[a.clone(), b.clone(), c.clone()]);
        assert!(!unstored.has_room(1));
        assert_eq!(unstored.storing([&a]), Vec::<u64>::new());
        assert_eq!(unstored.storing([&b, &c]), vec![7, 8]);
        assert!(unstored.contains(a.id), "readable until forgotten");
        unstored.forget([a.id, b.id, c.id]);
        assert_eq!(unstored.len(), 0);
        assert!(unstored.has_room(3));
    }

    #[test]
    fn a_hooks_deliveries_list_newest_first_from_a_place() {
        let unstored = Unstored::new(10);
        let (hook, other) = (Uuid::new_v4(), Uuid::new_v4());
        let all: Vec<Delivery> = (0..4).map(|n| delivery(hook, n, 0, n as i64)).collect();
        unstored.add(&all);
        unstored.add(&[delivery(other, 9, 0, 9)]);
        let created = |ds: Vec<Delivery>| ds.iter().map(|d| d.created_at_ms).collect::<Vec<_>>();
        assert_eq!(created(unstored.of_hook(hook, None)), [3, 2, 1, 0]);
        let through = ListedAt::of(&all[2]);
        assert_eq!(created(unstored.of_hook(hook, Some(through))), [2, 1, 0]);
    }
}
