//! The sandbox's side of applying a grant: a guest's WASI context as
//! hookd-model's capability kinds see it ([`GuestSetup`]). The kinds say
//! what each granted item means and check it once more; this does the I/O
//! they ask for and hands the items to wasmtime-wasi.

use crate::audit::Auditor;
use crate::{EffectiveGrant, SandboxCeiling, Verdict};
use hookd_model::capability::{AllowedHost, GuestSetup, apply_grant};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// What the granted items go into.
pub(crate) struct GuestContext<'a> {
    /// The guest's WASI context, built from nothing.
    pub wasi: WasiCtxBuilder,
    /// Hosts for the wasi-http hook ([`crate::http::HttpPolicy`]).
    pub http_hosts: Vec<AllowedHost>,
    /// Values granted variables take instead of the process's own
    /// ([`crate::SandboxConfig::env_values`]).
    pub env_values: &'a BTreeMap<String, String>,
}

impl GuestContext<'_> {
    /// Applies every kind of `grant`, auditing each item withheld after
    /// all.
    pub fn apply(&mut self, grant: &EffectiveGrant, ceiling: &SandboxCeiling, audit: &Auditor) {
        apply_grant(grant, ceiling, self, &mut |class, item, reason| {
            audit.record(class, item, Verdict::Denied, Some(reason));
        });
    }
}

impl GuestSetup for GuestContext<'_> {
    fn real_path(&self, path: &Path) -> std::io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    fn server_env(&self, name: &str) -> Option<String> {
        match self.env_values.get(name) {
            Some(value) => Some(value.clone()),
            None => std::env::var(name).ok(),
        }
    }

    fn set_env(&mut self, name: &str, value: &str) {
        self.wasi.env(name, value);
    }

    fn preopen(&mut self, real: &Path, guest: &str, write: bool) -> Result<(), String> {
        let perms = if write {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        self.wasi
            .preopened_dir(real, guest, perms)
            .map(|_| ())
            .map_err(|e| format!("cannot open: {e:#}"))
    }

    fn allow_http(&mut self, host: &AllowedHost) {
        self.http_hosts.push(host.clone());
    }
}
