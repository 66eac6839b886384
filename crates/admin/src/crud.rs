//! The generic endpoints every resource gets, with Kong's semantics:
//! list (paginated), create (201), get, PATCH (merge), PUT (upsert) and
//! DELETE (204, also when already gone), by id or by endpoint key, at the
//! top level and nested under a parent (`/services/{id}/routes`).

use crate::AdminState;
use crate::api::{Api, Doc, doc};
use crate::body::KongBody;
use crate::error::{ApiError, ApiResult};
use crate::paging::ListRequest;
use crate::resource::{PathKey, Prior, Resource};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::http::StatusCode;
use axum::routing::get;
use hookd_model::clock::{Clock, SystemClock};
use hookd_model::entity::{EntitySchema, ForeignKey};
use hookd_model::schema::Input;
use hookd_store::{ChildrenOf, Page};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// Where a request is scoped: under which parent, through which field.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    parent: &'static EntitySchema,
    fk: &'static ForeignKey,
}

impl Scope {
    /// The `r` entities under the parent with this id.
    fn children(self, parent_id: Uuid, r: Resource) -> ChildrenOf<'static> {
        ChildrenOf {
            parent: self.parent.name,
            parent_id,
            child: r.name(),
        }
    }
}

/// The documentation of the five operations every resource has, at a
/// collection path and a member path.
fn crud_docs(name: &str, collection: bool) -> Vec<Doc> {
    let schema = name.to_string();
    if collection {
        vec![
            doc(Method::GET, format!("List {name}, paginated")).json(200, format!("List:{schema}")),
            doc(Method::POST, format!("Create one of {name}"))
                .body(&schema)
                .json(201, &schema),
        ]
    } else {
        vec![
            doc(Method::GET, format!("Get one of {name} by id or key")).json(200, &schema),
            doc(
                Method::PATCH,
                format!("Update one of {name}: records merge field by field"),
            )
            .body(&schema)
            .json(200, &schema),
            doc(Method::PUT, format!("Create or replace one of {name}"))
                .body(&schema)
                .json(200, &schema),
            doc(Method::DELETE, format!("Delete one of {name}")).empty(204),
        ]
    }
}

/// The entity a member path names (`/services/{key}`,
/// `/upstreams/{key}/targets/{child_key}`): its resource, the parent it is
/// looked for under, and the key as given.
struct Member {
    r: Resource,
    scope: Option<(Scope, Uuid)>,
    key: String,
}

impl Member {
    /// A member looked for under its parent.
    fn under(r: Resource, scope: Scope, parent_id: Uuid, key: String) -> Self {
        Member {
            r,
            scope: Some((scope, parent_id)),
            key,
        }
    }
}

/// Routes of one resource at `path` (`/services`, `/event-hooks`).
pub fn routes(path: &str, r: Resource) -> Api {
    Api::new()
        .route(
            path,
            get(move |state, asked| list(state, r, None, asked))
                .post(move |state, body| create(state, r, None, body)),
            crud_docs(r.name(), true),
        )
        .route(
            &format!("{path}/{{key}}"),
            get(move |state, Path((key,)): Path<(String,)>| {
                get_one(
                    state,
                    Member {
                        r,
                        scope: None,
                        key,
                    },
                )
            })
            .patch(move |state, Path((key,)): Path<(String,)>, body| {
                patch(
                    state,
                    Member {
                        r,
                        scope: None,
                        key,
                    },
                    body,
                )
            })
            .put(move |state, Path((key,)): Path<(String,)>, body| {
                put(
                    state,
                    Member {
                        r,
                        scope: None,
                        key,
                    },
                    body,
                )
            })
            .delete(move |state, Path((key,)): Path<(String,)>| {
                delete(
                    state,
                    Member {
                        r,
                        scope: None,
                        key,
                    },
                )
            }),
            crud_docs(r.name(), false),
        )
}

/// Routes of a child resource under its parent, e.g. `/upstreams/{key}/targets`.
pub fn nested_routes(
    parent: &'static EntitySchema,
    child: &'static EntitySchema,
    fk: &'static ForeignKey,
) -> Api {
    let scope = Scope { parent, fk };
    let base = format!("/{}/{{key}}/{}", parent.name, child.name);
    let r = Resource::Entity(child);
    Api::new()
        .route(
            &base,
            get(move |state: State<AdminState>, Path((key,)): Path<(String,)>, asked| async move {
                let parent_id = parent_id(&state, scope, &key).await?;
                list(state, r, Some((scope, parent_id)), asked).await
            })
            .post(move |state: State<AdminState>, Path((key,)): Path<(String,)>, body: KongBody| async move {
                let parent_id = parent_id(&state, scope, &key).await?;
                create(state, r, Some((scope, parent_id)), body).await
            }),
            crud_docs(child.name, true),
        )
        .route(
            &format!("{base}/{{child_key}}"),
            get(move |state: State<AdminState>, Path((key, child)): Path<(String, String)>| async move {
                let parent_id = parent_id(&state, scope, &key).await?;
                get_one(state, Member::under(r, scope, parent_id, child)).await
            })
            .patch(move |state: State<AdminState>, Path((key, child)): Path<(String, String)>, body: KongBody| async move {
                let parent_id = parent_id(&state, scope, &key).await?;
                patch(state, Member::under(r, scope, parent_id, child), body).await
            })
            .put(move |state: State<AdminState>, Path((key, child)): Path<(String, String)>, body: KongBody| async move {
                let parent_id = parent_id(&state, scope, &key).await?;
                put(state, Member::under(r, scope, parent_id, child), body).await
            })
            .delete(move |state: State<AdminState>, Path((key, child)): Path<(String, String)>| async move {
                let parent_id = parent_id(&state, scope, &key).await?;
                delete(state, Member::under(r, scope, parent_id, child)).await
            }),
            crud_docs(child.name, false),
        )
}

