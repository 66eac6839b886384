//! The example guests of `guest-examples/`, built by
//! `guest-examples/build.sh` and committed.

use std::path::PathBuf;

/// The directory of the example guests.
pub fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../guest-examples")
}

/// The built guest `name`: `guest-examples/<name>/<name>.wasm`.
pub fn path(name: &str) -> PathBuf {
    examples_dir().join(name).join(format!("{name}.wasm"))
}

/// The bytes of guest `name`; fails the test, saying how to build it,
/// when it is missing.
pub fn bytes(name: &str) -> Vec<u8> {
    let path = path(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "guest {name}: {}: {e} (run guest-examples/build.sh)",
            path.display()
        )
    })
}
