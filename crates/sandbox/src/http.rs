//! Outbound HTTP of guests: the host allowlist in the wasi-http
//! `send_request` hook, then hookd-outbound's [`Dialer`]: the outbound
//! address policy on every resolved address, each decision audited, and a
//! connection only to an address that passed.
//!
//! `wasmtime_wasi_http::default_send_request` dials the authority itself
//! (the name is resolved again at connect time), so an allowlisted name
//! pointing at a private address would slip through; the client below
//! resolves once, checks, and dials the checked address.

use crate::audit::Auditor;
use crate::{CapabilityClass, Verdict};
use hookd_model::capability::AllowedHost;
use hookd_outbound::Dialer;
use http::uri::Scheme;
use http_body_util::BodyExt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Connect timeout when the guest sets none; the invocation deadline
/// bounds everything else.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

/// The wasi-http hooks of one invocation.
pub(crate) struct HttpPolicy {
    pub hosts: Arc<[AllowedHost]>,
    pub outbound: Dialer,
    pub tls: Arc<rustls::ClientConfig>,
    pub audit: Auditor,
}

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let uri = request.uri();
        let tls = uri.scheme() == Some(&Scheme::HTTPS);
        let Some(authority) = uri.authority() else {
            return Box::new(async { Err(Error::HttpRequestUriInvalid) });
        };
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_string();
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let target = authority_text(&host, port);
        if !self.hosts.iter().any(|h| h.allows(&host, port)) {
            self.audit.record(
                CapabilityClass::Http,
                target,
                Verdict::Denied,
                Some("host not granted (config.capabilities.http)".into()),
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        self.audit
            .record(CapabilityClass::Http, target, Verdict::Allowed, None);
        let client = Client {
            outbound: self.outbound.clone(),
            tls: tls.then(|| self.tls.clone()),
            audit: self.audit.clone(),
        };
        Box::new(async move { client.send(request, options, host, port).await })
    }
}

fn authority_text(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

struct Client {
    outbound: Dialer,
    tls: Option<Arc<rustls::ClientConfig>>,
    audit: Auditor,
}

impl Client {
    async fn send(
        self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        host: String,
        port: u16,
    ) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
        let connect_timeout = options
            .and_then(|o| o.connect_timeout)
            .unwrap_or(CONNECT_TIMEOUT);
        let tcp = tokio::time::timeout(connect_timeout, self.connect(&host, port))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
        let stream: Box<dyn Stream> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(host.clone())?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = tokio::time::timeout(connect_timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| Error::ConnectionTimeout)?
                    .map_err(Error::Tls)?;
                Box::new(tls)
            }
        };
        let (mut sender, conn) = tokio::time::timeout(
            connect_timeout,
            hyper::client::conn::http1::handshake(TokioIo::new(stream)),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)??;

        // The request names scheme and authority; on the wire only a proxy
        // wants them.
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;

        let first_byte = options.and_then(|o| o.first_byte_timeout);
        let response = async move {
            let sent = sender.send_request(request);
            match first_byte {
                Some(t) => tokio::time::timeout(t, sent)
                    .await
                    .map_err(|_| Error::ConnectionReadTimeout)?,
                None => sent.await,
            }
            .map_err(Error::from)
        };
        // The connection must be driven while the response is awaited; what
        // remains of it goes back to wasi-http as the I/O future.
        let mut response = pin!(response);
        let mut conn = Some(conn);
        let response = poll_fn(|cx| match response.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => {
                let Some(c) = conn.as_mut() else {
                    return Poll::Pending;
                };
                let done = std::task::ready!(Pin::new(c).poll(cx));
                conn = None;
                match done {
                    Ok(()) => response.as_mut().poll(cx),
                    Err(e) => Poll::Ready(Err(Error::from(e))),
                }
            }
        })
        .await?;
        let io: IoFuture = Box::new(async move {
            match conn {
                Some(c) => c.await.map_err(Error::from),
                None => Ok(()),
            }
        });
        Ok((response.map(|b| b.map_err(Error::from).boxed_unsync()), io))
    }

    /// Resolves `host`, checks every address against the outbound policy
    /// (each decision audited) and connects to the first that passed and
    /// answers.
    async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, Error> {
        let decisions = self
            .outbound
            .resolve(host, port)
            .await
            .map_err(|e| Error::DnsError {
                rcode: Some(e.to_string()),
                info_code: None,
            })?;
        let mut passed = Vec::new();
        for decision in decisions {
            match decision {
                Ok(admitted) => passed.push(admitted),
                Err(refused) => self.audit.record(
                    CapabilityClass::Network,
                    refused.addr.to_string(),
                    Verdict::Denied,
                    Some(format!(
                        "{host} resolves to a {} address, refused by the outbound address \
                         policy (outbound_allow_cidrs admits it)",
                        refused.reason
                    )),
                ),
            }
        }
        if passed.is_empty() {
            return Err(Error::DestinationIpProhibited);
        }
        let mut last = Error::ConnectionRefused;
        for admitted in passed {
            match admitted.connect().await {
                Ok(stream) => {
                    self.audit.record(
                        CapabilityClass::Network,
                        admitted.addr().to_string(),
                        Verdict::Allowed,
                        Some(format!("resolved from {host}")),
                    );
                    return Ok(stream);
                }
                Err(e) => last = Error::Connect(e),
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_model::audit::GuestRef;

    fn policy(hosts: &[&str]) -> (HttpPolicy, Auditor) {
        let audit = Auditor::new(
            uuid::Uuid::nil(),
            GuestRef {
                name: "g".into(),
                digest: "d".into(),
            },
            Arc::new(hookd_model::clock::ManualClock::at(7)),
            100,
        );
        let p = HttpPolicy {
            hosts: hosts
                .iter()
                .map(|h| AllowedHost::parse(h).unwrap())
                .collect(),
            outbound: Dialer::default(),
            tls: Arc::new(hookd_outbound::tls::verified().unwrap()),
            audit: audit.clone(),
        };
        (p, audit)
    }

    fn get(uri: &str) -> http::Request<WasiBody> {
        let empty = http_body_util::Empty::<bytes::Bytes>::new().map_err(|never| match never {});
        http::Request::get(uri).body(empty.boxed_unsync()).unwrap()
    }

    #[tokio::test]
    async fn a_host_not_granted_is_denied_and_audited() {
        let (mut p, audit) = policy(&["api.example.com"]);
        let fut = p.send_request(get("https://evil.com/x"), None, Box::new(async { Ok(()) }));
        assert!(matches!(
            Box::into_pin(fut).await,
            Err(Error::HttpRequestDenied)
        ));
        let records = audit.take();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].target, "evil.com:443");
        assert_eq!(records[0].verdict, Verdict::Denied);
        assert_eq!(records[0].at_ms, 7);
    }

    #[tokio::test]
    async fn a_granted_ip_refused_by_the_address_policy_is_never_dialled() {
        let (mut p, audit) = policy(&["[::1]:9"]);
        let fut = p.send_request(get("http://[::1]:9/"), None, Box::new(async { Ok(()) }));
        assert!(matches!(
            Box::into_pin(fut).await,
            Err(Error::DestinationIpProhibited)
        ));
        let records = audit.take();
        assert_eq!(records[0].target, "[::1]:9");
        assert_eq!(records[0].verdict, Verdict::Allowed);
        assert_eq!(records[1].capability, CapabilityClass::Network);
        assert_eq!(records[1].verdict, Verdict::Denied);
    }
}
