//! Kong's `log` handler: one structured line (target `hookd::event`, level
//! info; Kong logs at notice, which tracing does not have) with the hook,
//! the source, the event and the data as JSON.

use super::{Call, Handled, HookHandler};
use futures::future::{self, BoxFuture, FutureExt};
use hookd_model::Event;
use hookd_model::hook::LogConfig;
use uuid::Uuid;

/// The `log` handler; it has nothing to configure.
impl HookHandler for LogConfig {
    fn handle<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Handled> {
        log_event(call.hook_id, call.attempt.event);
        future::ready(Handled::Done(None)).boxed()
    }
}

fn log_event(hook_id: Uuid, event: &Event) {
    tracing::info!(
        target: "hookd::event",
        hook_id = %hook_id,
        source = %event.source,
        event = %event.event,
        data = %event.data,
        "event hook"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_event_writes_one_structured_line() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        let hook_id = Uuid::nil();
        let event = Event::new(
            "crud",
            "consumers",
            json!({"operation": "create", "entity": {"username": "bob"}}),
            0,
        );
        tracing::subscriber::with_default(subscriber, || log_event(hook_id, &event));

        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["target"], "hookd::event");
        assert_eq!(line["level"], "INFO");
        let fields = &line["fields"];
        assert_eq!(fields["hook_id"], hook_id.to_string());
        assert_eq!(fields["source"], "crud");
        assert_eq!(fields["event"], "consumers");
        let data: serde_json::Value =
            serde_json::from_str(fields["data"].as_str().unwrap()).unwrap();
        assert_eq!(data, event.data);
    }
}
