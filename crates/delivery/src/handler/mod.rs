//! The handlers: Kong's `webhook`, `webhook-custom` and `log`, and the
//! `lambda` handler of WebAssembly guests, each a module of its own that
//! implements [`HookHandler`] for the handler's configuration; [`of`],
//! written from hookd-model's one list of handlers, picks a hook's.
//!
//! [`Outbound`] is built once from the server's [`HttpSettings`] and shared
//! by every worker. It never connects where the [`OutboundPolicy`] refuses:
//! names are resolved by a resolver that drops refused addresses, IP-literal
//! URLs are checked before sending, proxies are off (a proxy would make the
//! proxy's address the one checked) and redirects are not followed (a 3xx is
//! just a non-2xx answer).
//!
//! Every request carries the Standard Webhooks `webhook-id` and
//! `webhook-timestamp` headers; with a `secret` it is also signed, Kong's way
//! (`X-Kong-Signature`) and the Standard Webhooks way (`webhook-signature`,
//! also with a live `previous_secret`), see [`signature`].
//!
//! [`OutboundPolicy`]: hookd_model::outbound::OutboundPolicy

mod custom;
pub(crate) mod lambda;
mod log;
mod outbound;
mod outcome;
mod response;
pub mod signature;
mod webhook;

pub use outbound::{HttpSettings, MAX_RESPONSE_BODY, Outbound};
pub use outcome::TestFailure;
pub(crate) use outcome::{Handled, Outcome};
pub use response::{EXCERPT_LIMIT, Response, RetryAfter};
pub use signature::KongSignature;

use crate::Engine;
use futures::future::{self, BoxFuture, FutureExt};
use hookd_model::hook::Handler;
use hookd_model::outbound::Restricted;
use hookd_model::{Event, Violations};
use std::net::IpAddr;
use std::time::Duration;
use uuid::Uuid;

/// What a handler does with a hook's events, given its configuration: the
/// checks its configuration needs when the hook is saved, and its work on
/// one event, which a delivery attempt and `/event-hooks/{id}/test` both
/// judge from what it [`Handled`]. Implemented by each handler's
/// configuration type, in the handler's module.
pub(crate) trait HookHandler: Send + Sync {
    /// Checks what the schema cannot, when the hook is saved.
    fn check<'a>(&'a self, _engine: &'a Engine) -> BoxFuture<'a, Result<(), Violations>> {
        future::ready(Ok(())).boxed()
    }

    /// Handles the event of `call`.
    fn handle<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Handled>;
}

/// What a handler is handed for one event.
#[derive(Clone, Copy)]
pub(crate) struct Call<'a> {
    /// The server's delivery engine: its outbound client, settings, store.
    pub engine: &'a Engine,
    /// The hook whose handler runs.
    pub hook_id: Uuid,
    /// The attempt, with the event it carries.
    pub attempt: &'a AttemptId<'a>,
}

