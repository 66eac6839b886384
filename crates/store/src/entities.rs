//! One engine for every entity (the gateway entities and event hooks):
//! typed-by-schema JSON records with unique indexes, foreign keys that must
//! exist, deletes refused or cascaded, and the crud events of each write
//! committed in the same transaction.
//!
//! sled 0.34 transactions cannot scan, so everything a transaction must
//! read is reachable by key: unique values in the `unique` tree, and each
//! parent's list of children under one key of the `children` tree.

use crate::codec::{decode, encode};
use crate::{Error, Origin, Result, Store};
use hookd_model::entity::{self, ForeignKey, OnDelete, UniqueKey};
use hookd_model::event::canonical_json;
use hookd_model::{Event, Operation};
use serde_json::Value;
use sled::IVec;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use std::cell::RefCell;
use uuid::Uuid;

/// A page of a listing: how many, starting where.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Number of entities wanted.
    pub size: usize,
    /// Where to start: the `next` offset of the previous page.
    pub offset: Option<String>,
}

/// One page of a listing and the offset of the next page, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed<T = Value> {
    /// The items, in the listing's order.
    pub data: Vec<T>,
    /// Offset of the next page; none on the last page.
    pub next: Option<String>,
}

/// What the engine needs to know of an entity to keep it consistent.
struct Layout {
    unique_keys: &'static [UniqueKey],
    foreign_keys: &'static [ForeignKey],
}

fn layout(name: &str) -> Layout {
    match entity::by_name(name) {
        Some(e) => Layout {
            unique_keys: &e.unique_keys,
            foreign_keys: &e.foreign_keys,
        },
        None => Layout {
            unique_keys: &[],
            foreign_keys: &[],
        },
    }
}

/// A child's entry in its parent's list: entity, id, referring field.
type ChildRef = (String, Uuid, String);

pub(crate) fn entity_key(name: &str, id: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 17);
    k.extend_from_slice(name.as_bytes());
    k.push(b'/');
    k.extend_from_slice(id.as_bytes());
    k
}

/// The entity name and id of an `entities` key.
fn split_entity_key(key: &[u8]) -> Option<(String, Uuid)> {
    let slash = key.len().checked_sub(17)?;
    if key[slash] != b'/' {
        return None;
    }
    let name = std::str::from_utf8(&key[..slash]).ok()?;
    Some((name.to_string(), Uuid::from_slice(&key[slash + 1..]).ok()?))
}

fn entity_prefix(name: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(b'/');
    k
}

fn id_of(value: &Value) -> Option<Uuid> {
    value.get("id")?.as_str()?.parse().ok()
}

fn foreign_id(value: &Value, field: &str) -> Option<Uuid> {
    value.get(field)?.get("id")?.as_str()?.parse().ok()
}

/// The index key of a unique constraint for this entity, if it applies.
fn unique_index_key(name: &str, key: &UniqueKey, value: &Value) -> Option<Vec<u8>> {
    let values: Vec<Value> = key
        .fields
        .iter()
        .map(|f| value.get(*f).cloned().unwrap_or(Value::Null))
        .collect();
    if !key.nulls_count && values.iter().all(Value::is_null) {
        return None;
    }
    let mut k = format!("{name}\0{}\0", key.fields.join(",")).into_bytes();
    k.extend_from_slice(canonical_json(&Value::Array(values)).as_bytes());
    Some(k)
}

