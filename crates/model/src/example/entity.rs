//! Example entities: every field of the entity's schema set, to its
//! declared example, its default, or a placeholder of its type that passes
//! the field's checks, then validated as every write is, so that the
//! example is the entity as stored.

use super::{ExampleError, ID, TIME_S};
use crate::catalogue::Catalogue;
use crate::hook::{self, EventHook, HANDLERS};
use crate::schema::{Check, Field, Input, Kind};
use serde_json::{Map, Value, json};

/// The stored form of an example entity of `name` (a gateway entity, or
/// `event_hooks`: a webhook hook on one of the catalogue's events).
pub(super) fn example(catalogue: &Catalogue, name: &str) -> Result<Value, ExampleError> {
    let invalid = |violations| ExampleError::Invalid {
        entity: name.to_string(),
        violations,
    };
    if name == hook::ENTITY {
        let input = record(&hook::schema(Some(HANDLERS[0])).fields);
        let hook = EventHook::validate(&Value::Object(input), Input::default(), catalogue)
            .map_err(invalid)?;
        return Ok(hook.to_json());
    }
    let Some(schema) = crate::entity::by_name(name) else {
        return Err(ExampleError::NotMade {
            source_name: "crud".into(),
            event: name.to_string(),
        });
    };
    let stored = schema
        .validate(record(&schema.schema.fields), Input::default())
        .map_err(invalid)?;
    Ok(Value::Object(stored))
}

/// The entity after an update: the same, a minute later where the entity
/// keeps `updated_at` (event hooks do not).
pub(super) fn updated(entity: &Value) -> Value {
    let mut updated = entity.clone();
    if let Some(at) = updated.get_mut("updated_at") {
        *at = json!(TIME_S + 60);
    }
    updated
}

fn record(fields: &[Field]) -> Map<String, Value> {
    fields
        .iter()
        .map(|f| (f.name.to_string(), placeholder(f)))
        .collect()
}

fn placeholder(field: &Field) -> Value {
    if let Some(example) = &field.example {
        return example.clone();
    }
    // A record shows its own fields, not its default: a hook's `config`
    // defaults to `{}`, which leaves out what the handler requires.
    if let Kind::Record(fields) = &field.kind {
        return Value::Object(record(fields));
    }
    if let Some(default) = &field.default {
        return default.clone();
    }
    let checked = |pick: fn(&Check) -> Option<Value>| field.checks.iter().find_map(pick);
    match &field.kind {
        Kind::String => checked(|c| match c {
            Check::OneOf(options) => options.first().map(|o| json!(o)),
            Check::StartsWith(prefix) => Some(json!(format!("{prefix}example"))),
            _ => None,
        })
        .unwrap_or(json!("example")),
        Kind::Integer | Kind::Number => checked(|c| match c {
            Check::OneOfInt(options) => options.first().map(|o| json!(o)),
            Check::Between(lowest, _) if lowest.fract() == 0.0 => Some(json!(*lowest as i64)),
            Check::Between(lowest, _) => Some(json!(lowest)),
            _ => None,
        })
        .unwrap_or(json!(0)),
        Kind::Boolean => json!(false),
        Kind::Uuid => json!(ID),
        Kind::Array(element) | Kind::Set(element) => json!([placeholder(element)]),
        Kind::Map(element) => json!({"example": placeholder(element)}),
        Kind::Foreign(_) => json!({"id": ID}),
        Kind::Record(_) | Kind::Object => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::crud_entities;

    #[test]
    fn every_entity_example_passes_its_own_validation() {
        let catalogue = Catalogue::builtin(crud_entities());
        for name in crud_entities() {
            let stored = example(&catalogue, name).unwrap_or_else(|e| panic!("{e}"));
            let again = stored.as_object().unwrap().clone();
            // What was stored is itself valid input, and stores as itself.
            if name == hook::ENTITY {
                let hook = EventHook::validate(&stored, Input::default(), &catalogue).unwrap();
                assert_eq!(hook.to_json(), stored);
            } else {
                let schema = crate::entity::by_name(name).unwrap();
                let revalidated = schema.validate(again, Input::default()).unwrap();
                assert_eq!(Value::Object(revalidated), stored, "{name}");
            }
            assert_eq!(stored["id"], ID.to_string(), "{name}");
        }
    }

    #[test]
    fn every_field_is_shown() {
        let catalogue = Catalogue::builtin(crud_entities());
        let route = example(&catalogue, "routes").unwrap();
        let nulls: Vec<&String> = route
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k)
            .collect();
        assert!(nulls.is_empty(), "unset: {nulls:?}");
        assert_eq!(route["methods"], json!(["GET"]));
        let target = example(&catalogue, "targets").unwrap();
        assert_eq!(target["target"], "example:8000", "normalised as stored");
        let hook = example(&catalogue, hook::ENTITY).unwrap();
        assert_eq!(hook["config"]["url"], "https://example.com/hook");
    }
}
