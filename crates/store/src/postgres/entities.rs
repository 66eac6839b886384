//! Entities on PostgreSQL: a row each in `entities`, their unique values
//! in `unique_values` and their references in `entity_refs`, written in
//! one transaction with the write's crud events.
//!
//! Row locks do what sled's single writer does: a write locks the entity
//! it changes; a unique value is claimed by inserting its row, which waits
//! for any other transaction claiming or releasing it; a reference
//! key-share-locks its parent, and a delete locks the entity before it
//! reads who refers to it. Two writes can thus neither both claim a value
//! nor add a reference to a parent being deleted; a deadlock between them
//! is broken by PostgreSQL and the write it gave up runs again.

use super::outbox::append_records;
use super::tokens::revoke_admin_token;
use super::{Postgres, retrying};
use crate::codec::{decode, encode};
use crate::entities::{
    ChildrenOf, Filling, Listed, Page, entity_key, foreign_id, id_of, layout, parse_offset,
    unique_index_key, unique_violation,
};
use crate::outbox::encode_records;
use crate::tokens::ADMINS;
use crate::{Entities, Error, Origin, Result};
use async_trait::async_trait;
use hookd_model::entity::OnDelete;
use hookd_model::event::canonical_json;
use hookd_model::{Event, Operation};
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use std::future::Future;
use std::pin::Pin;
use uuid::Uuid;

/// Rows read at a time by listings that skip entities that do not decode.
const CHUNK: usize = 256;

/// `statement`, whose `$1` and `$2` are an entity's kind and id, with
/// those bound.
fn entity_statement<'q>(
    statement: &'q str,
    name: &'q str,
    id: Uuid,
) -> Query<'q, sqlx::Postgres, PgArguments> {
    sqlx::query(statement).bind(name).bind(id)
}

/// The entity's body, locked in `mode` (a `FOR ...` clause) until the
/// transaction ends.
async fn lock(
    conn: &mut PgConnection,
    name: &str,
    id: Uuid,
    mode: &str,
) -> Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT body FROM entities WHERE kind = $1 AND id = $2 {mode}"
    ))
    .bind(name)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Claims the entity's unique values; returns their keys.
async fn claim_unique(
    conn: &mut PgConnection,
    name: &str,
    id: Uuid,
    value: &Value,
) -> Result<Vec<Vec<u8>>> {
    let mut claimed = Vec::new();
    for key in layout(name).unique_keys {
        let Some(index) = unique_index_key(name, key, value) else {
            continue;
        };
        // Inserts the claim, or locks the row that holds it, waiting for a
        // transaction claiming or releasing it: one statement, so a claim
        // released meanwhile is inserted by PostgreSQL's own retry. A row
        // of another owner comes back through its no-op update; one this
        // entity already holds does not.
        let owner: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO unique_values (key, kind, id) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET id = unique_values.id \
             WHERE unique_values.id <> EXCLUDED.id RETURNING id",
        )
        .bind(&index)
        .bind(name)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        if owner.is_some_and(|owner| owner != id) {
            return Err(unique_violation(name, key, value));
        }
        claimed.push(index);
    }
    Ok(claimed)
}

/// Releases the values the entity holds but those in `keep`: whether its
/// stored form has them or a lost write left them behind. An update
/// claims its new values before it releases the old ones, so that two
/// updates swapping values fail at once instead of deadlocking.
async fn release_unique(
    conn: &mut PgConnection,
    name: &str,
    id: Uuid,
    keep: &[Vec<u8>],
) -> Result<()> {
    // A kind without unique fields never claims a value: no round trip.
    if layout(name).unique_keys.is_empty() {
        return Ok(());
    }
    let statement = "DELETE FROM unique_values WHERE kind = $1 AND id = $2 AND key <> ALL($3)";
    entity_statement(statement, name, id)
        .bind(keep)
        .execute(conn)
        .await?;
    Ok(())
}

