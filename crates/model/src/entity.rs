//! The gateway entities whose writes make the crud source, described as
//! data so that one engine (store and Admin API) serves all of them.

use crate::example;
use crate::host_port::split_host_port;
use crate::schema::{Check, EntityCheck, Field, Input, Kind, Schema};
use crate::violation::{PathSeg, Violations};
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// What deleting a referenced entity does to the entities referring to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    /// The delete is refused while references exist.
    Restrict,
    /// The referring entities are deleted too.
    Cascade,
}

/// A field of an entity that refers to another entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The referring field, e.g. `service` on routes.
    pub field: &'static str,
    /// The entity referred to, e.g. `services`.
    pub entity: &'static str,
    /// What a delete of the referred entity does.
    pub on_delete: OnDelete,
    /// Whether the child is listed under its parent,
    /// e.g. `/services/{id}/routes`.
    pub nested: bool,
}

/// A set of fields whose values no two entities may share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueKey {
    /// The fields, in order.
    pub fields: Vec<&'static str>,
    /// Whether null values take part (a plugin's scope: service, route,
    /// consumer, null meaning global), or make the key not apply (a unique
    /// name left unset).
    pub nulls_count: bool,
}

/// Rewrites shorthand input members into the fields they stand for.
pub type Shorthands = fn(&mut Map<String, Value>) -> Result<(), Violations>;

/// Everything the engine needs to serve one entity.
#[derive(Debug, Clone)]
pub struct EntitySchema {
    /// Plural name, as in the Admin API path and the crud event.
    pub name: &'static str,
    /// The unique field that may stand for the id in a path
    /// (`/consumers/{username_or_id}`).
    pub endpoint_key: Option<&'static str>,
    /// The fields and their checks.
    pub schema: Schema,
    /// References to other entities.
    pub foreign_keys: Vec<ForeignKey>,
    /// Unique constraints (single fields and composite keys).
    pub unique_keys: Vec<UniqueKey>,
    /// Rewrites a validated entity into its stored form (a target's default port).
    pub normalize: Option<fn(&mut Map<String, Value>)>,
    /// Shorthand input fields rewritten before validation (`url` on services).
    pub shorthands: Option<Shorthands>,
}

impl EntitySchema {
    fn new(name: &'static str, endpoint_key: Option<&'static str>, schema: Schema) -> Self {
        let mut unique_keys = Vec::new();
        let mut foreign_keys = Vec::new();
        for f in &schema.fields {
            if f.unique {
                unique_keys.push(UniqueKey {
                    fields: vec![f.name],
                    nulls_count: false,
                });
            }
            if let Kind::Foreign(entity) = f.kind {
                foreign_keys.push(ForeignKey {
                    field: f.name,
                    entity,
                    on_delete: OnDelete::Restrict,
                    nested: false,
                });
            }
        }
        EntitySchema {
            name,
            endpoint_key,
            schema,
            foreign_keys,
            unique_keys,
            normalize: None,
            shorthands: None,
        }
    }

    fn foreign(mut self, field: &str, on_delete: OnDelete, nested: bool) -> Self {
        for fk in &mut self.foreign_keys {
            if fk.field == field {
                fk.on_delete = on_delete;
                fk.nested = nested;
            }
        }
        self
    }

    fn unique_together(mut self, fields: &[&'static str]) -> Self {
        self.unique_keys.push(UniqueKey {
            fields: fields.to_vec(),
            nulls_count: true,
        });
        self
    }

    /// Validates a complete entity into its stored form, as every write
    /// does: shorthands rewritten, the schema's checks and defaults,
    /// then normalised.
    pub fn validate(
        &self,
        mut input: Map<String, Value>,
        how: Input,
    ) -> Result<Map<String, Value>, Violations> {
        if let Some(shorthands) = self.shorthands {
            shorthands(&mut input)?;
        }
        let mut out = self.schema.validate(&Value::Object(input), how)?;
        if let Some(normalize) = self.normalize {
            normalize(&mut out);
        }
        Ok(out)
    }

    /// The foreign key of this entity that refers to `parent`, when the
    /// entity is listed under it.
    pub fn nested_under(&self, parent: &str) -> Option<&ForeignKey> {
        self.foreign_keys
            .iter()
            .find(|fk| fk.nested && fk.entity == parent)
    }
}

/// Names of everything whose writes cause crud events: the gateway
/// entities and event hooks themselves, as in Kong.
pub fn crud_entities() -> impl Iterator<Item = &'static str> {
    all().iter().map(|e| e.name).chain([crate::hook::ENTITY])
}

