//! The declarative document of `hookd dump` and `hookd apply`: what it
//! holds, in which order it is applied, where each entity lives in the
//! Admin API, and how a desired entity is compared with the server's.
//!
//! A document maps a section per kind (`services`, …, `event_hooks`) to
//! entities in the Admin API's own shape (foreign keys as `{"id": ...}`),
//! plus `guests` as name and file. The kinds and their dependency order
//! come from the model's entity schemas, so a new entity joins by itself.

use super::client::{self, Client, encode};
use anyhow::{Context, bail};
use hookd_model::EventHook;
use hookd_model::entity::{self, EntitySchema, ForeignKey};
use hookd_model::hook;
use hookd_model::schema::Input;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The version written to and accepted from `_format_version`.
pub const FORMAT_VERSION: &str = "1";

/// Key of the format version in a document.
const FORMAT_KEY: &str = "_format_version";

/// Key of the guests section.
pub const GUESTS: &str = "guests";

/// Members the server sets on every write: never written by `dump`, never
/// sent or compared by `apply`.
const SERVER_SET: &[&str] = &["created_at", "updated_at"];

/// Where a hook keeps the secret its current one replaced.
const PREVIOUS_SECRET: [&str; 2] = ["config", "previous_secret"];

/// An entity as JSON members.
pub type Entity = Map<String, Value>;

/// A kind of entity a document holds (guests aside: they are files).
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A gateway entity.
    Entity(&'static EntitySchema),
    /// Event hooks.
    Hooks,
}

/// A section of a document, in the order `apply` writes them.
#[derive(Debug, Clone, Copy)]
pub enum Section {
    /// Entities of one kind.
    Kind(Kind),
    /// Guests of the lambda handler.
    Guests,
}

impl Section {
    /// The section's key in a document.
    pub fn name(self) -> &'static str {
        match self {
            Section::Kind(kind) => kind.name(),
            Section::Guests => GUESTS,
        }
    }
}

/// Every section in dependency order: the gateway entities each after
/// those it refers to, then guests, then event hooks (a lambda hook names
/// its guests, and the server checks they exist).
pub fn sections() -> Vec<Section> {
    fn visit(e: &'static EntitySchema, done: &mut Vec<&'static str>, out: &mut Vec<Section>) {
        if done.contains(&e.name) {
            return;
        }
        // Marked before the dependencies: a cycle (there is none today)
        // ends here instead of recursing forever.
        done.push(e.name);
        for fk in &e.foreign_keys {
            if let Some(parent) = entity::by_name(fk.entity) {
                visit(parent, done, out);
            }
        }
        out.push(Section::Kind(Kind::Entity(e)));
    }
    let (mut done, mut out) = (Vec::new(), Vec::new());
    for e in entity::all() {
        visit(e, &mut done, &mut out);
    }
    out.push(Section::Guests);
    out.push(Section::Kind(Kind::Hooks));
    out
}