/// `GET /{child}/{key}/{field}`: the entity a foreign key refers to,
/// e.g. `/routes/{id}/service`.
pub fn referenced_route(child: &'static EntitySchema, fk: &'static ForeignKey) -> Api {
    Api::new().route(
        &format!("/{}/{{key}}/{}", child.name, fk.field),
        get(
            move |State(state): State<AdminState>, Path((key,)): Path<(String,)>| async move {
                let entity = find(&state, Resource::Entity(child), None, &key)
                    .await?
                    .ok_or(ApiError::NOT_FOUND)?;
                let id = entity[fk.field]["id"]
                    .as_str()
                    .and_then(|s| Uuid::try_parse(s).ok())
                    .ok_or(ApiError::NOT_FOUND)?;
                let parent = state
                    .store
                    .get(fk.entity, id)
                    .await?
                    .ok_or(ApiError::NOT_FOUND)?;
                Ok::<_, ApiError>(Json(parent))
            },
        ),
        [doc(
            Method::GET,
            format!("The {} this {} refers to", fk.field, child.name),
        )
        .json(200, fk.entity)],
    )
}

async fn parent_id(state: &AdminState, scope: Scope, key: &str) -> ApiResult<Uuid> {
    let parent = find(state, Resource::Entity(scope.parent), None, key)
        .await?
        .ok_or(ApiError::NOT_FOUND)?;
    entity_id(&parent)
}

fn entity_id(entity: &Value) -> ApiResult<Uuid> {
    entity["id"]
        .as_str()
        .and_then(|s| Uuid::try_parse(s).ok())
        .ok_or(ApiError::Store(hookd_store::Error::MissingId))
}

/// The entity a path names, within the parent when scoped.
pub(crate) async fn find(
    state: &AdminState,
    r: Resource,
    scope: Option<(Scope, Uuid)>,
    key: &str,
) -> ApiResult<Option<Value>> {
    let in_scope = |v: &Value| match scope {
        Some((s, pid)) => v[s.fk.field]["id"].as_str() == Some(pid.to_string().as_str()),
        None => true,
    };
    let found = match r.parse_key(key)? {
        PathKey::Id(id) => state.store.get(r.name(), id).await?,
        PathKey::Unique(field, value) => match scope {
            // Nested endpoint keys are unique only under their parent (a
            // target's address within its upstream): look among the children.
            Some((s, pid)) => {
                let wanted = normalized(r, field, value);
                let page = Page {
                    size: usize::MAX,
                    offset: None,
                };
                state
                    .store
                    .list_children(s.children(pid, r), &page)
                    .await?
                    .data
                    .into_iter()
                    .find(|v| v[field] == wanted)
            }
            None => {
                state
                    .store
                    .find_unique(r.name(), field, &Value::from(value))
                    .await?
            }
        },
    };
    Ok(found.filter(in_scope))
}

/// A path value in the form the entity stores it (`10.0.0.1` → `10.0.0.1:8000`).
fn normalized(r: Resource, field: &str, value: String) -> Value {
    let Resource::Entity(e) = r else {
        return Value::from(value);
    };
    let mut obj = Map::new();
    obj.insert(field.to_string(), Value::from(value));
    if let Some(normalize) = e.normalize {
        normalize(&mut obj);
    }
    obj.remove(field).unwrap_or(Value::Null)
}

async fn list(
    State(state): State<AdminState>,
    r: Resource,
    scope: Option<(Scope, Uuid)>,
    asked: ListRequest,
) -> ApiResult<Json<Value>> {
    let page = asked.page()?;
    let listed = match scope {
        Some((s, pid)) => state.store.list_children(s.children(pid, r), &page).await?,
        None => state.store.list(r.name(), &page).await?,
    };
    Ok(asked.answer(listed.data, listed.next))
}

/// A written entity's body: the record it must be, and how the schema
/// reads its values.
fn record(body: KongBody) -> ApiResult<(Map<String, Value>, Input)> {
    let how = body.input();
    match body.value {
        Value::Object(obj) => Ok((obj, how)),
        _ => Err(ApiError::Schema(hookd_model::Violations::entity(
            "expected a record",
        ))),
    }
}

