//! What a project may be called. The name is the directory, the package's
//! name (cargo's, npm's), the `.wasm` file and the name the guest is
//! uploaded under, so it keeps to what all of them accept: lowercase ASCII
//! letters, digits, `-` and `_`, starting with a letter, at most 64 bytes.

use super::{Lang, rust};

/// The longest name accepted.
const MAX_LEN: usize = 64;

/// Rust's keywords and reserved words (2021 edition): cargo refuses them as
/// the name of a library.
const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// The crates of Rust's standard library, whose names a package's library
/// would shadow.
const RUST_STD_CRATES: &[&str] = &["alloc", "core", "proc_macro", "std", "test"];

/// Accepts `name` for a project in `lang`, or says what is wrong with it.
pub fn validate(name: &str, lang: Lang) -> anyhow::Result<()> {
    let bad = |why: &str| anyhow::anyhow!("'{name}' is not a valid guest name: {why}");
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > MAX_LEN {
        return Err(bad(&format!("it is longer than {MAX_LEN} bytes")));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(bad("it must start with a lowercase ASCII letter"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(bad(&format!(
            "{c:?} is not allowed (lowercase ASCII letters, digits, '-' and '_' are)"
        )));
    }
    match lang {
        Lang::Rust => {
            let lib = name.replace('-', "_");
            if RUST_KEYWORDS.contains(&lib.as_str()) {
                return Err(bad("it is a Rust keyword"));
            }
            if RUST_STD_CRATES.contains(&lib.as_str()) {
                return Err(bad("it is the name of a crate of Rust's standard library"));
            }
            if rust::dependency_names().any(|dep| dep == name) {
                return Err(bad(
                    "the guest SDK depends on a crate of that name (or is it: hookd-guest)",
                ));
            }
        }
        // npm keeps its packages there.
        Lang::Js if name == "node_modules" => return Err(bad("npm reserves it")),
        Lang::Js | Lang::C | Lang::Python => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_and_package_names_are_accepted() {
        for name in ["hello", "my-guest", "guest_2", "a", &"x".repeat(MAX_LEN)] {
            for lang in [Lang::Rust, Lang::C, Lang::Python, Lang::Js] {
                validate(name, lang).unwrap_or_else(|e| panic!("{lang:?} {name}: {e}"));
            }
        }
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        let cases = [
            ("", "it is empty"),
            ("2fast", "it must start with a lowercase ASCII letter"),
            ("-x", "it must start with a lowercase ASCII letter"),
            ("Hello", "it must start with a lowercase ASCII letter"),
            (
                "hello world",
                "' ' is not allowed (lowercase ASCII letters, digits, '-' and '_' are)",
            ),
            (
                "a/b",
                "'/' is not allowed (lowercase ASCII letters, digits, '-' and '_' are)",
            ),
            (
                "caf\u{e9}",
                "'\u{e9}' is not allowed (lowercase ASCII letters, digits, '-' and '_' are)",
            ),
            (&"x".repeat(MAX_LEN + 1), "it is longer than 64 bytes"),
        ];
        for (name, why) in cases {
            for lang in [Lang::Rust, Lang::C, Lang::Python, Lang::Js] {
                let err = validate(name, lang).unwrap_err();
                assert_eq!(
                    err.to_string(),
                    format!("'{name}' is not a valid guest name: {why}"),
                    "{lang:?}"
                );
            }
        }
    }

    #[test]
    fn names_a_rust_project_cannot_take() {
        for (name, why) in [
            ("fn", "it is a Rust keyword"),
            (
                "std",
                "it is the name of a crate of Rust's standard library",
            ),
            (
                "proc-macro",
                "it is the name of a crate of Rust's standard library",
            ),
            (
                "hookd-guest",
                "the guest SDK depends on a crate of that name (or is it: hookd-guest)",
            ),
            (
                "serde_json",
                "the guest SDK depends on a crate of that name (or is it: hookd-guest)",
            ),
            (
                "wit-bindgen",
                "the guest SDK depends on a crate of that name (or is it: hookd-guest)",
            ),
        ] {
            let err = validate(name, Lang::Rust).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("'{name}' is not a valid guest name: {why}")
            );
            // Only cargo minds.
            validate(name, Lang::C).unwrap();
        }
        assert!(validate("node_modules", Lang::Js).is_err());
        validate("node_modules", Lang::Python).unwrap();
    }
}
