//! The sources catalogue: which sources exist, their events, the fields
//! each event's data carries and the fields that identify it (`unique`).
//! Served as Kong serves it at `/event-hooks/sources`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The fields of every crud and dao:crud event.
pub const CRUD_FIELDS: &[&str] = &["operation", "entity", "old_entity", "schema"];

/// The three writes that cause crud events.
pub const CRUD_OPERATIONS: &[&str] = &["create", "update", "delete"];

/// What one event of a source carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInfo {
    /// Fields of the event data, usable in templates.
    pub fields: Vec<String>,
    /// Fields whose values identify the event for `on_change` and `snooze`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<Vec<String>>,
    /// What the event means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl EventInfo {
    pub(crate) fn new(fields: &[&str]) -> Self {
        EventInfo {
            fields: fields.iter().map(|s| s.to_string()).collect(),
            unique: None,
            description: None,
        }
    }

    pub(crate) fn with_unique(mut self, unique: &[&str], description: &str) -> Self {
        self.unique = Some(unique.iter().map(|s| s.to_string()).collect());
        self.description = Some(description.to_string());
        self
    }
}

/// Sources, each with its events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Catalogue {
    sources: BTreeMap<String, BTreeMap<String, EventInfo>>,
}

const RATE_LIMIT_FIELDS: &[&str] = &["consumer", "ip", "service", "rate", "limit", "window"];
const RATE_LIMIT_UNIQUE: &[&str] = &["consumer", "ip", "service"];
const RATE_LIMIT_DESCRIPTION: &str = "Run an event when a rate limit has been exceeded";

impl Catalogue {
    /// Kong's built-in sources and hookd's own; crud and its events are
    /// generated from the names of the entities whose writes cause them.
    pub fn builtin<'a>(entities: impl IntoIterator<Item = &'a str>) -> Self {
        let mut c = Catalogue::default();
        for entity in entities {
            c.add("crud", entity, EventInfo::new(CRUD_FIELDS));
            for op in CRUD_OPERATIONS {
                c.add(
                    "crud",
                    &format!("{entity}:{op}"),
                    EventInfo::new(CRUD_FIELDS),
                );
            }
        }
        for op in CRUD_OPERATIONS {
            c.add("dao:crud", op, EventInfo::new(CRUD_FIELDS));
        }
        c.add(
            "balancer",
            "health",
            EventInfo::new(&["upstream_id", "ip", "port", "hostname", "health"]),
        );
        for source in ["rate-limiting-advanced", "ai-rate-limiting-advanced"] {
            c.add(
                source,
                "rate-limit-exceeded",
                EventInfo::new(RATE_LIMIT_FIELDS)
                    .with_unique(RATE_LIMIT_UNIQUE, RATE_LIMIT_DESCRIPTION),
            );
        }
        c.add(
            "service-protection",
            "rate-limit-exceeded",
            EventInfo::new(&["service", "rate", "limit", "window"])
                .with_unique(&["service"], RATE_LIMIT_DESCRIPTION),
        );
        c.add(
            "oas-validation",
            "validation-failed",
            EventInfo::new(&["consumer", "ip", "service", "err"]).with_unique(
                &["consumer", "ip", "service"],
                "Run an event when oas validation fails",
            ),
        );
        crate::operational::register(&mut c);
        c
    }

    /// Registers (or replaces) one event of a source.
    pub fn add(&mut self, source: &str, event: &str, info: EventInfo) {
        self.sources
            .entry(source.to_string())
            .or_default()
            .insert(event.to_string(), info);
    }

    /// The events of a source.
    pub fn source(&self, source: &str) -> Option<&BTreeMap<String, EventInfo>> {
        self.sources.get(source)
    }

    /// One event of a source.
    pub fn event(&self, source: &str, event: &str) -> Option<&EventInfo> {
        self.sources.get(source)?.get(event)
    }

    /// Every source name.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crud_events_come_from_the_entity_list() {
        let c = Catalogue::builtin(["consumers"]);
        let crud = c.source("crud").unwrap();
        let names: Vec<&str> = crud.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "consumers",
                "consumers:create",
                "consumers:delete",
                "consumers:update"
            ]
        );
        assert_eq!(
            serde_json::to_value(&crud["consumers"]).unwrap(),
            json!({"fields": ["operation", "entity", "old_entity", "schema"]})
        );
    }

    #[test]
    fn rate_limit_sources_describe_themselves_as_kong_does() {
        let c = Catalogue::builtin([]);
        assert_eq!(
            serde_json::to_value(c.event("service-protection", "rate-limit-exceeded")).unwrap(),
            json!({"fields": ["service", "rate", "limit", "window"], "unique": ["service"],
                   "description": "Run an event when a rate limit has been exceeded"})
        );
        assert_eq!(
            c.event("oas-validation", "validation-failed")
                .unwrap()
                .description
                .as_deref(),
            Some("Run an event when oas validation fails")
        );
        let sources: Vec<&str> = c.sources().collect();
        assert_eq!(
            sources,
            [
                "ai-rate-limiting-advanced",
                "balancer",
                "dao:crud",
                "hookd",
                "oas-validation",
                "rate-limiting-advanced",
                "service-protection"
            ]
        );
    }
}
