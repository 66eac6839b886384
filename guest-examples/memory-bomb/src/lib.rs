//! `memory-bomb`: a hostile guest that allocates memory in 1 MiB steps, writes
//! a byte into every 4 KiB page of each step (so the memory is really used)
//! and keeps every step alive, with no cap: it never stops by itself. When the
//! host refuses to grow linear memory the infallible allocation fails and the
//! Rust runtime aborts (`panic = "abort"`), which wasmtime reports as a trap
//! (`Trap::UnreachableCodeReached`, or the limiter's own error with
//! `trap_on_grow_failure(true)`). Used by the sandbox tests of the per-guest
//! memory limit.

wit_bindgen::generate!({
    world: "lambda",
    path: "../sdk/wit",
});

use core::hint::black_box;

/// Bytes allocated per step.
const STEP: usize = 1 << 20;
/// A byte is written every this many bytes.
const PAGE: usize = 4096;

struct MemoryBomb;

impl Guest for MemoryBomb {
    fn handle(_event: Event) -> Result<Option<String>, String> {
        let mut kept: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut block = vec![0u8; STEP];
            for i in (0..STEP).step_by(PAGE) {
                block[i] = 1;
            }
            kept.push(black_box(block));
            black_box(&mut kept);
        }
    }
}

export!(MemoryBomb);
