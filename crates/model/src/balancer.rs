//! The `balancer` source: a target address's health and the `health` event
//! published when it changes. The health checker (hookd-sources) decides
//! when; the event's data is shaped here, so that the checker and the
//! event examples of the Admin API make it with the same code.

use crate::Event;
use serde_json::json;
use std::net::IpAddr;
use uuid::Uuid;

/// Whether the balancer would use an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    /// In use; where every address starts.
    #[default]
    Healthy,
    /// Out of use until enough successes.
    Unhealthy,
}

impl Health {
    /// `healthy` or `unhealthy`, as in the `balancer` / `health` event.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// The `balancer` / `health` event, with Kong's fields: the address `ip`
/// of a target of upstream `upstream_id`, written `hostname:port`, turned
/// `health`.
pub fn health_event(
    upstream_id: Uuid,
    hostname: &str,
    ip: IpAddr,
    port: u16,
    health: Health,
    at_ms: i64,
) -> Event {
    let data = json!({
        "upstream_id": upstream_id.to_string(),
        "ip": ip.to_string(),
        "port": port,
        "hostname": hostname,
        "health": health.as_str(),
    });
    Event::new("balancer", "health", data, at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_carries_kongs_fields() {
        let upstream = Uuid::new_v4();
        let event = health_event(
            upstream,
            "api.example",
            "10.0.0.7".parse().unwrap(),
            8080,
            Health::Unhealthy,
            42,
        );
        assert_eq!(
            (event.source.as_str(), event.event.as_str()),
            ("balancer", "health")
        );
        assert_eq!(event.at_ms, 42);
        assert_eq!(
            event.data,
            json!({"upstream_id": upstream.to_string(), "ip": "10.0.0.7", "port": 8080,
                   "hostname": "api.example", "health": "unhealthy"})
        );
    }
}
