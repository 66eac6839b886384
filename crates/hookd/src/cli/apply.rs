//! `hookd apply`: makes a server hold what a declarative document says,
//! writing only what differs, so that applying a document twice writes
//! nothing the second time (no write, so no crud event either).

use super::client::{Client, encode};
use super::declarative::{
    Document, Entity, GuestFile, Kind, Section, label, sections, without_server_set,
};
use super::{print_json, read_document};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What to apply, and how.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Sections are applied in dependency order: certificates, services, routes,
consumers, consumer_groups, upstreams, targets, plugins, admins, guests,
event_hooks. Each entity is written with PUT at its id (targets under their
upstream), which creates it or replaces it whole: what the file leaves out of
an entity takes its default. An entity without an id is matched with the
server's by a unique field (name, username, a target within its upstream, a
plugin's name and scope), else by equal content; a new one gets a fresh id.

Nothing is written for an entity equal to the server's (created_at and
updated_at aside; defaults and shorthands such as a service's url are expanded
before comparing), nor for a guest whose sha256 is the server's digest for
that name: applying the same file twice changes nothing.

What the server has and the file leaves out stays, unless --prune is given:
then it is deleted, but only in the sections the file has (an empty list
counts; a section left out is left alone), after every other write, in reverse
dependency order.")]
pub struct ApplyArgs {
    /// The document, as `hookd dump` writes it (YAML, or JSON when the
    /// name ends in `.json`); `-` reads standard input, with guest files
    /// relative to the current directory.
    #[arg(long, short)]
    file: PathBuf,
    /// Also deletes what the file's sections leave out.
    #[arg(long)]
    prune: bool,
    /// Prints what would change and writes nothing.
    #[arg(long)]
    dry_run: bool,
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    /// The action in words: as named in the JSON report, as a failed
    /// change is introduced, as a change made is listed, and as a change
    /// planned by `--dry-run` is listed.
    fn words(self) -> [&'static str; 4] {
        match self {
            Action::Create => ["create", "creating", "created", "would create"],
            Action::Update => ["update", "updating", "updated", "would update"],
            Action::Delete => ["delete", "deleting", "deleted", "would delete"],
        }
    }

    fn name(self) -> &'static str {
        self.words()[0]
    }

    fn doing(self) -> &'static str {
        self.words()[1]
    }

    fn done(self) -> &'static str {
        self.words()[2]
    }

    fn planned(self) -> &'static str {
        self.words()[3]
    }
}

/// The request a change makes.
#[derive(Debug)]
enum Write {
    Put { path: String, body: Value },
    Upload { name: String, bytes: Vec<u8> },
    Delete { path: String },
}

/// One change to the server.
#[derive(Debug)]
struct Change {
    action: Action,
    section: &'static str,
    /// The entity's id, or a guest's name.
    key: String,
    label: String,
    write: Write,
}

impl Change {
    fn describe(&self, verb: &str) -> String {
        let text = format!("{verb} {} {}", self.section, self.key);
        if self.label.is_empty() || self.label == self.key {
            text
        } else {
            format!("{text} ({})", self.label)
        }
    }
}

/// What one section comes to.
#[derive(Debug, Default)]
struct SectionPlan {
    upserts: Vec<Change>,
    deletes: Vec<Change>,
    unchanged: usize,
}