impl Kind {
    /// The section name, which is also the crud entity name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Entity(e) => e.name,
            Kind::Hooks => hookd_model::hook::ENTITY,
        }
    }

    /// The foreign key to the parent for entities served only under their
    /// parent (targets under `/upstreams/{u}/targets`), as the router has it.
    fn parent(self) -> Option<&'static ForeignKey> {
        let Kind::Entity(e) = self else {
            return None;
        };
        e.foreign_keys
            .iter()
            .find(|fk| fk.nested && e.schema.field(fk.field).is_some_and(|f| f.required))
    }

    /// The collection path, under the parent of that id when nested.
    fn collection(self, parent_id: Option<&str>) -> String {
        match (self, self.parent(), parent_id) {
            (Kind::Hooks, _, _) => "/event-hooks".into(),
            (Kind::Entity(e), Some(fk), Some(pid)) => {
                format!("/{}/{}/{}", fk.entity, encode(pid), e.name)
            }
            (Kind::Entity(e), _, _) => format!("/{}", e.name),
        }
    }

    /// Where this entity is read, replaced and deleted: `/services/{id}`,
    /// `/upstreams/{u}/targets/{id}`.
    pub fn member_path(self, entity: &Entity, id: &str) -> anyhow::Result<String> {
        let parent_id = match self.parent() {
            Some(fk) => Some(
                entity
                    .get(fk.field)
                    .and_then(|parent| parent.get("id"))
                    .and_then(Value::as_str)
                    .with_context(|| {
                        format!("{} {id}: `{}.id` is required", self.name(), fk.field)
                    })?,
            ),
            None => None,
        };
        Ok(format!("{}/{}", self.collection(parent_id), encode(id)))
    }

    /// Every entity of this kind on the server, every page, under every
    /// parent for nested kinds.
    pub async fn list(self, client: &Client) -> client::Result<Vec<Entity>> {
        let values = match self.parent() {
            None => client.list(&self.collection(None)).await?,
            Some(fk) => {
                let mut all = Vec::new();
                for parent in client.list(&format!("/{}", fk.entity)).await? {
                    if let Some(pid) = parent["id"].as_str() {
                        all.extend(client.list(&self.collection(Some(pid))).await?);
                    }
                }
                all
            }
        };
        Ok(values
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(o) => Some(o),
                _ => None,
            })
            .collect())
    }

    /// The entity as the server would store it, to compare with what it
    /// has: defaults filled, shorthands expanded (a service's `url`), a
    /// target's default port added, by the same model code the server
    /// runs. Without its id and server-set members. When the model refuses
    /// the entity, it is compared as written: it then differs, and the
    /// server's answer to the write says why.
    pub fn canonical(self, entity: &Entity) -> Entity {
        let normalized = match self {
            Kind::Entity(e) => normalize_entity(e, entity.clone()),
            Kind::Hooks => normalize_hook(entity.clone()),
        };
        let mut out = normalized.unwrap_or_else(|| entity.clone());
        out.remove("id");
        without_server_set(&mut out);
        out
    }

    /// Whether the server's entity, in its compared form `existing`,
    /// already is what `written` (whose canonical form is `canonical`)
    /// asks for. A hook's `config.previous_secret` left out of `written`
    /// is the server's to keep (a write leaving it out keeps it, or sets it
    /// when the secret changes), so it is compared only when written.
    pub fn unchanged(self, written: &Entity, canonical: &Entity, existing: &Entity) -> bool {
        let gives_previous = || {
            written
                .get("config")
                .and_then(Value::as_object)
                .is_some_and(|config| config.contains_key(PREVIOUS_SECRET[1]))
        };
        if matches!(self, Kind::Hooks) && !gives_previous() {
            let without = |e: &Entity| {
                let mut e = e.clone();
                remove_path(&mut e, &PREVIOUS_SECRET.map(String::from));
                e
            };
            return without(canonical) == without(existing);
        }
        canonical == existing
    }

    /// The entity without what the server fills in by itself: each member
    /// (nested records' too, deepest first) whose removal leaves the
    /// canonical form unchanged, such as a default or a null, is left out.
    /// Applying the compact form stores the same entity; the id stays.
    pub fn compact(self, entity: &Entity) -> Entity {
        let target = self.canonical(entity);
        let mut paths = Vec::new();
        member_paths(entity, &mut Vec::new(), &mut paths);
        let mut out = entity.clone();
        for path in paths.iter().filter(|p| p.as_slice() != ["id"]) {
            let mut candidate = out.clone();
            if remove_path(&mut candidate, path) && self.canonical(&candidate) == target {
                out = candidate;
            }
        }
        out
    }

    /// The sets of fields whose values name at most one entity, for
    /// matching an entity written without an id: `name`, `username`, a
    /// target within its upstream, a plugin's name and scope.
    pub fn unique_keys(self) -> Vec<(&'static [&'static str], bool)> {
        match self {
            Kind::Entity(e) => e
                .unique_keys
                .iter()
                .map(|k| (k.fields.as_slice(), k.nulls_count))
                .collect(),
            Kind::Hooks => Vec::new(),
        }
    }
}

