//! `dirs`: granted directories, preopened by their real paths.

use super::{ApplyKind, GuestContext};
use crate::UntrustedWasm;
use hookd_model::capability::{DirGrant, Dirs, dir_within};
use wasmtime_wasi::FsPerms;

impl ApplyKind for Dirs {
    fn apply(dir: &DirGrant, to: &mut GuestContext<'_>) -> Result<(), String> {
        // The grant was computed on the paths as written; a symlink must
        // lead neither to hookd's own files (in any mode: a hook stored
        // before they were refused at save is refused here) nor out of the
        // ceiling. What is opened is the path checked.
        let real = std::fs::canonicalize(&dir.host).map_err(|e| format!("cannot open: {e}"))?;
        if let Some(exposed) = to.ceiling.secrets.exposed_by(&real) {
            return Err(format!(
                "resolves to {}, which would expose {exposed}: never granted",
                real.display()
            ));
        }
        if to.mode == UntrustedWasm::Sandbox {
            let fits = to.ceiling.dirs.iter().any(|c| {
                std::fs::canonicalize(&c.host).is_ok_and(|ceiling| {
                    dir_within(
                        &DirGrant {
                            host: real.to_string_lossy().into_owned(),
                            ..dir.clone()
                        },
                        &DirGrant {
                            host: ceiling.to_string_lossy().into_owned(),
                            ..c.clone()
                        },
                    )
                })
            });
            if !fits {
                return Err(format!(
                    "resolves to {} outside the sandbox ceiling",
                    real.display()
                ));
            }
        }
        let perms = if dir.write {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        to.wasi
            .preopened_dir(&real, &dir.guest, perms)
            .map(|_| ())
            .map_err(|e| format!("cannot open: {e:#}"))
    }

    fn target(dir: &DirGrant) -> String {
        dir.host.clone()
    }
}