/// Applies the document.
pub async fn run(client: &Client, json: bool, args: ApplyArgs) -> anyhow::Result<()> {
    let doc = Document::from_value(read_document(&args.file)?)
        .with_context(|| format!("{} is not a hookd document", args.file.display()))?;
    // Guest files are named relative to the document.
    let base = if args.file.as_os_str() == "-" {
        PathBuf::new()
    } else {
        args.file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    };

    // Everything is compared before anything is written: a document that
    // cannot be planned (a guest file missing) changes nothing.
    let mut plans = Vec::new();
    for section in sections() {
        let plan = match section {
            Section::Kind(kind) => match doc.entities.get(kind.name()) {
                Some(desired) => plan_kind(kind, desired, kind.list(client).await?, args.prune)?,
                None => continue,
            },
            Section::Guests => match &doc.guests {
                Some(guests) => plan_guests(client, guests, &base, args.prune).await?,
                None => continue,
            },
        };
        plans.push(plan);
    }
    let unchanged: usize = plans.iter().map(|p| p.unchanged).sum();
    let mut changes = Vec::new();
    let mut deletes = Vec::new();
    for plan in plans {
        changes.extend(plan.upserts);
        deletes.push(plan.deletes);
    }
    // Deletes last, dependents first: a route goes before its service.
    changes.extend(deletes.into_iter().rev().flatten());

    for change in &changes {
        if !args.dry_run {
            write(client, change)
                .await
                .with_context(|| change.describe(change.action.doing()))?;
        }
        if !json {
            let verb = if args.dry_run {
                change.action.planned()
            } else {
                change.action.done()
            };
            println!("{}", change.describe(verb));
        }
    }

    let count = |a: Action| changes.iter().filter(|c| c.action == a).count();
    let (created, updated, deleted) = (
        count(Action::Create),
        count(Action::Update),
        count(Action::Delete),
    );
    if json {
        let list: Vec<Value> = changes
            .iter()
            .map(|c| {
                json!({"action": c.action.name(), "section": c.section,
                       "key": c.key, "label": c.label})
            })
            .collect();
        return print_json(&json!({
            "dry_run": args.dry_run, "created": created, "updated": updated,
            "unchanged": unchanged, "deleted": deleted, "changes": list,
        }));
    }
    let prefix = if args.dry_run {
        "dry run, nothing written: "
    } else {
        ""
    };
    println!(
        "{prefix}created {created}, updated {updated}, unchanged {unchanged}, deleted {deleted}"
    );
    Ok(())
}

async fn write(client: &Client, change: &Change) -> anyhow::Result<()> {
    match &change.write {
        Write::Put { path, body } => client.put(path, body).await.map(drop)?,
        Write::Upload { name, bytes } => {
            client.upload_guest(name, bytes.clone()).await.map(drop)?
        }
        Write::Delete { path } => client.delete(path).await?,
    }
    Ok(())
}

/// An entity the server has, with what is compared of it.
struct Existing {
    id: String,
    entity: Entity,
    compared: Entity,
}

/// Compares one section's entities with the server's.
fn plan_kind(
    kind: Kind,
    desired: &[Entity],
    existing: Vec<Entity>,
    prune: bool,
) -> anyhow::Result<SectionPlan> {
    let section = kind.name();
    let existing: Vec<Existing> = existing
        .into_iter()
        .filter_map(|entity| {
            let id = entity.get("id")?.as_str()?.to_string();
            let mut compared = entity.clone();
            compared.remove("id");
            without_server_set(&mut compared);
            Some(Existing {
                id,
                entity,
                compared,
            })
        })
        .collect();
    let mut plan = SectionPlan::default();
    let mut claimed = HashSet::new();
    for (i, entity) in desired.iter().enumerate() {
        let given_id = entity.get("id").and_then(Value::as_str);
        let canonical = kind.canonical(entity);
        let found = match given_id {
            Some(id) => existing.iter().find(|e| e.id == id),
            None => matching(kind, &canonical, &existing, &claimed),
        };
        let id = given_id
            .map(str::to_string)
            .or_else(|| found.map(|e| e.id.clone()))
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let label = label(entity);
        if !claimed.insert(id.clone()) {
            bail!("{section}[{i}] ({label}) is the same entity as an earlier one: {id}");
        }
        let action = match found {
            Some(e) if kind.unchanged(entity, &canonical, &e.compared) => {
                plan.unchanged += 1;
                continue;
            }
            Some(_) => Action::Update,
            None => Action::Create,
        };
        let mut body = entity.clone();
        without_server_set(&mut body);
        plan.upserts.push(Change {
            action,
            section,
            label,
            write: Write::Put {
                path: kind.member_path(entity, &id)?,
                body: Value::Object(body),
            },
            key: id,
        });
    }
    if prune {
        for e in existing.iter().filter(|e| !claimed.contains(&e.id)) {
            plan.deletes.push(Change {
                action: Action::Delete,
                section,
                key: e.id.clone(),
                label: label(&e.entity),
                write: Write::Delete {
                    path: kind.member_path(&e.entity, &e.id)?,
                },
            });
        }
    }
    Ok(plan)
}

