//! `hookd dump`: everything a server holds as one declarative document,
//! ids kept, server-set timestamps and whatever the server would fill in by
//! itself (defaults, nulls) left out, and each guest's bytes in a file
//! beside it.

use super::client::{Client, encode};
use super::declarative::{Document, Entity, GuestFile, Section, sections, without_server_set};
use anyhow::{Context, bail};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Where the dump goes.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes every gateway entity (services, routes, consumers, consumer_groups,
upstreams and their targets, plugins, certificates, admins), every event hook
and every guest, in the Admin API's own shape with their ids, so that
`hookd apply -f FILE` on an empty server makes the same entities with the same
ids. Left out is what the server sets or fills in by itself: created_at,
updated_at, and members equal to their default or null where that is what
leaving them out gives.

Guests are written as files, `guests/NAME.wasm` beside the document (in the
current directory when the document goes to standard output), and named in the
document by that relative path.")]
pub struct DumpArgs {
    /// The file to write (YAML, or JSON with `--json`); standard output
    /// when left out.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Dumps the server.
pub async fn run(client: &Client, json: bool, args: DumpArgs) -> anyhow::Result<()> {
    // Guest files are named relative to the document's directory.
    let dir = match &args.output {
        Some(file) => file.parent().map(Path::to_path_buf).unwrap_or_default(),
        None => PathBuf::new(),
    };
    let mut doc = Document::default();
    for section in sections() {
        match section {
            Section::Kind(kind) => {
                let mut entities: Vec<Entity> = kind
                    .list(client)
                    .await?
                    .into_iter()
                    .map(|mut e| {
                        without_server_set(&mut e);
                        kind.compact(&e)
                    })
                    .collect();
                // Sorted by id: the same server state, the same document.
                entities.sort_by(|a, b| id_of(a).cmp(&id_of(b)));
                doc.entities.insert(kind.name(), entities);
            }
            Section::Guests => doc.guests = Some(dump_guests(client, &dir).await?),
        }
    }
    let text = if json {
        serde_json::to_string_pretty(&doc.to_json())? + "\n"
    } else {
        doc.to_yaml()?
    };
    match &args.output {
        Some(file) => {
            std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn id_of(entity: &Entity) -> Option<&str> {
    entity.get("id").and_then(Value::as_str)
}

/// Downloads every guest into `<dir>/guests/<name>.wasm`.
async fn dump_guests(client: &Client, dir: &Path) -> anyhow::Result<Vec<GuestFile>> {
    let mut guests = client.list("/guests").await?;
    guests.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut files = Vec::with_capacity(guests.len());
    for guest in guests {
        let (Some(id), Some(name), Some(digest)) = (
            guest["id"].as_str(),
            guest["name"].as_str(),
            guest["digest"].as_str(),
        ) else {
            bail!("the server listed a guest without id, name or digest: {guest}");
        };
        // The name becomes a file name: only what the server accepts in
        // names, so that no answer can write outside the guests directory.
        let safe = name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '~'));
        if !safe || name.is_empty() {
            bail!("the server listed a guest named {name:?}, which cannot be a file name");
        }
        // By id: a name kept from before names were checked as path
        // segments (`..`) would not reach its guest.
        let bytes = client
            .get_bytes(&format!("/guests/{}/wasm", encode(id)))
            .await?;
        // The record and the bytes are two requests: a new version
        // uploaded in between would pair the old digest with new bytes.
        if hex::encode(Sha256::digest(&bytes)) != digest {
            bail!("guest {name} changed during the dump; dump again");
        }
        let file = PathBuf::from("guests").join(format!("{name}.wasm"));
        let path = dir.join(&file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(GuestFile {
            name: name.to_string(),
            file,
        });
    }
    Ok(files)
}
