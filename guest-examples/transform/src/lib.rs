//! `transform`: reshapes the event data, visibly and predictably. It parses
//! `event.data` as a JSON object (anything else is an `Err`), uppercases
//! `entity.username` when that is a string (the shape of a crud / dao:crud
//! event on consumers), sets `"transformed_by": "transform"` (overwriting a
//! previous guest's value), appends `"transform"` to the array `"chain"`
//! (created when absent, replaced when it is not an array) so that a chain of
//! guests shows its order, and returns the new JSON; every other field is kept.
//! It calls `host.log(info, "transform: <source> <event> <id>")` exactly once.
//! Used by the lambda handler's end-to-end tests (a single guest and chains with
//! `python-transform`/`c-upper`) and as the benchmark's "parse crud JSON, change
//! it, return it" guest.

wit_bindgen::generate!({
    world: "lambda",
    path: "../../wit",
});

use hookd::lambda::host::{log, Level};
use serde_json::Value;

/// The name this guest writes into `transformed_by` and `chain`.
const NAME: &str = "transform";

struct Transform;

impl Guest for Transform {
    fn handle(event: Event) -> Result<Option<String>, String> {
        log(
            Level::Info,
            &format!("{NAME}: {} {} {}", event.source, event.event, event.id),
        );
        let mut data: Value = serde_json::from_str(&event.data)
            .map_err(|e| format!("{NAME}: event data is not JSON: {e}"))?;
        let obj = data
            .as_object_mut()
            .ok_or_else(|| format!("{NAME}: event data is not a JSON object"))?;

        if let Some(Value::Object(entity)) = obj.get_mut("entity") {
            if let Some(Value::String(username)) = entity.get_mut("username") {
                *username = username.to_uppercase();
            }
        }

        obj.insert("transformed_by".into(), Value::String(NAME.into()));
        match obj.get_mut("chain") {
            Some(Value::Array(chain)) => chain.push(Value::String(NAME.into())),
            _ => {
                obj.insert("chain".into(), Value::Array(vec![Value::String(NAME.into())]));
            }
        }

        serde_json::to_string(&data)
            .map(Some)
            .map_err(|e| format!("{NAME}: cannot serialise: {e}"))
    }
}

export!(Transform);
