//! `wrong-world`: a valid component of another world, `test:other/other`
//! (its own WIT in `wit/other.wit`: `export run: func() -> string`), with no
//! `handle` export and no `hookd:lambda` import. Used by the Admin API tests
//! that uploading a component which does not target world `hookd:lambda/lambda`
//! is rejected.

wit_bindgen::generate!({
    world: "other",
    path: "wit",
});

struct WrongWorld;

impl Guest for WrongWorld {
    fn run() -> String {
        "this component is not a hookd:lambda guest".to_owned()
    }
}

export!(WrongWorld);
