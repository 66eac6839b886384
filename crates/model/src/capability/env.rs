//! The `env` kind: environment variables a guest may read.

use super::{CapabilityKind, GuestSetup, SECRET_ENV_PREFIX, SecretCheck, ServerSecrets};

/// The `env` capability kind: variables by name, read at call time.
pub struct EnvVars;

impl CapabilityKind for EnvVars {
    type Request = String;
    type Item = String;

    fn parse(name: &String) -> Result<String, String> {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(
                "an environment variable name must be non-empty, without '=' or NUL".into(),
            );
        }
        Ok(name.clone())
    }

    fn secret(name: &String, _own: &SecretCheck<'_>) -> Option<String> {
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

    /// Read when the call starts; a granted name that is unset is absent.
    fn apply(name: &String, _: Option<&[String]>, to: &mut dyn GuestSetup) -> Result<(), String> {
        if let Some(value) = to.server_env(name) {
            to.set_env(name, &value);
        }
        Ok(())
    }
}
