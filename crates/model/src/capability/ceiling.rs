//! The operator's ceiling for lambda hooks in `sandbox` mode.

use super::{
    CeilingItems, DEFAULT_FUEL, DEFAULT_MEMORY, DEFAULT_TIMEOUT_MS, MAX_FUEL, MAX_MEMORY,
    MAX_TIMEOUT_MS, ResolvedLimits, ServerSecrets,
};
use crate::outbound::OutboundPolicy;
use serde::{Deserialize, Serialize};

/// The operator's ceiling for lambda hooks in `sandbox` mode, and the
/// limits of every invocation.
///
/// # Sandbox defaults
///
/// With nothing configured ([`SandboxCeiling::default`]) a guest gets:
/// - no environment variables (`env` is empty);
/// - no directories (`dirs` is empty);
/// - no network: no HTTP host (`allowed_hosts` is empty); raw sockets and
///   name lookup are never granted, in any mode;
/// - linear memory [`DEFAULT_MEMORY`] (64 MiB), at most [`MAX_MEMORY`]
///   (512 MiB) when its hook asks;
/// - wall time [`DEFAULT_TIMEOUT_MS`] (5 s) per call, at most
///   [`MAX_TIMEOUT_MS`] (60 s);
/// - fuel [`DEFAULT_FUEL`] (unmetered), at most [`MAX_FUEL`] (no maximum);
///   fuel is not counted at all unless the operator turns `fuel_metering`
///   on, and until then no hook may set one.
///
/// Log, clocks, random and captured stdio are always there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxCeiling {
    /// The items of each kind any hook may be granted (`sandbox_*`).
    #[serde(flatten)]
    pub items: CeilingItems,
    /// Limits of a hook that sets none.
    pub default_limits: ResolvedLimits,
    /// Limits no hook may exceed, in every mode: the engine's memory pool
    /// is sized by them.
    pub max_limits: ResolvedLimits,
    /// Whether guest code counts fuel (`sandbox_fuel_metering`). Counting
    /// is compiled into every guest and slows them all (measured: a JSON
    /// transform runs ~1.4x faster without it), so it is off unless asked
    /// for; off, no hook may set `limits.fuel`.
    #[serde(default)]
    pub fuel_metering: bool,
    /// Where guests' HTTP requests may connect, judged on resolved
    /// addresses (`outbound_allow_cidrs`), in every mode: a granted host
    /// whose address it refuses is withheld.
    #[serde(default)]
    pub outbound: OutboundPolicy,
    /// hookd's own environment and files, refused to every hook in every
    /// mode. Not serialised: where the data and configuration live is not
    /// a guest author's business.
    #[serde(skip)]
    pub secrets: ServerSecrets,
}

impl Default for SandboxCeiling {
    fn default() -> Self {
        SandboxCeiling {
            items: CeilingItems::default(),
            default_limits: ResolvedLimits {
                memory: DEFAULT_MEMORY,
                timeout_ms: DEFAULT_TIMEOUT_MS,
                fuel: DEFAULT_FUEL,
            },
            max_limits: ResolvedLimits {
                memory: MAX_MEMORY,
                timeout_ms: MAX_TIMEOUT_MS,
                fuel: MAX_FUEL,
            },
            fuel_metering: false,
            outbound: OutboundPolicy::default(),
            secrets: ServerSecrets::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::UntrustedWasm;

    #[test]
    fn the_sandbox_defaults() {
        let c = SandboxCeiling::default();
        assert_eq!(c.items, CeilingItems::default());
        assert!(c.items.allowed_hosts.is_empty() && c.items.env.is_empty());
        assert!(c.items.dirs.is_empty());
        assert_eq!(
            c.default_limits,
            ResolvedLimits {
                memory: 64 << 20,
                timeout_ms: 5_000,
                fuel: None
            }
        );
        assert_eq!(
            c.max_limits,
            ResolvedLimits {
                memory: 512 << 20,
                timeout_ms: 60_000,
                fuel: None
            }
        );
        assert!(!c.fuel_metering);
        assert_eq!(UntrustedWasm::default(), UntrustedWasm::Sandbox);
    }
}
