//! `hookd quarantine`: stored records that do not decode, moved aside by
//! the server's loops; listed, shown, put back or deleted.

use super::client::Client;
use super::resource::Resource;
use super::table::{cell, details, time_ms};
use clap::Subcommand;
use serde_json::Value;

/// The verbs on quarantined records.
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// Lists quarantined records, oldest first.
    List,
    /// Shows a quarantined record, its error and its stored bytes.
    Show {
        /// Its id.
        id: String,
    },
    /// Puts a record back where it came from if it decodes now (after an
    /// upgrade); if it still does not, it stays with the new error.
    Retry {
        /// Its id.
        id: String,
    },
    /// Deletes a quarantined record for good.
    Delete {
        /// Its id.
        id: String,
    },
}

/// The server's quarantined records.
const QUARANTINE: Resource = Resource {
    path: "/quarantine",
    noun: "quarantined record",
    columns: &[
        ("ID", |r| cell(&r["id"])),
        ("ORIGIN", |r| cell(&r["origin"])),
        ("KEY", |r| cell(&r["key"])),
        ("SIZE", |r| cell(&r["size"])),
        ("QUARANTINED", |r| time_ms(&r["quarantined_at_ms"])),
        ("ERROR", |r| cell(&r["error"])),
    ],
    describe,
};

/// Runs one verb.
pub async fn run(client: &Client, json: bool, command: QuarantineCommand) -> anyhow::Result<()> {
    match command {
        QuarantineCommand::List => QUARANTINE.list(client, json).await,
        QuarantineCommand::Show { id } => QUARANTINE.show(client, json, &id).await,
        QuarantineCommand::Retry { id } => {
            QUARANTINE
                .act(client, json, &id, "retry", |record| {
                    format!(
                        "put back {} record {}",
                        cell(&record["origin"]),
                        cell(&record["key"])
                    )
                })
                .await
        }
        QuarantineCommand::Delete { id } => QUARANTINE.delete(client, json, &id).await,
    }
}

/// A record for people: its fields, then its bytes as text.
fn describe(r: &Value) -> String {
    let mut out = details(&[
        ("id", cell(&r["id"])),
        ("origin", cell(&r["origin"])),
        ("key", cell(&r["key"])),
        ("quarantined", time_ms(&r["quarantined_at_ms"])),
        ("error", cell(&r["error"])),
        ("size", cell(&r["size"])),
    ]);
    out.push('\n');
    out.push_str(&cell(&r["raw_text"]));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_reads_as_its_origin_key_and_error() {
        let r = json!({"id": "q1", "origin": "outbox", "key": "42", "size": 3,
            "quarantined_at_ms": 0, "error": "a stored value is corrupt: EOF",
            "raw_text": "{\"a"});
        let rendered = QUARANTINE.table(std::slice::from_ref(&r)).render();
        let row: Vec<&str> = rendered
            .lines()
            .nth(1)
            .unwrap()
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            row,
            [
                "q1",
                "outbox",
                "42",
                "3",
                "1970-01-01T00:00:00.000Z",
                "a stored value is corrupt: EOF"
            ]
        );
        let shown = describe(&r);
        let error = shown.lines().find(|l| l.starts_with("error:")).unwrap();
        assert!(
            error.ends_with(" a stored value is corrupt: EOF"),
            "{shown}"
        );
        assert!(shown.ends_with("\n{\"a\n"), "{shown}");
    }
}