/// All gateway entities, in the order their endpoints are documented.
pub fn all() -> &'static [EntitySchema] {
    static ALL: LazyLock<Vec<EntitySchema>> = LazyLock::new(|| {
        vec![
            services(),
            routes(),
            consumers(),
            consumer_groups(),
            upstreams(),
            targets(),
            plugins(),
            certificates(),
            admins(),
        ]
    });
    &ALL
}

/// The entity of that name.
pub fn by_name(name: &str) -> Option<&'static EntitySchema> {
    all().iter().find(|e| e.name == name)
}

const PROTOCOLS: &[&str] = &[
    "grpc",
    "grpcs",
    "http",
    "https",
    "tcp",
    "tls",
    "tls_passthrough",
    "udp",
    "ws",
    "wss",
];

/// An entity's schema: the fields every entity has (its id and
/// timestamps), then its own.
fn entity_schema(own: impl IntoIterator<Item = Field>) -> Schema {
    let mut fields = vec![
        Field::new("id", Kind::Uuid),
        Field::new("created_at", Kind::Integer).example(json!(example::TIME_S)),
        Field::new("updated_at", Kind::Integer).example(json!(example::TIME_S)),
    ];
    fields.extend(own);
    Schema::new(fields)
}

/// The unique `name` a named entity is also found by
/// (`/services/{name_or_id}`), its characters checked by `check`.
fn unique_name(check: fn(&Value) -> Result<(), String>) -> Field {
    Field::new("name", Kind::String)
        .unique()
        .check(Check::Custom(check))
}

fn tags() -> Field {
    Field::new("tags", Kind::Set(Box::new(Field::element(Kind::String))))
}

fn strings(name: &'static str) -> Field {
    Field::new(name, Kind::Array(Box::new(Field::element(Kind::String))))
}

fn string_set(name: &'static str) -> Field {
    Field::new(name, Kind::Set(Box::new(Field::element(Kind::String))))
}

/// A string element that `check` checks, shown as `example` in examples.
fn checked_string(check: fn(&Value) -> Result<(), String>, example: &str) -> Field {
    Field::element(Kind::String)
        .check(Check::Custom(check))
        .example(json!(example))
}

fn port(name: &'static str) -> Field {
    Field::new(name, Kind::Integer).check(Check::Between(0.0, 65535.0))
}

fn timeout(name: &'static str) -> Field {
    Field::new(name, Kind::Integer)
        .default(json!(60000))
        .check(Check::Between(1.0, 2147483646.0))
}

fn name_check(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    if s.is_empty() {
        return Err("length must be at least 1".into());
    }
    s.chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '~'))
        .then_some(())
        .ok_or_else(|| {
            format!(
                "invalid value '{s}': the only accepted ascii characters are alphanumerics or ., -, _, and ~"
            )
        })
}

fn host_check(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']' | '*')
        });
    ok.then_some(())
        .ok_or_else(|| format!("invalid hostname: {s}"))
}

fn services() -> EntitySchema {
    let schema = entity_schema([
        unique_name(name_check),
        Field::new("retries", Kind::Integer)
            .default(json!(5))
            .check(Check::Between(0.0, 32767.0)),
        Field::new("protocol", Kind::String)
            .required()
            .default(json!("http"))
            .check(Check::OneOf(PROTOCOLS)),
        Field::new("host", Kind::String)
            .required()
            .check(Check::Custom(host_check)),
        port("port").required().default(json!(80)),
        Field::new("path", Kind::String).check(Check::StartsWith("/")),
        timeout("connect_timeout"),
        timeout("write_timeout"),
        timeout("read_timeout"),
        tags(),
        Field::new("client_certificate", Kind::Foreign("certificates")),
        Field::new("tls_verify", Kind::Boolean),
        Field::new("tls_verify_depth", Kind::Integer).check(Check::Between(0.0, 64.0)),
        Field::new(
            "ca_certificates",
            Kind::Array(Box::new(Field::element(Kind::Uuid))),
        ),
        Field::new("enabled", Kind::Boolean).default(json!(true)),
    ]);
    let mut e = EntitySchema::new("services", Some("name"), schema);
    e.shorthands = Some(service_url_shorthand);
    e
}