fn normalize_entity(e: &EntitySchema, mut obj: Entity) -> Option<Entity> {
    if let Some(shorthands) = e.shorthands {
        shorthands(&mut obj).ok()?;
    }
    let mut out = e
        .schema
        .validate(&Value::Object(obj), Input::default())
        .ok()?;
    if let Some(normalize) = e.normalize {
        normalize(&mut out);
    }
    Some(out)
}

fn normalize_hook(mut obj: Entity) -> Option<Entity> {
    // The typed hook needs an id and a creation time; neither is compared.
    obj.entry("id")
        .or_insert_with(|| Value::from(uuid::Uuid::nil().to_string()));
    obj.insert("created_at".into(), Value::from(0));
    let handler = obj
        .get("handler")
        .and_then(Value::as_str)
        .map(str::to_string);
    let out = hook::schema(handler.as_deref())
        .validate(&Value::Object(obj), Input::default())
        .ok()?;
    // Through the typed hook, as the server stores it.
    let typed: EventHook = serde_json::from_value(Value::Object(out)).ok()?;
    match typed.to_json() {
        Value::Object(o) => Some(o),
        _ => None,
    }
}

/// Paths of every member of an object, members of nested objects before
/// the object itself; lists are not entered (an item is not a default).
fn member_paths(obj: &Entity, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    for (key, value) in obj {
        prefix.push(key.clone());
        if let Value::Object(inner) = value {
            member_paths(inner, prefix, out);
        }
        out.push(prefix.clone());
        prefix.pop();
    }
}

/// Removes the member at `path`; false when there is none.
fn remove_path(obj: &mut Entity, path: &[String]) -> bool {
    match path {
        [] => false,
        [last] => obj.remove(last).is_some(),
        [first, rest @ ..] => match obj.get_mut(first) {
            Some(Value::Object(inner)) => remove_path(inner, rest),
            _ => false,
        },
    }
}

/// Removes the members the server sets on every write.
pub fn without_server_set(entity: &mut Entity) {
    for key in SERVER_SET {
        entity.remove(*key);
    }
}

/// A short name for messages: the entity's name, username or target.
pub fn label(entity: &Entity) -> String {
    ["name", "username", "target", "instance_name", "custom_id"]
        .iter()
        .find_map(|k| entity.get(*k).and_then(Value::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| match (entity.get("source"), entity.get("handler")) {
            (Some(Value::String(source)), Some(Value::String(handler))) => {
                let event = entity.get("event").and_then(Value::as_str).unwrap_or("*");
                format!("{source} {event} -> {handler}")
            }
            _ => String::new(),
        })
}

/// A guest in a document: its name and the file with its bytes, relative
/// to the document's directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestFile {
    /// The name hooks call it by.
    pub name: String,
    /// The `.wasm` file.
    pub file: PathBuf,
}

/// A declarative document. A section left out of the file is `None`,
/// which `apply --prune` tells apart from an empty one.
#[derive(Debug, Default)]
pub struct Document {
    /// Entities by section name.
    pub entities: BTreeMap<&'static str, Vec<Entity>>,
    /// Guests.
    pub guests: Option<Vec<GuestFile>>,
}

