//! An example of every catalogue event as a handler receives it
//! (`GET /event-hooks/sources/{source}/{event}/example`), so that a webhook
//! or guest author sees the shape of the data without waiting for one.
//!
//! Examples are made by the code that makes the real events, not written
//! out, so that they cannot drift from them:
//!
//! - `crud` and `dao:crud`: [`Event::crud`] on an example entity of the
//!   entity's schema (see [`entity`]), the operation taken from the event
//!   name as the store applies it: `old_entity` on update only, a delete's
//!   `entity` being the entity removed. `crud`'s `{entity}` event is a
//!   create, and `dao:crud` examples are of a consumer.
//! - `balancer` / `health`: [`health_event`], as the health checker.
//! - Every other source is published through `POST /events`, which
//!   requires the catalogue's fields and nothing else: its example has
//!   each field set to the placeholder string `<field>`.

mod entity;

use crate::balancer::{Health, health_event};
use crate::catalogue::{Catalogue, EventInfo};
use crate::violation::Violations;
use crate::{Event, Operation};
use serde::Serialize;
use serde_json::{Map, Value};
use std::net::{IpAddr, Ipv4Addr};
use uuid::Uuid;

/// The time of every example, unix seconds (2025-11-27T08:00:00Z).
pub const TIME_S: i64 = 1_764_230_400;

/// The id of every example entity, and of every entity an example refers to.
pub const ID: Uuid = Uuid::from_u128(0x6f1c_2a3b_4d5e_4f60_8a7b_9c0d_1e2f_3a4b);

/// The entity of `dao:crud` examples, whose event names carry none.
const DAO_CRUD_ENTITY: &str = "consumers";

/// An event as a handler receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    /// The source, e.g. `crud`.
    pub source: String,
    /// The event, e.g. `consumers:create`.
    pub event: String,
    /// The event data.
    pub data: Value,
}

impl From<Event> for Example {
    fn from(event: Event) -> Self {
        Example {
            source: event.source,
            event: event.event,
            data: event.data,
        }
    }
}

/// Why there is no example.
#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    /// The catalogue has no such event.
    #[error("the catalogue has no event '{event}' of source '{source_name}'")]
    Unknown {
        /// The source asked for.
        source_name: String,
        /// The event asked for.
        event: String,
    },
    /// The catalogue has the event, but its producer makes no event of
    /// that name: the two disagree, a bug.
    #[error("nothing makes the event '{event}' of source '{source_name}'")]
    NotMade {
        /// The source.
        source_name: String,
        /// The event.
        event: String,
    },
    /// The example entity does not pass its own validation: a bug.
    #[error("the example of {entity} does not pass its validation: {violations}")]
    Invalid {
        /// The entity.
        entity: String,
        /// What its validation said.
        violations: Violations,
    },
}

/// What makes a source's events, and so its example.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Producer {
    /// Entity writes: `crud` and `dao:crud`.
    Crud,
    /// The health checker: `balancer`.
    HealthChecker,
    /// hookd itself: its operational source, `hookd`.
    Server,
    /// Anything outside, through `POST /events`: every other source,
    /// built-in (rate limiting, oas-validation) or configured.
    Publisher,
}

impl Producer {
    /// The producer of a source's events. Custom sources may not take a
    /// built-in source's name, so a name is enough.
    pub fn of(source: &str) -> Self {
        match source {
            "crud" | "dao:crud" => Producer::Crud,
            "balancer" => Producer::HealthChecker,
            crate::operational::SOURCE => Producer::Server,
            _ => Producer::Publisher,
        }
    }
}

/// The example of one event of the catalogue.
pub fn example(catalogue: &Catalogue, source: &str, event: &str) -> Result<Example, ExampleError> {
    let info = catalogue
        .event(source, event)
        .ok_or_else(|| ExampleError::Unknown {
            source_name: source.to_string(),
            event: event.to_string(),
        })?;
    let not_made = || ExampleError::NotMade {
        source_name: source.to_string(),
        event: event.to_string(),
    };
    let made = match Producer::of(source) {
        Producer::Crud => {
            let (schema, op) = match (source, event.split_once(':')) {
                ("dao:crud", _) => (DAO_CRUD_ENTITY, Operation::parse(event)),
                (_, Some((schema, op))) => (schema, Operation::parse(op)),
                (_, None) => (event, Some(Operation::Create)),
            };
            crud_events(catalogue, schema, op.ok_or_else(not_made)?)?
        }
        Producer::HealthChecker => vec![health_event(
            ID,
            "api.internal",
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
            8080,
            Health::Unhealthy,
            TIME_S * 1000,
        )],
        Producer::Server | Producer::Publisher => return Ok(published(source, event, info)),
    };
    // Of the events the producer made, the one asked for: an event the
    // catalogue lists but nothing makes is a bug, not an example.
    made.into_iter()
        .find(|e| e.source == source && e.event == event)
        .map(Example::from)
        .ok_or_else(not_made)
}

