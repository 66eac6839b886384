//! hookd-sources: event producers other than the Admin API.
//!
//! [`HealthChecker`] runs Kong's active health checks on the targets of
//! every upstream in the store and publishes a `balancer` / `health` event
//! each time an address changes between healthy and unhealthy. Its
//! [`HealthChecker::health`] answers `GET /upstreams/{id}/health`.
//!
//! What it does, and where it departs from Kong on purpose:
//!
//! - **Counting** is lua-resty-healthcheck's: a success counts towards
//!   healthy and clears the failure counters; a TCP failure, a timeout or an
//!   HTTP failure counts towards unhealthy in its own counter and clears the
//!   success counter; an address changes health when one counter reaches its
//!   threshold, and a threshold of 0 switches its kind off entirely (not
//!   counted, clears nothing). Reports that agree with the current health
//!   are not counted. Addresses start healthy.
//! - **Events** are published only on a real change, never twice in a row
//!   with the same health (Kong may repeat one). Data:
//!   `{"upstream_id", "ip", "port", "hostname", "health"}` with `health`
//!   `"healthy"` or `"unhealthy"`.
//! - **What is probed** is every address a target's host resolves to, as
//!   Kong's balancer does, for every target with a weight above 0 of every
//!   upstream whose `healthchecks.active.healthy.interval` or
//!   `.unhealthy.interval` is above 0. An address is probed every
//!   `healthy.interval` seconds while healthy and every `unhealthy.interval`
//!   while unhealthy (0 stops probing in that state), the first time one
//!   interval after it is found; `concurrency` bounds the probes of one
//!   upstream in flight at once.
//! - **Probes**: `tcp` connects; `http` and `https` send Kong's
//!   `GET <http_path> HTTP/1.0` with the configured headers and read the
//!   status line. `timeout` bounds each step (connect, TLS handshake, send,
//!   receive). A timeout counts as a timeout; a refused connection, a failed
//!   handshake or a connection closed before the status line as a TCP
//!   failure; a status line that does not parse as an HTTP failure (Kong's
//!   status 0); a status in neither list counts as nothing.
//! - **grpc and grpcs** probes are not run: Kong's own health checker
//!   refuses these types too. Such an upstream is logged once and reported
//!   `HEALTHCHECKS_OFF`.
//! - **Outbound policy**: the checker resolves names itself through
//!   hookd-outbound, which checks each resolved address against the
//!   [`OutboundPolicy`], and checks it again right before connecting. A refused address is never connected to; each probe of it
//!   counts as a TCP failure (for hookd it is as unreachable as a refused
//!   connection), so it turns unhealthy by the same rules as an unreachable
//!   target, and its entry in the health report names the reason
//!   (`"refused": "loopback"`).
//! - **Configuration** is re-read from the store every
//!   [`Settings::refresh`]: new targets start being probed, deleted ones
//!   stop and their state is dropped, changed checks apply from the next
//!   probe with the health and counters kept. Switching an upstream's active
//!   checks off drops its state, as Kong does.
//! - **Passive checks** (circuit breakers) need proxied traffic, which
//!   hookd has none of: they are never run.
//!
//! [`OutboundPolicy`]: hookd_model::outbound::OutboundPolicy
#![deny(missing_docs)]

mod checker;
mod config;
mod counter;
mod health;
mod probe;
mod target;

pub use checker::{HealthChecker, Settings};
pub use health::{
    AddressHealth, HealthStatus, TargetHealth, TargetHealthData, UpstreamRef, WeightSummary,
};

use hookd_model::outbound::Restricted;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Everything that can go wrong in health checking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error("store error")]
    Store(#[from] hookd_store::Error),
    /// No Tokio runtime to run the checks on.
    #[error("health checks must be started inside a Tokio runtime")]
    NoRuntime,
    /// An upstream's `healthchecks.active` cannot be followed.
    #[error("invalid healthchecks.active.{field}: {reason}")]
    InvalidChecks {
        /// The field, below `healthchecks.active`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A probe type hookd does not run.
    #[error("active health checks of type '{kind}' are not supported")]
    UnsupportedProbe {
        /// The configured type (`grpc`, `grpcs`).
        kind: String,
    },
    /// The TLS client could not be set up.
    #[error("setting up TLS")]
    TlsSetup(#[source] rustls::Error),
    /// The name to verify the certificate against is not a valid DNS name.
    #[error("invalid TLS server name '{name}'")]
    ServerName {
        /// The name (`https_sni`, or the target's host).
        name: String,
        /// Why it is invalid.
        #[source]
        source: rustls::pki_types::InvalidDnsNameError,
    },
    /// The target's host could not be resolved.
    #[error("resolving '{host}'")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The target's host resolved to no address.
    #[error("'{host}' resolved to no address")]
    NoAddress {
        /// The host.
        host: String,
    },
    /// Resolving the target's host took too long.
    #[error("resolving '{host}' took longer than {after:?}")]
    ResolveTimeout {
        /// The host.
        host: String,
        /// The bound.
        after: Duration,
    },
    /// The outbound policy refuses the address: it was not connected to.
    #[error("{addr} is refused by the outbound policy ({reason})")]
    Refused {
        /// The address refused.
        addr: IpAddr,
        /// Why.
        reason: Restricted,
    },
    /// The connection failed (refused, unreachable).
    #[error("connecting to {addr}")]
    Connect {
        /// The address dialled.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (certificate refused, protocol error).
    #[error("TLS handshake with {addr}")]
    Handshake {
        /// The address connected to.
        addr: SocketAddr,
        /// The handshake error.
        #[source]
        source: std::io::Error,
    },
    /// Sending the request or reading the answer failed.
    #[error("exchanging with {addr}")]
    Exchange {
        /// The address connected to.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The connection was closed before a whole status line came.
    #[error("{addr} closed the connection before answering")]
    Closed {
        /// The address connected to.
        addr: SocketAddr,
    },
    /// A step of the probe took longer than the configured timeout.
    #[error("{addr} did not answer within {after:?}")]
    Timeout {
        /// The address probed.
        addr: SocketAddr,
        /// The configured timeout.
        after: Duration,
    },
}

/// `Result` with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its sources on one line, for logs: tracing shows only the
/// outermost message otherwise.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
