//! hookd's own secrets against the paths a hook asks for: requested
//! directories are compared by their real paths, so a symlink cannot lead
//! a guest to the data directory or the configuration file.

use crate::Sandbox;
use hookd_model::Violations;
use hookd_model::hook::LambdaConfig;
use std::path::{Path, PathBuf};

/// The real path of `path`: absolute, every symlink of the part that
/// exists followed, and the part that does not exist (yet) appended as
/// written.
pub fn resolve_path(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut missing = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return missing.iter().rev().fold(real, |p, name| p.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

impl Sandbox {
    /// Checks a lambda hook at save time against this server's mode,
    /// ceiling and secrets (see [`hookd_model::capability::check_lambda`]),
    /// requested directories compared by their real paths.
    pub fn check_lambda(&self, lambda: &LambdaConfig) -> Result<(), Violations> {
        let c = &self.inner.config;
        hookd_model::capability::check_lambda(
            c.mode,
            &c.ceiling,
            &lambda.capabilities,
            &lambda.limits,
            resolve_path,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_followed_and_missing_parts_kept() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(resolve_path(&link), real);
        assert_eq!(resolve_path(&link.join("not/yet")), real.join("not/yet"));
        assert!(resolve_path(Path::new("relative")).is_absolute());
    }
}
