//! `GET /openapi.json`: an OpenAPI 3 document of the whole Admin API.
//!
//! What is generated, and so cannot drift: the paths, methods, statuses and
//! media types (from the route registrations, [`crate::api`]), and the
//! entity and event hook schemas (from the schemas that validate input: the
//! model's entity schemas and handler configurations).
//!
//! What is written here by hand: the schemas of the other answers
//! (deliveries, audit records, quarantined records, guests, ...). Two checks
//! hold them to the code: the tests below serialise a sample of each typed
//! answer with every optional field set and require the schema to name
//! exactly its properties, with matching types and enum values; and CI runs
//! Schemathesis (`.ci/schemathesis`), which checks every answer of a running
//! server against the document.

use crate::api::{Answer, Op};
use hookd_model::entity;
use hookd_model::hook::{self, HANDLERS};
use hookd_model::schema::{Check, Field, Kind};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The document for these operations.
pub(crate) fn document(ops: &[Op]) -> Value {
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for op in ops {
        let item = paths.entry(op.path.clone()).or_default();
        let params: Vec<Value> = path_params(&op.path)
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            item.insert("parameters".into(), Value::Array(params));
        }
        item.insert(op.method.as_str().to_ascii_lowercase(), operation(op));
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "hookd Admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Kong Gateway's Event Hooks Admin API, with durable delivery and WebAssembly lambdas."
        },
        "paths": paths,
        "components": {"schemas": schemas()},
    })
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
}

fn reference(schema: &str) -> Value {
    match schema.strip_prefix("List:") {
        Some(item) => json!({
            "type": "object",
            "properties": {
                "data": {"type": "array", "items": reference(item)},
                "next": {"type": "string", "nullable": true, "description": "path of the next page"},
                "offset": {"type": "string", "description": "offset of the next page"}
            }
        }),
        None => json!({"$ref": format!("#/components/schemas/{schema}")}),
    }
}

fn operation(op: &Op) -> Value {
    let tag = op.path.split('/').find(|s| !s.is_empty()).unwrap_or("root");
    let mut responses = Map::new();
    match &op.answer {
        Answer::Json(status, schema) => {
            let schema = schema
                .as_deref()
                .map_or(json!({"type": "object"}), reference);
            responses.insert(
                status.to_string(),
                json!({"description": "success", "content": {"application/json": {"schema": schema}}}),
            );
        }
        Answer::Empty(status) => {
            responses.insert(status.to_string(), json!({"description": "success"}));
        }
        Answer::Bytes(media) => {
            responses.insert(
                "200".into(),
                json!({"description": "success", "content": {*media: {"schema": {"type": "string", "format": "binary"}}}}),
            );
        }
        Answer::Text(media) => {
            responses.insert(
                "200".into(),
                json!({"description": "success", "content": {*media: {"schema": {"type": "string"}}}}),
            );
        }
    }
    responses.insert(
        "4XX".into(),
        json!({"description": "bad input, unknown resource or not allowed, in Kong's error shape",
               "content": {"application/json": {"schema": reference("KongError")}}}),
    );
    let mut out = json!({"summary": op.summary, "tags": [tag], "responses": responses});
    if let Some(body) = &op.body {
        out["requestBody"] = json!({
            "content": {
                "application/json": {"schema": reference(body)},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}}
            }
        });
    }
    out
}

/// JSON schema of a field's kind, as validated by the model.
fn kind_schema(field: &Field) -> Value {
    let mut s = match &field.kind {
        Kind::String => json!({"type": "string"}),
        Kind::Integer => json!({"type": "integer"}),
        Kind::Number => json!({"type": "number"}),
        Kind::Boolean => json!({"type": "boolean"}),
        Kind::Uuid => json!({"type": "string", "format": "uuid"}),
        Kind::Array(elem) => json!({"type": "array", "items": kind_schema(elem)}),
        Kind::Set(elem) => {
            json!({"type": "array", "items": kind_schema(elem), "uniqueItems": true})
        }
        Kind::Map(elem) => json!({"type": "object", "additionalProperties": kind_schema(elem)}),
        Kind::Record(fields) => record_schema(fields),
        Kind::Foreign(target) => json!({
            "type": "object",
            "description": format!("reference to one of {target}"),
            "properties": {"id": {"type": "string", "format": "uuid"}}
        }),
        Kind::Object => json!({"type": "object"}),
    };
    for check in &field.checks {
        match check {
            Check::OneOf(options) => s["enum"] = json!(options),
            Check::OneOfInt(options) => s["enum"] = json!(options),
            Check::Between(lo, hi) => {
                s["minimum"] = json!(lo);
                s["maximum"] = json!(hi);
            }
            _ => {}
        }
    }
    if let Some(default) = &field.default {
        s["default"] = default.clone();
    }
    if !field.required {
        s["nullable"] = json!(true);
    }
    s
}