impl Document {
    /// Reads a document from parsed JSON or YAML, refusing anything it
    /// would not apply: unknown sections, entities that are not mappings,
    /// ids that are not strings.
    pub fn from_value(value: Value) -> anyhow::Result<Document> {
        let Value::Object(top) = value else {
            bail!("the document must be a mapping of sections (services, event_hooks, ...)");
        };
        let sections = sections();
        let mut doc = Document::default();
        for (key, value) in top {
            if key == FORMAT_KEY {
                let version = match &value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if version != FORMAT_VERSION {
                    bail!(
                        "{FORMAT_KEY} {version} is not supported; this hookd reads {FORMAT_VERSION}"
                    );
                }
                continue;
            }
            let Some(section) = sections.iter().find(|s| s.name() == key) else {
                let known: Vec<&str> = sections.iter().map(|s| s.name()).collect();
                bail!(
                    "unknown section `{key}`; the sections are {}",
                    known.join(", ")
                );
            };
            // `services:` with nothing under it is an empty section.
            let items = match value {
                Value::Null => Vec::new(),
                Value::Array(items) => items,
                _ => bail!("`{key}` must be a list"),
            };
            match section {
                Section::Guests => {
                    let guests = items
                        .into_iter()
                        .enumerate()
                        .map(|(i, g)| {
                            serde_json::from_value(g).with_context(|| {
                                format!("{GUESTS}[{i}]: expected `name` and `file`")
                            })
                        })
                        .collect::<anyhow::Result<Vec<GuestFile>>>()?;
                    doc.guests = Some(guests);
                }
                Section::Kind(kind) => {
                    let mut entities = Vec::with_capacity(items.len());
                    for (i, item) in items.into_iter().enumerate() {
                        let Value::Object(mut entity) = item else {
                            bail!("{key}[{i}]: expected a mapping");
                        };
                        // A UUID, in the form the server answers with, so
                        // that it is found by plain comparison; anything
                        // else in a PUT path would be taken for a name.
                        if let Some(id) = entity.get_mut("id") {
                            let parsed = id.as_str().and_then(|s| uuid::Uuid::try_parse(s).ok());
                            let Some(uuid) = parsed else {
                                bail!("{key}[{i}]: `id` must be a UUID, not {id}");
                            };
                            *id = Value::from(uuid.to_string());
                        }
                        entities.push(entity);
                    }
                    doc.entities.insert(kind.name(), entities);
                }
            }
        }
        Ok(doc)
    }

    /// The document as YAML, sections in the order they are applied, with
    /// a first line saying what it is.
    pub fn to_yaml(&self) -> anyhow::Result<String> {
        let mut top = serde_norway::Mapping::new();
        top.insert(FORMAT_KEY.into(), FORMAT_VERSION.into());
        for section in sections() {
            let value = match section {
                Section::Guests => self.guests.as_ref().map(serde_norway::to_value),
                Section::Kind(kind) => self.entities.get(kind.name()).map(serde_norway::to_value),
            };
            if let Some(value) = value {
                top.insert(section.name().into(), value?);
            }
        }
        let body = serde_norway::to_string(&top)?;
        Ok(format!(
            "# hookd declarative configuration; `hookd apply -f FILE` applies it.\n{body}"
        ))
    }

