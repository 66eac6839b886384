//! `hookd hooks`: Kong's `/event-hooks` from the command line.

use super::client::{Client, encode};
use super::table::{Table, cell, details, indented_json, time_s};
use super::{deliveries, print_json, print_listing, print_record, read_document};
use clap::Subcommand;
use serde_json::Value;
use std::path::PathBuf;

/// The verbs on event hooks.
#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Lists the event hooks.
    List,
    /// Shows one event hook.
    Show {
        /// Its id.
        id: String,
    },
    /// Creates an event hook described in a file, in Kong's shape:
    /// `source`, `event`, `handler`, `on_change`, `snooze`, `config`.
    Create {
        /// The hook, as JSON (`.json`) or YAML; `-` reads standard input.
        #[arg(long, short)]
        file: PathBuf,
    },
    /// Deletes an event hook (succeeds when already gone, as Kong).
    Delete {
        /// Its id.
        id: String,
    },
    /// Runs the hook's handler once on the data in a file, as
    /// `POST /event-hooks/{id}/test`: nothing queued, nothing retried.
    Test {
        /// Its id.
        id: String,
        /// The event data, as JSON (`.json`) or YAML; `-` reads standard
        /// input.
        #[arg(long, short)]
        file: PathBuf,
    },
    /// Lists the hook's deliveries.
    Deliveries {
        /// Its id.
        id: String,
    },
}

/// Runs one verb.
pub async fn run(client: &Client, json: bool, command: HooksCommand) -> anyhow::Result<()> {
    match command {
        HooksCommand::List => {
            let hooks = client.list("/event-hooks").await?;
            print_listing(json, hooks, |hooks| {
                Table::of(
                    hooks,
                    &[
                        ("ID", |h| cell(&h["id"])),
                        ("SOURCE", |h| cell(&h["source"])),
                        ("EVENT", |h| cell(&h["event"])),
                        ("HANDLER", |h| cell(&h["handler"])),
                        ("ON_CHANGE", |h| cell(&h["on_change"])),
                        ("SNOOZE", |h| cell(&h["snooze"])),
                    ],
                )
            })?;
        }
        HooksCommand::Show { id } => {
            let hook = client.get(&format!("/event-hooks/{}", encode(&id))).await?;
            print_record(json, &hook, describe)?;
        }
        HooksCommand::Create { file } => {
            let body = read_document(&file)?;
            let hook = client.post("/event-hooks", &body).await?;
            print_record(json, &hook, describe)?;
        }
        HooksCommand::Delete { id } => {
            client
                .delete(&format!("/event-hooks/{}", encode(&id)))
                .await?;
            if !json {
                println!("deleted event hook {id}");
            }
        }
        HooksCommand::Test { id, file } => {
            let data = read_document(&file)?;
            let answer = client
                .post(&format!("/event-hooks/{}/test", encode(&id)), &data)
                .await?;
            // The handler's result is the interesting part; the data sent
            // is what the file says.
            print_json(if json { &answer } else { &answer["result"] })?;
        }
        HooksCommand::Deliveries { id } => {
            let list = client
                .list(&format!("/event-hooks/{}/deliveries", encode(&id)))
                .await?;
            print_listing(json, list, deliveries::table)?;
        }
    }
    Ok(())
}

/// One hook for people.
fn describe(hook: &Value) -> String {
    details(&[
        ("id", cell(&hook["id"])),
        ("created_at", time_s(&hook["created_at"])),
        ("source", cell(&hook["source"])),
        ("event", cell(&hook["event"])),
        ("handler", cell(&hook["handler"])),
        ("on_change", cell(&hook["on_change"])),
        ("snooze", cell(&hook["snooze"])),
        ("config", indented_json(&hook["config"])),
    ])
}
