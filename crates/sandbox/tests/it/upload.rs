//! The guest upload parser under hostile bytes: whatever is uploaded,
//! `inspect` answers with a report or a rejection, and never panics.
//! Mutations of real guests reach deep into wasmtime's parsers, where
//! random bytes would stop at the header.

use hookd_sandbox::{Sandbox, SandboxConfig};
use proptest::prelude::*;
use std::sync::OnceLock;

/// One sandbox for every case: compiling is the cost, not setting up.
fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::new(SandboxConfig::default()).unwrap())
}

/// A small command module and a small component, each valid as they are.
fn seeds() -> [Vec<u8>; 2] {
    [super::bytes("c-reactor"), super::bytes("noop")]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Remove { at, len }),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        match m {
            Mutation::Flip { at, bits } => {
                let i = at % bytes.len();
                bytes[i] ^= bits;
            }
            Mutation::Truncate { at } => bytes.truncate(at % bytes.len()),
            Mutation::Insert {
                at,
                bytes: inserted,
            } => {
                let i = at % (bytes.len() + 1);
                bytes.splice(i..i, inserted.iter().copied());
            }
            Mutation::Remove { at, len } => {
                let i = at % bytes.len();
                let end = (i + len).min(bytes.len());
                bytes.drain(i..end);
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn mutated_guests_are_reported_or_rejected(
        seed in 0..2usize,
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let bytes = apply(seeds()[seed].clone(), &mutations);
        if let Ok(report) = sandbox().inspect(&bytes) {
            prop_assert_eq!(report.digest, hookd_sandbox::digest(&bytes));
        }
    }

    #[test]
    fn arbitrary_bytes_behind_a_wasm_header_are_rejected(
        component in any::<bool>(),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let header: &[u8] = if component { b"\0asm\x0d\0\x01\0" } else { b"\0asm\x01\0\0\0" };
        let bytes = [header, &body].concat();
        // None of them has the exports a guest needs (`_start` or `handle`).
        prop_assert!(sandbox().inspect(&bytes).is_err());
    }
}
