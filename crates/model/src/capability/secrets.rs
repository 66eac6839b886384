//! hookd's own environment and files, which no guest gets in any mode.

use std::path::{Path, PathBuf};

/// Environment variables that start with this (ASCII case ignored) are
/// hookd's own: its configuration (`HOOKD_ADMIN_TOKEN`, ...) and the CLI's.
pub const SECRET_ENV_PREFIX: &str = "HOOKD_";

/// What is hookd's own and never a guest's, in any mode (`untrusted_wasm =
/// on` included): its `HOOKD_*` environment variables, its data directory
/// (the store, precompiled guests) and its configuration file.
///
/// Paths are compared component by component, both sides resolved
/// (symlinks followed; see [`check_lambda`](super::check_lambda)'s
/// `resolve`). A granted directory exposes the data directory when it is
/// that directory, lies inside it or contains it; it exposes the
/// configuration file when it contains the file at any depth (the file's
/// own directory or any above it). A directory beside them, or below the
/// configuration file's directory without containing the file, exposes
/// neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSecrets {
    /// The data directory, resolved.
    pub data_dir: Option<PathBuf>,
    /// The configuration file, resolved.
    pub config_file: Option<PathBuf>,
}

impl ServerSecrets {
    /// Whether an environment variable is hookd's own.
    pub fn is_secret_env(name: &str) -> bool {
        name.get(..SECRET_ENV_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(SECRET_ENV_PREFIX))
    }

    /// What of hookd's the host directory `dir` (resolved) would expose to
    /// a guest granted it, if anything.
    pub fn exposed_by(&self, dir: &Path) -> Option<String> {
        if let Some(data) = &self.data_dir
            && (dir.starts_with(data) || data.starts_with(dir))
        {
            return Some(format!("hookd's data directory {}", data.display()));
        }
        if let Some(file) = &self.config_file
            && file.starts_with(dir)
        {
            return Some(format!("hookd's configuration file {}", file.display()));
        }
        None
    }
}

/// hookd's own as an item would reach it: the secrets, and the real
/// location of a path (absolute, symlinks followed; the I/O, if any, is
/// the caller's), so that a link cannot lead to them.
pub struct SecretCheck<'a> {
    /// What is hookd's own.
    pub secrets: &'a ServerSecrets,
    /// A path's real location.
    pub resolve: &'a dyn Fn(&Path) -> PathBuf,
}

impl SecretCheck<'_> {
    /// What of hookd's the host directory `dir` would expose, judged on
    /// its real location.
    pub fn exposed_by(&self, dir: &Path) -> Option<String> {
        self.secrets.exposed_by(&(self.resolve)(dir))
    }
}
