//! The health report of `GET /upstreams/{id}/health`, in the shape of
//! Kong's: each target as `GET /targets` shows it, with `health` and the
//! balancer's view of its addresses under `data`.

use crate::counter::Health;
use crate::target::TargetSpec;
use hookd_model::outbound::Restricted;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::IpAddr;
use uuid::Uuid;

/// The health of a target or of one of its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    /// Checked and in use; also a target whose checks have not begun.
    Healthy,
    /// Checked and out of use.
    Unhealthy,
    /// Not checked: the upstream's active checks are off or unsupported,
    /// or the target's weight is 0.
    HealthchecksOff,
    /// Checked, but the host has never resolved to an address.
    DnsError,
}

/// A target with its health, one item of the health report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetHealth {
    /// The target's id.
    pub id: Uuid,
    /// When the target was created, unix seconds.
    pub created_at: Option<i64>,
    /// When the target was last changed, unix seconds.
    pub updated_at: Option<i64>,
    /// `host:port`.
    pub target: String,
    /// The upstream the target belongs to.
    pub upstream: UpstreamRef,
    /// The target's weight.
    pub weight: u32,
    /// The target's tags.
    pub tags: Option<Vec<String>>,
    /// Kong's rule: healthy when any address is, unhealthy when none is,
    /// `DNS_ERROR` when checked but without addresses.
    pub health: HealthStatus,
    /// The balancer's view of the target.
    pub data: TargetHealthData,
}

/// A reference to an upstream, as Kong writes foreign keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamRef {
    /// The upstream's id.
    pub id: Uuid,
}

/// The addresses of a target and their weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetHealthData {
    /// The host part of the target.
    pub host: String,
    /// The port of the target.
    pub port: u16,
    /// The target's weight, given to each of its addresses.
    #[serde(rename = "nodeWeight")]
    pub node_weight: u32,
    /// The weight of all addresses, split by availability.
    pub weight: WeightSummary,
    /// Why resolving the host failed last time, while it fails; the
    /// addresses are then those of the last resolution that worked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<String>,
    /// Every address the host resolved to. Only IP-literal targets list
    /// their address while unchecked: hookd resolves names only to check them.
    pub addresses: Vec<AddressHealth>,
}

/// Sums of address weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightSummary {
    /// All addresses.
    pub total: u64,
    /// Addresses not unhealthy.
    pub available: u64,
    /// Unhealthy addresses.
    pub unavailable: u64,
}

/// One address of a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressHealth {
    /// The address.
    pub ip: IpAddr,
    /// The target's port.
    pub port: u16,
    /// Its weight: the target's.
    pub weight: u32,
    /// Its health.
    pub health: HealthStatus,
    /// Why the outbound policy refuses it (`loopback`, `private`, ...): it
    /// is never connected to, and each probe counts as a TCP failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// What a running check knows of a target, kept for the report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveTarget {
    /// The addresses, in address order.
    pub(crate) addresses: Vec<LiveAddress>,
    /// The last resolution error, while resolving fails.
    pub(crate) dns_error: Option<String>,
}

/// What a running check knows of an address.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveAddress {
    /// The address.
    pub(crate) ip: IpAddr,
    /// Its health.
    pub(crate) health: Health,
    /// Why the policy refuses it, if it does.
    pub(crate) refused: Option<Restricted>,
}

/// Where the checks of a target stand.
pub(crate) enum Checking<'a> {
    /// Not checked.
    Off,
    /// To be checked; the checker has not picked it up yet.
    Pending,
    /// Checked.
    Live(&'a LiveTarget),
}