/// Kong's way of showing the values that clash: `{name="x"}`.
fn lua_table(key: &UniqueKey, value: &Value) -> String {
    let parts: Vec<String> = key
        .fields
        .iter()
        .map(|f| match value.get(*f) {
            Some(Value::Object(o)) => match o.get("id") {
                Some(id) => format!("{f}={{id={id}}}"),
                None => format!("{f}={}", Value::Object(o.clone())),
            },
            Some(v) if !v.is_null() => format!("{f}={v}"),
            _ => format!("{f}=null"),
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

pub(crate) type TxResult<T> = std::result::Result<T, ConflictableTransactionError<Error>>;

pub(crate) fn abort<T>(e: Error) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

fn tx_decode(bytes: &[u8]) -> TxResult<Value> {
    decode(bytes).or_else(abort)
}

fn read_children(children: &TransactionalTree, parent: &str, id: Uuid) -> TxResult<Vec<ChildRef>> {
    match children.get(entity_key(parent, id))? {
        Some(bytes) => decode(&bytes).or_else(abort),
        None => Ok(Vec::new()),
    }
}

/// The trees one entity write touches, inside a transaction shared with
/// other writes (see `writer`): each write keeps a journal of what it
/// overwrote, so that a write that fails is undone alone.
pub(crate) struct Tx<'a> {
    entities: &'a TransactionalTree,
    unique: &'a TransactionalTree,
    children: &'a TransactionalTree,
    outbox: &'a TransactionalTree,
    pub(crate) tokens: &'a TransactionalTree,
    at_ms: i64,
    journal: RefCell<Vec<(&'a TransactionalTree, IVec, Option<IVec>)>>,
}

impl<'a> Tx<'a> {
    pub(crate) fn new(
        (entities, unique, children, outbox, tokens): &'a crate::writer::TxTrees,
        at_ms: i64,
    ) -> Self {
        Tx {
            entities,
            unique,
            children,
            outbox,
            tokens,
            at_ms,
            journal: RefCell::new(Vec::new()),
        }
    }

    fn put(
        &self,
        tree: &'a TransactionalTree,
        key: impl Into<IVec>,
        value: Vec<u8>,
    ) -> TxResult<()> {
        let key = key.into();
        let old = tree.insert(key.clone(), value)?;
        self.journal.borrow_mut().push((tree, key, old));
        Ok(())
    }

    pub(crate) fn del(&self, tree: &'a TransactionalTree, key: impl Into<IVec>) -> TxResult<()> {
        let key = key.into();
        let old = tree.remove(key.clone())?;
        self.journal.borrow_mut().push((tree, key, old));
        Ok(())
    }

    /// Puts back everything this write changed, newest first.
    pub(crate) fn undo(&self) -> TxResult<()> {
        for (tree, key, old) in self.journal.take().into_iter().rev() {
            match old {
                Some(value) => tree.insert(key, value)?,
                None => tree.remove(key)?,
            };
        }
        Ok(())
    }

    fn write_children(&self, parent: &str, id: Uuid, list: &[ChildRef]) -> TxResult<()> {
        let key = entity_key(parent, id);
        if list.is_empty() {
            self.del(self.children, key)
        } else {
            self.put(self.children, key, encode(list).or_else(abort)?)
        }
    }

    fn emit(&self, events: Vec<Event>) -> TxResult<()> {
        let records = crate::outbox::encode_records(&events).or_else(abort)?;
        self.emit_records(&records)
    }

    /// Appends encoded outbox records, in order.
    pub(crate) fn emit_records(&self, records: &[Vec<u8>]) -> TxResult<()> {
        for record in records {
            let key = crate::outbox::next_key(self.outbox)?;
            self.put(self.outbox, key.to_vec(), record.clone())?;
        }
        Ok(())
    }

    fn claim_unique(&self, name: &str, id: Uuid, value: &Value) -> TxResult<()> {
        for key in layout(name).unique_keys {
            let Some(index) = unique_index_key(name, key, value) else {
                continue;
            };
            if let Some(owner) = self.unique.get(&index)?
                && owner.as_ref() != id.as_bytes()
            {
                return abort(Error::Unique {
                    entity: name.to_string(),
                    fields: key
                        .fields
                        .iter()
                        .map(|f| (f.to_string(), value.get(*f).cloned().unwrap_or(Value::Null)))
                        .collect(),
                    shown: lua_table(key, value),
                });
            }
            self.put(self.unique, index, id.as_bytes().to_vec())?;
        }
        Ok(())
    }

    fn release_unique(&self, name: &str, value: &Value) -> TxResult<()> {
        for key in layout(name).unique_keys {
            if let Some(index) = unique_index_key(name, key, value) {
                self.del(self.unique, index)?;
            }
        }
        Ok(())
    }

    fn link_parents(&self, name: &str, id: Uuid, value: &Value) -> TxResult<()> {
        for fk in layout(name).foreign_keys {
            let Some(parent_id) = foreign_id(value, fk.field) else {
                continue;
            };
            if self
                .entities
                .get(entity_key(fk.entity, parent_id))?
                .is_none()
            {
                return abort(Error::ForeignKey {
                    field: fk.field.to_string(),
                    entity: fk.entity.to_string(),
                    id: parent_id,
                });
            }
            let mut list = read_children(self.children, fk.entity, parent_id)?;
            let entry = (name.to_string(), id, fk.field.to_string());
            if let Err(at) = list.binary_search(&entry) {
                list.insert(at, entry);
            }
            self.write_children(fk.entity, parent_id, &list)?;
        }
        Ok(())
    }

    fn unlink_parents(&self, name: &str, id: Uuid, value: &Value) -> TxResult<()> {
        for fk in layout(name).foreign_keys {
            let Some(parent_id) = foreign_id(value, fk.field) else {
                continue;
            };
            let mut list = read_children(self.children, fk.entity, parent_id)?;
            list.retain(|(e, i, f)| !(e == name && *i == id && f == fk.field));
            self.write_children(fk.entity, parent_id, &list)?;
        }
        Ok(())
    }

    pub(crate) fn insert(&self, name: &str, id: Uuid, value: &Value) -> TxResult<()> {
        let key = entity_key(name, id);
        if self.entities.get(&key)?.is_some() {
            return abort(Error::PrimaryKey {
                entity: name.to_string(),
                id,
            });
        }
        self.claim_unique(name, id, value)?;
        self.link_parents(name, id, value)?;
        if name == crate::tokens::ADMINS {
            self.revoke_admin_token(id)?;
        }
        self.put(self.entities, key, encode(value).or_else(abort)?)?;
        self.emit(Event::crud(
            Operation::Create,
            name,
            value,
            None,
            self.at_ms,
        ))
    }

    pub(crate) fn update(&self, name: &str, id: Uuid, value: &Value) -> TxResult<Value> {
        let key = entity_key(name, id);
        let Some(old) = self.entities.get(&key)? else {
            return abort(Error::NotFound);
        };
        let old = tx_decode(&old)?;
        self.release_unique(name, &old)?;
        self.claim_unique(name, id, value)?;
        self.unlink_parents(name, id, &old)?;
        self.link_parents(name, id, value)?;
        self.put(self.entities, key, encode(value).or_else(abort)?)?;
        self.emit(Event::crud(
            Operation::Update,
            name,
            value,
            Some(&old),
            self.at_ms,
        ))?;
        Ok(old)
    }

    /// Deletes the entity after its dependants: children whose reference
    /// cascades go first, one whose reference restricts stops everything.
    pub(crate) fn delete(&self, name: &str, id: Uuid) -> TxResult<Value> {
        let key = entity_key(name, id);
        let Some(old) = self.entities.get(&key)? else {
            return abort(Error::NotFound);
        };
        let old = tx_decode(&old)?;
        for (child, child_id, field) in read_children(self.children, name, id)? {
            let on_delete = layout(&child)
                .foreign_keys
                .iter()
                .find(|fk| fk.field == field)
                .map_or(OnDelete::Restrict, |fk| fk.on_delete);
            match on_delete {
                OnDelete::Restrict => {
                    return abort(Error::ReferencedBy {
                        child,
                        parent: name.to_string(),
                    });
                }
                OnDelete::Cascade => {
                    // A child listed under two of the parent's chains may be gone already.
                    if self.entities.get(entity_key(&child, child_id))?.is_some() {
                        self.delete(&child, child_id)?;
                    }
                }
            }
        }
        self.release_unique(name, &old)?;
        self.unlink_parents(name, id, &old)?;
        if name == crate::tokens::ADMINS {
            self.revoke_admin_token(id)?;
        }
        self.del(self.entities, key)?;
        self.emit(Event::crud(Operation::Delete, name, &old, None, self.at_ms))?;
        Ok(old)
    }
}

impl Store {
    /// Runs one entity write in the writer's next shared transaction,
    /// then waits until it is on disk.
    pub(crate) async fn entity_write(
        &self,
        at_ms: i64,
        write: impl Fn(&Tx<'_>) -> TxResult<Value> + Send + 'static,
    ) -> Result<Value> {
        let result = self.inner.writer.write(at_ms, Box::new(write)).await?;
        self.outbox_written();
        self.durable().await?;
        Ok(result)
    }

    /// Stores a new entity (its `id` member set) and its crud events,
    /// durably: returns once the write is on disk.
    pub async fn insert(&self, name: &str, value: Value, at_ms: i64) -> Result<Value> {
        let id = id_of(&value).ok_or(Error::MissingId)?;
        let (name, stored) = (name.to_string(), value.clone());
        self.entity_write(at_ms, move |tx| {
            tx.insert(&name, id, &stored).map(|()| Value::Null)
        })
        .await?;
        Ok(value)
    }

    /// Replaces an entity and records its crud events, durably. Returns
    /// the entity as it was.
    pub async fn update(&self, name: &str, value: Value, at_ms: i64) -> Result<Value> {
        let id = id_of(&value).ok_or(Error::MissingId)?;
        let name = name.to_string();
        self.entity_write(at_ms, move |tx| tx.update(&name, id, &value))
            .await
    }

    /// Deletes an entity, cascading where its schema says so, with the
    /// crud events of every entity removed, durably. Returns the entity.
    pub async fn delete(&self, name: &str, id: Uuid, at_ms: i64) -> Result<Value> {
        let name = name.to_string();
        self.entity_write(at_ms, move |tx| tx.delete(&name, id))
            .await
    }

    /// The entity with that id.
    pub fn get(&self, name: &str, id: Uuid) -> Result<Option<Value>> {
        let key = entity_key(name, id);
        match self.inner.entities.get(&key)? {
            Some(bytes) => self.decode_entity(&key, &bytes),
            None => Ok(None),
        }
    }

    /// The stored entity, or none if it does not decode: then it goes to
    /// the quarantine, and readers (listings, the dispatcher's hooks, the
    /// health checker) go on with the others, as if it had been deleted.
    /// Its unique values and references stay claimed until it is deleted
    /// from the quarantine, so that a retry puts it back consistent.
    fn decode_entity(&self, key: &[u8], bytes: &[u8]) -> Result<Option<Value>> {
        match decode(bytes) {
            Ok(value) => Ok(Some(value)),
            Err(e) => {
                self.quarantine(Origin::Entities, key, bytes, &e)?;
                Ok(None)
            }
        }
    }

    /// Gives up what a quarantined entity held in the indexes: its unique
    /// values, its place in its parents' lists of children, its own list.
    /// Found by scanning (the entity itself cannot be read), then removed
    /// in one write that checks each entry again.
    pub(crate) async fn release_entity_indexes(&self, key: &[u8]) -> Result<()> {
        let Some((name, id)) = split_entity_key(key) else {
            return Ok(());
        };
        let mut claims = Vec::new();
        for item in self.inner.unique.scan_prefix(format!("{name}\0")) {
            let (index, owner) = item?;
            if owner.as_ref() == id.as_bytes() {
                claims.push(index);
            }
        }
        let is_this = move |(e, i, _): &ChildRef| *e == name && *i == id;
        let mut parents = Vec::new();
        for item in self.inner.children.iter() {
            let (parent, list) = item?;
            let list: Vec<ChildRef> = serde_json::from_slice(&list).unwrap_or_default();
            if list.iter().any(&is_this) {
                parents.push(parent);
            }
        }
        let own = key.to_vec();
        let release = move |tx: &Tx<'_>| -> TxResult<Value> {
            for index in &claims {
                if tx.unique.get(index)?.as_deref() == Some(id.as_bytes().as_slice()) {
                    tx.del(tx.unique, index.clone())?;
                }
            }
            for parent in &parents {
                let Some(list) = tx.children.get(parent)? else {
                    continue;
                };
                let mut list: Vec<ChildRef> =
                    serde_json::from_slice(&list).or_else(|e| abort(Error::Corrupt(e)))?;
                list.retain(|entry| !is_this(entry));
                if list.is_empty() {
                    tx.del(tx.children, parent.clone())?;
                } else {
                    let bytes = serde_json::to_vec(&list).expect("child refs always serialise");
                    tx.put(tx.children, parent.clone(), bytes)?;
                }
            }
            tx.del(tx.children, own.clone())?;
            Ok(Value::Null)
        };
        self.inner.writer.write(0, Box::new(release)).await?;
        Ok(())
    }

    /// The entity whose unique `field` has this value.
    pub fn find_unique(&self, name: &str, field: &str, value: &Value) -> Result<Option<Value>> {
        let mut index = format!("{name}\0{field}\0").into_bytes();
        index.extend_from_slice(canonical_json(&Value::Array(vec![value.clone()])).as_bytes());
        let Some(id) = self.inner.unique.get(index)? else {
            return Ok(None);
        };
        let id = Uuid::from_slice(&id).map_err(|_| Error::CorruptKey)?;
        self.get(name, id)
    }

    /// A page of every entity of a kind, ordered by id.
    pub fn list(&self, name: &str, page: &Page) -> Result<Listed> {
        let start = match &page.offset {
            Some(offset) => entity_key(name, parse_offset(offset)?),
            None => entity_prefix(name),
        };
        let prefix = entity_prefix(name);
        let mut data = Vec::with_capacity(page.size.min(1024));
        for item in self.inner.entities.range(start..) {
            let (key, bytes) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            if data.len() == page.size {
                let id = Uuid::from_slice(&key[prefix.len()..]).map_err(|_| Error::CorruptKey)?;
                return Ok(Listed {
                    data,
                    next: Some(id.to_string()),
                });
            }
            data.extend(self.decode_entity(&key, &bytes)?);
        }
        Ok(Listed { data, next: None })
    }

    /// A page of the `child` entities referring to a parent, ordered by id.
    pub fn list_children(
        &self,
        parent: &str,
        parent_id: Uuid,
        child: &str,
        page: &Page,
    ) -> Result<Listed> {
        let list: Vec<ChildRef> = match self.inner.children.get(entity_key(parent, parent_id))? {
            Some(bytes) => decode(&bytes)?,
            None => Vec::new(),
        };
        let start = page.offset.as_deref().map(parse_offset).transpose()?;
        let mut ids: Vec<Uuid> = list
            .into_iter()
            .filter(|(e, id, _)| e == child && start.is_none_or(|s| *id >= s))
            .map(|(_, id, _)| id)
            .collect();
        ids.dedup();
        let mut data = Vec::with_capacity(page.size.min(ids.len()));
        for (i, id) in ids.iter().enumerate() {
            if i == page.size {
                return Ok(Listed {
                    data,
                    next: Some(id.to_string()),
                });
            }
            if let Some(v) = self.get(child, *id)? {
                data.push(v);
            }
        }
        Ok(Listed { data, next: None })
    }
}

fn parse_offset(offset: &str) -> Result<Uuid> {
    offset.parse().map_err(|_| Error::InvalidOffset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn service(name: &str) -> Value {
        json!({"id": Uuid::new_v4().to_string(), "name": name, "host": "example.com"})
    }

    fn route(service: &Value) -> Value {
        json!({"id": Uuid::new_v4().to_string(), "paths": ["/"], "service": {"id": service["id"]}})
    }

    #[tokio::test]
    async fn insert_writes_entity_and_its_three_events_in_order() {
        let (_dir, store) = store().await;
        let s = store.insert("services", service("a"), 7).await.unwrap();
        assert_eq!(
            store.get("services", id_of(&s).unwrap()).unwrap(),
            Some(s.clone())
        );
        let events = store.outbox_events().unwrap();
        let names: Vec<(String, String)> = events
            .iter()
            .map(|e| (e.source.clone(), e.event.clone()))
            .collect();
        assert_eq!(
            names,
            [
                ("crud".into(), "services".into()),
                ("crud".into(), "services:create".into()),
                ("dao:crud".into(), "create".into())
            ]
        );
        assert_eq!(events[0].data["entity"], s);
        assert_eq!(events[0].at_ms, 7);
    }

    #[tokio::test]
    async fn unique_values_are_refused_and_released() {
        let (_dir, store) = store().await;
        let first = store.insert("services", service("a"), 0).await.unwrap();
        let err = store.insert("services", service("a"), 0).await.unwrap_err();
        assert!(
            matches!(&err, Error::Unique { shown, .. } if shown == "{name=\"a\"}"),
            "{err:?}"
        );
        let mut renamed = first.clone();
        renamed["name"] = json!("b");
        store.update("services", renamed, 0).await.unwrap();
        store.insert("services", service("a"), 0).await.unwrap();
        assert_eq!(
            store
                .find_unique("services", "name", &json!("b"))
                .unwrap()
                .unwrap()["id"],
            first["id"]
        );
        // Failed writes leave no events behind.
        assert_eq!(store.outbox_events().unwrap().len(), 9);
    }

    #[tokio::test]
    async fn foreign_keys_must_exist_and_restrict_deletes() {
        let (_dir, store) = store().await;
        let s = store.insert("services", service("a"), 0).await.unwrap();
        let dangling = route(&service("ghost"));
        assert!(matches!(
            store.insert("routes", dangling, 0).await.unwrap_err(),
            Error::ForeignKey { .. }
        ));
        let r = store.insert("routes", route(&s), 0).await.unwrap();
        let sid = id_of(&s).unwrap();
        let err = store.delete("services", sid, 0).await.unwrap_err();
        assert!(matches!(err, Error::ReferencedBy { ref child, .. } if child == "routes"));
        let listed = store
            .list_children(
                "services",
                sid,
                "routes",
                &Page {
                    size: 10,
                    offset: None,
                },
            )
            .unwrap();
        assert_eq!(listed.data, vec![r.clone()]);
        store.delete("routes", id_of(&r).unwrap(), 0).await.unwrap();
        store.delete("services", sid, 0).await.unwrap();
    }

    #[tokio::test]
    async fn cascading_delete_emits_events_for_every_entity_removed() {
        let (_dir, store) = store().await;
        let up = json!({"id": Uuid::new_v4().to_string(), "name": "up"});
        let up = store.insert("upstreams", up, 0).await.unwrap();
        let target = json!({"id": Uuid::new_v4().to_string(), "target": "a:80", "upstream": {"id": up["id"]}});
        store.insert("targets", target.clone(), 0).await.unwrap();
        let before = store.outbox_events().unwrap().len();
        store
            .delete("upstreams", id_of(&up).unwrap(), 0)
            .await
            .unwrap();
        let events = store.outbox_events().unwrap();
        let deleted: Vec<&str> = events[before..]
            .iter()
            .filter(|e| e.source == "crud" && !e.event.contains(':'))
            .map(|e| e.event.as_str())
            .collect();
        assert_eq!(deleted, ["targets", "upstreams"]);
        assert_eq!(store.get("targets", id_of(&target).unwrap()).unwrap(), None);
        // The target's composite unique key was released with it.
        let up2 = store
            .insert("upstreams", json!({"id": up["id"], "name": "up"}), 0)
            .await
            .unwrap();
        store.insert("targets", target, 0).await.unwrap();
        assert_eq!(up2["name"], "up");
    }

    #[tokio::test]
    async fn listing_pages_by_id() {
        let (_dir, store) = store().await;
        for i in 0..5 {
            store
                .insert("services", service(&format!("s{i}")), 0)
                .await
                .unwrap();
        }
        let first = store
            .list(
                "services",
                &Page {
                    size: 2,
                    offset: None,
                },
            )
            .unwrap();
        assert_eq!(first.data.len(), 2);
        let second = store
            .list(
                "services",
                &Page {
                    size: 2,
                    offset: first.next.clone(),
                },
            )
            .unwrap();
        let third = store
            .list(
                "services",
                &Page {
                    size: 2,
                    offset: second.next.clone(),
                },
            )
            .unwrap();
        assert_eq!(third.data.len(), 1);
        assert_eq!(third.next, None);
        let mut ids: Vec<&Value> = first
            .data
            .iter()
            .chain(&second.data)
            .chain(&third.data)
            .map(|v| &v["id"])
            .collect();
        let sorted = {
            let mut s = ids.clone();
            s.sort_by_key(|v| v.as_str().unwrap().parse::<Uuid>().unwrap());
            s
        };
        assert_eq!(ids, sorted);
        ids.dedup();
        assert_eq!(ids.len(), 5);
        assert!(matches!(
            store.list(
                "services",
                &Page {
                    size: 2,
                    offset: Some("nope".into())
                }
            ),
            Err(Error::InvalidOffset)
        ));
    }

    #[tokio::test]
    async fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = {
            let store = Store::open(dir.path()).unwrap();
            let s = store.insert("services", service("a"), 0).await.unwrap();
            store.close();
            s
        };
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get("services", id_of(&s).unwrap()).unwrap(), Some(s));
        assert_eq!(store.outbox_events().unwrap().len(), 3);
    }
}
