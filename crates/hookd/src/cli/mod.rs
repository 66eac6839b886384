//! The client side of `hookd`: verbs that talk to a running server's
//! Admin API (hooks, guests, deliveries, quarantine, audit) and the declarative
//! `dump` and `apply`. Each verb group is one module; they share the
//! [`client::Client`], the verbs every collection has ([`resource`]), the
//! [`table`] output and [`read_document`].

pub mod apply;
pub mod audit;
mod client;
mod declarative;
pub mod deliveries;
pub mod dump;
pub mod guests;
pub mod hooks;
pub mod quarantine;
mod resource;
mod table;

use anyhow::Context;
use client::Client;
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use table::Table;

/// Where the server is and how to talk to it: global options, so they go
/// before or after the verb (`serve` and `config` ignore them).
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// The server's Admin API.
    #[arg(
        long,
        global = true,
        env = "HOOKD_URL",
        default_value = "http://127.0.0.1:8001"
    )]
    pub url: String,
    /// RBAC token, sent as the `Kong-Admin-Token` header.
    #[arg(long, global = true, env = "HOOKD_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Prints JSON instead of text: the server's answer (a list: every
    /// page, as one `{"data": [...]}`), a JSON dump, apply's report.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A client verb, as parsed.
pub enum Verb {
    /// `hookd hooks ...`.
    Hooks(hooks::HooksCommand),
    /// `hookd guests ...` (but `inspect`, which is offline).
    Guests(guests::GuestsCommand),
    /// `hookd deliveries ...`.
    Deliveries(deliveries::DeliveriesCommand),
    /// `hookd quarantine ...`.
    Quarantine(quarantine::QuarantineCommand),
    /// `hookd audit`.
    Audit(audit::AuditArgs),
    /// `hookd dump`.
    Dump(dump::DumpArgs),
    /// `hookd apply`.
    Apply(apply::ApplyArgs),
}

/// Runs a client verb to completion; errors go to stderr, exit code 1.
pub fn run(args: &ClientArgs, verb: Verb) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(dispatch(args, verb)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(args: &ClientArgs, verb: Verb) -> anyhow::Result<()> {
    let client = Client::new(&args.url, args.token.as_deref())?;
    let json = args.json;
    match verb {
        Verb::Hooks(command) => hooks::run(&client, json, command).await,
        Verb::Guests(command) => guests::run(&client, json, command).await,
        Verb::Deliveries(command) => deliveries::run(&client, json, command).await,
        Verb::Quarantine(command) => quarantine::run(&client, json, command).await,
        Verb::Audit(filter) => audit::run(&client, json, filter).await,
        Verb::Dump(dump) => dump::run(&client, json, dump).await,
        Verb::Apply(apply) => apply::run(&client, json, apply).await,
    }
}

/// Reads a JSON or YAML document: JSON when the name ends in `.json`,
/// YAML otherwise (which reads JSON too); `-` is standard input.
pub(crate) fn read_document(path: &Path) -> anyhow::Result<Value> {
    let (text, name) = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        (text, String::from("standard input"))
    } else {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        (text, path.display().to_string())
    };
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        serde_json::from_str(&text).with_context(|| format!("{name} is not valid JSON"))
    } else {
        serde_norway::from_str(&text).with_context(|| format!("{name} is not valid YAML"))
    }
}

/// Prints a JSON value, pretty.
pub(crate) fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints a listing: one `{"data": [...]}` with `--json`, else the table
/// `layout` makes of it.
pub(crate) fn print_listing(
    json: bool,
    items: Vec<Value>,
    layout: impl Fn(&[Value]) -> Table,
) -> anyhow::Result<()> {
    if json {
        return print_json(&serde_json::json!({ "data": items }));
    }
    print!("{}", layout(&items).render());
    Ok(())
}

/// Prints one record: the server's JSON with `--json`, else as `describe`
/// lays it out for people.
pub(crate) fn print_record(
    json: bool,
    record: &Value,
    describe: impl Fn(&Value) -> String,
) -> anyhow::Result<()> {
    if json {
        return print_json(record);
    }
    print!("{}", describe(record));
    Ok(())
}
