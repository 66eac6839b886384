//! The `http` kind: hosts a guest may call over `wasi:http`.

use super::{CapabilityKind, GuestSetup, SandboxCeiling};
use crate::host_port::split_host_port;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// The `http` capability kind.
pub struct HttpHosts;

impl CapabilityKind for HttpHosts {
    type Request = String;
    type Item = AllowedHost;

    fn parse(pattern: &String) -> Result<AllowedHost, String> {
        AllowedHost::parse(pattern).map_err(|e| e.to_string())
    }

    fn request(host: &AllowedHost) -> String {
        host.to_string()
    }

    /// An IP-literal host the outbound address policy refuses is never
    /// reached; a name is judged on its addresses when it is called.
    fn unusable(host: &AllowedHost, ceiling: &SandboxCeiling) -> Option<String> {
        let HostPattern::Ip(ip) = host.host else {
            return None;
        };
        let restricted = ceiling.outbound.check(ip).err()?;
        Some(format!(
            "{ip} is a {restricted} address, which the outbound address policy refuses \
             (outbound_allow_cidrs admits it)"
        ))
    }

    fn within(host: &AllowedHost, ceiling: &[AllowedHost]) -> bool {
        ceiling.iter().any(|c| host.within(c))
    }

    /// The wasi-http hook checks every request against the granted hosts,
    /// and the outbound address policy every address they resolve to.
    fn apply(
        host: &AllowedHost,
        _: Option<&[AllowedHost]>,
        to: &mut dyn GuestSetup,
    ) -> Result<(), String> {
        to.allow_http(host);
        Ok(())
    }
}

/// A host a guest may call over HTTP, written `host[:port]`.
///
/// - host: a DNS name (`api.example.com`); `*.` and a name for every
///   subdomain at any depth (`*.slack.com` admits `hooks.slack.com` and
///   `a.b.slack.com`, not `slack.com`); an IP address (`127.0.0.1`,
///   `[::1]`, or `::1` without a port); or `*` for any host.
/// - port: a number, `*` for any port, or absent for the web ports 80 and
///   443.
/// - no scheme: a pattern admits http and https alike. What is guarded is
///   where a request goes; the outbound address policy then checks where
///   the name resolves. `https://x`, paths and user info are refused.
///
/// Names compare case-insensitively, a trailing dot ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AllowedHost {
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostPattern {
    Any,
    Name(String),
    /// The parent name, without `*.`.
    Subdomains(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PortPattern {
    /// 80 and 443.
    Web,
    Exact(u16),
    Any,
}

/// A host pattern that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host pattern '{pattern}': {reason}")]
pub struct InvalidHostPattern {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl AllowedHost {
    /// Parses `host[:port]` (see the type's documentation).
    pub fn parse(pattern: &str) -> Result<Self, InvalidHostPattern> {
        let invalid = |reason| InvalidHostPattern {
            pattern: pattern.to_string(),
            reason,
        };
        if pattern.is_empty() {
            return Err(invalid("empty"));
        }
        if pattern.contains("://") {
            return Err(invalid(
                "write host[:port] without a scheme: a pattern admits http and https alike",
            ));
        }
        if pattern.contains(['/', '?', '#', '@']) || pattern.chars().any(char::is_whitespace) {
            return Err(invalid(
                "only host[:port] is allowed: no path, query or user info",
            ));
        }
        let (host, port) = split_host_port(pattern).map_err(invalid)?;
        let port = match port {
            None => PortPattern::Web,
            Some("*") => PortPattern::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => PortPattern::Exact(n),
                _ => return Err(invalid("the port must be 1-65535 or *")),
            },
        };
        let host = parse_host_pattern(host).map_err(invalid)?;
        Ok(AllowedHost { host, port })
    }

    /// Whether a request to `host` (a name or an IP literal, IPv6 with or
    /// without brackets) on `port` is admitted.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let port_ok = match self.port {
            PortPattern::Web => port == 80 || port == 443,
            PortPattern::Exact(p) => port == p,
            PortPattern::Any => true,
        };
        port_ok && self.host.allows(&normalise(host))
    }

    /// Whether everything this pattern admits, `ceiling` admits too.
    pub fn within(&self, ceiling: &AllowedHost) -> bool {
        let port_ok = match (self.port, ceiling.port) {
            (_, PortPattern::Any) => true,
            (PortPattern::Any, _) => false,
            (PortPattern::Web, PortPattern::Web) => true,
            (PortPattern::Exact(p), PortPattern::Web) => p == 80 || p == 443,
            (PortPattern::Exact(p), PortPattern::Exact(q)) => p == q,
            (PortPattern::Web, PortPattern::Exact(_)) => false,
        };
        let host_ok = match (&self.host, &ceiling.host) {
            (_, HostPattern::Any) => true,
            (HostPattern::Any, _) => false,
            (HostPattern::Name(n), HostPattern::Name(m)) => n == m,
            (HostPattern::Name(n), HostPattern::Subdomains(s)) => is_subdomain(n, s),
            (HostPattern::Subdomains(a), HostPattern::Subdomains(s)) => {
                a == s || is_subdomain(a, s)
            }
            (HostPattern::Ip(a), HostPattern::Ip(b)) => a == b,
            _ => false,
        };
        port_ok && host_ok
    }
}

impl HostPattern {
    fn allows(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Name(n) => n == host,
            HostPattern::Subdomains(s) => is_subdomain(host, s),
            HostPattern::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
        }
    }
}

fn is_subdomain(name: &str, parent: &str) -> bool {
    name.strip_suffix(parent)
        .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
}

