//! {{name}}: a guest of hookd's `lambda` handler. It parses the event data
//! as a JSON object (anything else is an error: the delivery fails and is
//! retried), logs one line into the server's log, sets
//! `"handled_by": "{{name}}"` and returns the object, the data for the next
//! guest of the hook's chain or the chain's result.

use hookd_guest::serde_json::{Map, Value};
use hookd_guest::{log, Event, Handler, Level, Outcome};

const NAME: &str = "{{name}}";

struct Lambda;

impl Handler for Lambda {
    fn handle(event: Event) -> Outcome {
        let mut data: Map<String, Value> = event
            .data()
            .map_err(|e| format!("{NAME}: the event data is not a JSON object: {e}"))?;
        log(
            Level::Info,
            &format!("{NAME}: {} {} {}", event.source, event.event, event.id),
        );
        data.insert("handled_by".into(), NAME.into());
        Ok(Some(data.into()))
    }
}

hookd_guest::export!(Lambda);
