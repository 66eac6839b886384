//! `hookd deliveries`: one delivery with its attempts, and redelivery.

use super::client::Client;
use super::resource::Resource;
use super::table::{Table, cell, details, time_ms};
use clap::Subcommand;
use serde_json::Value;

/// The verbs on deliveries.
#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// Shows a delivery and every attempt.
    Show {
        /// Its id.
        id: String,
    },
    /// Queues a delivery again from its first attempt (a dead letter, or
    /// one that succeeded and should run again).
    Retry {
        /// Its id.
        id: String,
    },
}

/// The server's deliveries: the essentials of each in a listing, the last
/// attempt's outcome included.
pub(crate) const DELIVERIES: Resource = Resource {
    path: "/deliveries",
    noun: "delivery",
    columns: &[
        ("ID", |d| cell(&d["id"])),
        ("STATE", |d| cell(&d["state"])),
        ("ATTEMPTS", |d| {
            d["attempts"].as_array().map_or(0, Vec::len).to_string()
        }),
        ("LAST", last_outcome),
        ("EVENT", |d| {
            let event = &d["event"];
            format!("{} {}", cell(&event["source"]), cell(&event["event"]))
        }),
        ("CREATED", |d| time_ms(&d["created_at_ms"])),
    ],
    describe,
};

/// Runs one verb.
pub async fn run(client: &Client, json: bool, command: DeliveriesCommand) -> anyhow::Result<()> {
    match command {
        DeliveriesCommand::Show { id } => DELIVERIES.show(client, json, &id).await,
        DeliveriesCommand::Retry { id } => {
            DELIVERIES
                .act(client, json, &id, "retry", |delivery| {
                    format!("delivery {id} is {}", cell(&delivery["state"]))
                })
                .await
        }
    }
}

/// The last attempt's status or error: `200`, `503 …`, `-` before any.
fn last_outcome(delivery: &Value) -> String {
    let Some(last) = delivery["attempts"].as_array().and_then(|a| a.last()) else {
        return "-".into();
    };
    outcome(last)
}

/// An attempt's status and error, whichever it has.
fn outcome(attempt: &Value) -> String {
    match (&attempt["status"], &attempt["error"]) {
        (Value::Null, Value::Null) if attempt["ok"] == true => "ok".into(),
        (Value::Null, error) => cell(error),
        (status, Value::Null) => cell(status),
        (status, error) => format!("{} {}", cell(status), cell(error)),
    }
}

/// A delivery for people: its fields, then a table of attempts.
fn describe(d: &Value) -> String {
    let mut out = details(&[
        ("id", cell(&d["id"])),
        ("hook", cell(&d["hook_id"])),
        ("state", cell(&d["state"])),
        (
            "event",
            format!(
                "{} {} ({})",
                cell(&d["event"]["source"]),
                cell(&d["event"]["event"]),
                cell(&d["event"]["id"])
            ),
        ),
        ("created", time_ms(&d["created_at_ms"])),
        ("next attempt", time_ms(&d["next_attempt_at_ms"])),
    ]);
    let mut attempts = Table::new(&["#", "AT", "LATENCY_MS", "OK", "OUTCOME"]);
    for a in d["attempts"].as_array().into_iter().flatten() {
        attempts.row(vec![
            cell(&a["number"]),
            time_ms(&a["at_ms"]),
            cell(&a["latency_ms"]),
            cell(&a["ok"]),
            outcome(a),
        ]);
    }
    out.push('\n');
    out.push_str(&attempts.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_last_attempt_tells_the_outcome() {
        let d = json!({"id": "d1", "state": "failed", "created_at_ms": 0,
            "event": {"source": "crud", "event": "consumers"},
            "attempts": [{"number": 1, "ok": false, "status": 503},
                         {"number": 2, "ok": false, "error": "connection refused"}]});
        let rendered = DELIVERIES.table(&[d]).render();
        let row = rendered.lines().nth(1).unwrap();
        assert!(row.contains("failed"), "{row}");
        assert!(row.contains("  2  "), "{row}");
        assert!(row.contains("connection refused"), "{row}");
        assert!(row.contains("crud consumers"), "{row}");
        assert_eq!(outcome(&json!({"ok": true})), "ok");
        assert_eq!(
            outcome(&json!({"ok": false, "status": 500, "error": "x"})),
            "500 x"
        );
    }
}
