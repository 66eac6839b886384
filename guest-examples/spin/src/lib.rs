//! `spin`: a hostile guest that never returns. `handle` loops forever on a
//! counter kept alive with `core::hint::black_box`, so the optimiser cannot
//! remove the loop; it calls nothing, allocates nothing and imports no WASI
//! it does not have to. Used by the sandbox tests of the execution deadline
//! (epoch interruption): the call must end in a trap (`Trap::Interrupt`) and
//! the delivery must fail, without hanging a worker.

wit_bindgen::generate!({
    world: "lambda",
    path: "../sdk/wit",
});

use core::hint::black_box;

struct Spin;

impl Guest for Spin {
    fn handle(_event: Event) -> Result<Option<String>, String> {
        let mut n: u64 = 0;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }
}

export!(Spin);
