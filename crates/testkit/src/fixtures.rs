//! Settings the suites share: receivers and targets listen on loopback,
//! which hookd refuses unless its outbound policy admits it.

use hookd_model::outbound::OutboundPolicy;

/// The loopback networks, as `outbound_allow_cidrs` takes them
/// (`HOOKD_OUTBOUND_ALLOW_CIDRS`).
pub const LOOPBACK_CIDRS: &str = "127.0.0.0/8,::1/128";

/// An outbound policy that admits loopback, where test receivers listen.
pub fn loopback_policy() -> OutboundPolicy {
    OutboundPolicy::allowing(
        LOOPBACK_CIDRS
            .split(',')
            .map(|cidr| cidr.parse().expect("a CIDR"))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_admitted_in_both_families() {
        let policy = loopback_policy();
        for ip in ["127.0.0.1", "::1"] {
            assert!(policy.check(ip.parse().unwrap()).is_ok(), "{ip}");
        }
    }
}
