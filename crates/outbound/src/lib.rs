//! hookd-outbound: the one way hookd connects somewhere on a hook's
//! behalf. Webhooks, guests' `wasi:http` requests and health probes all
//! name a host someone other than the operator chose; all of them go
//! through here.
//!
//! A [`Dialer`] resolves a host (an IP literal is itself), checks every
//! address against the [`OutboundPolicy`] and hands back one [`Decision`]
//! per address: [`Admitted`] or [`Refused`] with the [`Restricted`] reason,
//! for the caller to audit or report. Only an [`Admitted`] address can be
//! connected to, so what was checked is what is dialled, and a name that
//! resolves to a private address (DNS rebinding) is caught. [`tls`] builds
//! the TLS client configurations (certificates verified, or any accepted)
//! the callers put on top of the connection.
//!
//! A new outbound caller takes a [`Dialer`] (and a [`tls`] configuration
//! for HTTPS) and needs nothing else from the policy.
//!
//! [`OutboundPolicy`]: hookd_model::outbound::OutboundPolicy
//! [`Restricted`]: hookd_model::outbound::Restricted
#![deny(missing_docs)]

mod dialer;
pub mod tls;

pub use dialer::{Admitted, Decision, Dialer, Refused};
