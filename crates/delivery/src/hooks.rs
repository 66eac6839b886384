//! Every event hook, decoded once and kept until a hook is written: the
//! dispatcher routes each batch of events by them and every attempt runs
//! by its hook, and reading and decoding them from the store each time
//! cost more than the rest of the routing.
//!
//! Kept current two ways: the Admin API reports each hook it writes, and
//! the dispatcher meets every write of a hook, whoever made it, as a crud
//! event in the outbox (committed with the write), before the events that
//! came after it.

use hookd_model::EventHook;
use hookd_store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The hooks as read at one time.
#[derive(Debug, Default)]
pub(crate) struct HookSet {
    /// The hooks that decode, in the store's order.
    pub list: Vec<Arc<EventHook>>,
    /// Each stored hook by id, or why it does not decode.
    by_id: HashMap<Uuid, Result<Arc<EventHook>, String>>,
}

impl HookSet {
    /// A hook by id; none when there is no such hook, an error when the
    /// stored one does not decode.
    pub fn get(&self, id: Uuid) -> Result<Option<Arc<EventHook>>, String> {
        self.by_id.get(&id).cloned().transpose()
    }

    async fn read(store: &Store) -> Result<Self, hookd_store::Error> {
        let mut set = HookSet::default();
        for value in store.list_all(hookd_model::hook::ENTITY).await? {
            set.add(value);
        }
        Ok(set)
    }

    fn add(&mut self, value: Value) {
        let id = value
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| Uuid::try_parse(id).ok());
        match serde_json::from_value::<EventHook>(value) {
            Ok(hook) => {
                let hook = Arc::new(hook);
                self.by_id.insert(hook.id, Ok(Arc::clone(&hook)));
                self.list.push(hook);
            }
            Err(e) => {
                tracing::error!(error = %e, hook = ?id, "a stored event hook does not decode; skipped");
                if let Some(id) = id {
                    self.by_id
                        .insert(id, Err(format!("the event hook does not decode: {e}")));
                }
            }
        }
    }
}

/// The hooks, read again after a write.
#[derive(Debug, Default)]
pub(crate) struct HookCache {
    current: Mutex<Option<Arc<HookSet>>>,
    /// Counts writes: a read that a write overtook is used once and not
    /// kept, since it may predate the write.
    writes: AtomicU64,
}

impl HookCache {
    /// The hooks as they are now stored.
    pub async fn get(&self, store: &Store) -> Result<Arc<HookSet>, hookd_store::Error> {
        if let Some(set) = self.lock().as_ref() {
            return Ok(Arc::clone(set));
        }
        let before = self.writes.load(Ordering::Acquire);
        let set = Arc::new(HookSet::read(store).await?);
        let mut current = self.lock();
        if self.writes.load(Ordering::Acquire) == before {
            *current = Some(Arc::clone(&set));
        }
        Ok(set)
    }

    /// A hook was written or deleted: the next [`HookCache::get`] reads
    /// them all again.
    pub fn invalidate(&self) {
        let mut current = self.lock();
        self.writes.fetch_add(1, Ordering::AcqRel);
        *current = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<HookSet>>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook(id: Uuid) -> Value {
        json!({"id": id.to_string(), "created_at": 0, "source": "crud", "handler": "log", "config": {}})
    }

    #[tokio::test]
    async fn hooks_are_read_once_until_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let entity = hookd_model::hook::ENTITY;
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        store.insert(entity, hook(a), 0).await.unwrap();
        let cache = HookCache::default();
        let first = cache.get(&store).await.unwrap();
        assert_eq!(first.list.len(), 1);
        assert!(first.get(a).unwrap().is_some());

        store.insert(entity, hook(b), 0).await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &cache.get(&store).await.unwrap()),
            "kept until told"
        );
        cache.invalidate();
        let second = cache.get(&store).await.unwrap();
        assert_eq!(second.list.len(), 2);
        assert!(second.get(Uuid::new_v4()).unwrap().is_none());
    }

    #[test]
    fn a_hook_that_does_not_decode_says_why() {
        let mut set = HookSet::default();
        let id = Uuid::new_v4();
        set.add(json!({"id": id.to_string(), "handler": 7}));
        assert!(set.list.is_empty());
        assert!(set.get(id).unwrap_err().contains("does not decode"));
    }
}
