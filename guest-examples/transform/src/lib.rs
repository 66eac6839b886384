//! `transform`: reshapes the event data, visibly and predictably. It parses
//! `event.data` as a JSON object (anything else is an `Err`), uppercases
//! `entity.username` when that is a string (the shape of a crud / dao:crud
//! event on consumers), sets `"transformed_by": "transform"` (overwriting a
//! previous guest's value), appends `"transform"` to the array `"chain"`
//! (created when absent, replaced when it is not an array) so that a chain of
//! guests shows its order, and returns the new JSON; every other field is kept.
//! It calls `host.log(info, "transform: <source> <event> <id>")` exactly once.
//! Written with the guest SDK (`../sdk`, crate `hookd-guest`).
//! Used by the lambda handler's end-to-end tests (a single guest and chains with
//! `python-transform`/`c-upper`) and as the benchmark's "parse crud JSON, change
//! it, return it" guest.

use hookd_guest::{log, Event, Handler, Level, Outcome, Value};

/// The name this guest writes into `transformed_by` and `chain`.
const NAME: &str = "transform";

struct Transform;

impl Handler for Transform {
    fn handle(event: Event) -> Outcome {
        // Joined as the benchmark's Lua transform joins it (`..`): `format!`
        // cost this guest 5-7% of a call (docs/measurements.md).
        let line = [NAME, ": ", &event.source, " ", &event.event, " ", &event.id].concat();
        log(Level::Info, &line);
        let mut data: Value = event
            .data()
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
                obj.insert(
                    "chain".into(),
                    Value::Array(vec![Value::String(NAME.into())]),
                );
            }
        }
        Ok(Some(data))
    }
}

hookd_guest::export!(Transform);