/// Kong accepts `url` on a service and splits it into protocol, host, port and path.
fn service_url_shorthand(obj: &mut Map<String, Value>) -> Result<(), Violations> {
    let Some(url) = obj.remove("url") else {
        return Ok(());
    };
    let Some(url) = url.as_str() else {
        return Err(Violations::field("url", "expected a string"));
    };
    let parsed =
        url::Url::parse(url).map_err(|e| Violations::field("url", format!("invalid url: {e}")))?;
    let Some(host) = parsed.host_str() else {
        return Err(Violations::field("url", "invalid url: missing host"));
    };
    obj.insert("protocol".into(), Value::from(parsed.scheme()));
    obj.insert(
        "host".into(),
        Value::from(host.trim_start_matches('[').trim_end_matches(']')),
    );
    let default_port = if parsed.scheme() == "https" { 443 } else { 80 };
    obj.insert(
        "port".into(),
        Value::from(parsed.port().unwrap_or(default_port)),
    );
    // The url crate always reports a path; Kong keeps none when the url has none.
    let written_path = url.splitn(4, '/').nth(3).is_some();
    let path = if written_path {
        Value::from(parsed.path())
    } else {
        Value::Null
    };
    obj.insert("path".into(), path);
    Ok(())
}

fn routes() -> EntitySchema {
    let schema = entity_schema([
        unique_name(name_check),
        Field::new(
            "protocols",
            Kind::Set(Box::new(
                Field::element(Kind::String).check(Check::OneOf(PROTOCOLS)),
            )),
        )
        .required()
        .default(json!(["http", "https"]))
        .check(Check::LenMin(1)),
        Field::new(
            "methods",
            Kind::Set(Box::new(checked_string(method_check, "GET"))),
        ),
        strings("hosts"),
        Field::new(
            "paths",
            Kind::Array(Box::new(checked_string(route_path_check, "/example"))),
        ),
        Field::new(
            "headers",
            Kind::Map(Box::new(Field::element(Kind::Array(Box::new(
                Field::element(Kind::String),
            ))))),
        ),
        Field::new("https_redirect_status_code", Kind::Integer)
            .default(json!(426))
            .check(Check::OneOfInt(&[426, 301, 302, 307, 308])),
        Field::new("regex_priority", Kind::Integer).default(json!(0)),
        Field::new("strip_path", Kind::Boolean).default(json!(true)),
        Field::new("path_handling", Kind::String)
            .default(json!("v0"))
            .check(Check::OneOf(&["v0", "v1"])),
        Field::new("preserve_host", Kind::Boolean).default(json!(false)),
        Field::new("request_buffering", Kind::Boolean).default(json!(true)),
        Field::new("response_buffering", Kind::Boolean).default(json!(true)),
        string_set("snis"),
        Field::new("sources", endpoint_list()),
        Field::new("destinations", endpoint_list()),
        tags(),
        Field::new("service", Kind::Foreign("services")),
    ])
    .entity_check(EntityCheck::Custom(route_matches_something));
    EntitySchema::new("routes", Some("name"), schema).foreign("service", OnDelete::Restrict, true)
}

fn endpoint_list() -> Kind {
    Kind::Set(Box::new(Field::element(Kind::Record(vec![
        Field::new("ip", Kind::String),
        port("port"),
    ]))))
}

fn method_check(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    (!s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase()))
        .then_some(())
        .ok_or_else(|| format!("invalid value '{s}': expected an uppercase HTTP method"))
}

fn route_path_check(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    (s.starts_with('/') || s.starts_with("~/"))
        .then_some(())
        .ok_or_else(|| "should start with: / (fixed path) or ~/ (regex path)".into())
}

