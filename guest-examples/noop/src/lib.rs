//! `noop`: the trivial guest. `handle` returns `Ok(None)` ("pass the data on
//! unchanged") without reading the event and without calling `host.log`; it
//! touches no WASI API, so the component should import nothing but the
//! `hookd:lambda` interfaces (and whatever WASI the Rust runtime keeps after
//! LTO; see README.md for what was observed). Used by the benchmark as the
//! trivial guest (pure call overhead) and by tests that need a guest which
//! leaves the data unchanged.

wit_bindgen::generate!({
    world: "lambda",
    path: "../sdk/wit",
});

struct Noop;

impl Guest for Noop {
    fn handle(_event: Event) -> Result<Option<String>, String> {
        Ok(None)
    }
}

export!(Noop);
