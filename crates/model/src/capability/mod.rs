//! What a lambda hook asks its guests to be allowed, the limits of one
//! invocation, and how both are checked against the server's
//! `untrusted_wasm` mode ([`UntrustedWasm`]) and the operator's
//! [`SandboxCeiling`].
//!
//! Each kind of capability is one module implementing [`CapabilityKind`]
//! (after spin's factors): [`HttpHosts`] (`http`), [`EnvVars`] (`env`) and
//! [`Dirs`] (`dirs`), declared once in `capability_kinds!` below. Items are parsed, typed values with a `parse` and a
//! ceiling test (after spin's `AllowedHostConfig`). One decision per item,
//! written once for every kind (`grant`), makes the [`EffectiveGrant`]
//! (recomputed at run time as an intersection, so that a ceiling that
//! shrank later takes effect without touching stored hooks); the refusals
//! at create ([`check_lambda`]) are that decision's withheld items.
//! [`Limits`] are resolved rather than granted, in their own module.

mod ceiling;
mod check;
mod dirs;
mod env;
mod grant;
mod http;
mod kind;
mod limits;
mod mode;
mod secrets;
#[cfg(test)]
mod testing;

pub use ceiling::SandboxCeiling;
pub use check::check_lambda;
pub use dirs::{DirGrant, Dirs};
pub use env::EnvVars;
pub use grant::{EffectiveGrant, Withheld};
pub use http::{AllowedHost, HttpHosts, InvalidHostPattern};
pub use kind::{CapabilityKind, CeilingError, GuestSetup, KindMember, Written, apply_grant};
pub use limits::{
    DEFAULT_FUEL, DEFAULT_MEMORY, DEFAULT_TIMEOUT_MS, Limits, MAX_FUEL, MAX_MEMORY, MAX_TIMEOUT_MS,
    ResolvedLimits,
};
pub use mode::UntrustedWasm;
pub use secrets::{SECRET_ENV_PREFIX, SecretCheck, ServerSecrets};

use crate::schema::{Field, Kind};
use kind::{capability_kinds, read_ceiling};
use std::path::{Path, PathBuf};

capability_kinds! {
    /// Host patterns the guest may call over HTTP ([`AllowedHost`]).
    http: HttpHosts, class Http, item "host", needs "wasi:http",
        none "no host is granted", ceiling allowed_hosts = "sandbox_allowed_hosts";
    /// Names of environment variables the guest may read.
    env: EnvVars, class Environment, item "environment variable", needs "an environment interface",
        none "no variable is granted", ceiling env = "sandbox_env";
    /// Host directories preopened for the guest.
    dirs: Dirs, class Filesystem, item "directory", needs "a filesystem interface",
        none "no directory is granted", ceiling dirs = "sandbox_dirs";
}

impl Capabilities {
    /// The `capabilities` field of a lambda hook's configuration: one
    /// member per kind.
    pub fn schema_field() -> Field {
        Field::new(
            "capabilities",
            Kind::Record(KINDS.iter().map(|kind| kind.schema_field()).collect()),
        )
    }
}