/// Kong refuses an http(s) route that matches nothing.
fn route_matches_something(route: &Map<String, Value>) -> Result<(), Violations> {
    let protocols: Vec<&str> = route["protocols"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let http = protocols.iter().any(|p| matches!(*p, "http" | "https"));
    if !http {
        return Ok(());
    }
    let mut keys = vec!["methods", "hosts", "headers", "paths"];
    if protocols.contains(&"https") {
        keys.push("snis");
    }
    if keys
        .iter()
        .any(|k| route.get(*k).is_some_and(crate::schema::is_set))
    {
        return Ok(());
    }
    let list: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
    Err(Violations::entity(format!(
        "must set one of {} when 'protocols' is '{}'",
        list.join(", "),
        protocols.join("', '")
    )))
}

fn consumers() -> EntitySchema {
    let schema = entity_schema([
        Field::new("username", Kind::String).unique(),
        Field::new("custom_id", Kind::String).unique(),
        tags(),
    ])
    .entity_check(EntityCheck::AtLeastOneOf(&["custom_id", "username"]));
    EntitySchema::new("consumers", Some("username"), schema)
}

fn consumer_groups() -> EntitySchema {
    let schema = entity_schema([unique_name(name_check).required(), tags()]);
    EntitySchema::new("consumer_groups", Some("name"), schema)
}

fn statuses(name: &'static str, default: Value) -> Field {
    Field::new(
        name,
        Kind::Array(Box::new(
            Field::element(Kind::Integer).check(Check::Between(100.0, 999.0)),
        )),
    )
    .default(default)
}

fn counter(name: &'static str, max: f64) -> Field {
    Field::new(name, Kind::Integer)
        .default(json!(0))
        .check(Check::Between(0.0, max))
}

fn interval() -> Field {
    Field::new("interval", Kind::Number)
        .default(json!(0))
        .check(Check::Between(0.0, 65535.0))
}

/// Kong's `healthchecks` record, with Kong's defaults.
fn healthchecks() -> Field {
    let active = Kind::Record(vec![
        Field::new("type", Kind::String)
            .default(json!("http"))
            .check(Check::OneOf(&["tcp", "http", "https", "grpc", "grpcs"])),
        Field::new("timeout", Kind::Number)
            .default(json!(1))
            .check(Check::Between(0.0, 65535.0)),
        Field::new("concurrency", Kind::Integer)
            .default(json!(10))
            .check(Check::Between(1.0, 2147483648.0)),
        Field::new("http_path", Kind::String)
            .default(json!("/"))
            .check(Check::StartsWith("/")),
        Field::new("https_sni", Kind::String),
        Field::new("https_verify_certificate", Kind::Boolean).default(json!(true)),
        Field::new(
            "headers",
            Kind::Map(Box::new(Field::element(Kind::Array(Box::new(
                Field::element(Kind::String),
            ))))),
        ),
        Field::new(
            "healthy",
            Kind::Record(vec![
                interval(),
                statuses("http_statuses", json!([200, 302])),
                counter("successes", 255.0),
            ]),
        ),
        Field::new(
            "unhealthy",
            Kind::Record(vec![
                interval(),
                statuses(
                    "http_statuses",
                    json!([429, 404, 500, 501, 502, 503, 504, 505]),
                ),
                counter("tcp_failures", 255.0),
                counter("timeouts", 255.0),
                counter("http_failures", 255.0),
            ]),
        ),
    ]);
    let passive = Kind::Record(vec![
        Field::new("type", Kind::String)
            .default(json!("http"))
            .check(Check::OneOf(&["tcp", "http", "https", "grpc", "grpcs"])),
        Field::new(
            "healthy",
            Kind::Record(vec![
                statuses(
                    "http_statuses",
                    json!([
                        200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304,
                        305, 306, 307, 308
                    ]),
                ),
                counter("successes", 255.0),
            ]),
        ),
        Field::new(
            "unhealthy",
            Kind::Record(vec![
                statuses("http_statuses", json!([429, 500, 503])),
                counter("tcp_failures", 255.0),
                counter("timeouts", 255.0),
                counter("http_failures", 255.0),
            ]),
        ),
    ]);
    Field::new(
        "healthchecks",
        Kind::Record(vec![
            Field::new("active", active),
            Field::new("passive", passive),
            Field::new("threshold", Kind::Number)
                .default(json!(0))
                .check(Check::Between(0.0, 100.0)),
        ]),
    )
}

const HASH_ON: &[&str] = &[
    "none",
    "consumer",
    "ip",
    "header",
    "cookie",
    "path",
    "query_arg",
    "uri_capture",
];

fn upstreams() -> EntitySchema {
    let schema = entity_schema([
        unique_name(host_check).required(),
        Field::new("algorithm", Kind::String)
            .default(json!("round-robin"))
            .check(Check::OneOf(&[
                "consistent-hashing",
                "least-connections",
                "round-robin",
                "latency",
                "sticky-sessions",
            ])),
        Field::new("hash_on", Kind::String)
            .default(json!("none"))
            .check(Check::OneOf(HASH_ON)),
        Field::new("hash_fallback", Kind::String)
            .default(json!("none"))
            .check(Check::OneOf(HASH_ON)),
        Field::new("hash_on_header", Kind::String),
        Field::new("hash_fallback_header", Kind::String),
        Field::new("hash_on_cookie", Kind::String),
        Field::new("hash_on_cookie_path", Kind::String)
            .default(json!("/"))
            .check(Check::StartsWith("/")),
        Field::new("slots", Kind::Integer)
            .default(json!(10000))
            .check(Check::Between(10.0, 65536.0)),
        healthchecks(),
        tags(),
        Field::new("host_header", Kind::String).check(Check::Custom(host_check)),
        Field::new("client_certificate", Kind::Foreign("certificates")),
        Field::new("use_srv_name", Kind::Boolean).default(json!(false)),
    ]);
    EntitySchema::new("upstreams", Some("name"), schema)
}

fn targets() -> EntitySchema {
    let schema = entity_schema([
        Field::new("upstream", Kind::Foreign("upstreams")).required(),
        Field::new("target", Kind::String)
            .required()
            .check(Check::Custom(target_check)),
        Field::new("weight", Kind::Integer)
            .default(json!(100))
            .check(Check::Between(0.0, 65535.0)),
        tags(),
    ]);
    let mut e = EntitySchema::new("targets", Some("target"), schema)
        .foreign("upstream", OnDelete::Cascade, true)
        .unique_together(&["upstream", "target"]);
    e.normalize = Some(target_default_port);
    e
}

fn target_check(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    let invalid_host = || format!("Invalid target ('{s}'); not a valid hostname or ip address");
    let (host, port) = split_host_port(s).map_err(|_| invalid_host())?;
    if host.is_empty() || host_check(&Value::from(host)).is_err() {
        return Err(invalid_host());
    }
    match port {
        None => Ok(()),
        Some(p) if p.parse::<u16>().is_ok() => Ok(()),
        Some(_) => Err(format!("Invalid target ('{s}'); not a valid port")),
    }
}

/// Kong gives a target without a port the port 8000.
fn target_default_port(obj: &mut Map<String, Value>) {
    if let Some(Value::String(t)) = obj.get_mut("target") {
        // A target that does not split was refused by `target_check`.
        if let Ok((host, None)) = split_host_port(t) {
            *t = if host.contains(':') {
                format!("[{host}]:8000")
            } else {
                format!("{host}:8000")
            };
        }
    }
}

fn plugins() -> EntitySchema {
    let schema = entity_schema([
        Field::new("name", Kind::String).required(),
        Field::new("instance_name", Kind::String)
            .unique()
            .check(Check::Custom(name_check)),
        Field::new("route", Kind::Foreign("routes")),
        Field::new("service", Kind::Foreign("services")),
        Field::new("consumer", Kind::Foreign("consumers")),
        Field::new("consumer_group", Kind::Foreign("consumer_groups")),
        Field::new("config", Kind::Object).default(json!({})),
        Field::new(
            "protocols",
            Kind::Set(Box::new(
                Field::element(Kind::String).check(Check::OneOf(PROTOCOLS)),
            )),
        )
        .default(json!(["grpc", "grpcs", "http", "https"])),
        Field::new("enabled", Kind::Boolean).default(json!(true)),
        tags(),
    ]);
    EntitySchema::new("plugins", None, schema)
        .foreign("route", OnDelete::Cascade, true)
        .foreign("service", OnDelete::Cascade, true)
        .foreign("consumer", OnDelete::Cascade, true)
        .foreign("consumer_group", OnDelete::Cascade, true)
        .unique_together(&["name", "route", "service", "consumer", "consumer_group"])
}

/// A PEM block of this label (`CERTIFICATE`, `... PRIVATE KEY`) is present.
fn has_pem_block(v: &Value, label: &str) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.split("-----BEGIN ").skip(1).any(|block| {
        block
            .split("-----")
            .next()
            .is_some_and(|l| l.ends_with(label))
    }) && s.contains("-----END ")
}