fn record_schema(fields: &[Field]) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| (f.name.to_string(), kind_schema(f)))
        .collect();
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

fn object(properties: Value) -> Value {
    json!({"type": "object", "properties": properties})
}

fn schemas() -> Map<String, Value> {
    let mut s = Map::new();
    for e in entity::all() {
        s.insert(e.name.to_string(), record_schema(&e.schema.fields));
    }
    // The answer that creates an admin (POST, or a PUT that creates) carries
    // its token, once; it is never sent.
    s["admins"]["properties"]["token"] = json!({
        "type": "string", "readOnly": true,
        "description": "in the answer that created the admin only; store it"
    });
    let mut hook_schema = record_schema(&hook::schema(None).fields);
    let configs: Vec<Value> = HANDLERS
        .iter()
        .filter_map(|h| hook::config_fields(h))
        .map(|fields| record_schema(&fields))
        .collect();
    hook_schema["properties"]["config"] =
        json!({"oneOf": configs, "description": "shape depends on handler"});
    s.insert(hook::ENTITY.into(), hook_schema);
    s.insert("Object".into(), json!({"type": "object"}));
    s.insert(
        "KongError".into(),
        object(
            json!({"code": {"type": "integer"}, "name": {"type": "string"},
                      "message": {"type": "string"}, "fields": {"type": "object"}}),
        ),
    );
    s.insert(
        "TestAnswer".into(),
        object(json!({"data": {"type": "object"}, "result": {},
                      "condition": {"type": "boolean", "description": "whether the hook's condition \
                                    held (present when it has one); the handler ran only then"},
                      "condition_error": {"type": "string", "description": "why the condition \
                                          could not be evaluated (it then counts as false)"}})),
    );
    s.insert(
        "GuestError".into(),
        object(json!({"message": {"type": "string"}, "guest_error": object(json!({
            "step": {"type": "integer"}, "function": {"type": "string"}, "message": {"type": "string"}}))})),
    );
    s.insert(
        "Delivery".into(),
        object(json!({
            "id": {"type": "string", "format": "uuid"}, "hook_id": {"type": "string", "format": "uuid"},
            "event": {"type": "object"}, "seq": {"type": "integer"},
            "state": {"type": "string", "enum": ["queued", "in_flight", "succeeded", "failed", "dead"]},
            "attempts": {"type": "array", "items": object(json!({
                "number": {"type": "integer"}, "at_ms": {"type": "integer"}, "latency_ms": {"type": "integer"},
                "ok": {"type": "boolean"}, "status": {"type": "integer"}, "error": {"type": "string"},
                "response": {"type": "string"}, "result": {}}))},
            "created_at_ms": {"type": "integer"}, "next_attempt_at_ms": {"type": "integer"}})),
    );
    s.insert(
        "PublishedEvent".into(),
        object(json!({"source": {"type": "string"}, "event": {"type": "string"}, "data": {"type": "object"}})),
    );
    s.insert(
        "EventExample".into(),
        object(json!({
            "source": {"type": "string"}, "event": {"type": "string"},
            "data": {"type": "object", "description": "the event data as a handler receives it; \
                     in an example of a published event, each field is the placeholder string `<field>`"}})),
    );
    s.insert(
        "Published".into(),
        object(json!({"data": {"type": "array", "items": {"type": "object"}}})),
    );
    s.insert(
        "Guest".into(),
        object(json!({
            "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"}, "digest": {"type": "string"},
            "size": {"type": "integer"}, "kind": {"type": "string", "enum": ["component", "command"]},
            "imports": {"type": "array", "items": {"type": "string"}},
            "exports": {"type": "array", "items": {"type": "string"}},
            "capabilities": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "integer"}, "updated_at": {"type": "integer"}})),
    );
    s.insert(
        "GuestAudit".into(),
        object(json!({"guest": {"type": "object"}, "imports": {"type": "array", "items": {"type": "object"}},
                      "capabilities": {"type": "array", "items": {"type": "string"}}, "mode": {"type": "string"},
                      "ceiling": {"type": "object"}, "would_grant": {"type": "array", "items": {"type": "string"}},
                      "would_deny": {"type": "array", "items": {"type": "object"}}})),
    );
    s.insert(
        "Capabilities".into(),
        object(json!({"mode": {"type": "string"}, "data": {"type": "array", "items": object(json!({
            "function": {"type": "string"}, "guest": {"type": "object"}, "grant": {"type": "object"},
            "instance": {"type": "string", "enum": ["per-event", "reused"]}}))}})),
    );
    s.insert(
        "AuditRecord".into(),
        object(json!({"at_ms": {"type": "integer"}, "hook_id": {"type": "string", "format": "uuid"},
                      "guest": {"type": "object"}, "capability": {"type": "string"}, "target": {"type": "string"},
                      "verdict": {"type": "string", "enum": ["allowed", "denied"]}, "reason": {"type": "string"},
                      "count": {"type": "integer", "minimum": 1,
                                "description": "times the guest met this decision in the call"}})),
    );
    s.insert(
        "Quarantined".into(),
        object(json!({
            "id": {"type": "string", "format": "uuid"},
            "origin": {"type": "string", "enum": hookd_store::Origin::ALL.map(hookd_store::Origin::as_str)},
            "key": {"type": "string", "description": "its key in the tree it came from"},
            "error": {"type": "string"}, "quarantined_at_ms": {"type": "integer"},
            "size": {"type": "integer"},
            "raw": {"type": "string", "format": "byte", "description": "its stored bytes (shown alone only)"},
            "raw_text": {"type": "string", "description": "the same bytes as UTF-8, lossily"}})),
    );
    s.insert(
        "TargetHealth".into(),
        object(json!({"id": {"type": "string"}, "target": {"type": "string"}, "upstream": {"type": "object"},
                      "weight": {"type": "integer"}, "health": {"type": "string"}, "data": {"type": "object"}})),
    );
    s.insert(
        "GuestVersion".into(),
        object(json!({
            "digest": {"type": "string"}, "size": {"type": "integer"},
            "kind": {"type": "string", "enum": ["component", "command"]},
            "capabilities": {"type": "array", "items": {"type": "string"}},
            "uploaded_at": {"type": "integer"},
            "current": {"type": "boolean", "description": "whether the guest's name runs this version"},
            "hooks": {"type": "array", "items": {"type": "string", "format": "uuid"},
                      "description": "the lambda hooks that run this version (pinned by digest, or by name when current)"},
        })),
    );
    s.insert(
        "Status".into(),
        object(json!({
            "database": object(json!({"reachable": {"type": "boolean"},
                                      "backend": {"type": "string", "enum": ["sled", "postgres"]}})),
            "node": object(json!({
                "id": {"type": "string", "format": "uuid"},
                "dispatching": {"type": "boolean", "description": "whether this node dispatches the outbox (one node at a time)"},
                "shards": {"type": "integer", "description": "shards of the hooks (of 64) whose deliveries this node attempts"},
                "lease_takeovers": {"type": "integer", "description": "shards taken over from nodes whose leases ran out, since start"},
            })),
            "outbox": object(json!({"pending": {"type": "integer"}})),
            "deliveries": object(json!({
                "queued": {"type": "integer"},
                "oldest_due_seconds": {"type": "number", "description": "how overdue the most overdue delivery is"},
                "last_hour": {"type": "array", "description": "attempts minute by minute, oldest first, the current minute last",
                              "items": object(json!({"start": {"type": "integer", "description": "unix seconds"},
                                                     "ok": {"type": "integer"}, "failed": {"type": "integer"}}))},
            })),
            "failing_hooks": {"type": "array", "description": "the longest failing first",
                              "items": object(json!({"hook": {"type": "string", "format": "uuid"},
                                                     "failures": {"type": "integer", "description": "failed attempts in a row"},
                                                     "failing_since": {"type": "integer"},
                                                     "paused_since": {"type": "integer", "nullable": true}}))},
        })),
    );
    s.insert(
        "UserInfo".into(),
        object(json!({
            "rbac_enforced": {"type": "boolean"},
            "admin": {"type": "object", "nullable": true,
                      "description": "the token's admin; null without RBAC",
                      "properties": {"username": {"type": "string"},
                                     "role": {"type": "string", "enum": ["super-admin", "admin", "read-only"]}}},
        })),
    );
    s.insert(
        "AdminToken".into(),
        object(json!({"token": {"type": "string", "description": "shown once; store it"}})),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_model::Event;
    use hookd_model::audit::{AuditRecord, CapabilityClass, GuestRef, Verdict};
    use hookd_model::delivery::{Attempt, Delivery, DeliveryState};
    use hookd_store::{Origin, Quarantined};
    use std::collections::BTreeSet;
    use uuid::Uuid;

    /// `schema` describes `value` exactly: the same properties (the sample
    /// sets every optional one), the JSON types the schema names, and enum
    /// values it lists. A schema without `properties` (`{"type": "object"}`,
    /// `{}`) leaves the inside open.
    fn assert_describes(schema: &Value, value: &Value, at: &str) {
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            assert!(
                allowed.contains(value),
                "{at}: {value} is not in the schema's enum {allowed:?}"
            );
        }
        if let Some(ty) = schema.get("type").and_then(Value::as_str) {
            let fits = match ty {
                "integer" => value.is_i64() || value.is_u64(),
                "string" => value.is_string(),
                "boolean" => value.is_boolean(),
                "object" => value.is_object(),
                "array" => value.is_array(),
                other => panic!("{at}: unexpected schema type {other}"),
            };
            assert!(fits, "{at}: {value} is not of the schema's type {ty}");
        }
        if let (Some(items), Some(elements)) = (schema.get("items"), value.as_array()) {
            for (i, element) in elements.iter().enumerate() {
                assert_describes(items, element, &format!("{at}[{i}]"));
            }
        }
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        let object = value
            .as_object()
            .unwrap_or_else(|| panic!("{at}: not an object"));
        let named: BTreeSet<&String> = properties.keys().collect();
        let answered: BTreeSet<&String> = object.keys().collect();
        assert_eq!(
            named, answered,
            "{at}: the schema's properties and the answer's differ"
        );
        for (key, field) in object {
            assert_describes(&properties[key], field, &format!("{at}.{key}"));
        }
    }

    fn schema(name: &str) -> Value {
        schemas()[name].clone()
    }

    #[test]
    fn the_delivery_schema_describes_a_delivery() {
        let event = Event::new("crud", "consumers", json!({"operation": "create"}), 0);
        let mut delivery = Delivery::new(Uuid::new_v4(), event, 7, 1_000);
        delivery.state = DeliveryState::Failed;
        delivery.attempts.push(Attempt {
            number: 1,
            at_ms: 1_000,
            latency_ms: 3,
            ok: false,
            status: Some(500),
            error: Some("the receiver answered 500".into()),
            response: Some("oops".into()),
            result: Some(json!({"any": "value"})),
        });
        let value = serde_json::to_value(&delivery).unwrap();
        assert_describes(&schema("Delivery"), &value, "Delivery");
    }

    #[test]
    fn the_event_example_schema_describes_every_example() {
        let catalogue = hookd_model::Catalogue::builtin(hookd_model::entity::crud_entities());
        for (source, event) in [
            ("crud", "consumers:update"),
            ("balancer", "health"),
            ("oas-validation", "validation-failed"),
        ] {
            let example = hookd_model::example::example(&catalogue, source, event).unwrap();
            let value = serde_json::to_value(&example).unwrap();
            assert_describes(&schema("EventExample"), &value, "EventExample");
        }
    }

    #[test]
    fn the_audit_record_schema_describes_an_audit_record() {
        let record = AuditRecord {
            at_ms: 1_000,
            hook_id: Uuid::new_v4(),
            guest: GuestRef {
                name: "transform".into(),
                digest: "ab".repeat(32),
            },
            capability: CapabilityClass::Http,
            target: "example.com:443".into(),
            verdict: Verdict::Denied,
            reason: Some("not granted".into()),
            count: 2,
        };
        let value = serde_json::to_value(&record).unwrap();
        assert_describes(&schema("AuditRecord"), &value, "AuditRecord");
    }

    #[test]
    fn the_quarantined_schema_describes_a_quarantined_record() {
        let record = Quarantined {
            id: Uuid::now_v7(),
            origin: Origin::Deliveries,
            key: Uuid::new_v4().as_bytes().to_vec(),
            raw: b"{not json".to_vec(),
            error: "expected value at line 1 column 2".into(),
            at_ms: 1_000,
        };
        let value = crate::quarantine::view(&record, true);
        assert_describes(&schema("Quarantined"), &value, "Quarantined");
    }
}
