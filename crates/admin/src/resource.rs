//! What the generic CRUD endpoints need to know of a resource: its name,
//! how a path names one, and how input is validated. Gateway entities are
//! described by their schema; event hooks by their typed model.

use crate::AdminState;
use crate::error::{ApiError, ApiResult};
use hookd_model::EventHook;
use hookd_model::entity::EntitySchema;
use hookd_model::hook;
use hookd_model::schema::{Field, Input, Kind};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A resource served by the generic endpoints.
#[derive(Debug, Clone, Copy)]
pub enum Resource {
    /// A gateway entity.
    Entity(&'static EntitySchema),
    /// Event hooks.
    Hooks,
}

impl Resource {
    /// The store and crud name, e.g. `services`, `event_hooks`.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Entity(e) => e.name,
            Resource::Hooks => hookd_model::hook::ENTITY,
        }
    }

    /// The unique field a path may use instead of the id.
    pub fn endpoint_key(self) -> Option<&'static str> {
        match self {
            Resource::Entity(e) => e.endpoint_key,
            Resource::Hooks => None,
        }
    }

    /// Whether the resource keeps `updated_at` (Kong's event hooks do not).
    fn has_updated_at(self) -> bool {
        matches!(self, Resource::Entity(e) if e.schema.field("updated_at").is_some())
    }

    /// Validates a complete entity: `obj` carries everything, id included.
    /// A hook that replaces `prior` keeps its previous secret live as
    /// [`EventHook::keep_secret_overlap`] says, from `now_s` for the
    /// server's `secret_overlap`.
    pub async fn validate(
        self,
        state: &AdminState,
        obj: Map<String, Value>,
        how: Input,
        prior: Option<&Prior>,
        now_s: i64,
    ) -> ApiResult<Value> {
        match self {
            Resource::Entity(e) => Ok(Value::Object(e.validate(obj, how)?)),
            Resource::Hooks => {
                let mut hook = EventHook::validate(&Value::Object(obj), how, &state.catalogue)?;
                // What is stored was valid when written; a record that no
                // longer reads as a hook has no secret worth keeping.
                if let Some(prior) = prior
                    && let Ok(stored) = serde_json::from_value::<EventHook>(prior.entity.clone())
                {
                    hook.keep_secret_overlap(
                        &stored,
                        prior.gave_previous_secret,
                        now_s,
                        state.secret_overlap,
                    );
                }
                state.deliveries.check_hook(&hook).await?;
                Ok(hook.to_json())
            }
        }
    }

    /// What follows a committed write: a webhook hook pings its receiver
    /// when created, changed or deleted, as Kong's do, and the delivery
    /// engine forgets the hook's failures.
    pub fn written(self, state: &AdminState, operation: &'static str, entity: &Value) {
        if let Resource::Hooks = self
            && let Ok(hook) = serde_json::from_value::<EventHook>(entity.clone())
        {
            state.deliveries.hook_written(hook.id);
            state.deliveries.ping_in_background(hook, operation);
        }
    }

    /// Fills the server-set members of a new or replaced entity.
    pub fn stamp(
        self,
        obj: &mut Map<String, Value>,
        id: Uuid,
        created_at: Option<Value>,
        now_s: i64,
    ) {
        obj.insert("id".into(), Value::from(id.to_string()));
        let created = created_at
            .or_else(|| obj.get("created_at").filter(|v| !v.is_null()).cloned())
            .unwrap_or(Value::from(now_s));
        obj.insert("created_at".into(), created);
        if self.has_updated_at() {
            obj.insert("updated_at".into(), Value::from(now_s));
        }
    }

    /// Applies a PATCH to the stored entity: records (a hook's `config`,
    /// an upstream's `healthchecks`) merge field by field, anything else is
    /// replaced.
    pub fn merge(
        self,
        mut base: Map<String, Value>,
        patch: Map<String, Value>,
    ) -> Map<String, Value> {
        match self {
            Resource::Entity(e) => merge_fields(&e.schema.fields, &mut base, patch),
            Resource::Hooks => {
                let handler = patch
                    .get("handler")
                    .or_else(|| base.get("handler"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let config = handler
                    .as_deref()
                    .and_then(hook::config_fields)
                    .map(|fields| vec![Field::new("config", Kind::Record(fields))])
                    .unwrap_or_default();
                merge_fields(&config, &mut base, patch);
            }
        }
        base
    }

    /// Turns a path segment into the id, or into the endpoint key value.
    pub fn parse_key(self, key: &str) -> ApiResult<PathKey> {
        if let Ok(id) = Uuid::try_parse(key) {
            return Ok(PathKey::Id(id));
        }
        match self.endpoint_key() {
            Some(field) => Ok(PathKey::Unique(field, key.to_string())),
            None => Err(ApiError::InvalidPrimaryKey(key.to_string())),
        }
    }
}

/// The stored entity a PATCH or PUT replaces, and whether the write's
/// input set a hook's `config.previous_secret` itself (null included).
#[derive(Debug)]
pub struct Prior {
    entity: Value,
    gave_previous_secret: bool,
}

impl Prior {
    /// `entity`, replaced by a write whose body is `input` (before a PATCH
    /// merges it).
    pub fn new(entity: Value, input: &Map<String, Value>) -> Self {
        let gave_previous_secret = input
            .get("config")
            .and_then(Value::as_object)
            .is_some_and(|config| config.contains_key("previous_secret"));
        Prior {
            entity,
            gave_previous_secret,
        }
    }

    /// The stored entity's creation time, which its successor keeps.
    pub fn created_at(&self) -> Option<Value> {
        self.entity.get("created_at").cloned()
    }
}

/// How a path segment names an entity.
#[derive(Debug, Clone)]
pub enum PathKey {
    /// By id.
    Id(Uuid),
    /// By the value of its endpoint key (`/consumers/bob`).
    Unique(&'static str, String),
}

fn merge_fields(fields: &[Field], base: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        let record = fields.iter().find_map(|f| match (&f.kind, f.name == key) {
            (Kind::Record(inner), true) => Some(inner),
            _ => None,
        });
        match (record, base.get_mut(&key), value) {
            (Some(inner), Some(Value::Object(old)), Value::Object(new)) => {
                merge_fields(inner, old, new)
            }
            (_, _, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn patch_merges_hook_config_but_replaces_maps() {
        let base = obj(
            json!({"handler": "webhook", "config": {"url": "http://a/", "headers": {"A": "1"}, "ssl_verify": false}}),
        );
        let patch = obj(json!({"config": {"headers": {"B": "2"}}}));
        let merged = Resource::Hooks.merge(base, patch);
        assert_eq!(
            Value::Object(merged),
            json!({"handler": "webhook", "config": {"url": "http://a/", "headers": {"B": "2"}, "ssl_verify": false}})
        );
    }

    #[test]
    fn patch_merges_nested_records_of_entities() {
        let upstreams = hookd_model::entity::by_name("upstreams").unwrap();
        let base = obj(
            json!({"name": "u", "healthchecks": {"active": {"type": "http", "healthy": {"interval": 0, "successes": 0}}}}),
        );
        let patch = obj(json!({"healthchecks": {"active": {"healthy": {"interval": 5}}}}));
        let merged = Resource::Entity(upstreams).merge(base, patch);
        assert_eq!(
            merged["healthchecks"]["active"],
            json!({"type": "http", "healthy": {"interval": 5, "successes": 0}})
        );
    }
}