/// The server's entity that one written without an id stands for: the
/// one sharing a unique key's values, else one equal in content.
fn matching<'a>(
    kind: Kind,
    canonical: &Entity,
    existing: &'a [Existing],
    claimed: &HashSet<String>,
) -> Option<&'a Existing> {
    let value = |e: &Entity, field: &str| e.get(field).filter(|v| !v.is_null()).cloned();
    let free = || existing.iter().filter(|e| !claimed.contains(&e.id));
    kind.unique_keys()
        .into_iter()
        .find_map(|(fields, nulls_count)| {
            let wanted: Vec<Option<Value>> = fields.iter().map(|f| value(canonical, f)).collect();
            // A unique name left unset names nothing; a plugin's null
            // scope (global) does.
            if !nulls_count && wanted.iter().any(Option::is_none) {
                return None;
            }
            free().find(|e| {
                fields
                    .iter()
                    .zip(&wanted)
                    .all(|(f, w)| value(&e.compared, f) == *w)
            })
        })
        .or_else(|| free().find(|e| e.compared == *canonical))
}

/// Compares the guests' files with the server's digests.
async fn plan_guests(
    client: &Client,
    guests: &[GuestFile],
    base: &Path,
    prune: bool,
) -> anyhow::Result<SectionPlan> {
    let digests: HashMap<String, String> = client
        .list("/guests")
        .await?
        .into_iter()
        .filter_map(|g| Some((g["name"].as_str()?.into(), g["digest"].as_str()?.into())))
        .collect();
    let mut plan = SectionPlan::default();
    let mut named = HashSet::new();
    for (i, guest) in guests.iter().enumerate() {
        if !named.insert(guest.name.as_str()) {
            bail!("guests[{i}]: {} is in the file twice", guest.name);
        }
        let path = base.join(&guest.file);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("guests[{i}] ({}): reading {}", guest.name, path.display()))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let action = match digests.get(&guest.name) {
            Some(d) if *d == digest => {
                plan.unchanged += 1;
                continue;
            }
            Some(_) => Action::Update,
            None => Action::Create,
        };
        plan.upserts.push(Change {
            action,
            section: "guests",
            key: guest.name.clone(),
            label: String::new(),
            write: Write::Upload {
                name: guest.name.clone(),
                bytes,
            },
        });
    }
    if prune {
        let mut gone: Vec<&String> = digests
            .keys()
            .filter(|n| !named.contains(n.as_str()))
            .collect();
        gone.sort();
        for name in gone {
            plan.deletes.push(Change {
                action: Action::Delete,
                section: "guests",
                key: name.clone(),
                label: String::new(),
                write: Write::Delete {
                    path: format!("/guests/{}", encode(name)),
                },
            });
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> Kind {
        match sections().into_iter().find(|s| s.name() == name) {
            Some(Section::Kind(k)) => k,
            _ => panic!("no kind {name}"),
        }
    }

    fn entity(v: Value) -> Entity {
        v.as_object().cloned().unwrap()
    }

    fn server(kind: Kind, items: Vec<Value>) -> Vec<Entity> {
        // What the server would answer: the canonical form with an id and
        // timestamps.
        items
            .into_iter()
            .map(|v| {
                let e = entity(v);
                let mut stored = kind.canonical(&e);
                stored.insert("id".into(), e["id"].clone());
                stored.insert("created_at".into(), json!(1));
                stored.insert("updated_at".into(), json!(2));
                stored
            })
            .collect()
    }

    const S1: &str = "5f1c8a4e-0000-4000-8000-000000000001";
    const S2: &str = "5f1c8a4e-0000-4000-8000-000000000002";

    #[test]
    fn equal_entities_are_left_alone_and_others_put() {
        let services = kind("services");
        let existing = server(
            services,
            vec![
                json!({"id": S1, "name": "a", "host": "a.internal"}),
                json!({"id": S2, "name": "b", "host": "b.internal"}),
            ],
        );
        let desired = vec![
            // Same as stored, written with a shorthand and no defaults.
            entity(json!({"id": S1, "name": "a", "url": "http://a.internal"})),
            // No id: found by its name, and changed.
            entity(json!({"name": "b", "host": "b2.internal"})),
            entity(json!({"name": "c", "host": "c.internal"})),
        ];
        let plan = plan_kind(services, &desired, existing, false).unwrap();
        assert_eq!(plan.unchanged, 1);
        let actions: Vec<(Action, &str)> = plan
            .upserts
            .iter()
            .map(|c| (c.action, c.label.as_str()))
            .collect();
        assert_eq!(actions, [(Action::Update, "b"), (Action::Create, "c")]);
        let Write::Put { path, body } = &plan.upserts[0].write else {
            panic!("expected a put");
        };
        assert_eq!(path, &format!("/services/{S2}"));
        assert_eq!(body["host"], "b2.internal");
        assert!(plan.deletes.is_empty());
    }

    #[test]
    fn prune_deletes_what_the_file_leaves_out() {
        let consumers = kind("consumers");
        let existing = server(
            consumers,
            vec![
                json!({"id": S1, "username": "alice"}),
                json!({"id": S2, "username": "bob"}),
            ],
        );
        let desired = vec![entity(json!({"username": "alice"}))];
        let plan = plan_kind(consumers, &desired, existing.clone(), true).unwrap();
        assert_eq!(plan.unchanged, 1);
        assert_eq!(plan.deletes.len(), 1);
        assert_eq!(plan.deletes[0].key, S2);
        let plan = plan_kind(consumers, &desired, existing, false).unwrap();
        assert!(plan.deletes.is_empty());
    }

    #[test]
    fn entities_without_unique_fields_match_by_content() {
        let existing = server(
            Kind::Hooks,
            vec![json!({"id": S1, "source": "crud", "handler": "log", "config": {}})],
        );
        let same = vec![entity(
            json!({"source": "crud", "handler": "log", "config": {}}),
        )];
        let plan = plan_kind(Kind::Hooks, &same, existing.clone(), true).unwrap();
        assert_eq!(
            (plan.unchanged, plan.upserts.len(), plan.deletes.len()),
            (1, 0, 0)
        );
        let other = vec![entity(
            json!({"source": "dao:crud", "handler": "log", "config": {}}),
        )];
        let plan = plan_kind(Kind::Hooks, &other, existing, true).unwrap();
        assert_eq!(plan.upserts[0].action, Action::Create);
        assert_eq!(plan.deletes[0].key, S1);
    }

    #[test]
    fn an_entity_twice_in_the_file_is_refused() {
        let desired = vec![
            entity(json!({"id": S1, "username": "a"})),
            entity(json!({"id": S1, "username": "b"})),
        ];
        let err = plan_kind(kind("consumers"), &desired, Vec::new(), false).unwrap_err();
        assert!(err.to_string().contains("consumers[1] (b)"), "{err}");
    }

    #[test]
    fn targets_are_put_under_their_upstream_and_matched_with_the_default_port() {
        let targets = kind("targets");
        let existing = server(
            targets,
            vec![json!({"id": S1, "upstream": {"id": S2}, "target": "10.0.0.1:8000"})],
        );
        let desired = vec![entity(
            json!({"upstream": {"id": S2}, "target": "10.0.0.1", "weight": 5}),
        )];
        let plan = plan_kind(targets, &desired, existing, false).unwrap();
        let Write::Put { path, .. } = &plan.upserts[0].write else {
            panic!("expected a put");
        };
        assert_eq!(plan.upserts[0].action, Action::Update);
        assert_eq!(path, &format!("/upstreams/{S2}/targets/{S1}"));
    }
}
