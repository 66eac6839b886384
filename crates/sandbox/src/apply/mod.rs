//! How the sandbox applies each capability kind of hookd-model
//! ([`CapabilityKind`]) to a guest's WASI context: one module per kind,
//! applied in one loop. The model decides what is granted; this side
//! checks once more what only I/O can tell (a directory's real path, a
//! variable's value at call time) and hands the items to wasmtime-wasi.

mod dirs;
mod env;
mod http;

use crate::audit::Auditor;
use crate::{EffectiveGrant, SandboxCeiling, UntrustedWasm, Verdict};
use hookd_model::capability::{AllowedHost, CapabilityKind, Dirs, EnvVars, HttpHosts};
use wasmtime_wasi::WasiCtxBuilder;

/// What the granted items go into.
pub(crate) struct GuestContext<'a> {
    /// The guest's WASI context, built from nothing.
    pub wasi: WasiCtxBuilder,
    /// Hosts for the wasi-http hook ([`crate::http::HttpPolicy`]).
    pub http_hosts: Vec<AllowedHost>,
    /// The mode the grant was computed in.
    pub mode: UntrustedWasm,
    /// The ceiling a real path must still fit in `sandbox` mode.
    pub ceiling: &'a SandboxCeiling,
}

/// How one kind's granted items reach the guest.
trait ApplyKind: CapabilityKind {
    /// Applies one item; the error, why it was not (an audited denial).
    fn apply(item: &Self::Item, to: &mut GuestContext<'_>) -> Result<(), String>;
    /// The item as an audit record names it.
    fn target(item: &Self::Item) -> String;
}

/// [`ApplyKind`] without its types, so that one loop goes over all kinds.
trait AnyApply: Sync {
    /// Its kind's key, to tell that every kind of the model is applied.
    #[cfg(test)]
    fn key(&self) -> &'static str;
    fn apply_grant(&self, grant: &EffectiveGrant, to: &mut GuestContext<'_>, audit: &Auditor);
}

impl<K: ApplyKind> AnyApply for K {
    #[cfg(test)]
    fn key(&self) -> &'static str {
        K::KEY
    }

    fn apply_grant(&self, grant: &EffectiveGrant, to: &mut GuestContext<'_>, audit: &Auditor) {
        for item in K::granted(grant) {
            if let Err(reason) = K::apply(item, to) {
                audit.record(K::CLASS, K::target(item), Verdict::Denied, Some(reason));
            }
        }
    }
}

/// Every kind, keyed as hookd-model's.
const APPLIED: &[&dyn AnyApply] = &[&HttpHosts, &EnvVars, &Dirs];

/// Applies every kind of `grant` to `to`, auditing what is refused.
pub(crate) fn apply(grant: &EffectiveGrant, to: &mut GuestContext<'_>, audit: &Auditor) {
    for kind in APPLIED {
        kind.apply_grant(grant, to, audit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_the_model_is_applied() {
        let applied: Vec<&str> = APPLIED.iter().map(|k| k.key()).collect();
        let kinds: Vec<&str> = hookd_model::capability::kind_keys().collect();
        assert_eq!(applied, kinds);
    }
}
