//! What a Rust project carries of hookd's repository: the guest SDK
//! (`guest-examples/sdk/`, crate `hookd-guest`, not on crates.io) and a
//! `Cargo.lock` with the versions hookd's own guests are built with.
//! Both are embedded from the repository when hookd is built, so a project
//! gets exactly the SDK of the `hookd` that wrote it; the tests below fail
//! when the SDK gains a file this list misses, or when the workspace
//! settings the SDK inherits drift from `guest-examples/Cargo.toml`.

use super::File;

/// The SDK's files, by their path inside it, except `wit/lambda.wit`:
/// that is [`hookd_sandbox::WIT`], which `.ci/check-guest-wit` keeps
/// identical to the SDK's copy.
const SDK: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../../guest-examples/sdk/Cargo.toml"),
    ),
    (
        "README.md",
        include_str!("../../../../guest-examples/sdk/README.md"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../../guest-examples/sdk/src/lib.rs"),
    ),
    (
        "src/http.rs",
        include_str!("../../../../guest-examples/sdk/src/http.rs"),
    ),
];

/// Where the SDK's WIT sits inside it (the path `wit_bindgen::generate!` reads).
const SDK_WIT: &str = "wit/lambda.wit";

/// The lock of hookd's guest workspace: the SDK's dependency graph, plus
/// the repository's guests.
const GUESTS_LOCK: &str = include_str!("../../../../guest-examples/Cargo.lock");

/// Separates the packages of a `Cargo.lock`.
const PACKAGE: &str = "\n[[package]]\n";

/// The SDK as written into a project, under `dir`.
pub(super) fn sdk_files(dir: &str) -> Vec<File> {
    SDK.iter()
        .map(|(path, text)| File::new(format!("{dir}/{path}"), *text))
        .chain([File::new(format!("{dir}/{SDK_WIT}"), hookd_sandbox::WIT)])
        .collect()
}

/// The `name = "..."` of a lock's package entry.
fn package_name(entry: &str) -> Option<&str> {
    entry
        .lines()
        .next()?
        .strip_prefix("name = \"")?
        .strip_suffix('"')
}

/// The entries a project keeps: the registry's crates and the SDK itself,
/// not the repository's guests.
fn kept_entries() -> impl Iterator<Item = &'static str> {
    GUESTS_LOCK.split(PACKAGE).skip(1).filter(|entry| {
        entry.lines().any(|l| l.starts_with("source = "))
            || package_name(entry) == Some("hookd-guest")
    })
}

/// The names of the packages a project depends on (the SDK included):
/// its own name must differ from all of them.
pub(super) fn dependency_names() -> impl Iterator<Item = &'static str> {
    kept_entries().filter_map(package_name)
}

/// The project's `Cargo.lock`: the entries of hookd's guest workspace that
/// the SDK needs and the project's own, in cargo's order (by name), as
/// cargo itself writes it, so that the first build uses these versions and
/// leaves the file as it is.
pub(super) fn cargo_lock(name: &str) -> String {
    let header = GUESTS_LOCK.split(PACKAGE).next().unwrap_or_default();
    let own =
        format!("name = \"{name}\"\nversion = \"0.1.0\"\ndependencies = [\n \"hookd-guest\",\n]\n");
    let mut entries: Vec<&str> = kept_entries().collect();
    let at = entries.partition_point(|e| package_name(e).is_some_and(|n| n < name));
    entries.insert(at, &own);
    let mut lock = header.to_string();
    for entry in entries {
        lock.push_str(PACKAGE);
        lock.push_str(entry);
    }
    lock
}

#[cfg(test)]
mod tests {
    use super::super::tests::{repo_file, written as tree};
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    #[test]
    fn the_embedded_sdk_is_every_file_of_guest_examples_sdk() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-examples/sdk");
        let embedded: BTreeSet<String> = sdk_files("sdk")
            .into_iter()
            .map(|f| f.path.strip_prefix("sdk/").unwrap().to_string())
            .collect();
        assert_eq!(
            tree(&sdk),
            embedded,
            "guest-examples/sdk/ and the SDK `hookd guests new` writes differ: list the SDK's files in scaffold/rust.rs's SDK"
        );
        for file in sdk_files("sdk") {
            assert_eq!(
                file.text,
                repo_file(&format!("guest-examples/{}", file.path)),
                "{}",
                file.path
            );
        }
    }

    fn toml(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    /// What the SDK's Cargo.toml inherits, and the release profile, are
    /// those hookd's guests are built with.
    #[test]
    fn the_project_workspace_is_the_guest_workspace() {
        let project = toml(
            &super::super::templates::files("hello", super::super::Lang::Rust)
                .into_iter()
                .find(|f| f.path == "Cargo.toml")
                .unwrap()
                .text,
        );
        let guests = toml(&repo_file("guest-examples/Cargo.toml"));
        for section in ["package", "lints"] {
            assert_eq!(
                project["workspace"][section], guests["workspace"][section],
                "[workspace.{section}]"
            );
        }
        // Overrides for one of hookd's own guests (`transform` is built
        // for speed) are not a new project's.
        let mut profile = guests["profile"].clone();
        profile["release"].as_table_mut().unwrap().remove("package");
        assert_eq!(project["profile"], profile);
        let mut deps = guests["workspace"]["dependencies"]
            .as_table()
            .unwrap()
            .clone();
        deps["hookd-guest"]["path"] = "hookd-guest".into();
        assert_eq!(
            project["workspace"]["dependencies"].as_table().unwrap(),
            &deps
        );
        assert_eq!(project["package"]["name"].as_str(), Some("hello"));
    }

    #[test]
    fn the_lock_has_the_sdk_graph_and_the_project_in_order() {
        let lock = cargo_lock("hello");
        let parsed = toml(&lock);
        let names: Vec<&str> = parsed["package"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "cargo's order");
        for name in [
            "hello",
            "hookd-guest",
            "wit-bindgen",
            "wasip2",
            "serde_json",
        ] {
            assert!(names.contains(&name), "{name}");
        }
        // The repository's guests are not the project's.
        for guest in ["transform", "counter", "noop"] {
            assert!(!names.contains(&guest), "{guest}");
        }
        assert!(lock.starts_with("# This file is automatically @generated by Cargo."));
        assert!(lock.contains(
            "\n[[package]]\nname = \"hello\"\nversion = \"0.1.0\"\ndependencies = [\n \"hookd-guest\",\n]\n\n[[package]]\nname = \"hookd-guest\"\n"
        ));
        // Every registry crate is kept, with its checksum.
        assert_eq!(
            lock.matches("source = \"registry+").count(),
            GUESTS_LOCK.matches("source = \"registry+").count()
        );
        // First and last places.
        assert!(cargo_lock("aaa").contains("version = 4\n\n[[package]]\nname = \"aaa\""));
        assert!(cargo_lock("zzzz").ends_with("dependencies = [\n \"hookd-guest\",\n]\n"));
    }
}
