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

# Schemathesis against the server's own OpenAPI document (as CI runs it;
# SCHEMATHESIS_SECONDS and SCHEMATHESIS_SEED to vary it).
schemathesis:
    cargo build -p hookd
    .ci/schemathesis

# Rebuild every guest in guest-examples/ from source.
guests:
    guest-examples/build.sh

# Benchmarks, printed with the load average (no pass/fail on speed; a lost
# webhook or a failed invocation fails): delivery, entity write and
# published event to webhook received against a bare hyper client, and nine
# hooks beside one that never answers; soak, hookd's memory and bytes on
# disk per retained delivery over ten rounds of 20,000 published events;
# store, the store's share of that without HTTP; lambda, a fresh wasm
# instance per event against LuaJIT; console, each console page with 1,000
# hooks and 100,000 stored deliveries. Flags: `target/release/delivery
# --help`, `target/release/soak --help` (`--rounds 2 --events 2000` for a
# quick run).
# Both are built in one cargo invocation and run directly: `cargo run -p
# hookd-bench` would rebuild the shared dependencies for other features.
bench:
    cargo build --release -p hookd -p hookd-bench
    target/release/delivery
    target/release/soak
    target/release/store
    target/release/lambda
    target/release/template
    target/release/console
