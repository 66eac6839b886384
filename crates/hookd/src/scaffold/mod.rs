//! `hookd guests new NAME --lang LANG`: writes a guest project that builds
//! as it is, offline. Everything it writes is embedded in the binary (the
//! templates under `templates/`, the WIT, the Rust guest SDK), because it
//! runs on a guest author's machine, not in hookd's repository.

mod name;
mod rust;
mod templates;

use anyhow::Context;
use std::path::{Path, PathBuf};

pub use name::validate;

/// The languages a project can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A component built with cargo and the guest SDK `hookd-guest`.
    Rust,
    /// A WASI preview-1 command built with clang and wasi-libc.
    C,
    /// A component built with componentize-py.
    Python,
    /// A component built with componentize-js.
    Js,
}

impl Lang {
    /// As `--lang` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }
}

/// One file of a project: its path inside the project, its text, and
/// whether it is a script to run.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub path: String,
    pub text: String,
    pub executable: bool,
}

impl File {
    fn new(path: impl Into<String>, text: impl Into<String>) -> File {
        File {
            path: path.into(),
            text: text.into(),
            executable: false,
        }
    }

    fn script(path: impl Into<String>, text: impl Into<String>) -> File {
        File {
            executable: true,
            ..File::new(path, text)
        }
    }
}

/// Writes the project `parent/name/` and tells how to build it.
pub fn run(parent: &Path, name: &str, lang: Lang) -> anyhow::Result<()> {
    let dir = create(parent, name, lang)?;
    println!(
        "created {} ({} guest); build it with: {}/build.sh",
        dir.display(),
        lang.as_str(),
        dir.display()
    );
    Ok(())
}

/// Writes the project `parent/name/`, refusing a directory that exists
/// and is not empty; answers the project's directory.
pub fn create(parent: &Path, name: &str, lang: Lang) -> anyhow::Result<PathBuf> {
    validate(name, lang)?;
    let dir = parent.join(name);
    let created = claim(&dir)?;
    let files = templates::files(name, lang);
    if let Err(e) = write_all(&dir, &files) {
        // Leave nothing half-written behind in a directory this run made.
        if created {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return Err(e);
    }
    Ok(dir)
}

/// Makes sure `dir` is an empty directory; answers whether it was created.
fn claim(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            anyhow::ensure!(
                entries.next().is_none(),
                "{} exists and is not empty: choose another name, or another parent with --dir",
                dir.display()
            );
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            Ok(true)
        }
        Err(e) => {
            Err(e).with_context(|| format!("{} cannot be used as the project", dir.display()))
        }
    }
}

