//! Entities in sled.
//!
//! sled 0.34 transactions cannot scan, so everything a transaction must
//! read is reachable by key: unique values in the `unique` tree, and each
//! parent's list of children under one key of the `children` tree.

use super::Sled;
use crate::codec::{decode, encode};
use crate::entities::{
    ChildrenOf, Filling, Listed, Page, entity_key, foreign_id, id_of, layout, parse_offset,
    split_entity_key, unique_index_key, unique_violation,
};
use crate::{Error, Origin, Result};
use hookd_model::entity::OnDelete;
use hookd_model::event::canonical_json;
use hookd_model::{Event, Operation};
use serde_json::Value;
use sled::IVec;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use std::cell::RefCell;
use uuid::Uuid;

/// A child's entry in its parent's list: entity, id, referring field.
type ChildRef = (String, Uuid, String);

fn entity_prefix(name: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(b'/');
    k
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
        (entities, unique, children, outbox, tokens): &'a super::writer::TxTrees,
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
            let key = super::outbox::next_key(self.outbox)?;
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
                return abort(unique_violation(name, key, value));
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

impl Sled {
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
        let mut data = Filling::new(page);
        for item in self.inner.entities.range(start..) {
            let (key, bytes) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            if data.is_full() {
                let id = Uuid::from_slice(&key[prefix.len()..]).map_err(|_| Error::CorruptKey)?;
                return Ok(data.continued_at(id.to_string()));
            }
            data.push(self.decode_entity(&key, &bytes)?);
        }
        Ok(data.last())
    }

    /// A page of the children of one parent, ordered by id.
    pub fn list_children(&self, of: ChildrenOf<'_>, page: &Page) -> Result<Listed> {
        let list: Vec<ChildRef> = match self
            .inner
            .children
            .get(entity_key(of.parent, of.parent_id))?
        {
            Some(bytes) => decode(&bytes)?,
            None => Vec::new(),
        };
        let start = page.offset.as_deref().map(parse_offset).transpose()?;
        let mut ids: Vec<Uuid> = list
            .into_iter()
            .filter(|(e, id, _)| e == of.child && start.is_none_or(|s| *id >= s))
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
            if let Some(v) = self.get(of.child, *id)? {
                data.push(v);
            }
        }
        Ok(Listed { data, next: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = {
            let store = Sled::open(dir.path()).unwrap();
            let service =
                json!({"id": Uuid::new_v4().to_string(), "name": "a", "host": "example.com"});
            let s = store.insert("services", service, 0).await.unwrap();
            crate::Backend::close(&store).await;
            s
        };
        let store = Sled::open(dir.path()).unwrap();
        assert_eq!(store.get("services", id_of(&s).unwrap()).unwrap(), Some(s));
        assert_eq!(store.outbox_batch_after(None, 10).unwrap().events.len(), 3);
    }
}
