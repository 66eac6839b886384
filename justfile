# hookd's everyday commands. `just --list` shows them.

# Run the server on its defaults.
run *ARGS:
    cargo run --release -p hookd -- serve {{ARGS}}

# The whole test suite (as in the README).
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Rebuild every guest in guest-examples/ from source.
guests:
    guest-examples/build.sh