fn now_s() -> i64 {
    SystemClock.now_ms() / 1000
}

/// `obj` made the record `id` of `r` as it is stored: under its parent
/// when the path is nested, stamped with its id and times (see
/// [`Resource::stamp`]), validated as `how` says the body came, as the
/// successor of `prior` (whose creation time it keeps) when it replaces one.
async fn ready(
    state: &AdminState,
    r: Resource,
    scope: Option<(Scope, Uuid)>,
    mut obj: Map<String, Value>,
    id: Uuid,
    how: Input,
    prior: Option<&Prior>,
) -> ApiResult<Value> {
    if let Some((s, pid)) = scope {
        obj.insert(s.fk.field.into(), json!({ "id": pid.to_string() }));
    }
    let now_s = now_s();
    r.stamp(&mut obj, id, prior.and_then(Prior::created_at), now_s);
    r.validate(state, obj, how, prior, now_s).await
}

async fn create(
    State(state): State<AdminState>,
    r: Resource,
    scope: Option<(Scope, Uuid)>,
    body: KongBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (obj, how) = record(body)?;
    let id = match obj.get("id") {
        Some(Value::String(s)) => Uuid::try_parse(s)
            .map_err(|_| hookd_model::Violations::field("id", "expected a valid UUID"))?,
        Some(Value::Null) | None => Uuid::new_v4(),
        Some(_) => {
            return Err(hookd_model::Violations::field("id", "expected a valid UUID").into());
        }
    };
    let entity = ready(&state, r, scope, obj, id, how, None).await?;
    let entity = state
        .store
        .insert(r.name(), entity, SystemClock.now_ms())
        .await?;
    r.written(&state, "create", &entity);
    Ok((
        StatusCode::CREATED,
        Json(with_new_token(&state, r, entity).await?),
    ))
}

/// A newly created admin with its token, which is shown once, here: only
/// its hash is kept. Other entities as they are.
async fn with_new_token(state: &AdminState, r: Resource, mut entity: Value) -> ApiResult<Value> {
    if r.name() == "admins" && entity["rbac_token_enabled"] == true {
        entity["token"] = Value::from(crate::rbac::issue(state, &entity).await?);
    }
    Ok(entity)
}

async fn get_one(
    State(state): State<AdminState>,
    Member { r, scope, key }: Member,
) -> ApiResult<Json<Value>> {
    find(&state, r, scope, &key)
        .await?
        .map(Json)
        .ok_or(ApiError::NOT_FOUND)
}

async fn patch(
    State(state): State<AdminState>,
    Member { r, scope, key }: Member,
    body: KongBody,
) -> ApiResult<Json<Value>> {
    let (patch, how) = record(body)?;
    let existing = find(&state, r, scope, &key)
        .await?
        .ok_or(ApiError::NOT_FOUND)?;
    let id = entity_id(&existing)?;
    let prior = Prior::new(existing.clone(), &patch);
    let Value::Object(base) = existing else {
        return Err(ApiError::NOT_FOUND);
    };
    let obj = r.merge(base, patch);
    let entity = ready(&state, r, scope, obj, id, how, Some(&prior)).await?;
    state
        .store
        .update(r.name(), entity.clone(), SystemClock.now_ms())
        .await?;
    r.written(&state, "update", &entity);
    Ok(Json(entity))
}

async fn put(
    State(state): State<AdminState>,
    Member { r, scope, key }: Member,
    body: KongBody,
) -> ApiResult<Json<Value>> {
    let (mut obj, how) = record(body)?;
    let path_key = r.parse_key(&key)?;
    if let PathKey::Unique(field, value) = &path_key {
        // `PUT /consumers/bob` is about bob, whatever the body says.
        obj.insert((*field).into(), Value::from(value.as_str()));
    }
    let existing = find(&state, r, scope, &key).await?;
    let id = match (&existing, path_key) {
        (Some(e), _) => entity_id(e)?,
        (None, PathKey::Id(id)) => id,
        (None, PathKey::Unique(..)) => Uuid::new_v4(),
    };
    let prior = existing.map(|e| Prior::new(e, &obj));
    let entity = ready(&state, r, scope, obj, id, how, prior.as_ref()).await?;
    let at = SystemClock.now_ms();
    if prior.is_some() {
        state.store.update(r.name(), entity.clone(), at).await?;
        r.written(&state, "update", &entity);
    } else {
        state.store.insert(r.name(), entity.clone(), at).await?;
        r.written(&state, "create", &entity);
        return Ok(Json(with_new_token(&state, r, entity).await?));
    }
    Ok(Json(entity))
}

async fn delete(
    State(state): State<AdminState>,
    Member { r, scope, key }: Member,
) -> ApiResult<StatusCode> {
    if let Some(existing) = find(&state, r, scope, &key).await? {
        match state
            .store
            .delete(r.name(), entity_id(&existing)?, SystemClock.now_ms())
            .await
        {
            Ok(deleted) => r.written(&state, "delete", &deleted),
            // Deleted concurrently: the outcome the caller wanted.
            Err(hookd_store::Error::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
