//! `counter`: a guest with state. Each call adds one to a global counter and
//! returns `{"calls": <the counter>}`: 1 on a fresh instance, more on an
//! instance that served earlier events (a hook with `instance = "reused"`).
//! Before answering it does what `data.then` asks, to end its call badly:
//! `"trap"` traps (`unreachable`), `"spin"` loops until the deadline,
//! `"grow"` allocates until the memory limit kills it. Written with the guest
//! SDK. Used by the tests that reused instances keep state for their own hook
//! only and are dropped after a call that ends badly.

use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};
use hookd_guest::{Event, Handler, Outcome, Value};

static CALLS: AtomicU64 = AtomicU64::new(0);

struct Counter;

impl Handler for Counter {
    fn handle(event: Event) -> Outcome {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let data: Value = event.data()?;
        match data.get("then").and_then(Value::as_str) {
            Some("trap") => core::arch::wasm32::unreachable(),
            Some("spin") => loop {
                black_box(calls);
            },
            Some("grow") => {
                let mut kept: Vec<Vec<u8>> = Vec::new();
                loop {
                    kept.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            _ => Ok(Some(hookd_guest::serde_json::json!({ "calls": calls }))),
        }
    }
}

hookd_guest::export!(Counter);
