//! The `dirs` kind: host directories preopened for a guest.

use super::{Capabilities, CapabilityKind, EffectiveGrant, SandboxCeiling, ServerSecrets};
use crate::audit::CapabilityClass;
use crate::schema::{Field, Kind};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Component, Path, PathBuf};

/// One host directory as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Path on the server.
    pub host: String,
    /// Path inside the guest.
    pub guest: String,
    /// Whether the guest may write (read-only otherwise).
    #[serde(default)]
    pub write: bool,
}

/// Whether the directory `dir` fits in `ceiling`: at or below its host
/// path, and written only where the ceiling allows writing. The paths are
/// compared as written (no I/O here); the sandbox checks the resolved
/// paths again before it opens them.
pub fn dir_within(dir: &DirGrant, ceiling: &DirGrant) -> bool {
    Path::new(&dir.host).starts_with(&ceiling.host) && (ceiling.write || !dir.write)
}

/// The `dirs` capability kind.
pub struct Dirs;

impl CapabilityKind for Dirs {
    const KEY: &'static str = "dirs";
    const CLASS: CapabilityClass = CapabilityClass::Filesystem;
    const NOUN: &'static str = "directory";
    const CEILING_KEY: &'static str = "sandbox_dirs";
    const IMPORT: &'static str = "a filesystem interface";
    const NONE_GRANTED: &'static str = "no directory is granted (config.capabilities.dirs)";
    type Request = DirGrant;
    type Item = DirGrant;

    fn requested(caps: &Capabilities) -> &[DirGrant] {
        &caps.dirs
    }

    fn requested_mut(caps: &mut Capabilities) -> &mut Vec<DirGrant> {
        &mut caps.dirs
    }

    fn granted(grant: &EffectiveGrant) -> &[DirGrant] {
        &grant.dirs
    }

    fn granted_mut(grant: &mut EffectiveGrant) -> &mut Vec<DirGrant> {
        &mut grant.dirs
    }

    fn ceiling(ceiling: &SandboxCeiling) -> Vec<DirGrant> {
        ceiling.dirs.clone()
    }

    fn written(dir: &DirGrant) -> &str {
        &dir.host
    }

    fn parse(dir: &DirGrant) -> Result<DirGrant, String> {
        fn clean_absolute(p: &str) -> bool {
            let path = Path::new(p);
            path.is_absolute() && !path.components().any(|c| c == Component::ParentDir)
        }
        if !clean_absolute(&dir.host) {
            Err("the host path must be absolute, without '..'".into())
        } else if !clean_absolute(&dir.guest) {
            Err("the guest path must be absolute, without '..'".into())
        } else {
            Ok(dir.clone())
        }
    }

    /// Judged on the real path: a link must not lead to hookd's files.
    fn secret(
        dir: &DirGrant,
        secrets: &ServerSecrets,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Option<String> {
        let exposed = secrets.exposed_by(&resolve(Path::new(&dir.host)))?;
        Some(format!(
            "directory '{}' would expose {exposed}, which is never granted to a guest",
            dir.host
        ))
    }

    fn within(dir: &DirGrant, ceiling: &SandboxCeiling) -> bool {
        ceiling.dirs.iter().any(|c| dir_within(dir, c))
    }

    /// Tells a directory the ceiling has read-only from one it lacks.
    fn beyond(dir: &DirGrant, ceiling: &SandboxCeiling) -> String {
        let read_only = DirGrant {
            write: false,
            ..dir.clone()
        };
        if dir.write && Self::within(&read_only, ceiling) {
            format!(
                "may not be written: the sandbox ceiling grants it read-only ({})",
                Self::CEILING_KEY
            )
        } else {
            format!("is not within the sandbox ceiling ({})", Self::CEILING_KEY)
        }
    }

    fn element() -> Field {
        Field::element(Kind::Record(vec![
            Field::new("host", Kind::String).required(),
            Field::new("guest", Kind::String).required(),
            Field::new("write", Kind::Boolean).default(json!(false)),
        ]))
    }
}
