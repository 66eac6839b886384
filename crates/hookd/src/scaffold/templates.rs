//! The files of a project in each language: the templates under
//! `templates/` with the project's name filled in (`{{name}}`, and
//! `{{name_snake}}`, the name as a Rust library's file is called), plus
//! what is copied from hookd as it is (the WIT, the Rust SDK, lock files).

use super::{File, Lang, rust};

/// The README's frame; `{{about}}` and `{{toolchain}}` come from the language.
const README: &str = include_str!("templates/common/README.md");
/// The data of a crud event on consumers, to try the guest on.
const EVENT: &str = include_str!("templates/common/event.json");

/// The placeholders templates use; none survives [`files`].
#[cfg(test)]
pub(super) const PLACEHOLDERS: &[&str] =
    &["{{name}}", "{{name_snake}}", "{{about}}", "{{toolchain}}"];

/// The files every language's directory under `templates/` has: what it
/// brings to the README and to `.gitignore`, and its build script.
struct Common {
    about: &'static str,
    toolchain: &'static str,
    gitignore: &'static str,
    build: &'static str,
}

/// The [`Common`] files of the language in `templates/$dir/`.
/// (`include_str!` takes a literal path only, hence a macro.)
macro_rules! common {
    ($dir:literal) => {
        Common {
            about: include_str!(concat!("templates/", $dir, "/about.md")),
            toolchain: include_str!(concat!("templates/", $dir, "/toolchain.md")),
            gitignore: include_str!(concat!("templates/", $dir, "/gitignore")),
            build: include_str!(concat!("templates/", $dir, "/build.sh")),
        }
    };
}

/// The project `name` in `lang`, file by file.
pub(super) fn files(name: &str, lang: Lang) -> Vec<File> {
    let render = |template: &str| {
        template
            .replace("{{name_snake}}", &name.replace('-', "_"))
            .replace("{{name}}", name)
    };
    // Each language's own files, then the common ones.
    let (common, mut files) = match lang {
        Lang::Rust => (
            common!("rust"),
            [
                File::new(
                    "Cargo.toml",
                    render(include_str!("templates/rust/Cargo.toml")),
                ),
                File::new("Cargo.lock", rust::cargo_lock(name)),
                File::new("src/lib.rs", render(include_str!("templates/rust/lib.rs"))),
                // build.sh's Debian route, as guest-examples/build.sh's.
                File::new(
                    "debian-build-std.toml",
                    include_str!("../../../../guest-examples/debian-build-std.toml"),
                ),
            ]
            .into_iter()
            .chain(rust::sdk_files("hookd-guest"))
            .collect::<Vec<_>>(),
        ),
        Lang::C => (
            common!("c"),
            vec![File::new(
                format!("{name}.c"),
                render(include_str!("templates/c/main.c")),
            )],
        ),
        Lang::Python => (
            common!("python"),
            vec![
                File::new("app.py", render(include_str!("templates/python/app.py"))),
                File::new("wit/lambda.wit", hookd_sandbox::WIT),
            ],
        ),
        Lang::Js => (
            common!("js"),
            vec![
                File::new("app.js", render(include_str!("templates/js/app.js"))),
                File::new(
                    "package.json",
                    render(include_str!("templates/js/package.json")),
                ),
                File::new("package-lock.json", js_lock(name)),
                File::new("wit/lambda.wit", hookd_sandbox::WIT),
            ],
        ),
    };
    let readme = README
        .replace("{{about}}", common.about.trim_end())
        .replace("{{toolchain}}", common.toolchain.trim_end());
    files.extend([
        File::script("build.sh", render(common.build)),
        File::new("README.md", render(&readme)),
        File::new("event.json", EVENT),
        File::new(".gitignore", render(common.gitignore)),
    ]);
    files
}

