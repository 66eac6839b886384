//! Entities (the gateway entities and event hooks): typed-by-schema JSON
//! records with unique values, foreign keys that must exist, deletes
//! refused or cascaded, and the crud events of each write committed with
//! it. What every backend keeps, and the schema rules they share.

use crate::{Error, Result};
use async_trait::async_trait;
use hookd_model::entity::{self, ForeignKey, UniqueKey};
use hookd_model::event::canonical_json;
use serde_json::Value;
use uuid::Uuid;

/// The entities of one kind that refer to one parent entity: a service's
/// routes, an upstream's targets.
#[derive(Debug, Clone, Copy)]
pub struct ChildrenOf<'a> {
    /// The parent's kind.
    pub parent: &'a str,
    /// The parent's id.
    pub parent_id: Uuid,
    /// The children's kind.
    pub child: &'a str,
}

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

/// A page being filled in its listing's order: once it holds what was
/// asked for, the next item found is where the next page starts.
pub(crate) struct Filling<T> {
    size: usize,
    data: Vec<T>,
}

impl<T> Filling<T> {
    /// An empty page of `page.size` items.
    pub(crate) fn new(page: &Page) -> Self {
        Filling {
            size: page.size,
            data: Vec::with_capacity(page.size.min(1024)),
        }
    }

    /// Whether the page holds all it asked for.
    pub(crate) fn is_full(&self) -> bool {
        self.data.len() >= self.size
    }

    /// Adds an item (none: one that was gone or quarantined).
    pub(crate) fn push(&mut self, item: impl Into<Option<T>>) {
        self.data.extend(item.into());
    }

    /// The page, with the next one starting at `next`.
    pub(crate) fn continued_at(self, next: String) -> Listed<T> {
        Listed {
            data: self.data,
            next: Some(next),
        }
    }

    /// The page, the listing's last.
    pub(crate) fn last(self) -> Listed<T> {
        Listed {
            data: self.data,
            next: None,
        }
    }
}

/// The entities of a store. Every write is durable when it returns, and
/// its crud events are in the outbox in the same transaction.
#[async_trait]
pub trait Entities: Send + Sync {
    /// Stores a new entity (its `id` member set) and its crud events.
    async fn insert(&self, name: &str, value: Value, at_ms: i64) -> Result<Value>;

    /// Replaces an entity and records its crud events. Returns the entity
    /// as it was.
    async fn update(&self, name: &str, value: Value, at_ms: i64) -> Result<Value>;

    /// Deletes an entity, cascading where its schema says so, with the
    /// crud events of every entity removed. Returns the entity.
    async fn delete(&self, name: &str, id: Uuid, at_ms: i64) -> Result<Value>;

    /// The entity with that id.
    async fn get(&self, name: &str, id: Uuid) -> Result<Option<Value>>;

    /// The entity whose unique `field` has this value.
    async fn find_unique(&self, name: &str, field: &str, value: &Value) -> Result<Option<Value>>;

    /// A page of every entity of a kind, ordered by id.
    async fn list(&self, name: &str, page: &Page) -> Result<Listed>;

    /// A page of the children of one parent, ordered by id.
    async fn list_children(&self, of: ChildrenOf<'_>, page: &Page) -> Result<Listed>;

    /// Every entity of a kind, ordered by id, read a page at a time.
    async fn list_all(&self, name: &str) -> Result<Vec<Value>> {
        all_pages(|page| async move { self.list(name, &page).await }).await
    }

    /// Every child of one parent, ordered by id, read a page at a time.
    async fn list_all_children(&self, of: ChildrenOf<'_>) -> Result<Vec<Value>> {
        all_pages(|page| async move { self.list_children(of, &page).await }).await
    }
}

/// Entities read per page by [`Entities::list_all`].
const ALL_PAGE: usize = 1000;

/// Every item of a listing, following its pages.
async fn all_pages<F, Fut>(mut read: F) -> Result<Vec<Value>>
where
    F: FnMut(Page) -> Fut,
    Fut: std::future::Future<Output = Result<Listed>>,
{
    let mut all = Vec::new();
    let mut offset = None;
    loop {
        let listed = read(Page {
            size: ALL_PAGE,
            offset: offset.take(),
        })
        .await?;
        all.extend(listed.data);
        match listed.next {
            Some(next) => offset = Some(next),
            None => return Ok(all),
        }
    }
}

/// What a backend needs to know of an entity to keep it consistent.
pub(crate) struct Layout {
    pub unique_keys: &'static [UniqueKey],
    pub foreign_keys: &'static [ForeignKey],
}

pub(crate) fn layout(name: &str) -> Layout {
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

pub(crate) fn id_of(value: &Value) -> Option<Uuid> {
    value.get("id")?.as_str()?.parse().ok()
}

pub(crate) fn foreign_id(value: &Value, field: &str) -> Option<Uuid> {
    value.get(field)?.get("id")?.as_str()?.parse().ok()
}

/// The index key of a unique constraint for this entity, if it applies:
/// the entity, the fields and their values, canonical.
pub(crate) fn unique_index_key(name: &str, key: &UniqueKey, value: &Value) -> Option<Vec<u8>> {
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

/// The error of a unique value taken, as Kong shows it.
pub(crate) fn unique_violation(name: &str, key: &UniqueKey, value: &Value) -> Error {
    Error::Unique {
        entity: name.to_string(),
        fields: key
            .fields
            .iter()
            .map(|f| (f.to_string(), value.get(*f).cloned().unwrap_or(Value::Null)))
            .collect(),
        shown: lua_table(key, value),
    }
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

/// An entity's key, as the quarantine keeps it (and sled stores it):
/// name ++ `/` ++ the 16 bytes of its id.
pub(crate) fn entity_key(name: &str, id: Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 17);
    k.extend_from_slice(name.as_bytes());
    k.push(b'/');
    k.extend_from_slice(id.as_bytes());
    k
}

/// The entity name and id of an entity key.
pub(crate) fn split_entity_key(key: &[u8]) -> Option<(String, Uuid)> {
    let slash = key.len().checked_sub(17)?;
    if key[slash] != b'/' {
        return None;
    }
    let name = std::str::from_utf8(&key[..slash]).ok()?;
    Some((name.to_string(), Uuid::from_slice(&key[slash + 1..]).ok()?))
}

pub(crate) fn parse_offset(offset: &str) -> Result<Uuid> {
    offset.parse().map_err(|_| Error::InvalidOffset)
}