/// The events of one write of an example entity of `schema`, made as the
/// store makes them (hookd-store's `entities`).
fn crud_events(
    catalogue: &Catalogue,
    schema: &str,
    op: Operation,
) -> Result<Vec<Event>, ExampleError> {
    let entity = entity::example(catalogue, schema)?;
    let at_ms = TIME_S * 1000;
    Ok(match op {
        Operation::Create | Operation::Delete => Event::crud(op, schema, &entity, None, at_ms),
        Operation::Update => {
            let updated = entity::updated(&entity);
            Event::crud(op, schema, &updated, Some(&entity), at_ms)
        }
    })
}

/// A published or operational event: each field the catalogue declares,
/// as a placeholder.
fn published(source: &str, event: &str, info: &EventInfo) -> Example {
    let data: Map<String, Value> = info
        .fields
        .iter()
        .map(|field| (field.clone(), Value::from(format!("<{field}>"))))
        .collect();
    Example {
        source: source.to_string(),
        event: event.to_string(),
        data: Value::Object(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::CRUD_FIELDS;
    use serde_json::json;

    /// The server's catalogue, with a custom source as configured.
    fn catalogue() -> Catalogue {
        let mut c = Catalogue::builtin(crate::entity::crud_entities());
        let info: EventInfo =
            serde_json::from_value(json!({"fields": ["customer", "amount"]})).unwrap();
        c.add("payments", "charge-failed", info);
        c
    }

    #[test]
    fn every_catalogue_event_has_an_example_of_its_fields() {
        let c = catalogue();
        let mut checked = 0;
        for source in c.sources() {
            for (event, info) in c.source(source).unwrap() {
                let ex =
                    example(&c, source, event).unwrap_or_else(|e| panic!("{source} {event}: {e}"));
                assert_eq!(
                    (ex.source.as_str(), ex.event.as_str()),
                    (source, event.as_str())
                );
                let data = ex.data.as_object().expect("data is an object");
                for key in data.keys() {
                    assert!(
                        info.fields.contains(key),
                        "{source} {event}: {key} is not a catalogue field"
                    );
                }
                // Only crud leaves a field out: old_entity, on create and delete.
                if Producer::of(source) != Producer::Crud {
                    assert_eq!(data.len(), info.fields.len(), "{source} {event}: {data:?}");
                }
                checked += 1;
            }
        }
        assert!(checked > 40, "{checked} events");
    }

    #[test]
    fn crud_examples_take_the_operation_from_the_event_name() {
        let c = catalogue();
        let data = |source: &str, event: &str| example(&c, source, event).unwrap().data;
        let created = data("crud", "consumers:create");
        assert_eq!(created["operation"], "create");
        assert_eq!(created["schema"], "consumers");
        assert_eq!(created["entity"]["id"], ID.to_string());
        assert!(created.get("old_entity").is_none());
        assert_eq!(data("crud", "consumers"), created);
        let updated = data("crud", "services:update");
        assert_eq!(updated["operation"], "update");
        assert_eq!(updated["old_entity"]["id"], updated["entity"]["id"]);
        assert_ne!(updated["old_entity"], updated["entity"]);
        let deleted = data("dao:crud", "delete");
        assert_eq!(deleted["operation"], "delete");
        assert_eq!(deleted["schema"], DAO_CRUD_ENTITY);
        assert!(deleted.get("old_entity").is_none());
        assert_eq!(deleted["entity"], created["entity"]);
        let fields: Vec<&str> = updated
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut all = CRUD_FIELDS.to_vec();
        all.sort_unstable();
        assert_eq!(fields, all);
    }

    #[test]
    fn the_balancer_example_is_a_health_change() {
        let ex = example(&catalogue(), "balancer", "health").unwrap();
        assert_eq!(
            ex.data,
            json!({"upstream_id": ID.to_string(), "ip": "10.0.0.5", "port": 8080,
                   "hostname": "api.internal", "health": "unhealthy"})
        );
    }

    #[test]
    fn published_examples_carry_every_field_as_a_placeholder() {
        let c = catalogue();
        let ex = example(&c, "payments", "charge-failed").unwrap();
        assert_eq!(
            ex.data,
            json!({"customer": "<customer>", "amount": "<amount>"})
        );
        let ex = example(&c, "service-protection", "rate-limit-exceeded").unwrap();
        assert_eq!(
            ex.data,
            json!({"service": "<service>", "rate": "<rate>", "limit": "<limit>", "window": "<window>"})
        );
    }

    #[test]
    fn unknown_sources_and_events_have_none() {
        let c = catalogue();
        for (source, event) in [
            ("nope", "x"),
            ("crud", "nope"),
            ("crud", "nope:create"),
            ("balancer", "x"),
        ] {
            assert!(
                matches!(
                    example(&c, source, event),
                    Err(ExampleError::Unknown { .. })
                ),
                "{source} {event}"
            );
        }
    }
}