fn normalise(host: &str) -> String {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

fn parse_host_pattern(host: &str) -> Result<HostPattern, &'static str> {
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(HostPattern::Ip(ip));
    }
    if host.contains(':') {
        return Err("not an IPv6 address");
    }
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    if name.contains('*') {
        return Err("a wildcard may only be the whole first label (*.example.com)");
    }
    let name = normalise(name);
    if name.is_empty() || name.len() > 253 {
        return Err("not a valid host name");
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err("not a valid host name");
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("not a valid IP address or host name");
    }
    Ok(if wildcard {
        HostPattern::Subdomains(name)
    } else {
        HostPattern::Name(name)
    })
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Name(n) => f.write_str(n)?,
            HostPattern::Subdomains(s) => write!(f, "*.{s}")?,
            HostPattern::Ip(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
        }
        match self.port {
            PortPattern::Web => Ok(()),
            PortPattern::Exact(p) => write!(f, ":{p}"),
            PortPattern::Any => f.write_str(":*"),
        }
    }
}

impl TryFrom<String> for AllowedHost {
    type Error = InvalidHostPattern;
    fn try_from(s: String) -> Result<Self, InvalidHostPattern> {
        AllowedHost::parse(&s)
    }
}

impl From<AllowedHost> for String {
    fn from(h: AllowedHost) -> String {
        h.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::testing::host;
    use serde_json::json;

    fn reason(p: &str) -> &'static str {
        AllowedHost::parse(p).unwrap_err().reason
    }

    #[test]
    fn exact_name_admits_only_itself_on_web_ports() {
        let h = host("api.example.com");
        assert!(h.allows("api.example.com", 443));
        assert!(h.allows("API.Example.com.", 80));
        assert!(!h.allows("api.example.com", 8080));
        assert!(!h.allows("x.api.example.com", 443));
        assert!(!h.allows("example.com", 443));
    }

    #[test]
    fn wildcard_admits_subdomains_at_any_depth_but_not_the_parent() {
        let h = host("*.slack.com");
        assert!(h.allows("hooks.slack.com", 443));
        assert!(h.allows("a.b.slack.com", 443));
        assert!(!h.allows("slack.com", 443));
        assert!(!h.allows("evilslack.com", 443));
    }

    #[test]
    fn ports_exact_any_and_default() {
        assert!(host("host:443").allows("host", 443));
        assert!(!host("host:443").allows("host", 80));
        assert!(host("*.x.com:8080").allows("a.x.com", 8080));
        assert!(!host("*.x.com:8080").allows("a.x.com", 443));
        assert!(host("host:*").allows("host", 1));
        assert!(host("*").allows("anything.example", 443));
        assert!(!host("*").allows("anything.example", 22));
    }

    #[test]
    fn ip_patterns_compare_addresses() {
        assert!(host("127.0.0.1:9000").allows("127.0.0.1", 9000));
        assert!(!host("127.0.0.1:9000").allows("localhost", 9000));
        assert!(host("[::1]:8080").allows("[::1]", 8080));
        assert!(host("[::1]:8080").allows("0:0::1", 8080));
        assert!(host("::1").allows("::1", 443));
        assert!(!host("10.0.0.1").allows("10.0.0.2", 443));
    }

    #[test]
    fn malformed_patterns_are_refused_with_a_reason() {
        assert_eq!(reason(""), "empty");
        assert!(reason("https://api.example.com").contains("without a scheme"));
        assert!(reason("api.example.com/path").contains("no path"));
        assert!(reason("user@host").contains("user info"));
        assert!(reason("a b").contains("no path"));
        assert_eq!(reason("host:0"), "the port must be 1-65535 or *");
        assert_eq!(reason("host:+80"), "the port must be 1-65535 or *");
        assert_eq!(reason("host:70000"), "the port must be 1-65535 or *");
        assert!(reason("a.*.com").contains("wildcard"));
        assert!(reason("*x.com").contains("wildcard"));
        assert_eq!(reason("-a.com"), "not a valid host name");
        assert_eq!(reason("a..com"), "not a valid host name");
        assert_eq!(reason("[1.2.3.4]"), "brackets must hold an IPv6 address");
        assert_eq!(reason("[::1"), "unclosed '['");
        assert_eq!(reason("999.1.1.1"), "not a valid IP address or host name");
    }

    #[test]
    fn patterns_round_trip_through_their_text() {
        for p in [
            "api.example.com",
            "*.slack.com:443",
            "127.0.0.1:8080",
            "[::1]:*",
            "*",
        ] {
            assert_eq!(host(p).to_string(), p);
        }
        assert_eq!(host("API.example.COM.").to_string(), "api.example.com");
        let json = serde_json::to_value(host("*.x.com:8080")).unwrap();
        assert_eq!(json, json!("*.x.com:8080"));
        assert!(serde_json::from_value::<AllowedHost>(json!("http://x")).is_err());
    }

    #[test]
    fn within_compares_hosts_and_ports() {
        assert!(host("hooks.slack.com").within(&host("*.slack.com")));
        assert!(host("*.a.slack.com").within(&host("*.slack.com")));
        assert!(!host("*.slack.com").within(&host("hooks.slack.com")));
        assert!(!host("slack.com").within(&host("*.slack.com")));
        assert!(host("x.com:443").within(&host("x.com")));
        assert!(!host("x.com:8443").within(&host("x.com")));
        assert!(!host("x.com").within(&host("x.com:443")));
        assert!(!host("x.com:*").within(&host("x.com")));
        assert!(host("anything.example:22").within(&host("*:*")));
        assert!(!host("*").within(&host("*.x.com")));
        assert!(host("127.0.0.1:1").within(&host("127.0.0.1:*")));
    }
}
