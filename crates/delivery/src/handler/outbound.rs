//! The HTTP client every outbound handler shares. Names are resolved and
//! checked by hookd-outbound's [`Dialer`], TLS is its configuration.

use super::response::Response;
use super::signature::{self, KongSignature};
use super::{AttemptId, HandlerError, causes};
use hookd_model::hook::Secrets;
use hookd_model::outbound::OutboundPolicy;
use hookd_outbound::{Dialer, Refused, tls};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, TRANSFER_ENCODING};
use reqwest::{Client, Method, redirect};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use url::{Host, Url};

/// The most of a response body kept; the rest is not read, so a receiver
/// cannot make hookd hold more.
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// Outbound HTTP settings, from the server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Bound on one whole request: connecting, sending, reading the answer.
    pub timeout: Duration,
    /// Which addresses may be connected to.
    pub policy: OutboundPolicy,
    /// The HMAC of `X-Kong-Signature`.
    pub kong_signature: KongSignature,
}

impl Default for HttpSettings {
    /// 10 s, private ranges refused, Kong's SHA-1 signature.
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(10),
            policy: OutboundPolicy::default(),
            kong_signature: KongSignature::default(),
        }
    }
}

/// Sends the handlers' requests. Built once; clones share the connection
/// pools.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// For hooks with `ssl_verify`.
    verified: Client,
    /// For hooks without (Kong's default): certificates are not checked.
    unverified: Client,
    dialer: Dialer,
    timeout: Duration,
    kong_signature: KongSignature,
}

/// One request, ready but for the signature and attempt headers.
#[derive(Debug)]
pub(super) struct Request<'a> {
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
    pub(super) secrets: Secrets<'a>,
    pub(super) ssl_verify: bool,
}

impl Outbound {
    /// Builds the clients: no proxy, no redirects, names resolved through
    /// the policy.
    pub fn new(settings: HttpSettings) -> Result<Self, HandlerError> {
        let dialer = Dialer::new(settings.policy);
        let client = |tls: Result<rustls::ClientConfig, rustls::Error>| {
            let mut tls = tls.map_err(HandlerError::TlsSetup)?;
            // HTTP/1.1 only, said in the handshake as the client's own
            // configuration would.
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            Client::builder()
                .user_agent(concat!("hookd/", env!("CARGO_PKG_VERSION")))
                .no_proxy()
                .redirect(redirect::Policy::none())
                .dns_resolver(Arc::new(PolicyResolver {
                    dialer: dialer.clone(),
                }))
                .use_preconfigured_tls(tls)
                .build()
                .map_err(HandlerError::Client)
        };
        Ok(Outbound {
            verified: client(tls::verified())?,
            unverified: client(tls::accepting_any_certificate())?,
            timeout: settings.timeout,
            kong_signature: settings.kong_signature,
            dialer,
        })
    }

