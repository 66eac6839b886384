//! Which addresses hookd may connect to on a hook's behalf.
//!
//! A webhook URL, a guest's HTTP request and a health-check probe all name
//! a host that someone other than the operator chose. Resolved addresses
//! that reach the server itself or its private network are refused unless
//! the operator's allowlist admits them. The check is meant for the address
//! actually dialled, after name resolution, so a name that resolves to a
//! private address (DNS rebinding) is caught too.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The outbound address policy: private ranges refused, allowlist admitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundPolicy {
    /// Networks admitted even though they are private (e.g. `127.0.0.0/8`
    /// in tests, `10.1.0.0/16` for an internal receiver).
    pub allow: Vec<IpNet>,
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restricted {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, fc00::/7.
    Private,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// 100.64/10, shared address space of carrier-grade NAT.
    Cgnat,
    /// Instance metadata services of cloud providers.
    CloudMetadata,
    /// 0.0.0.0/8, ::, multicast, broadcast and reserved ranges.
    Unroutable,
}

impl std::fmt::Display for Restricted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Restricted::Loopback => "loopback",
            Restricted::Private => "private",
            Restricted::LinkLocal => "link-local",
            Restricted::Cgnat => "carrier-grade NAT",
            Restricted::CloudMetadata => "cloud metadata",
            Restricted::Unroutable => "unroutable",
        })
    }
}

impl OutboundPolicy {
    /// A policy admitting these networks besides public addresses.
    pub fn allowing(allow: Vec<IpNet>) -> Self {
        OutboundPolicy { allow }
    }

    /// `Ok` when hookd may connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Restricted> {
        let ip = canonical(ip);
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match classify(ip) {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
}

/// IPv4 addresses written as IPv6 (`::ffff:10.0.0.1`, NAT64 `64:ff9b::/96`)
/// are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let o = v6.octets();
                return IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

fn classify(ip: IpAddr) -> Option<Restricted> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Restricted> {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        return Some(Restricted::CloudMetadata);
    }
    if ip.is_loopback() {
        Some(Restricted::Loopback)
    } else if ip.is_private() {
        Some(Restricted::Private)
    } else if ip.is_link_local() {
        Some(Restricted::LinkLocal)
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some(Restricted::Cgnat)
    } else if o[0] == 0 || ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        Some(Restricted::Unroutable)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Restricted> {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(Restricted::CloudMetadata);
    }
    if ip.is_loopback() {
        Some(Restricted::Loopback)
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some(Restricted::Private)
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some(Restricted::LinkLocal)
    } else if ip.is_unspecified() || ip.is_multicast() {
        Some(Restricted::Unroutable)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &OutboundPolicy, ip: &str) -> Option<Restricted> {
        policy.check(ip.parse().unwrap()).err()
    }

    #[test]
    fn private_ranges_are_refused_by_default() {
        let p = OutboundPolicy::default();
        assert_eq!(refused(&p, "127.0.0.1"), Some(Restricted::Loopback));
        assert_eq!(refused(&p, "::1"), Some(Restricted::Loopback));
        assert_eq!(refused(&p, "10.1.2.3"), Some(Restricted::Private));
        assert_eq!(refused(&p, "172.31.0.1"), Some(Restricted::Private));
        assert_eq!(refused(&p, "192.168.1.1"), Some(Restricted::Private));
        assert_eq!(refused(&p, "fd12::1"), Some(Restricted::Private));
        assert_eq!(refused(&p, "169.254.1.1"), Some(Restricted::LinkLocal));
        assert_eq!(refused(&p, "fe80::1"), Some(Restricted::LinkLocal));
        assert_eq!(refused(&p, "100.64.0.1"), Some(Restricted::Cgnat));
        assert_eq!(
            refused(&p, "169.254.169.254"),
            Some(Restricted::CloudMetadata)
        );
        assert_eq!(
            refused(&p, "fd00:ec2::254"),
            Some(Restricted::CloudMetadata)
        );
        assert_eq!(refused(&p, "0.0.0.0"), Some(Restricted::Unroutable));
        assert_eq!(refused(&p, "::"), Some(Restricted::Unroutable));
    }

    #[test]
    fn mapped_ipv4_is_judged_as_ipv4() {
        let p = OutboundPolicy::default();
        assert_eq!(refused(&p, "::ffff:127.0.0.1"), Some(Restricted::Loopback));
        assert_eq!(refused(&p, "64:ff9b::a00:1"), Some(Restricted::Private));
    }

    #[test]
    fn public_addresses_pass() {
        let p = OutboundPolicy::default();
        assert_eq!(refused(&p, "93.184.216.34"), None);
        assert_eq!(refused(&p, "100.128.0.1"), None);
        assert_eq!(refused(&p, "2606:4700::1111"), None);
    }

    #[test]
    fn allowlist_admits() {
        let p = OutboundPolicy::allowing(vec!["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(refused(&p, "127.0.0.1"), None);
        assert_eq!(refused(&p, "::ffff:127.0.0.1"), None);
        assert_eq!(refused(&p, "10.0.0.1"), Some(Restricted::Private));
    }
}