fn cert_check(v: &Value) -> Result<(), String> {
    has_pem_block(v, "CERTIFICATE")
        .then_some(())
        .ok_or_else(|| "invalid certificate: expected a PEM-encoded certificate".into())
}

fn key_check(v: &Value) -> Result<(), String> {
    has_pem_block(v, "PRIVATE KEY")
        .then_some(())
        .ok_or_else(|| "invalid key: expected a PEM-encoded private key".into())
}

/// Placeholders with the PEM framing the checks look for, for examples:
/// not a usable certificate or key.
const EXAMPLE_CERT: &str = "-----BEGIN CERTIFICATE-----\nexample\n-----END CERTIFICATE-----\n";
const EXAMPLE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nexample\n-----END PRIVATE KEY-----\n";

fn certificates() -> EntitySchema {
    let schema = entity_schema([
        Field::new("cert", Kind::String)
            .required()
            .check(Check::Custom(cert_check))
            .example(json!(EXAMPLE_CERT)),
        Field::new("key", Kind::String)
            .required()
            .check(Check::Custom(key_check))
            .example(json!(EXAMPLE_KEY)),
        Field::new("cert_alt", Kind::String)
            .check(Check::Custom(cert_check))
            .example(json!(EXAMPLE_CERT)),
        Field::new("key_alt", Kind::String)
            .check(Check::Custom(key_check))
            .example(json!(EXAMPLE_KEY)),
        string_set("snis"),
        tags(),
    ])
    .entity_check(EntityCheck::Custom(alt_pair));
    EntitySchema::new("certificates", None, schema)
}