/// Writes [`of`] from the list of handlers in hookd-model.
macro_rules! handler_of {
    ($( $(#[$doc:meta])* $variant:ident($config:ty) = $name:literal, )+) => {
        /// The implementation of a hook's handler: its configuration.
        pub(crate) fn of(handler: &Handler) -> &dyn HookHandler {
            match handler {
                $( Handler::$variant(config) => config, )+
            }
        }
    };
}

hookd_model::with_handlers!(handler_of);

/// One attempt: the event it carries and how the receiver tells attempts
/// apart (the Standard Webhooks headers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttemptId<'a> {
    /// The delivery (job) id, sent as `webhook-id`: the same for every retry
    /// of one delivery, so a receiver can drop duplicates.
    pub delivery_id: Uuid,
    /// When this attempt is sent, unix seconds, sent as `webhook-timestamp`
    /// and signed with the body.
    pub timestamp_s: i64,
    /// The event delivered (not read by [`Outbound::ping`]).
    pub event: &'a Event,
}

/// Why a handler failed. The message is what gets recorded on the attempt,
/// so variants wrapping a client error show its innermost cause (the one a
/// person can act on) besides keeping the whole chain as their source.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The target resolved only to addresses the outbound policy refuses.
    #[error(
        "refused to connect to {addr}: {reason} address, not admitted by the outbound policy \
         (outbound_allow_cidrs)"
    )]
    Refused {
        /// The (first) refused address.
        addr: IpAddr,
        /// The range it falls in.
        reason: Restricted,
    },
    /// No complete answer within the configured timeout.
    #[error("no answer within {after:?}")]
    Timeout {
        /// The timeout that ran out.
        after: Duration,
    },
    /// The connection could not be made: name not found, connection refused,
    /// host unreachable.
    #[error("could not connect: {}", root_cause(.0))]
    Connect(#[source] reqwest::Error),
    /// The TLS handshake failed, e.g. an untrusted certificate with
    /// `ssl_verify` on.
    #[error("TLS handshake failed: {}", root_cause(.0))]
    Tls(#[source] reqwest::Error),
    /// The exchange failed once connected: connection reset, malformed
    /// answer, body cut short.
    #[error("request failed: {}", root_cause(.0))]
    Request(#[source] reqwest::Error),
    /// A webhook-custom template could not be compiled or rendered, or
    /// rendered to something unusable.
    #[error("cannot render {field}: {message}")]
    Render {
        /// Where the template is, e.g. `config.body`, `config.headers.X-Id`.
        field: String,
        /// What went wrong.
        message: String,
    },
    /// The templates got no answer: the render went over its time or
    /// memory, or no worker was free in time.
    #[error("cannot render the templates: {0}")]
    Templates(#[source] hookd_template::PoolError),
    /// The configured URL does not parse.
    #[error("invalid url {url:?}: {source}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// The configured method is not a valid HTTP method.
    #[error("invalid method {method:?}: {source}")]
    InvalidMethod {
        /// The method as configured.
        method: String,
        /// Why it is invalid.
        #[source]
        source: http::method::InvalidMethod,
    },
    /// A header name or value is not valid HTTP.
    #[error("invalid header {name:?}: {source}")]
    InvalidHeader {
        /// The header's name as configured.
        name: String,
        /// What is wrong with it.
        #[source]
        source: http::Error,
    },
    /// A webhook-custom payload cannot be encoded for its Content-Type.
    #[error(
        "cannot encode the payload as {content_type:?}: use application/json, \
         application/x-www-form-urlencoded or multipart/form-data, or set a body"
    )]
    UnsupportedContentType {
        /// The Content-Type header sent.
        content_type: String,
    },
    /// The HTTP client could not be built from the settings.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The TLS client configuration could not be built.
    #[error("cannot set up TLS: {0}")]
    TlsSetup(#[source] rustls::Error),
}

type DynError = dyn std::error::Error + 'static;

/// `err` and its causes, outermost first. An `io::Error`'s `source` skips
/// the error it wraps (it answers that error's source), and the client
/// nests them, so the wrapped error is taken from `get_ref` instead.
fn causes(err: &DynError) -> impl Iterator<Item = &DynError> {
    std::iter::successors(Some(err), |e| {
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &DynError),
            None => e.source(),
        }
    })
}

/// The innermost error of a chain: for a client error, the one that says
/// what happened ("Connection refused", "invalid peer certificate").
fn root_cause(err: &DynError) -> String {
    causes(err).last().unwrap_or(err).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_message_names_address_and_range() {
        let err = HandlerError::Refused {
            addr: "127.0.0.1".parse().unwrap(),
            reason: Restricted::Loopback,
        };
        assert_eq!(
            err.to_string(),
            "refused to connect to 127.0.0.1: loopback address, not admitted by the outbound policy \
             (outbound_allow_cidrs)"
        );
    }
}