impl TargetHealth {
    /// The report of a target stored as `entity`.
    pub(crate) fn new(entity: &Value, spec: &TargetSpec, checking: Checking<'_>) -> Self {
        let literal = spec.host.parse::<IpAddr>().ok();
        let address = |ip, health, refused: Option<Restricted>| AddressHealth {
            ip,
            port: spec.port,
            weight: spec.weight,
            health,
            refused: refused.map(|r| r.to_string()),
        };
        let (health, addresses, dns) = match checking {
            Checking::Off | Checking::Pending => {
                // Kong too reports a new target healthy before its first probe.
                let status = match checking {
                    Checking::Off => HealthStatus::HealthchecksOff,
                    _ => HealthStatus::Healthy,
                };
                let addresses = literal
                    .map(|ip| address(ip, status, None))
                    .into_iter()
                    .collect();
                (status, addresses, None)
            }
            Checking::Live(live) => {
                let addresses: Vec<AddressHealth> = live
                    .addresses
                    .iter()
                    .map(|a| {
                        let health = match a.health {
                            Health::Healthy => HealthStatus::Healthy,
                            Health::Unhealthy => HealthStatus::Unhealthy,
                        };
                        address(a.ip, health, a.refused)
                    })
                    .collect();
                let health = if addresses.is_empty() {
                    HealthStatus::DnsError
                } else if addresses.iter().any(|a| a.health == HealthStatus::Healthy) {
                    HealthStatus::Healthy
                } else {
                    HealthStatus::Unhealthy
                };
                (health, addresses, live.dns_error.clone())
            }
        };
        let each = u64::from(spec.weight);
        let total = each * addresses.len() as u64;
        let unavailable = each
            * addresses
                .iter()
                .filter(|a| a.health == HealthStatus::Unhealthy)
                .count() as u64;
        TargetHealth {
            id: spec.id,
            created_at: entity.get("created_at").and_then(Value::as_i64),
            updated_at: entity.get("updated_at").and_then(Value::as_i64),
            target: entity
                .get("target")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            upstream: UpstreamRef { id: spec.upstream },
            weight: spec.weight,
            tags: entity.get("tags").and_then(Value::as_array).map(|tags| {
                tags.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            }),
            health,
            data: TargetHealthData {
                host: spec.host.clone(),
                port: spec.port,
                node_weight: spec.weight,
                weight: WeightSummary {
                    total,
                    available: total - unavailable,
                    unavailable,
                },
                dns,
                addresses,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(host: &str) -> (Value, TargetSpec) {
        let entity = json!({
            "id": Uuid::new_v4().to_string(),
            "created_at": 10,
            "updated_at": 11,
            "target": format!("{host}:8080"),
            "upstream": {"id": Uuid::new_v4().to_string()},
            "weight": 50,
            "tags": ["a"],
        });
        let spec = TargetSpec::of_entity(&entity).unwrap();
        (entity, spec)
    }

    fn live(addresses: &[(&str, Health)]) -> LiveTarget {
        LiveTarget {
            addresses: addresses
                .iter()
                .map(|(ip, health)| LiveAddress {
                    ip: ip.parse().unwrap(),
                    health: *health,
                    refused: None,
                })
                .collect(),
            dns_error: None,
        }
    }

    #[test]
    fn serialises_in_kongs_shape() {
        let (entity, spec) = target("10.0.0.1");
        let mut state = live(&[("10.0.0.1", Health::Unhealthy)]);
        state.addresses[0].refused = Some(Restricted::Private);
        let report = TargetHealth::new(&entity, &spec, Checking::Live(&state));
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            json!({
                "id": entity["id"],
                "created_at": 10,
                "updated_at": 11,
                "target": "10.0.0.1:8080",
                "upstream": {"id": entity["upstream"]["id"]},
                "weight": 50,
                "tags": ["a"],
                "health": "UNHEALTHY",
                "data": {
                    "host": "10.0.0.1",
                    "port": 8080,
                    "nodeWeight": 50,
                    "weight": {"total": 50, "available": 0, "unavailable": 50},
                    "addresses": [{"ip": "10.0.0.1", "port": 8080, "weight": 50,
                                   "health": "UNHEALTHY", "refused": "private"}]
                }
            })
        );
    }

    #[test]
    fn a_target_is_healthy_when_any_address_is() {
        let (entity, spec) = target("api.example");
        let state = live(&[
            ("10.0.0.1", Health::Unhealthy),
            ("10.0.0.2", Health::Healthy),
        ]);
        let report = TargetHealth::new(&entity, &spec, Checking::Live(&state));
        assert_eq!(report.health, HealthStatus::Healthy);
        assert_eq!(
            report.data.weight,
            WeightSummary {
                total: 100,
                available: 50,
                unavailable: 50
            }
        );
    }

    #[test]
    fn a_checked_target_without_addresses_is_a_dns_error() {
        let (entity, spec) = target("nowhere.invalid");
        let mut state = live(&[]);
        state.dns_error = Some("resolving 'nowhere.invalid'".into());
        let report = TargetHealth::new(&entity, &spec, Checking::Live(&state));
        assert_eq!(report.health, HealthStatus::DnsError);
        assert_eq!(report.data.dns, state.dns_error);
    }

    #[test]
    fn unchecked_targets_list_only_literal_addresses() {
        let (entity, spec) = target("10.0.0.1");
        let off = TargetHealth::new(&entity, &spec, Checking::Off);
        assert_eq!(off.health, HealthStatus::HealthchecksOff);
        assert_eq!(off.data.addresses[0].health, HealthStatus::HealthchecksOff);
        let pending = TargetHealth::new(&entity, &spec, Checking::Pending);
        assert_eq!(pending.health, HealthStatus::Healthy);

        let (entity, spec) = target("api.example");
        let off = TargetHealth::new(&entity, &spec, Checking::Off);
        assert_eq!(off.health, HealthStatus::HealthchecksOff);
        assert!(off.data.addresses.is_empty());
    }
}
