//! The `env` kind: environment variables a guest may read.

use super::{
    Capabilities, CapabilityKind, EffectiveGrant, SECRET_ENV_PREFIX, SandboxCeiling, ServerSecrets,
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
    const CEILING_KEY: &'static str = "sandbox_env";
    const IMPORT: &'static str = "an environment interface";
    const NONE_GRANTED: &'static str = "no variable is granted (config.capabilities.env)";
    type Request = String;
    type Item = String;

    fn requested(caps: &Capabilities) -> &[String] {
        &caps.env
    }

    fn requested_mut(caps: &mut Capabilities) -> &mut Vec<String> {
        &mut caps.env
    }

    fn granted(grant: &EffectiveGrant) -> &[String] {
        &grant.env
    }

    fn granted_mut(grant: &mut EffectiveGrant) -> &mut Vec<String> {
        &mut grant.env
    }

    fn ceiling(ceiling: &SandboxCeiling) -> Vec<String> {
        ceiling.env.clone()
    }

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

    fn within(name: &String, ceiling: &SandboxCeiling) -> bool {
        ceiling.env.iter().any(|c| c == name)
    }

    fn element() -> Field {
        Field::element(Kind::String)
    }
}
