//! The `dirs` kind: host directories preopened for a guest.

use super::{CapabilityKind, GuestSetup, SecretCheck, Written};
use crate::schema::{Field, Kind};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Component, Path};

/// One host directory as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// A directory, named by its path on the server.
impl Written for DirGrant {
    fn element() -> Field {
        Field::element(Kind::Record(vec![
            Field::new("host", Kind::String).required(),
            Field::new("guest", Kind::String).required(),
            Field::new("write", Kind::Boolean).default(json!(false)),
        ]))
    }

    fn written(&self) -> &str {
        &self.host
    }
}

/// Whether the directory `dir` fits in `ceiling`: at or below its host
/// path, and written only where the ceiling allows writing. The paths are
/// compared as written (no I/O here); the sandbox checks the resolved
/// paths again before it opens them.
fn dir_within(dir: &DirGrant, ceiling: &DirGrant) -> bool {
    fits(
        Path::new(&dir.host),
        dir.write,
        Path::new(&ceiling.host),
        ceiling.write,
    )
}

/// Whether `host` is at or below `bound`, written only where `bound` may be.
fn fits(host: &Path, write: bool, bound: &Path, bound_write: bool) -> bool {
    host.starts_with(bound) && (bound_write || !write)
}

/// The `dirs` capability kind.
pub struct Dirs;

impl CapabilityKind for Dirs {
    type Request = DirGrant;
    type Item = DirGrant;

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
    fn secret(dir: &DirGrant, own: &SecretCheck<'_>) -> Option<String> {
        let exposed = own.exposed_by(Path::new(&dir.host))?;
        Some(format!(
            "directory '{}' would expose {exposed}, which is never granted to a guest",
            dir.host
        ))
    }

    fn request(dir: &DirGrant) -> DirGrant {
        dir.clone()
    }

    fn within(dir: &DirGrant, ceiling: &[DirGrant]) -> bool {
        ceiling.iter().any(|c| dir_within(dir, c))
    }

    /// Tells a directory the ceiling has read-only from one it lacks.
    fn beyond(dir: &DirGrant, ceiling: &[DirGrant], ceiling_key: &str) -> String {
        let read_only = DirGrant {
            write: false,
            ..dir.clone()
        };
        if dir.write && Self::within(&read_only, ceiling) {
            format!("may not be written: the sandbox ceiling grants it read-only ({ceiling_key})")
        } else {
            format!("is not within the sandbox ceiling ({ceiling_key})")
        }
    }

    /// Opened by its real path, which must still fit the ceiling in
    /// `sandbox` mode: a symlink below a granted directory cannot lead
    /// out of it. What is opened is the path checked.
    fn apply(
        dir: &DirGrant,
        bounds: Option<&[DirGrant]>,
        to: &mut dyn GuestSetup,
    ) -> Result<(), String> {
        let real = to
            .real_path(Path::new(&dir.host))
            .map_err(|e| format!("cannot open: {e}"))?;
        if let Some(bounds) = bounds {
            let fits = bounds.iter().any(|bound| {
                to.real_path(Path::new(&bound.host))
                    .is_ok_and(|bound_real| fits(&real, dir.write, &bound_real, bound.write))
            });
            if !fits {
                return Err(format!(
                    "resolves to {} outside the sandbox ceiling",
                    real.display()
                ));
            }
        }
        to.preopen(&real, &dir.guest, dir.write)
    }
}