fn alt_pair(cert: &Map<String, Value>) -> Result<(), Violations> {
    let has_cert = !cert["cert_alt"].is_null();
    let has_key = !cert["key_alt"].is_null();
    if has_cert == has_key {
        return Ok(());
    }
    let missing = if has_cert { "key_alt" } else { "cert_alt" };
    let mut v = Violations::new();
    v.push(
        vec![PathSeg::Key(missing.to_string())],
        "all or none of these fields must be set: 'cert_alt', 'key_alt'",
    );
    Err(v)
}

/// Roles an admin may hold, from most to least powerful.
pub const ADMIN_ROLES: &[&str] = &["super-admin", "admin", "read-only"];

fn admins() -> EntitySchema {
    let schema = entity_schema([
        Field::new("username", Kind::String).required().unique(),
        Field::new("custom_id", Kind::String).unique(),
        Field::new("email", Kind::String)
            .unique()
            .check(Check::Custom(email_check))
            .example(json!("admin@example.com")),
        Field::new("status", Kind::Integer)
            .default(json!(4))
            .check(Check::Between(0.0, 5.0)),
        Field::new("rbac_token_enabled", Kind::Boolean).default(json!(true)),
        Field::new("role", Kind::String)
            .default(json!("read-only"))
            .check(Check::OneOf(ADMIN_ROLES)),
        tags(),
    ]);
    EntitySchema::new("admins", Some("username"), schema)
}