    /// The document as JSON.
    pub fn to_json(&self) -> Value {
        let mut top = Map::new();
        top.insert(FORMAT_KEY.into(), FORMAT_VERSION.into());
        for (name, entities) in &self.entities {
            let list = entities.iter().cloned().map(Value::Object).collect();
            top.insert((*name).into(), Value::Array(list));
        }
        if let Some(guests) = &self.guests {
            top.insert(
                GUESTS.into(),
                serde_json::to_value(guests).unwrap_or_default(),
            );
        }
        Value::Object(top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> Vec<&'static str> {
        sections().into_iter().map(Section::name).collect()
    }

    #[test]
    fn sections_come_in_dependency_order() {
        assert_eq!(
            names(),
            [
                "certificates",
                "services",
                "routes",
                "consumers",
                "consumer_groups",
                "upstreams",
                "targets",
                "plugins",
                "admins",
                "guests",
                "event_hooks"
            ]
        );
    }

    fn kind(name: &str) -> Kind {
        match sections().into_iter().find(|s| s.name() == name) {
            Some(Section::Kind(k)) => k,
            _ => panic!("no kind {name}"),
        }
    }

    #[test]
    fn targets_live_under_their_upstream() {
        let target = json!({"upstream": {"id": "u1"}, "target": "a:1"});
        let target = target.as_object().unwrap();
        assert_eq!(
            kind("targets").member_path(target, "t1").unwrap(),
            "/upstreams/u1/targets/t1"
        );
        assert!(kind("targets").member_path(&Map::new(), "t1").is_err());
        assert_eq!(
            kind("services").member_path(&Map::new(), "s1").unwrap(),
            "/services/s1"
        );
        assert_eq!(
            Kind::Hooks.member_path(&Map::new(), "h1").unwrap(),
            "/event-hooks/h1"
        );
    }

    #[test]
    fn the_canonical_form_is_what_the_server_stores() {
        let written = json!({"name": "s", "url": "https://example.com/api", "created_at": 5});
        let canonical = kind("services").canonical(written.as_object().unwrap());
        assert_eq!(canonical["host"], "example.com");
        assert_eq!(canonical["port"], 443);
        assert_eq!(canonical["retries"], 5);
        assert_eq!(canonical["tls_verify"], Value::Null);
        assert!(!canonical.contains_key("created_at") && !canonical.contains_key("id"));

        let target = json!({"upstream": {"id": uuid::Uuid::nil()}, "target": "10.0.0.1"});
        let canonical = kind("targets").canonical(target.as_object().unwrap());
        assert_eq!(canonical["target"], "10.0.0.1:8000");

        let hook = json!({"id": "not-a-uuid-yet-fine", "source": "crud", "handler": "webhook",
                          "config": {"url": "http://x/"}});
        // Refused by the model: compared as written, minus the id.
        let canonical = Kind::Hooks.canonical(hook.as_object().unwrap());
        assert!(!canonical.contains_key("id"));
        assert_eq!(canonical["config"], json!({"url": "http://x/"}));

        let hook = json!({"source": "crud", "handler": "webhook", "config": {"url": "http://x/"}});
        let canonical = Kind::Hooks.canonical(hook.as_object().unwrap());
        assert_eq!(
            Value::Object(canonical),
            json!({"source": "crud", "event": null, "handler": "webhook", "on_change": null,
                   "snooze": null, "condition": null, "enabled": true, "concurrency": null,
                   "rate_limit": null, "config": {"url": "http://x/", "headers": {},
                   "secret": null, "previous_secret": null, "ssl_verify": false}})
        );
    }

    const S: &str = "6e2a3c1d-1111-4a4a-8b8b-000000000001";

    #[test]
    fn compact_entities_leave_out_what_the_server_fills_in() {
        let stored = json!({"id": S, "name": "a", "host": "a.internal", "port": 8080,
            "protocol": "http", "retries": 5, "path": null, "tags": null,
            "connect_timeout": 60000, "write_timeout": 60000, "read_timeout": 60000,
            "client_certificate": null, "tls_verify": null, "tls_verify_depth": null,
            "ca_certificates": null, "enabled": true});
        let services = kind("services");
        let compact = services.compact(stored.as_object().unwrap());
        assert_eq!(
            Value::Object(compact.clone()),
            json!({"id": S, "name": "a", "host": "a.internal", "port": 8080})
        );
        assert_eq!(
            services.canonical(&compact),
            services.canonical(stored.as_object().unwrap())
        );

        // Nested records lose their defaults, and go when nothing is left.
        let upstreams = kind("upstreams");
        let full = upstreams.canonical(json!({"name": "u"}).as_object().unwrap());
        let mut changed = full.clone();
        changed["healthchecks"]["active"]["healthy"]["interval"] = json!(5);
        assert_eq!(
            Value::Object(upstreams.compact(&full)),
            json!({"name": "u"})
        );
        assert_eq!(
            Value::Object(upstreams.compact(&changed)),
            json!({"name": "u", "healthchecks": {"active": {"healthy": {"interval": 5}}}})
        );

        // An explicit null where a default exists is not a default.
        let with_null = json!({"name": "u", "slots": null});
        assert_eq!(
            Value::Object(upstreams.compact(with_null.as_object().unwrap())),
            with_null
        );

        let hook = json!({"id": S, "source": "crud", "event": null, "handler": "webhook",
            "on_change": null, "snooze": null, "condition": null, "enabled": true,
            "concurrency": null, "rate_limit": null,
            "config": {"url": "http://x/", "headers": {}, "secret": null,
                       "previous_secret": null, "ssl_verify": false}});
        assert_eq!(
            Value::Object(Kind::Hooks.compact(hook.as_object().unwrap())),
            json!({"id": S, "source": "crud", "handler": "webhook", "config": {"url": "http://x/"}})
        );
        // hookd's condition is no default: kept, and compared.
        let mut filtered = hook.clone();
        filtered["condition"] = json!("operation == 'create'");
        let compact = Kind::Hooks.compact(filtered.as_object().unwrap());
        assert_eq!(compact["condition"], "operation == 'create'");
        assert_ne!(
            Kind::Hooks.canonical(&compact),
            Kind::Hooks.canonical(hook.as_object().unwrap())
        );
        let mut rotated = hook.clone();
        let previous = json!({"secret": "a", "expires_at": 9});
        rotated["config"]["previous_secret"] = previous.clone();
        assert_eq!(
            Kind::Hooks.compact(rotated.as_object().unwrap())["config"],
            json!({"url": "http://x/", "previous_secret": previous})
        );
    }

    #[test]
    fn a_previous_secret_left_out_is_the_servers_to_keep() {
        let written = json!({"source": "crud", "handler": "webhook",
                             "config": {"url": "http://x/", "secret": "b"}});
        let written = written.as_object().unwrap();
        let canonical = Kind::Hooks.canonical(written);
        let mut existing = canonical.clone();
        existing["config"]["previous_secret"] = json!({"secret": "a", "expires_at": 9});
        assert!(Kind::Hooks.unchanged(written, &canonical, &existing));
        // Written, it is compared; so is the secret.
        let mut given = written.clone();
        given["config"]["previous_secret"] = Value::Null;
        let given_canonical = Kind::Hooks.canonical(&given);
        assert!(!Kind::Hooks.unchanged(&given, &given_canonical, &existing));
        existing["config"]["secret"] = json!("a");
        assert!(!Kind::Hooks.unchanged(written, &canonical, &existing));
    }

    #[test]
    fn documents_refuse_what_they_would_not_apply() {
        let err = |v: Value| Document::from_value(v).unwrap_err().to_string();
        assert!(err(json!([])).contains("mapping of sections"));
        assert!(err(json!({"servces": []})).contains("unknown section `servces`"));
        assert!(err(json!({"services": {}})).contains("must be a list"));
        assert!(err(json!({"services": [1]})).contains("services[0]: expected a mapping"));
        assert!(err(json!({"services": [{"id": 1}]})).contains("`id` must be a UUID, not 1"));
        assert!(err(json!({"services": [{"id": "billing"}]})).contains("not \"billing\""));
        assert!(err(json!({"guests": [{"name": "g"}]})).contains("guests[0]"));
        assert!(err(json!({"_format_version": "9"})).contains("not supported"));
        let doc = Document::from_value(json!({"_format_version": 1, "services": null,
            "guests": [{"name": "g", "file": "g.wasm"}]}))
        .unwrap();
        assert_eq!(doc.entities["services"], Vec::<Entity>::new());
        assert!(!doc.entities.contains_key("routes"));
        assert_eq!(doc.guests.unwrap()[0].file, PathBuf::from("g.wasm"));
        let upper = Document::from_value(json!({"services": [{"id": S.to_uppercase()}]})).unwrap();
        assert_eq!(upper.entities["services"][0]["id"], S);
    }

    #[test]
    fn yaml_keeps_the_section_order_and_reads_back() {
        let doc = Document::from_value(json!({
            "event_hooks": [{"id": S, "source": "crud", "handler": "log", "config": {}}],
            "services": [{"id": S, "host": "a", "path": null}],
            "guests": [{"name": "g", "file": "guests/g.wasm"}],
        }))
        .unwrap();
        let yaml = doc.to_yaml().unwrap();
        let services = yaml.find("services:").unwrap();
        let guests = yaml.find("guests:").unwrap();
        let hooks = yaml.find("event_hooks:").unwrap();
        assert!(services < guests && guests < hooks, "{yaml}");
        let back: Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(back["services"][0]["path"], Value::Null);
        assert_eq!(back["_format_version"], "1");
        assert_eq!(Document::from_value(back).unwrap().to_json(), doc.to_json());
    }
}
