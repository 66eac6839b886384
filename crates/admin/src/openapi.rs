//! `GET /openapi.json`: an OpenAPI 3 document of the whole Admin API,
//! generated from the route registrations ([`crate::api`]) and from the
//! schemas that validate input (the model's entity schemas and handler
//! configurations), so it cannot drift from the code.

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
    s.insert("event_hooks".into(), hook_schema);
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
        object(json!({"data": {"type": "object"}, "result": {}})),
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
            "function": {"type": "string"}, "guest": {"type": "object"}, "grant": {"type": "object"}}))}})),
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
        "AdminToken".into(),
        object(json!({"token": {"type": "string", "description": "shown once; store it"}})),
    );
    s
}
