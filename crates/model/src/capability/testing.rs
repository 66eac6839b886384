//! Fixtures of the capability tests.

use super::{AllowedHost, CeilingItems, DirGrant, SandboxCeiling};
use std::path::{Path, PathBuf};

pub(crate) fn host(p: &str) -> AllowedHost {
    AllowedHost::parse(p).unwrap()
}

/// Paths resolve to themselves: no I/O in these tests.
pub(crate) fn as_written(p: &Path) -> PathBuf {
    p.to_path_buf()
}

pub(crate) fn ceiling() -> SandboxCeiling {
    SandboxCeiling {
        items: CeilingItems {
            allowed_hosts: vec![host("*.slack.com"), host("api.example.com")],
            env: vec!["REGION".into()],
            dirs: vec![
                DirGrant {
                    host: "/srv/hooks".into(),
                    guest: "/data".into(),
                    write: false,
                },
                DirGrant {
                    host: "/srv/scratch".into(),
                    guest: "/tmp".into(),
                    write: true,
                },
            ],
        },
        ..SandboxCeiling::default()
    }
}

pub(crate) fn dir(host: &str, write: bool) -> DirGrant {
    DirGrant {
        host: host.into(),
        guest: "/data".into(),
        write,
    }
}