fn email_check(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    match s.split_once('@') {
        Some((user, domain)) if !user.is_empty() && domain.contains('.') => Ok(()),
        _ => Err(format!("invalid email address {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(entity: &str, input: Value) -> Result<Map<String, Value>, Violations> {
        let obj = input.as_object().unwrap().clone();
        by_name(entity).unwrap().validate(obj, Input::default())
    }

    #[test]
    fn service_url_shorthand_splits_the_url() {
        let s = validate("services", json!({"url": "https://example.com/api"})).unwrap();
        assert_eq!(s["protocol"], "https");
        assert_eq!(s["host"], "example.com");
        assert_eq!(s["port"], 443);
        assert_eq!(s["path"], "/api");
        assert_eq!(s["retries"], 5);
    }

    #[test]
    fn service_needs_a_host() {
        let err = validate("services", json!({"name": "x"})).unwrap_err();
        assert_eq!(err.fields(), json!({"host": "required field missing"}));
    }

    #[test]
    fn route_must_match_something() {
        let err = validate("routes", json!({"name": "r"})).unwrap_err();
        assert_eq!(
            err.message(),
            "schema violation (must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'http', 'https')"
        );
        assert!(validate("routes", json!({"paths": ["/a"]})).is_ok());
    }

    #[test]
    fn consumer_needs_username_or_custom_id() {
        assert!(validate("consumers", json!({})).is_err());
        assert!(validate("consumers", json!({"custom_id": "c"})).is_ok());
    }

    #[test]
    fn upstream_healthchecks_have_kongs_defaults() {
        let u = validate("upstreams", json!({"name": "up"})).unwrap();
        let active = &u["healthchecks"]["active"];
        assert_eq!(active["type"], "http");
        assert_eq!(active["timeout"], 1);
        assert_eq!(active["concurrency"], 10);
        assert_eq!(active["healthy"]["http_statuses"], json!([200, 302]));
        assert_eq!(active["unhealthy"]["tcp_failures"], 0);
        assert_eq!(
            u["healthchecks"]["passive"]["unhealthy"]["http_statuses"],
            json!([429, 500, 503])
        );
    }

    #[test]
    fn target_gets_the_default_port() {
        let id = uuid::Uuid::new_v4().to_string();
        let t = validate(
            "targets",
            json!({"target": "10.0.0.1", "upstream": {"id": id}}),
        )
        .unwrap();
        assert_eq!(t["target"], "10.0.0.1:8000");
        assert!(
            validate(
                "targets",
                json!({"target": "a:99999", "upstream": {"id": id}})
            )
            .is_err()
        );
    }

    #[test]
    fn bracketed_targets_hold_an_ipv6_address() {
        let id = uuid::Uuid::new_v4().to_string();
        let target = |t: &str| validate("targets", json!({"target": t, "upstream": {"id": id}}));
        assert_eq!(target("[::1]:81").unwrap()["target"], "[::1]:81");
        assert_eq!(target("[::1]").unwrap()["target"], "[::1]:8000");
        assert_eq!(target("fe80::1").unwrap()["target"], "[fe80::1]:8000");
        // Once the text after ']' was dropped (saved as `[::1]:8000`), a
        // name in brackets passed as that name and `[::1` was saved as
        // `[[::1]:8000`.
        assert!(target("[::1]81").is_err());
        assert!(target("[api.example]:80").is_err());
        assert!(target("[::1").is_err());
    }

    #[test]
    fn foreign_keys_and_nesting_are_declared() {
        let routes = by_name("routes").unwrap();
        assert_eq!(
            routes.nested_under("services").unwrap().on_delete,
            OnDelete::Restrict
        );
        let targets = by_name("targets").unwrap();
        assert_eq!(
            targets.nested_under("upstreams").unwrap().on_delete,
            OnDelete::Cascade
        );
        let plugins = by_name("plugins").unwrap();
        assert!(
            plugins
                .unique_keys
                .iter()
                .any(|k| k.fields.len() == 5 && k.nulls_count)
        );
    }

    #[test]
    fn foreign_key_must_be_a_uuid() {
        let err =
            validate("routes", json!({"paths": ["/"], "service": {"id": "nope"}})).unwrap_err();
        assert_eq!(
            err.fields(),
            json!({"service": {"id": "expected a valid UUID"}})
        );
    }
}
