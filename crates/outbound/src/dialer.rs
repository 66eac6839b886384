//! Resolving, checking and connecting.

use hookd_model::outbound::{OutboundPolicy, Restricted};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpStream;

/// Resolves hosts and judges their addresses by the outbound policy.
/// Cheap to clone: clones share the policy.
#[derive(Debug, Clone, Default)]
pub struct Dialer {
    policy: Arc<OutboundPolicy>,
}

/// What the policy decided about one address.
pub type Decision = Result<Admitted, Refused>;

/// An address the outbound policy admits. Only the [`Dialer`] makes one,
/// so holding it proves the check was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted(SocketAddr);

/// An address the outbound policy refuses: it is never connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{addr} is refused by the outbound policy ({reason}; outbound_allow_cidrs admits it)")]
pub struct Refused {
    /// The address refused.
    pub addr: SocketAddr,
    /// The range it falls in.
    pub reason: Restricted,
}

impl Dialer {
    /// A dialer obeying `policy`.
    pub fn new(policy: OutboundPolicy) -> Self {
        Dialer {
            policy: Arc::new(policy),
        }
    }

    /// The addresses of `host` at `port`, each with the policy's decision,
    /// in the resolver's order. An IP literal (without brackets) is its own
    /// only address; a name is what the system resolver answers. Callers
    /// bound the time it may take.
    pub async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<Decision>> {
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port)).await?.collect(),
        };
        Ok(addrs.into_iter().map(|addr| self.check(addr)).collect())
    }

    /// The policy's decision about `addr`.
    pub fn check(&self, addr: SocketAddr) -> Decision {
        match self.policy.check(addr.ip()) {
            Ok(()) => Ok(Admitted(addr)),
            Err(reason) => Err(Refused { addr, reason }),
        }
    }
}

impl Admitted {
    /// The address, for a client that dials it itself.
    pub fn addr(self) -> SocketAddr {
        self.0
    }

    /// Opens a TCP connection to the address.
    pub async fn connect(self) -> std::io::Result<TcpStream> {
        TcpStream::connect(self.0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback_allowed() -> Dialer {
        Dialer::new(OutboundPolicy::allowing(vec![
            "127.0.0.0/8".parse().unwrap(),
        ]))
    }

    #[tokio::test]
    async fn an_ip_literal_is_its_own_only_address() {
        let decisions = Dialer::default().resolve("::1", 80).await.unwrap();
        assert_eq!(
            decisions,
            [Err(Refused {
                addr: "[::1]:80".parse().unwrap(),
                reason: Restricted::Loopback,
            })]
        );
    }

    #[tokio::test]
    async fn every_resolved_address_is_judged() {
        let decisions = Dialer::default().resolve("localhost", 9).await.unwrap();
        assert!(!decisions.is_empty());
        for decision in decisions {
            let refused = decision.unwrap_err();
            assert_eq!(refused.addr.port(), 9);
            assert_eq!(refused.reason, Restricted::Loopback);
        }
    }

    #[test]
    fn the_allowlist_admits() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(loopback_allowed().check(addr), Ok(Admitted(addr)));
        let private: SocketAddr = "10.0.0.1:9".parse().unwrap();
        assert_eq!(
            loopback_allowed().check(private),
            Err(Refused {
                addr: private,
                reason: Restricted::Private
            })
        );
    }

    #[tokio::test]
    async fn an_admitted_address_is_connected_to() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admitted = loopback_allowed().check(addr).unwrap();
        let stream = admitted.connect().await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addr);
    }

    #[test]
    fn a_refusal_names_the_address_and_the_range() {
        let refused = Dialer::default()
            .check("169.254.169.254:80".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "169.254.169.254:80 is refused by the outbound policy (cloud metadata; \
             outbound_allow_cidrs admits it)"
        );
    }
}
