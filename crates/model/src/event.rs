//! Events: what a source emits and hooks receive.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// One occurrence of a source's event, as it waits in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id of this occurrence.
    pub id: Uuid,
    /// Source name, e.g. `crud`.
    pub source: String,
    /// Event name within the source, e.g. `consumers:create`.
    pub event: String,
    /// The event data (an object).
    pub data: Value,
    /// When it happened, unix milliseconds.
    pub at_ms: i64,
}

/// A write to an entity, the cause of crud events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// The entity was created.
    Create,
    /// The entity was changed.
    Update,
    /// The entity was removed.
    Delete,
}

impl Operation {
    /// `create`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    /// The operation of that name.
    pub fn parse(name: &str) -> Option<Self> {
        [Operation::Create, Operation::Update, Operation::Delete]
            .into_iter()
            .find(|op| op.as_str() == name)
    }
}

impl Event {
    /// A new event happening at `at_ms`.
    pub fn new(source: &str, event: &str, data: Value, at_ms: i64) -> Self {
        Event {
            id: Uuid::new_v4(),
            source: source.to_string(),
            event: event.to_string(),
            data,
            at_ms,
        }
    }

    /// The events one entity write causes, in the order Kong emits them:
    /// crud `<entity>`, crud `<entity>:<op>`, dao:crud `<op>`. Each carries
    /// `{operation, entity, old_entity, schema}` with null fields left out.
    pub fn crud(
        op: Operation,
        schema: &str,
        entity: &Value,
        old_entity: Option<&Value>,
        at_ms: i64,
    ) -> Vec<Event> {
        let mut data = Map::new();
        data.insert("operation".into(), Value::from(op.as_str()));
        data.insert("entity".into(), without_nulls(entity));
        if let Some(old) = old_entity {
            data.insert("old_entity".into(), without_nulls(old));
        }
        data.insert("schema".into(), Value::from(schema));
        let data = Value::Object(data);
        vec![
            Event::new("crud", schema, data.clone(), at_ms),
            Event::new(
                "crud",
                &format!("{schema}:{}", op.as_str()),
                data.clone(),
                at_ms,
            ),
            Event::new("dao:crud", op.as_str(), data, at_ms),
        ]
    }

    /// The body Kong's webhook handler sends: the data with `event` and
    /// `source` added.
    pub fn payload(&self) -> Value {
        let mut obj = match &self.data {
            Value::Object(o) => o.clone(),
            other => {
                let mut m = Map::new();
                m.insert("data".into(), other.clone());
                m
            }
        };
        obj.insert("event".into(), Value::from(self.event.as_str()));
        obj.insert("source".into(), Value::from(self.source.as_str()));
        Value::Object(obj)
    }

    /// The digest `on_change` and `snooze` compare: of the `unique` fields
    /// when the event declares them, otherwise of all of the data.
    pub fn digest(&self, unique: Option<&[String]>) -> String {
        let mut hasher = Sha256::new();
        match unique {
            Some(fields) => {
                for field in fields {
                    let value = self.data.get(field).unwrap_or(&Value::Null);
                    hasher.update(field.as_bytes());
                    hasher.update([0]);
                    hasher.update(canonical_json(value).as_bytes());
                    hasher.update([0]);
                }
            }
            None => hasher.update(canonical_json(&self.data).as_bytes()),
        }
        hex::encode(hasher.finalize())
    }
}

/// JSON with object keys sorted, so equal data always digests the same.
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(obj) => {
            let mut keys: Vec<&String> = obj.keys().collect();
            keys.sort();
            let members: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), canonical_json(&obj[k])))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// The value with every null member of every object removed.
pub fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(obj) => Value::Object(
            obj.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crud_write_causes_three_events_without_nulls() {
        let entity = json!({"id": "1", "username": "bob", "custom_id": null, "tags": null});
        let events = Event::crud(Operation::Create, "consumers", &entity, None, 5);
        let names: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e.source.as_str(), e.event.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("crud", "consumers"),
                ("crud", "consumers:create"),
                ("dao:crud", "create")
            ]
        );
        assert_eq!(
            events[0].data,
            json!({"operation": "create", "entity": {"id": "1", "username": "bob"}, "schema": "consumers"})
        );
    }

    #[test]
    fn payload_adds_event_and_source() {
        let e = Event::new("crud", "consumers", json!({"operation": "create"}), 0);
        assert_eq!(
            e.payload(),
            json!({"operation": "create", "event": "consumers", "source": "crud"})
        );
    }

    #[test]
    fn digest_of_unique_fields_ignores_the_rest() {
        let unique = vec!["consumer".to_string(), "ip".to_string()];
        let a = Event::new("s", "e", json!({"consumer": "c", "ip": "1", "rate": 5}), 0);
        let b = Event::new("s", "e", json!({"consumer": "c", "ip": "1", "rate": 9}), 0);
        let c = Event::new("s", "e", json!({"consumer": "c", "ip": "2", "rate": 5}), 0);
        assert_eq!(a.digest(Some(&unique)), b.digest(Some(&unique)));
        assert_ne!(a.digest(Some(&unique)), c.digest(Some(&unique)));
    }

    #[test]
    fn digest_of_all_data_counts_numbers_and_booleans() {
        let a = Event::new("s", "e", json!({"n": 1, "b": true}), 0);
        let b = Event::new("s", "e", json!({"b": true, "n": 1}), 0);
        let c = Event::new("s", "e", json!({"n": 1, "b": false}), 0);
        let d = Event::new("s", "e", json!({"n": 2, "b": true}), 0);
        assert_eq!(a.digest(None), b.digest(None));
        assert_ne!(a.digest(None), c.digest(None));
        assert_ne!(a.digest(None), d.digest(None));
    }
}