/// js-transform's lock, whose packages the project's `package.json` pins.
const JS_LOCK: &str = include_str!("../../../../guest-examples/js-transform/package-lock.json");
/// How that lock names its package (at its top and as its root package).
const JS_LOCK_NAME: &str = "\"name\": \"hookd-js-transform\"";

/// `package-lock.json` for project `name`: hookd's JavaScript guest's,
/// renamed, so that `npm ci` installs exactly the tree hookd builds with.
fn js_lock(name: &str) -> String {
    JS_LOCK.replace(JS_LOCK_NAME, &format!("\"name\": \"{name}\""))
}

#[cfg(test)]
mod tests {
    use super::super::tests::repo_file;
    use super::*;
    use serde_json::Value;

    fn file(files: &[File], path: &str) -> String {
        files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no {path}"))
            .text
            .clone()
    }

    #[test]
    fn no_placeholder_is_left() {
        for lang in [Lang::Rust, Lang::C, Lang::Python, Lang::Js] {
            for f in files("my-guest", lang) {
                for p in PLACEHOLDERS {
                    assert!(!f.text.contains(p), "{lang:?} {}: {p}", f.path);
                }
            }
        }
        let rust = files("my-guest", Lang::Rust);
        assert!(file(&rust, "build.sh").contains("built=\"$out_dir/my_guest.wasm\""));
    }

    /// The JavaScript project installs what js-transform does: the same
    /// pins in package.json, the same lock but for its name.
    #[test]
    fn the_js_project_pins_what_js_transform_does() {
        let js = files("my-guest", Lang::Js);
        let package: Value = serde_json::from_str(&file(&js, "package.json")).unwrap();
        let lock: Value = serde_json::from_str(&file(&js, "package-lock.json")).unwrap();
        let theirs: Value =
            serde_json::from_str(&repo_file("guest-examples/js-transform/package.json")).unwrap();
        let their_lock: Value = serde_json::from_str(JS_LOCK).unwrap();
        assert_eq!(package["name"], "my-guest");
        for key in ["devDependencies", "engines", "type"] {
            assert_eq!(package[key], theirs[key], "{key}");
        }
        assert_eq!(lock["name"], "my-guest");
        let root = &lock["packages"][""];
        assert_eq!(root["name"], "my-guest");
        assert_eq!(root["devDependencies"], package["devDependencies"]);
        assert_eq!(
            lock["packages"].as_object().unwrap().len(),
            their_lock["packages"].as_object().unwrap().len()
        );
        // Renamed in exactly the two places npm reads the name from.
        assert_eq!(JS_LOCK.matches(JS_LOCK_NAME).count(), 2);
        let mut renamed = their_lock.clone();
        renamed["name"] = "my-guest".into();
        renamed["packages"][""]["name"] = "my-guest".into();
        assert_eq!(lock, renamed);
    }

    /// The Python project is built with the componentize-py that
    /// install-toolchain.sh installs for hookd's own Python guest.
    #[test]
    fn the_python_project_pins_what_install_toolchain_installs() {
        let installed = repo_file("guest-examples/install-toolchain.sh");
        let pin = installed
            .lines()
            .find(|l| l.starts_with("COMPONENTIZE_PY_VERSION="))
            .expect("install-toolchain.sh pins componentize-py");
        let version = pin.trim_start_matches("COMPONENTIZE_PY_VERSION=");
        let python = files("p", Lang::Python);
        assert!(file(&python, "build.sh").lines().any(|l| l == pin), "{pin}");
        assert!(
            file(&python, "README.md").contains(&format!("componentize-py=={version}")),
            "the README names {version}"
        );
    }

    #[test]
    fn the_c_project_is_built_as_guest_examples_builds_c_upper() {
        let script = file(&files("c", Lang::C), "build.sh");
        assert!(script.contains("\"$cc\" --target=wasm32-wasi -O2"));
        assert!(repo_file("guest-examples/build.sh").contains("--target=wasm32-wasi -O2"));
    }
}
