//! Per-invocation limits: what a hook may set, the server's defaults and
//! maxima, and what one call runs with. Unlike the item kinds, a limit is
//! never withheld: it is resolved (default, clamped to the maximum), and
//! only a value above the maximum or fuel without metering is refused.

use super::SandboxCeiling;
use crate::schema::{Check, Field, Kind};
use crate::violation::{PathSeg, Violations};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Per-invocation limits; unset means the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest linear memory, in bytes.
    pub memory: Option<u64>,
    /// Wall time of one guest call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Fuel (roughly, wasm instructions) for one guest call.
    pub fuel: Option<u64>,
}

/// The limits one invocation runs with, every value decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedLimits {
    /// Largest linear memory, in bytes.
    pub memory: u64,
    /// Wall time of one guest call, in milliseconds.
    pub timeout_ms: u64,
    /// Fuel for one guest call; `None` runs unmetered.
    pub fuel: Option<u64>,
}

/// Linear memory of a guest whose hook sets no limit: 64 MiB.
pub const DEFAULT_MEMORY: u64 = 64 << 20;
/// Largest linear memory a hook may ask for: 512 MiB.
pub const MAX_MEMORY: u64 = 512 << 20;
/// Wall time of a guest call whose hook sets no limit: 5 s.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Longest wall time a hook may ask for: 60 s.
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Fuel of a guest call whose hook sets none: unmetered (the wall-time
/// deadline still ends it).
pub const DEFAULT_FUEL: Option<u64> = None;
/// Most fuel a hook may ask for: no maximum.
pub const MAX_FUEL: Option<u64> = None;

impl Limits {
    /// The `limits` field of a lambda hook's configuration.
    pub fn schema_field() -> Field {
        let positive = || Check::Between(1.0, 9.0e15);
        Field::new(
            "limits",
            Kind::Record(vec![
                Field::new("memory", Kind::Integer).check(positive()),
                Field::new("timeout_ms", Kind::Integer).check(positive()),
                Field::new("fuel", Kind::Integer).check(positive()),
            ]),
        )
        .default(json!({"memory": null, "timeout_ms": null, "fuel": null}))
    }

    /// Refuses, under `config.limits`, fuel on a server that does not
    /// count it and any value above the server's maximum, in every mode.
    pub(crate) fn check(&self, ceiling: &SandboxCeiling, v: &mut Violations) {
        let path = |name: &str| {
            ["config", "limits", name]
                .map(|k| PathSeg::Key(k.to_string()))
                .to_vec()
        };
        if self.fuel.is_some() && !ceiling.fuel_metering {
            v.push(
                path("fuel"),
                "fuel is not counted on this server (sandbox_fuel_metering = false)",
            );
        }
        let max = &ceiling.max_limits;
        let over = [
            ("memory", self.memory, Some(max.memory)),
            ("timeout_ms", self.timeout_ms, Some(max.timeout_ms)),
            ("fuel", self.fuel, max.fuel),
        ];
        for (name, asked, max) in over {
            if let (Some(asked), Some(max)) = (asked, max)
                && asked > max
            {
                v.push(
                    path(name),
                    format!("{asked} exceeds the server maximum {max}"),
                );
            }
        }
    }
}

impl SandboxCeiling {
    /// The limits an invocation runs with: what the hook set, else the
    /// default, never above the maximum (a value above it is refused at
    /// create; clamping covers a maximum lowered afterwards). With a fuel
    /// maximum, an unset fuel becomes that maximum. Without fuel metering
    /// there is no fuel: a hook stored while metering was on runs
    /// unmetered, bounded by its wall time, and its capabilities say so.
    pub fn resolve_limits(&self, requested: &Limits) -> ResolvedLimits {
        let (d, max) = (&self.default_limits, &self.max_limits);
        let fuel = requested.fuel.or(d.fuel);
        ResolvedLimits {
            memory: requested.memory.unwrap_or(d.memory).min(max.memory),
            timeout_ms: requested
                .timeout_ms
                .unwrap_or(d.timeout_ms)
                .min(max.timeout_ms),
            fuel: match (fuel, max.fuel) {
                _ if !self.fuel_metering => None,
                (Some(f), Some(m)) => Some(f.min(m)),
                (f, m) => f.or(m),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_resolve_to_default_and_clamp_to_maximum() {
        let mut c = SandboxCeiling {
            fuel_metering: true,
            ..SandboxCeiling::default()
        };
        assert_eq!(c.resolve_limits(&Limits::default()), c.default_limits);
        let asked = Limits {
            memory: Some(1 << 20),
            timeout_ms: Some(MAX_TIMEOUT_MS * 2),
            fuel: Some(5),
        };
        assert_eq!(
            c.resolve_limits(&asked),
            ResolvedLimits {
                memory: 1 << 20,
                timeout_ms: MAX_TIMEOUT_MS,
                fuel: Some(5)
            }
        );
        c.max_limits.fuel = Some(100);
        assert_eq!(c.resolve_limits(&Limits::default()).fuel, Some(100));
        assert_eq!(
            c.resolve_limits(&Limits {
                fuel: Some(500),
                ..Limits::default()
            })
            .fuel,
            Some(100)
        );
    }
}