    /// Signs and sends `req`, and reads the answer, all within the timeout.
    pub(super) async fn send(
        &self,
        req: Request<'_>,
        attempt: &AttemptId<'_>,
    ) -> Result<Response, HandlerError> {
        // The connector does not ask the resolver about IP literals.
        let literal = match req.url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(Host::Domain(_)) | None => None,
        };
        if let Some(ip) = literal {
            // The port plays no part in the decision.
            let port = req.url.port_or_known_default().unwrap_or(0);
            self.dialer
                .check(SocketAddr::new(ip, port))
                .map_err(refused)?;
        }
        let mut headers = req.headers;
        for (name, value) in self.signature_headers(req.secrets, attempt, &req.body) {
            let value = header_value(name.as_str(), &value)?;
            headers.insert(name, value);
        }
        let client = if req.ssl_verify {
            &self.verified
        } else {
            &self.unverified
        };
        let exchange = async {
            let answer = client
                .request(req.method, req.url)
                .headers(headers)
                .body(req.body)
                .send()
                .await
                .map_err(classify)?;
            Response::read(answer, MAX_RESPONSE_BODY).await
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HandlerError::Timeout {
                after: self.timeout,
            })?
    }

    /// The Standard Webhooks id and timestamp, and the signatures the
    /// secrets make (see [`signature`]).
    fn signature_headers(
        &self,
        secrets: Secrets<'_>,
        attempt: &AttemptId<'_>,
        body: &[u8],
    ) -> Vec<(HeaderName, String)> {
        let id = attempt.delivery_id.to_string();
        let mut headers = vec![
            (
                HeaderName::from_static(signature::WEBHOOK_ID_HEADER),
                id.clone(),
            ),
            (
                HeaderName::from_static(signature::WEBHOOK_TIMESTAMP_HEADER),
                attempt.timestamp_s.to_string(),
            ),
        ];
        if let Some(secret) = secrets.current {
            headers.push((
                HeaderName::from_static(signature::KONG_SIGNATURE_HEADER),
                signature::kong_signature(self.kong_signature, secret, body),
            ));
        }
        // Live or not is judged at the time signed, the attempt's.
        let keys = secrets
            .current
            .into_iter()
            .chain(secrets.previous_at(attempt.timestamp_s));
        if let Some(value) = signature::standard_signatures(keys, &id, attempt.timestamp_s, body) {
            headers.push((
                HeaderName::from_static(signature::WEBHOOK_SIGNATURE_HEADER),
                value,
            ));
        }
        headers
    }
}

/// Gives the client only the addresses the policy admits, so the address
/// checked is the address dialled (a name that resolves to a private
/// address is caught, whatever it resolved to before). When every address
/// is refused, the first refusal is the client's error.
struct PolicyResolver {
    dialer: Dialer,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let dialer = self.dialer.clone();
        Box::pin(async move {
            let decisions = dialer.resolve(name.as_str(), 0).await?;
            let admitted: Vec<SocketAddr> = decisions
                .iter()
                .filter_map(|decision| decision.ok().map(|a| a.addr()))
                .collect();
            match decisions.into_iter().find_map(Result::err) {
                Some(refusal) if admitted.is_empty() => Err(refusal.into()),
                _ => Ok(Box::new(admitted.into_iter()) as Addrs),
            }
        })
    }
}

/// The handler's refusal, which names the address without its port.
fn refused(refusal: Refused) -> HandlerError {
    HandlerError::Refused {
        addr: refusal.addr.ip(),
        reason: refusal.reason,
    }
}

/// Sorts a client error into the handler's kinds. The resolver's refusal
/// travels inside the client's error chain and is taken back out here.
pub(super) fn classify(err: reqwest::Error) -> HandlerError {
    if let Some(refusal) = find_cause::<Refused>(&err) {
        return refused(*refusal);
    }
    if find_cause::<rustls::Error>(&err).is_some() {
        HandlerError::Tls(err)
    } else if err.is_connect() {
        HandlerError::Connect(err)
    } else {
        HandlerError::Request(err)
    }
}

/// The first error of type `T` in the chain of `err`.
fn find_cause<T: std::error::Error + 'static>(err: &reqwest::Error) -> Option<&T> {
    causes(err).find_map(|cause| cause.downcast_ref::<T>())
}

/// Parses a configured URL.
pub(super) fn parse_url(url: &str) -> Result<Url, HandlerError> {
    Url::parse(url).map_err(|source| HandlerError::InvalidUrl {
        url: url.to_string(),
        source,
    })
}

/// Adds a configured header. Framing headers are left to the client, which
/// knows the body it sends.
pub(super) fn append_header(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
) -> Result<(), HandlerError> {
    let header =
        HeaderName::from_bytes(name.as_bytes()).map_err(|e| HandlerError::InvalidHeader {
            name: name.to_string(),
            source: e.into(),
        })?;
    if header == CONTENT_LENGTH || header == TRANSFER_ENCODING {
        return Ok(());
    }
    headers.append(header, header_value(name, value)?);
    Ok(())
}

/// A header value, or an error naming the header.
pub(super) fn header_value(name: &str, value: &str) -> Result<HeaderValue, HandlerError> {
    HeaderValue::from_str(value).map_err(|e| HandlerError::InvalidHeader {
        name: name.to_string(),
        source: e.into(),
    })
}
