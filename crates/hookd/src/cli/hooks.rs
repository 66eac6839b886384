//! `hookd hooks`: Kong's `/event-hooks` from the command line.

use super::client::Client;
use super::deliveries::DELIVERIES;
use super::resource::Resource;
use super::table::{cell, details, indented_json, time_s};
use super::{print_json, print_listing, read_document};
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
    /// `source`, `event`, `handler`, `on_change`, `snooze`, `config`, and
    /// hookd's `condition`.
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
    /// Runs the hook's handler once on the data in a file (when its
    /// condition, if it has one, holds for it), as
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

/// The server's event hooks.
const HOOKS: Resource = Resource {
    path: "/event-hooks",
    noun: "event hook",
    columns: &[
        ("ID", |h| cell(&h["id"])),
        ("SOURCE", |h| cell(&h["source"])),
        ("EVENT", |h| cell(&h["event"])),
        ("HANDLER", |h| cell(&h["handler"])),
        ("ON_CHANGE", |h| cell(&h["on_change"])),
        ("SNOOZE", |h| cell(&h["snooze"])),
    ],
    describe,
};

/// Runs one verb.
pub async fn run(client: &Client, json: bool, command: HooksCommand) -> anyhow::Result<()> {
    match command {
        HooksCommand::List => HOOKS.list(client, json).await,
        HooksCommand::Show { id } => HOOKS.show(client, json, &id).await,
        HooksCommand::Create { file } => {
            let body = read_document(&file)?;
            let hook = client.post(HOOKS.path, &body).await?;
            HOOKS.print(json, &hook)
        }
        HooksCommand::Delete { id } => HOOKS.delete(client, json, &id).await,
        HooksCommand::Test { id, file } => {
            let data = read_document(&file)?;
            let answer = client.post(&HOOKS.member(&id, "/test"), &data).await?;
            if !json && answer["condition"] == false {
                println!("{}", condition_refused(&answer));
                return Ok(());
            }
            // The handler's result is the interesting part; the data sent
            // is what the file says.
            print_json(if json { &answer } else { &answer["result"] })
        }
        HooksCommand::Deliveries { id } => {
            let list = client.list(&HOOKS.member(&id, "/deliveries")).await?;
            print_listing(json, list, |list| DELIVERIES.table(list))
        }
    }
}

/// What `/test` answered for people when the hook's condition did not
/// hold, so its handler did not run.
fn condition_refused(answer: &Value) -> String {
    match answer["condition_error"].as_str() {
        Some(error) => format!("the condition failed ({error}): the handler did not run"),
        None => "the condition did not hold: the handler did not run".to_string(),
    }
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
        ("condition", cell(&hook["condition"])),
        ("enabled", cell(&hook["enabled"])),
        ("concurrency", cell(&hook["concurrency"])),
        ("rate_limit", cell(&hook["rate_limit"])),
        ("config", indented_json(&hook["config"])),
    ])
}
