//! `POST /events`: outside systems (a gateway's rate-limiting or
//! OAS-validation plugins, or anything else) publish events of the
//! catalogue's sources. Each is checked against the catalogue, made durable
//! in the outbox before the 202 answer, and then flows like any other.

use crate::AdminState;
use crate::api::{Api, doc};
use crate::body::KongBody;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::http::StatusCode;
use axum::routing::post;
use hookd_model::clock::{Clock, SystemClock};
use hookd_model::example::Producer;
use hookd_model::violation::PathSeg;
use hookd_model::{Catalogue, Event, Violations};
use serde_json::{Map, Value, json};

/// The route.
pub fn router() -> Api {
    Api::new().route(
        "/events",
        post(publish),
        [doc(
            Method::POST,
            "Publish an event, or an array of events, of a catalogue source",
        )
        .body("PublishedEvent")
        .json(202, "Published")],
    )
}

/// One event as published: `{source, event, data}`; a JSON array of them
/// publishes a batch, all or none.
async fn publish(
    State(state): State<AdminState>,
    body: KongBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let now = SystemClock.now_ms();
    let events = match body.value {
        Value::Array(items) => {
            let mut events = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                events.push(parse(&state.catalogue, item, now).map_err(|e| e.at_index(i))?);
            }
            events
        }
        single => vec![parse(&state.catalogue, single, now).map_err(Refusal::into_error)?],
    };
    if events.is_empty() {
        return Err(Violations::entity("expected at least one event").into());
    }
    state.store.publish(&events).await?;
    let ids: Vec<Value> = events
        .iter()
        .map(|e| json!({"id": e.id, "source": e.source, "event": e.event}))
        .collect();
    Ok((StatusCode::ACCEPTED, Json(json!({ "data": ids }))))
}

/// Why a published event was refused.
enum Refusal {
    /// The source or event is not in the catalogue (404).
    Unknown(String),
    /// The event does not fit its declaration (400).
    Invalid(Violations),
}

impl Refusal {
    fn into_error(self) -> ApiError {
        match self {
            Refusal::Unknown(message) => ApiError::UnknownEvent(message),
            Refusal::Invalid(v) => v.into(),
        }
    }

    /// Names the position in a batch.
    fn at_index(self, i: usize) -> ApiError {
        match self {
            Refusal::Unknown(message) => {
                ApiError::UnknownEvent(format!("event {}: {message}", i + 1))
            }
            Refusal::Invalid(v) => {
                let mut at = Violations::new();
                at.extend_under(&[PathSeg::Index(i)], v);
                at.into()
            }
        }
    }
}

fn parse(catalogue: &Catalogue, item: Value, now_ms: i64) -> Result<Event, Refusal> {
    let Value::Object(mut obj) = item else {
        return Err(Refusal::Invalid(Violations::entity("expected a record")));
    };
    let mut violations = Violations::new();
    let mut take_string = |name: &str, obj: &mut Map<String, Value>| match obj.remove(name) {
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            violations.push(vec![PathSeg::Key(name.into())], "expected a string");
            None
        }
        None => {
            violations.push(vec![PathSeg::Key(name.into())], "required field missing");
            None
        }
    };
    let source = take_string("source", &mut obj);
    let event = take_string("event", &mut obj);
    let data = obj.remove("data");
    for unknown in obj.keys() {
        violations.push(vec![PathSeg::Key(unknown.clone())], "unknown field");
    }
    let data = match data {
        Some(Value::Object(data)) => data,
        Some(_) => {
            violations.push(vec![PathSeg::Key("data".into())], "expected a record");
            Map::new()
        }
        None => {
            violations.push(vec![PathSeg::Key("data".into())], "required field missing");
            Map::new()
        }
    };
    let (Some(source), Some(event)) = (source, event) else {
        return Err(Refusal::Invalid(violations));
    };
    if catalogue.source(&source).is_none() {
        return Err(Refusal::Unknown(format!(
            "source '{source}' is not registered"
        )));
    }
    if Producer::of(&source) == Producer::Server {
        // Operators act on these events: nobody outside may forge them.
        return Err(Refusal::Invalid(Violations::field(
            "source",
            format!("source '{source}' is published by hookd only"),
        )));
    }
    let Some(info) = catalogue.event(&source, &event) else {
        return Err(Refusal::Unknown(format!(
            "source '{source}' has no '{event}' event"
        )));
    };
    for field in &info.fields {
        if !data.contains_key(field) {
            violations.push(
                vec![PathSeg::Key("data".into()), PathSeg::Key(field.clone())],
                "required field missing",
            );
        }
    }
    if !violations.is_empty() {
        return Err(Refusal::Invalid(violations));
    }
    Ok(Event::new(&source, &event, Value::Object(data), now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        Catalogue::builtin([])
    }

    #[test]
    fn a_complete_event_parses() {
        let e = parse(
            &catalogue(),
            json!({"source": "oas-validation", "event": "validation-failed",
                   "data": {"consumer": null, "ip": "1.1.1.1", "service": "s", "err": "bad"}}),
            5,
        )
        .ok()
        .unwrap();
        assert_eq!(
            (e.source.as_str(), e.event.as_str(), e.at_ms),
            ("oas-validation", "validation-failed", 5)
        );
    }

    /// A publisher may copy an example of `GET .../example` as it is.
    #[test]
    fn published_examples_are_accepted_as_they_are() {
        use hookd_model::example::example;
        let mut c = catalogue();
        let info = serde_json::from_value(json!({"fields": ["customer", "amount"]})).unwrap();
        c.add("payments", "charge-failed", info);
        let mut checked = 0;
        for source in c
            .sources()
            .filter(|s| Producer::of(s) == Producer::Publisher)
        {
            for event in c.source(source).unwrap().keys() {
                let example = serde_json::to_value(example(&c, source, event).unwrap()).unwrap();
                assert!(parse(&c, example, 0).is_ok(), "{source} {event}");
                checked += 1;
            }
        }
        assert_eq!(checked, 5, "four built-in published sources and one custom");
    }

    #[test]
    fn missing_declared_fields_are_named() {
        let Err(Refusal::Invalid(v)) = parse(
            &catalogue(),
            json!({"source": "service-protection", "event": "rate-limit-exceeded", "data": {"service": "s"}}),
            0,
        ) else {
            panic!("expected a violation");
        };
        assert_eq!(
            v.fields(),
            json!({"data": {"rate": "required field missing", "limit": "required field missing", "window": "required field missing"}})
        );
    }

    #[test]
    fn unknown_sources_and_events_are_named() {
        let Err(Refusal::Unknown(m)) = parse(
            &catalogue(),
            json!({"source": "x", "event": "y", "data": {}}),
            0,
        ) else {
            panic!("expected unknown");
        };
        assert_eq!(m, "source 'x' is not registered");
        let Err(Refusal::Unknown(m)) = parse(
            &catalogue(),
            json!({"source": "balancer", "event": "y", "data": {}}),
            0,
        ) else {
            panic!("expected unknown");
        };
        assert_eq!(m, "source 'balancer' has no 'y' event");
    }
}
