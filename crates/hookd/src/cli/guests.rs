//! `hookd guests`: the lambda handler's guests on a running server.

use super::client::Client;
use super::print_record;
use super::resource::Resource;
use super::table::{Table, cell, details, time_s};
use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;
use std::path::PathBuf;

/// The verbs on a server's guests.
#[derive(Debug, Subcommand)]
pub enum GuestsCommand {
    /// Lists the uploaded guests.
    List,
    /// Shows a guest: kind, size, digest, imports, exports.
    Show {
        /// Its name (or id).
        name: String,
    },
    /// Uploads a guest, or a new version of one under the same name.
    Upload {
        /// The guest (`.wasm`): a component of world hookd:lambda or a
        /// WASI preview-1 command module.
        file: PathBuf,
        /// The name hooks will call it by; the file's name without its
        /// extension when left out.
        #[arg(long)]
        name: Option<String>,
    },
    /// Deletes a guest (refused while a hook uses it).
    Delete {
        /// Its name (or id).
        name: String,
    },
    /// What the guest imports and what the server's mode and ceiling
    /// would grant it.
    Audit {
        /// Its name (or id).
        name: String,
    },
}

/// The server's guests.
const GUESTS: Resource = Resource {
    path: "/guests",
    noun: "guest",
    columns: &[
        ("NAME", |g| cell(&g["name"])),
        ("KIND", |g| cell(&g["kind"])),
        ("SIZE", |g| cell(&g["size"])),
        ("DIGEST", |g| short_digest(&g["digest"])),
        ("UPDATED", |g| time_s(&g["updated_at"])),
    ],
    describe,
};

/// Runs one verb.
pub async fn run(client: &Client, json: bool, command: GuestsCommand) -> anyhow::Result<()> {
    match command {
        GuestsCommand::List => GUESTS.list(client, json).await,
        GuestsCommand::Show { name } => GUESTS.show(client, json, &name).await,
        GuestsCommand::Upload { file, name } => {
            let name = match name {
                Some(n) => n,
                None => file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .map(str::to_string)
                    .context("name the guest with --name")?,
            };
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let guest = client.upload_guest(&name, bytes).await?;
            GUESTS.print(json, &guest)
        }
        GuestsCommand::Delete { name } => GUESTS.delete(client, json, &name).await,
        GuestsCommand::Audit { name } => {
            let audit = client.get(&GUESTS.member(&name, "/audit")).await?;
            let title = cell(&audit["guest"]["name"]);
            print_record(json, &audit, |audit| describe_audit(&title, audit))
        }
    }
}

/// The first 12 hex digits, enough to tell guests apart in a table.
fn short_digest(digest: &Value) -> String {
    let text = cell(digest);
    text.chars().take(12).collect()
}

/// Strings of a JSON list joined with `, `; `none` when empty.
fn joined(list: &Value) -> String {
    let items: Vec<String> = list.as_array().into_iter().flatten().map(cell).collect();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// A guest for people: its fields, then its imports a line each.
fn describe(guest: &Value) -> String {
    let mut out = details(&[
        ("name", cell(&guest["name"])),
        ("id", cell(&guest["id"])),
        ("kind", cell(&guest["kind"])),
        ("size", cell(&guest["size"])),
        ("sha256", cell(&guest["digest"])),
        ("created_at", time_s(&guest["created_at"])),
        ("updated_at", time_s(&guest["updated_at"])),
        ("exports", joined(&guest["exports"])),
        ("capabilities", joined(&guest["capabilities"])),
        ("imports", String::new()),
    ]);
    for import in guest["imports"].as_array().into_iter().flatten() {
        out.push_str(&format!("  {}\n", cell(import)));
    }
    out
}

/// A guest's static audit for people, under `title`: its imports and their
/// classes, then what the server's mode and ceiling could grant it. A
/// class the guest imports but could not be granted is "unusable": it
/// reaches nothing (most standard libraries import `wasi:cli/environment`
/// and `wasi:filesystem` whether the code uses them or not); "denied" is
/// kept for items refused outright. `hookd guests audit` and the offline
/// `hookd guests inspect` both print it.
pub(crate) fn describe_audit(title: &str, audit: &Value) -> String {
    let guest = &audit["guest"];
    let mut out = format!(
        "{title}: {}\nsha256: {}\nimports:\n",
        cell(&guest["kind"]),
        cell(&guest["digest"])
    );
    let mut imports = Table::new(&["IMPORT", "CAPABILITY"]);
    for i in audit["imports"].as_array().into_iter().flatten() {
        imports.row(vec![cell(&i["import"]), cell(&i["capability"])]);
    }
    for line in imports.render().lines().skip(1) {
        out.push_str(&format!("  {line}\n"));
    }
    out.push_str(&format!(
        "capabilities: {}\n",
        joined(&audit["capabilities"])
    ));
    out.push_str(&format!(
        "under untrusted_wasm = {}:\n",
        cell(&audit["mode"])
    ));
    out.push_str(&format!(
        "  could be granted: {}\n",
        joined(&audit["would_grant"])
    ));
    let mut unusable = false;
    for w in audit["would_deny"].as_array().into_iter().flatten() {
        let line = match &w["item"] {
            Value::Null => {
                unusable = true;
                format!("unusable: {}", cell(&w["capability"]))
            }
            item => format!("denied: {} {}", cell(&w["capability"]), cell(item)),
        };
        out.push_str(&format!("  {line}: {}\n", cell(&w["reason"])));
    }
    if unusable {
        out.push_str(
            "  (an unusable import reaches nothing; standard libraries import \
             environment and filesystem interfaces whether used or not)\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_audit_reads_like_inspect() {
        let audit = json!({
            "guest": {"name": "t", "kind": "component", "digest": "ab"},
            "imports": [{"import": "wasi:http/types@0.2.0", "capability": "http"},
                        {"import": "wasi:io/streams@0.2.0", "capability": null}],
            "capabilities": ["http"], "mode": "sandbox", "would_grant": [],
            "would_deny": [{"capability": "http", "item": null, "reason": "no host is granted"},
                           {"capability": "http", "item": "a.example", "reason": "not in the ceiling"}]
        });
        assert_eq!(
            describe_audit("t", &audit),
            "t: component\nsha256: ab\nimports:\n  wasi:http/types@0.2.0  http\n  \
             wasi:io/streams@0.2.0  -\ncapabilities: http\nunder untrusted_wasm = sandbox:\n  \
             could be granted: none\n  unusable: http: no host is granted\n  \
             denied: http a.example: not in the ceiling\n  (an unusable import reaches nothing; \
             standard libraries import environment and filesystem interfaces whether used or \
             not)\n"
        );
    }
}