async fn link_parents(conn: &mut PgConnection, name: &str, id: Uuid, value: &Value) -> Result<()> {
    for fk in layout(name).foreign_keys {
        let Some(parent_id) = foreign_id(value, fk.field) else {
            continue;
        };
        // Key-share: the parent may be updated meanwhile, not deleted.
        let parent: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM entities WHERE kind = $1 AND id = $2 FOR KEY SHARE")
                .bind(fk.entity)
                .bind(parent_id)
                .fetch_optional(&mut *conn)
                .await?;
        if parent.is_none() {
            return Err(Error::ForeignKey {
                field: fk.field.to_string(),
                entity: fk.entity.to_string(),
                id: parent_id,
            });
        }
        sqlx::query(
            "INSERT INTO entity_refs (parent_kind, parent_id, child_kind, child_id, field) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(fk.entity)
        .bind(parent_id)
        .bind(name)
        .bind(id)
        .bind(fk.field)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn unlink_parents(conn: &mut PgConnection, name: &str, id: Uuid) -> Result<()> {
    // A kind without foreign keys never links a parent: no round trip.
    if layout(name).foreign_keys.is_empty() {
        return Ok(());
    }
    entity_statement(
        "DELETE FROM entity_refs WHERE child_kind = $1 AND child_id = $2",
        name,
        id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_in(conn: &mut PgConnection, name: &str, id: Uuid, value: &Value) -> Result<()> {
    // The row first: an id taken by a committed insert, or by one that
    // commits while this waits for it, fails the write before any value
    // is claimed, as on sled. A later failure rolls the row back.
    let statement =
        "INSERT INTO entities (kind, id, body) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    let inserted = entity_statement(statement, name, id)
        .bind(encode(value)?)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if inserted == 0 {
        return Err(Error::PrimaryKey {
            entity: name.to_string(),
            id,
        });
    }
    claim_unique(conn, name, id, value).await?;
    link_parents(conn, name, id, value).await?;
    if name == ADMINS {
        revoke_admin_token(conn, id).await?;
    }
    Ok(())
}

async fn update_in(conn: &mut PgConnection, name: &str, id: Uuid, value: &Value) -> Result<Value> {
    // No-key: children may keep referring to it meanwhile.
    let Some(old) = lock(conn, name, id, "FOR NO KEY UPDATE").await? else {
        return Err(Error::NotFound);
    };
    let old: Value = decode(&old)?;
    let claimed = claim_unique(conn, name, id, value).await?;
    release_unique(conn, name, id, &claimed).await?;
    unlink_parents(conn, name, id).await?;
    link_parents(conn, name, id, value).await?;
    entity_statement(
        "UPDATE entities SET body = $3 WHERE kind = $1 AND id = $2",
        name,
        id,
    )
    .bind(encode(value)?)
    .execute(&mut *conn)
    .await?;
    Ok(old)
}

/// What a delete runs into when the entity's `field` refers to its parent.
fn on_delete(child: &str, field: &str) -> OnDelete {
    layout(child)
        .foreign_keys
        .iter()
        .find(|fk| fk.field == field)
        .map_or(OnDelete::Restrict, |fk| fk.on_delete)
}

type Deleting<'a> = Pin<Box<dyn Future<Output = Result<Value>> + Send + 'a>>;

/// Deletes an entity locked `FOR UPDATE` (`body` as it read) after its
/// dependants: children whose reference cascades go first, one whose
/// reference restricts stops everything. The crud events of each entity
/// removed are appended to `records`, one record each, children first.
fn delete_locked<'a>(
    conn: &'a mut PgConnection,
    name: &'a str,
    id: Uuid,
    body: Vec<u8>,
    at_ms: i64,
    records: &'a mut Vec<Vec<u8>>,
) -> Deleting<'a> {
    Box::pin(async move {
        let old: Value = decode(&body)?;
        // Read after the lock: a reference added before it was taken is
        // committed by now, and none can be added until this one ends.
        let children: Vec<(String, Uuid, String)> = sqlx::query_as(
            "SELECT child_kind, child_id, field FROM entity_refs \
             WHERE parent_kind = $1 AND parent_id = $2 \
             ORDER BY child_kind COLLATE \"C\", child_id, field COLLATE \"C\"",
        )
        .bind(name)
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        for (child, child_id, field) in children {
            match on_delete(&child, &field) {
                OnDelete::Restrict => {
                    return Err(Error::ReferencedBy {
                        child,
                        parent: name.to_string(),
                    });
                }
                OnDelete::Cascade => {
                    // A child listed under two of the parent's chains may
                    // be gone already.
                    if let Some(body) = lock(conn, &child, child_id, "FOR UPDATE").await? {
                        delete_locked(conn, &child, child_id, body, at_ms, records).await?;
                    }
                }
            }
        }
        release_unique(conn, name, id, &[]).await?;
        unlink_parents(conn, name, id).await?;
        if name == ADMINS {
            revoke_admin_token(conn, id).await?;
        }
        entity_statement("DELETE FROM entities WHERE kind = $1 AND id = $2", name, id)
            .execute(&mut *conn)
            .await?;
        records.extend(encode_records(&Event::crud(
            Operation::Delete,
            name,
            &old,
            None,
            at_ms,
        ))?);
        Ok(old)
    })
}

/// `id` and those after it, as the lower bound of a listing.
fn lower_bound(page: &Page) -> Result<Uuid> {
    Ok(match &page.offset {
        Some(offset) => parse_offset(offset)?,
        None => Uuid::nil(),
    })
}

impl Postgres {
    async fn try_insert(&self, name: &str, id: Uuid, value: &Value, at_ms: i64) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        insert_in(&mut tx, name, id, value).await?;
        let events = Event::crud(Operation::Create, name, value, None, at_ms);
        append_records(&mut tx, &encode_records(&events)?).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn try_update(&self, name: &str, id: Uuid, value: &Value, at_ms: i64) -> Result<Value> {
        let mut tx = self.pool().begin().await?;
        let old = update_in(&mut tx, name, id, value).await?;
        let events = Event::crud(Operation::Update, name, value, Some(&old), at_ms);
        append_records(&mut tx, &encode_records(&events)?).await?;
        tx.commit().await?;
        Ok(old)
    }

    async fn try_delete(&self, name: &str, id: Uuid, at_ms: i64) -> Result<Value> {
        let mut tx = self.pool().begin().await?;
        let Some(body) = lock(&mut tx, name, id, "FOR UPDATE").await? else {
            return Err(Error::NotFound);
        };
        let mut records = Vec::new();
        let old = delete_locked(&mut tx, name, id, body, at_ms, &mut records).await?;
        append_records(&mut tx, &records).await?;
        tx.commit().await?;
        Ok(old)
    }

    /// The stored entity, or none if it does not decode: then it goes to
    /// the quarantine, and readers go on with the others, as if it had
    /// been deleted. Its unique values and references stay claimed until
    /// it is deleted from the quarantine, so that a retry puts it back
    /// consistent.
    async fn decode_entity(&self, name: &str, id: Uuid, body: &[u8]) -> Result<Option<Value>> {
        match decode(body) {
            Ok(value) => Ok(Some(value)),
            Err(e) => {
                self.quarantine(Origin::Entities, &entity_key(name, id), body, &e)
                    .await?;
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl Entities for Postgres {
    async fn insert(&self, name: &str, value: Value, at_ms: i64) -> Result<Value> {
        let id = id_of(&value).ok_or(Error::MissingId)?;
        retrying(|| self.try_insert(name, id, &value, at_ms)).await?;
        self.outbox_written();
        self.hook_written(name, id, at_ms, true);
        Ok(value)
    }

    async fn update(&self, name: &str, value: Value, at_ms: i64) -> Result<Value> {
        let id = id_of(&value).ok_or(Error::MissingId)?;
        let old = retrying(|| self.try_update(name, id, &value, at_ms)).await?;
        self.outbox_written();
        self.hook_written(name, id, at_ms, false);
        Ok(old)
    }

    async fn delete(&self, name: &str, id: Uuid, at_ms: i64) -> Result<Value> {
        let old = retrying(|| self.try_delete(name, id, at_ms)).await?;
        self.outbox_written();
        self.hook_written(name, id, at_ms, true);
        Ok(old)
    }

    async fn get(&self, name: &str, id: Uuid) -> Result<Option<Value>> {
        let body: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT body FROM entities WHERE kind = $1 AND id = $2")
                .bind(name)
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        match body {
            Some(body) => self.decode_entity(name, id, &body).await,
            None => Ok(None),
        }
    }

    async fn find_unique(&self, name: &str, field: &str, value: &Value) -> Result<Option<Value>> {
        let mut index = format!("{name}\0{field}\0").into_bytes();
        index.extend_from_slice(canonical_json(&Value::Array(vec![value.clone()])).as_bytes());
        let found: Option<(Uuid, Vec<u8>)> = sqlx::query_as(
            "SELECT e.id, e.body FROM unique_values u \
             JOIN entities e ON e.kind = $2 AND e.id = u.id WHERE u.key = $1",
        )
        .bind(index)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        match found {
            Some((id, body)) => self.decode_entity(name, id, &body).await,
            None => Ok(None),
        }
    }

    /// A page holds `size` entities that decode: one that does not is
    /// quarantined and the page goes on past it, as in the sled backend.
    async fn list(&self, name: &str, page: &Page) -> Result<Listed> {
        let mut from = lower_bound(page)?;
        let mut data = Filling::new(page);
        let chunk = page.size.saturating_add(1).min(CHUNK);
        loop {
            let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
                "SELECT id, body FROM entities WHERE kind = $1 AND id >= $2 ORDER BY id LIMIT $3",
            )
            .bind(name)
            .bind(from)
            .bind(chunk as i64)
            .fetch_all(self.pool())
            .await?;
            let complete = rows.len() < chunk;
            let Some(&(last, _)) = rows.last() else {
                return Ok(data.last());
            };
            for (id, body) in rows {
                if data.is_full() {
                    return Ok(data.continued_at(id.to_string()));
                }
                data.push(self.decode_entity(name, id, &body).await?);
            }
            match last.as_u128().checked_add(1) {
                Some(next) if !complete => from = Uuid::from_u128(next),
                _ => return Ok(data.last()),
            }
        }
    }

    /// As in the sled backend, a child that is gone or does not decode
    /// still takes its place in the page: the page is shorter.
    async fn list_children(&self, of: ChildrenOf<'_>, page: &Page) -> Result<Listed> {
        let from = lower_bound(page)?;
        let wanted = i64::try_from(page.size.saturating_add(1)).unwrap_or(i64::MAX);
        let rows: Vec<(Uuid, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT r.child_id, e.body FROM ( \
                 SELECT DISTINCT child_id FROM entity_refs \
                 WHERE parent_kind = $1 AND parent_id = $2 AND child_kind = $3 AND child_id >= $4 \
                 ORDER BY child_id LIMIT $5 \
             ) r LEFT JOIN entities e ON e.kind = $3 AND e.id = r.child_id \
             ORDER BY r.child_id",
        )
        .bind(of.parent)
        .bind(of.parent_id)
        .bind(of.child)
        .bind(from)
        .bind(wanted)
        .fetch_all(self.pool())
        .await?;
        let mut data = Vec::with_capacity(rows.len().min(page.size));
        for (i, (id, body)) in rows.into_iter().enumerate() {
            if i == page.size {
                return Ok(Listed {
                    data,
                    next: Some(id.to_string()),
                });
            }
            if let Some(body) = body {
                data.extend(self.decode_entity(of.child, id, &body).await?);
            }
        }
        Ok(Listed { data, next: None })
    }
}

#[cfg(test)]
mod tests {
    use crate::entities::{ChildrenOf, Page, id_of};
    use crate::testing::TestDatabase;
    use crate::{Error, Origin, Store};
    use serde_json::{Value, json};
    use uuid::Uuid;

    fn children_of<'a>(parent: &'a str, parent_id: Uuid, child: &'a str) -> ChildrenOf<'a> {
        ChildrenOf {
            parent,
            parent_id,
            child,
        }
    }

    fn service(name: &str) -> Value {
        json!({"id": Uuid::new_v4().to_string(), "name": name, "host": "example.com"})
    }

    fn route(service: &Value) -> Value {
        json!({"id": Uuid::new_v4().to_string(), "paths": ["/"], "service": {"id": service["id"]}})
    }

    fn page(size: usize, offset: Option<String>) -> Page {
        Page { size, offset }
    }

    fn id(value: &Value) -> Uuid {
        id_of(value).unwrap()
    }

    /// The `crud` event names of the outbox from the `from`th event on.
    async fn crud_events(store: &Store, from: usize) -> Vec<String> {
        store.outbox_events().await.unwrap()[from..]
            .iter()
            .filter(|e| e.source == "crud" && !e.event.contains(':'))
            .map(|e| e.event.clone())
            .collect()
    }

    #[tokio::test]
    async fn writes_keep_kong_errors_and_their_events() {
        let Some((_db, store)) = TestDatabase::with_store().await else {
            return;
        };
        let a = store.insert("services", service("a"), 7).await.unwrap();
        assert_eq!(
            store.get("services", id(&a)).await.unwrap(),
            Some(a.clone())
        );
        let err = store.insert("services", a.clone(), 0).await.unwrap_err();
        assert!(matches!(err, Error::PrimaryKey { .. }), "{err:?}");
        let err = store.insert("services", service("a"), 0).await.unwrap_err();
        assert!(
            matches!(&err, Error::Unique { shown, .. } if shown == "{name=\"a\"}"),
            "{err:?}"
        );
        assert!(matches!(
            store.insert("services", json!({"name": "x"}), 0).await,
            Err(Error::MissingId)
        ));
        assert!(matches!(
            store.update("services", service("ghost"), 0).await,
            Err(Error::NotFound)
        ));
        assert!(matches!(
            store.delete("services", Uuid::new_v4(), 0).await,
            Err(Error::NotFound)
        ));
        let mut renamed = a.clone();
        renamed["name"] = json!("b");
        assert_eq!(store.update("services", renamed, 8).await.unwrap(), a);
        store.insert("services", service("a"), 0).await.unwrap();
        let found = store.find_unique("services", "name", &json!("b")).await;
        assert_eq!(found.unwrap().unwrap()["id"], a["id"]);
        assert_eq!(
            store
                .find_unique("services", "name", &json!("c"))
                .await
                .unwrap(),
            None
        );
        // Failed writes leave no events behind.
        let events = store.outbox_events().await.unwrap();
        assert_eq!(events.len(), 9);
        assert_eq!(crud_events(&store, 0).await, ["services"; 3]);
        assert_eq!(events[0].at_ms, 7);
        assert_eq!(events[3].data["old_entity"], a);
    }

    #[tokio::test]
    async fn concurrent_claims_of_one_value_leave_one_winner() {
        let Some((_db, store)) = TestDatabase::with_store().await else {
            return;
        };
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.insert("services", service("same"), 0).await })
            })
            .collect();
        let (mut won, mut refused) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => won += 1,
                Err(Error::Unique { .. }) => refused += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!((won, refused), (1, 15));
        let listed = store.list("services", &page(100, None)).await.unwrap();
        assert_eq!(listed.data.len(), 1);
        assert_eq!(store.outbox_events().await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn concurrent_renames_never_share_a_value() {
        let Some((db, store)) = TestDatabase::with_store().await else {
            return;
        };
        let mut services = Vec::new();
        for i in 0..8 {
            services.push(
                store
                    .insert("services", service(&format!("s{i}")), 0)
                    .await
                    .unwrap(),
            );
        }
        // Every service tries to take every other's name, while they move.
        let tasks: Vec<_> = services
            .iter()
            .cloned()
            .map(|s| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..8 {
                        let mut renamed = s.clone();
                        renamed["name"] = json!(format!("s{i}"));
                        match store.update("services", renamed, 0).await {
                            Ok(_) | Err(Error::Unique { .. }) => {}
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let listed = store.list("services", &page(100, None)).await.unwrap();
        let mut names: Vec<&str> = listed
            .data
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 8);
        for s in &listed.data {
            let found = store.find_unique("services", "name", &s["name"]).await;
            assert_eq!(found.unwrap().unwrap()["id"], s["id"]);
        }
        let claims: i64 = sqlx::query_scalar("SELECT count(*) FROM unique_values")
            .fetch_one(&crate::postgres::pool(&db.connection).await.unwrap())
            .await
            .unwrap();
        assert_eq!(claims, 8);
    }

    #[tokio::test]
    async fn references_restrict_or_cascade() {
        let Some((_db, store)) = TestDatabase::with_store().await else {
            return;
        };
        let s = store.insert("services", service("a"), 0).await.unwrap();
        let err = store
            .insert("routes", route(&service("ghost")), 0)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::ForeignKey { field, entity, .. } if field == "service" && entity == "services"),
            "{err:?}"
        );
        let r = store.insert("routes", route(&s), 0).await.unwrap();
        let consumer = json!({"id": Uuid::new_v4().to_string(), "username": "c"});
        let consumer = store.insert("consumers", consumer, 0).await.unwrap();
        // A plugin on the route and the consumer: it goes with either.
        let plugin = json!({
            "id": Uuid::new_v4().to_string(), "name": "key-auth",
            "route": {"id": r["id"]}, "consumer": {"id": consumer["id"]},
            "service": null, "consumer_group": null,
        });
        let plugin = store.insert("plugins", plugin, 0).await.unwrap();
        let err = store.delete("services", id(&s), 0).await.unwrap_err();
        assert!(
            matches!(&err, Error::ReferencedBy { child, parent } if child == "routes" && parent == "services"),
            "{err:?}"
        );
        let before = store.outbox_events().await.unwrap().len();
        store.delete("routes", id(&r), 0).await.unwrap();
        assert_eq!(crud_events(&store, before).await, ["plugins", "routes"]);
        assert_eq!(store.get("plugins", id(&plugin)).await.unwrap(), None);
        // The plugin's other reference went with it.
        let children = store
            .list_children(
                children_of("consumers", id(&consumer), "plugins"),
                &page(10, None),
            )
            .await
            .unwrap();
        assert!(children.data.is_empty());
        store.delete("consumers", id(&consumer), 0).await.unwrap();
        store.delete("services", id(&s), 0).await.unwrap();
        // One record per entity removed, as the sled backend writes them.
        let batch = store.outbox_batch(usize::MAX).await.unwrap();
        assert_eq!(batch.records.len(), 8);
    }

    #[tokio::test]
    async fn a_cascade_releases_the_childrens_values() {
        let Some((_db, store)) = TestDatabase::with_store().await else {
            return;
        };
        let up = json!({"id": Uuid::new_v4().to_string(), "name": "up"});
        let up = store.insert("upstreams", up, 0).await.unwrap();
        let target = json!({"id": Uuid::new_v4().to_string(), "target": "a:80", "upstream": {"id": up["id"]}});
        store.insert("targets", target.clone(), 0).await.unwrap();
        let err = store
            .insert("targets", json!({"id": Uuid::new_v4().to_string(), "target": "a:80", "upstream": {"id": up["id"]}}), 0)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unique { .. }), "{err:?}");
        store.delete("upstreams", id(&up), 0).await.unwrap();
        assert_eq!(store.get("targets", id(&target)).await.unwrap(), None);
        store.insert("upstreams", up, 0).await.unwrap();
        store.insert("targets", target, 0).await.unwrap();
    }

    #[tokio::test]
    async fn a_reference_never_outlives_a_concurrent_delete() {
        let Some((_db, store)) = TestDatabase::with_store().await else {
            return;
        };
        for round in 0..20 {
            let s = store
                .insert("services", service(&format!("s{round}")), 0)
                .await
                .unwrap();
            let r = route(&s);
            let (deleted, inserted) = tokio::join!(
                {
                    let store = store.clone();
                    let sid = id(&s);
                    tokio::spawn(async move { store.delete("services", sid, 0).await })
                },
                {
                    let store = store.clone();
                    let r = r.clone();
                    tokio::spawn(async move { store.insert("routes", r, 0).await })
                },
            );
            match (deleted.unwrap(), inserted.unwrap()) {
                (Ok(_), Err(Error::ForeignKey { .. })) => {
                    assert_eq!(store.get("routes", id(&r)).await.unwrap(), None);
                }
                (Err(Error::ReferencedBy { .. }), Ok(_)) => {
                    assert!(store.get("services", id(&s)).await.unwrap().is_some());
                }
                other => panic!("round {round}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_corrupt_entity_is_quarantined_and_skipped() {
        let Some((db, store)) = TestDatabase::with_store().await else {
            return;
        };
        let mut services = Vec::new();
        for i in 0..5 {
            services.push(
                store
                    .insert("services", service(&format!("s{i}")), 0)
                    .await
                    .unwrap(),
            );
        }
        services.sort_by_key(id);
        let corrupt = id(&services[1]);
        let pool = crate::postgres::pool(&db.connection).await.unwrap();
        sqlx::query("UPDATE entities SET body = $1 WHERE id = $2")
            .bind(b"{not json".as_slice())
            .bind(corrupt)
            .execute(&pool)
            .await
            .unwrap();
        // A page holds entities that decode: the corrupt one is passed over.
        let first = store.list("services", &page(2, None)).await.unwrap();
        assert_eq!(first.data, [services[0].clone(), services[2].clone()]);
        assert_eq!(first.next, Some(id(&services[3]).to_string()));
        let rest = store.list("services", &page(5, first.next)).await.unwrap();
        assert_eq!(rest.data, services[3..]);
        assert_eq!(rest.next, None);
        assert_eq!(store.get("services", corrupt).await.unwrap(), None);
        let quarantined = store.quarantine_page(&page(10, None)).await.unwrap().data;
        assert_eq!(quarantined.len(), 1);
        assert_eq!(quarantined[0].origin, Origin::Entities);
        assert_eq!(quarantined[0].key_text(), format!("services/{corrupt}"));
        assert_eq!(quarantined[0].raw, b"{not json");
        // Its name stays claimed until it leaves the quarantine.
        let err = store
            .insert("services", service("s1"), 0)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unique { .. }), "{err:?}");
        assert!(matches!(
            store.list("services", &page(2, Some("nope".into()))).await,
            Err(Error::InvalidOffset)
        ));
    }

    #[tokio::test]
    async fn children_are_listed_by_id_in_pages() {
        let Some((_db, store)) = TestDatabase::with_store().await else {
            return;
        };
        let s = store.insert("services", service("a"), 0).await.unwrap();
        let other = store.insert("services", service("b"), 0).await.unwrap();
        store.insert("routes", route(&other), 0).await.unwrap();
        let mut routes = Vec::new();
        for _ in 0..5 {
            routes.push(store.insert("routes", route(&s), 0).await.unwrap());
        }
        routes.sort_by_key(id);
        let mut listed = Vec::new();
        let mut offset = None;
        loop {
            let got = store
                .list_children(children_of("services", id(&s), "routes"), &page(2, offset))
                .await
                .unwrap();
            assert!(got.data.len() <= 2);
            listed.extend(got.data);
            match got.next {
                Some(next) => offset = Some(next),
                None => break,
            }
        }
        assert_eq!(listed, routes);
        // A route moved to another service leaves this one's list.
        let mut moved = routes[0].clone();
        moved["service"] = json!({"id": other["id"]});
        store.update("routes", moved, 0).await.unwrap();
        let got = store
            .list_children(children_of("services", id(&s), "routes"), &page(10, None))
            .await
            .unwrap();
        assert_eq!(got.data, routes[1..]);
    }
}
