//! `recursion`: a hostile guest that recurses without bound. `depth` calls
//! itself and then uses the result (not a tail call), and its only exit depends
//! on a value hidden behind `core::hint::black_box`, so the optimiser can
//! neither turn it into a loop nor remove it. Each frame is small, so the
//! wasm call stack (wasmtime's `max_wasm_stack`) runs out and the call ends in
//! a trap (`Trap::StackOverflow`, unless the shadow stack in linear memory
//! overflows first, which shows up as an out-of-bounds memory trap). Used by
//! the sandbox tests that a stack overflow fails the delivery cleanly.

wit_bindgen::generate!({
    world: "lambda",
    path: "../sdk/wit",
});

use core::hint::black_box;

struct Recursion;

/// Never returns in practice: `stop` is `u64::MAX`, out of reach.
#[inline(never)]
fn depth(n: u64, stop: u64) -> u64 {
    if n == stop {
        return 0;
    }
    let below = depth(n + 1, stop);
    below.wrapping_mul(31).wrapping_add(n) ^ (below >> 7)
}

impl Guest for Recursion {
    fn handle(event: Event) -> Result<Option<String>, String> {
        let start = black_box(event.data.len() as u64);
        let stop = black_box(u64::MAX);
        Ok(Some(depth(start, stop).to_string()))
    }
}

export!(Recursion);
