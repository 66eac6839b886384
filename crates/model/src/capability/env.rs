//! The `env` kind: environment variables a guest may read.

use super::{
    CapabilityKind, GuestSetup, SECRET_ENV_PREFIX, SandboxCeiling, ServerSecrets, UntrustedWasm,
};
use crate::audit::CapabilityClass;
use crate::schema::{Field, Kind};
use std::path::{Path, PathBuf};

/// The `env` capability kind: variables by name, read at call time.
pub struct EnvVars;

impl CapabilityKind for EnvVars {
    const KEY: &'static str = "env";
    const CLASS: CapabilityClass = CapabilityClass::Environment;
    const NOUN: &'static str = "environment variable";
    const IMPORT: &'static str = "an environment interface";
    const NONE_GRANTED: &'static str = "no variable is granted (config.capabilities.env)";
    type Request = String;
    type Item = String;

    fn written(name: &String) -> &str {
        name
    }

    fn parse(name: &String) -> Result<String, String> {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(
                "an environment variable name must be non-empty, without '=' or NUL".into(),
            );
        }
        Ok(name.clone())
    }

    fn secret(
        name: &String,
        _secrets: &ServerSecrets,
        _resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Option<String> {
        ServerSecrets::is_secret_env(name).then(|| {
            format!(
                "environment variable '{name}' is hookd's own ({SECRET_ENV_PREFIX}*) and is never granted to a guest"
            )
        })
    }

    fn request(name: &String) -> String {
        name.clone()
    }

    fn within(name: &String, ceiling: &[String]) -> bool {
        ceiling.contains(name)
    }

    fn element() -> Field {
        Field::element(Kind::String)
    }

    /// Read when the call starts; a granted name that is unset is absent.
    fn apply(
        name: &String,
        _mode: UntrustedWasm,
        _ceiling: &SandboxCeiling,
        to: &mut dyn GuestSetup,
    ) -> Result<(), String> {
        if let Some(value) = to.server_env(name) {
            to.set_env(name, &value);
        }
        Ok(())
    }
}
