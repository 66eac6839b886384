//! `env`: granted variables, read when the call starts.

use super::{ApplyKind, GuestContext};
use hookd_model::capability::{EnvVars, ServerSecrets};

impl ApplyKind for EnvVars {
    fn apply(name: &String, to: &mut GuestContext<'_>) -> Result<(), String> {
        // A grant is computed without hookd's own variables; one made any
        // other way still does not get them.
        if ServerSecrets::is_secret_env(name) {
            return Err("hookd's own environment is never granted".into());
        }
        // Read at call time; a granted name that is unset is absent.
        if let Ok(value) = std::env::var(name) {
            to.wasi.env(name, value);
        }
        Ok(())
    }

    fn target(name: &String) -> String {
        name.clone()
    }
}