fn write_all(dir: &Path, files: &[File]) -> anyhow::Result<()> {
    for file in files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, &file.text).with_context(|| format!("writing {}", path.display()))?;
        if file.executable {
            make_executable(&path)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const ALL: [Lang; 4] = [Lang::Rust, Lang::C, Lang::Python, Lang::Js];

    /// The repository's file at `path` (from the root).
    pub(super) fn repo_file(path: &str) -> String {
        let full = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path);
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
    }

    /// Every file under `dir`, by its path relative to `dir`.
    pub(super) fn written(dir: &Path) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(dir).unwrap();
                    out.insert(rel.to_str().unwrap().replace('\\', "/"));
                }
            }
        }
        out
    }

    #[test]
    fn every_language_writes_its_files() {
        let expected: [(Lang, &[&str]); 4] = [
            (
                Lang::Rust,
                &[
                    "Cargo.toml",
                    "Cargo.lock",
                    "src/lib.rs",
                    "build.sh",
                    "debian-build-std.toml",
                    "hookd-guest/Cargo.toml",
                    "hookd-guest/README.md",
                    "hookd-guest/src/lib.rs",
                    "hookd-guest/src/http.rs",
                    "hookd-guest/wit/lambda.wit",
                ],
            ),
            (Lang::C, &["hello.c", "build.sh"]),
            (Lang::Python, &["app.py", "build.sh", "wit/lambda.wit"]),
            (
                Lang::Js,
                &[
                    "app.js",
                    "package.json",
                    "package-lock.json",
                    "build.sh",
                    "wit/lambda.wit",
                ],
            ),
        ];
        for (lang, own) in expected {
            let parent = tempfile::tempdir().unwrap();
            let dir = create(parent.path(), "hello", lang).unwrap();
            assert_eq!(dir, parent.path().join("hello"));
            let mut want: BTreeSet<String> = own.iter().map(|f| f.to_string()).collect();
            want.extend(["README.md", "event.json", ".gitignore"].map(String::from));
            assert_eq!(written(&dir), want, "{lang:?}");
            let build = dir.join("build.sh");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&build).unwrap().permissions().mode();
                assert_eq!(mode & 0o111, 0o111, "{lang:?}: build.sh is executable");
            }
            let script = std::fs::read_to_string(&build).unwrap();
            assert!(script.starts_with("#!/usr/bin/env bash\n"), "{lang:?}");
            assert!(
                script.contains("echo \"$here/hello.wasm\""),
                "{lang:?}: build.sh prints the path of what it built"
            );
        }
    }

    #[test]
    fn the_handler_and_the_readme_name_the_guest() {
        let sources = [
            (Lang::Rust, "src/lib.rs", "const NAME: &str = \"my-guest\";"),
            (Lang::C, "my-guest.c", "NAME[] = \"my-guest\";"),
            (Lang::Python, "app.py", "NAME = \"my-guest\""),
            (Lang::Js, "app.js", "const NAME = 'my-guest';"),
        ];
        for (lang, source, line) in sources {
            let files = templates::files("my-guest", lang);
            let text = |path: &str| {
                files
                    .iter()
                    .find(|f| f.path == path)
                    .unwrap_or_else(|| panic!("{lang:?}: no {path}"))
                    .text
                    .clone()
            };
            assert!(text(source).contains(line), "{lang:?}: {source}");
            let readme = text("README.md");
            for command in [
                "./build.sh",
                "hookd guests run my-guest.wasm --data event.json",
                "hookd guests upload my-guest.wasm",
            ] {
                assert!(readme.contains(command), "{lang:?}: README has {command}");
            }
            let event: serde_json::Value = serde_json::from_str(&text("event.json")).unwrap();
            assert_eq!(event["entity"]["username"], "alice");
        }
    }

    #[test]
    fn the_wit_written_is_the_embedded_one() {
        for (lang, path) in [
            (Lang::Rust, "hookd-guest/wit/lambda.wit"),
            (Lang::Python, "wit/lambda.wit"),
            (Lang::Js, "wit/lambda.wit"),
        ] {
            let parent = tempfile::tempdir().unwrap();
            let dir = create(parent.path(), "w", lang).unwrap();
            let wit = std::fs::read_to_string(dir.join(path)).unwrap();
            assert_eq!(wit, hookd_sandbox::WIT, "{lang:?}");
        }
        assert_eq!(hookd_sandbox::WIT, repo_file("wit/lambda.wit"));
    }

    /// `hookd wit`, `GET /wit` and the projects carry `wit/lambda.wit`
    /// alone: a second file in `wit/` (part of the same package) would be
    /// missing from all three, so it must fail here until it is embedded.
    #[test]
    fn the_wit_directory_is_the_one_embedded_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit");
        let files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            files,
            ["lambda.wit"],
            "wit/ holds more than lambda.wit: embed every file (hookd_sandbox::WIT), print them all in `hookd wit` and `GET /wit`, and write them all into new projects"
        );
    }

    #[test]
    fn a_directory_that_is_not_empty_is_refused() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("taken");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        for lang in ALL {
            let err = create(parent.path(), "taken", lang).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{} exists and is not empty: choose another name, or another parent with --dir",
                    dir.display()
                )
            );
        }
        assert_eq!(written(&dir), BTreeSet::from(["notes.txt".to_string()]));

        // An empty one is used, and a missing parent is made.
        std::fs::create_dir(parent.path().join("empty")).unwrap();
        create(parent.path(), "empty", Lang::C).unwrap();
        assert!(parent.path().join("empty/empty.c").is_file());
        create(&parent.path().join("a/b"), "deep", Lang::C).unwrap();
        assert!(parent.path().join("a/b/deep/build.sh").is_file());
    }

    #[test]
    fn a_bad_name_writes_nothing() {
        let parent = tempfile::tempdir().unwrap();
        let err = create(parent.path(), "../escape", Lang::Rust).unwrap_err();
        assert!(err.to_string().contains("'../escape'"), "{err}");
        assert!(written(parent.path()).is_empty());
    }
}
