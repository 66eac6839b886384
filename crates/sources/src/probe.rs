//! One probe of one address, the way lua-resty-healthcheck runs it, and
//! what its answer counts as.
//!
//! The prober is the only place that connects, and it has hookd-outbound's
//! [`Dialer`] check the address right before, so what is checked is what
//! is dialled.

use crate::config::{ActiveChecks, ProbeKind};
use crate::counter::Outcome;
use crate::{Error, Result};
use hookd_outbound::{Dialer, tls};
use rustls::pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_rustls::TlsConnector;

/// The most of a status line read. A longer line is judged by its start,
/// where the status is; the rest is not read, so a target cannot make the
/// checker hold more.
pub(crate) const MAX_STATUS_LINE: usize = 8 * 1024;

/// What a probe that reached the target got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The TCP connection was made (`tcp` probes stop there).
    Connected,
    /// The status of the answer's status line.
    Status(u32),
    /// A status line without a status.
    Unparsable,
}

/// Connects and asks, within the configured timeouts.
pub(crate) struct Prober {
    dialer: Dialer,
    /// For `https_verify_certificate: true`.
    verified: TlsConnector,
    /// For `https_verify_certificate: false`: any certificate is accepted.
    unverified: TlsConnector,
}

impl Prober {
    /// A prober connecting through `dialer`.
    pub(crate) fn new(dialer: Dialer) -> Result<Self> {
        let connector = |config: std::result::Result<rustls::ClientConfig, rustls::Error>| {
            config
                .map(|config| TlsConnector::from(Arc::new(config)))
                .map_err(Error::TlsSetup)
        };
        Ok(Prober {
            dialer,
            verified: connector(tls::verified())?,
            unverified: connector(tls::accepting_any_certificate())?,
        })
    }

    /// Probes `addr`. `host` is the target's host: the `Host` header unless
    /// the upstream sets `host_header`, and the TLS name unless `https_sni`
    /// is set.
    pub(crate) async fn probe(
        &self,
        addr: SocketAddr,
        host: &str,
        checks: &ActiveChecks,
    ) -> Result<Answer> {
        let admitted = self.dialer.check(addr).map_err(|refused| Error::Refused {
            addr: addr.ip(),
            reason: refused.reason,
        })?;
        let timeout = checks.timeout;
        let stream = within(timeout, addr, admitted.connect())
            .await?
            .map_err(|source| Error::Connect { addr, source })?;
        match checks.kind {
            ProbeKind::Tcp => Ok(Answer::Connected),
            ProbeKind::Http => exchange(stream, &request(checks, host), timeout, addr).await,
            ProbeKind::Https => {
                let name = checks.https_sni.as_deref().unwrap_or(host);
                let name =
                    ServerName::try_from(name.to_string()).map_err(|source| Error::ServerName {
                        name: name.to_string(),
                        source,
                    })?;
                let connector = if checks.verify_certificate {
                    &self.verified
                } else {
                    &self.unverified
                };
                let stream = within(timeout, addr, connector.connect(name, stream))
                    .await?
                    .map_err(|source| Error::Handshake { addr, source })?;
                exchange(stream, &request(checks, host), timeout, addr).await
            }
        }
    }
}

/// What a probe's result counts as, by Kong's rules. A status in both
/// lists is a success: Kong looks at the healthy list first.
pub(crate) fn outcome(result: &Result<Answer>, checks: &ActiveChecks) -> Outcome {
    match result {
        Ok(Answer::Connected) => Outcome::Success,
        Ok(Answer::Status(status)) if checks.healthy_statuses.contains(status) => Outcome::Success,
        Ok(Answer::Status(status)) if checks.unhealthy_statuses.contains(status) => {
            Outcome::HttpFailure
        }
        Ok(Answer::Status(_)) => Outcome::Neutral,
        Ok(Answer::Unparsable) => Outcome::HttpFailure,
        Err(Error::Timeout { .. }) => Outcome::Timeout,
        Err(_) => Outcome::TcpFailure,
    }
}

async fn within<F: Future>(after: Duration, addr: SocketAddr, step: F) -> Result<F::Output> {
    tokio::time::timeout(after, step)
        .await
        .map_err(|_| Error::Timeout { addr, after })
}

/// Sends the request and reads the status line, each within `timeout`.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
    timeout: Duration,
    addr: SocketAddr,
) -> Result<Answer> {
    let send = async {
        stream.write_all(request).await?;
        stream.flush().await
    };
    within(timeout, addr, send)
        .await?
        .map_err(|source| Error::Exchange { addr, source })?;
    let line = within(timeout, addr, read_status_line(&mut stream))
        .await?
        .map_err(|source| Error::Exchange { addr, source })?;
    match line {
        Some(line) => Ok(parse_status(&line).map_or(Answer::Unparsable, Answer::Status)),
        None => Err(Error::Closed { addr }),
    }
}

/// The first line of the answer; none when the connection closed first.
async fn read_status_line<R: AsyncRead + Unpin>(
    stream: &mut R,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut reader = BufReader::new(stream.take(MAX_STATUS_LINE as u64));
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).await?;
    let whole = line.ends_with(b"\n") || line.len() >= MAX_STATUS_LINE;
    Ok(whole.then_some(line))
}

/// Kong's request: HTTP/1.0, the configured headers, then `Host` (unless
/// the configured headers have one). Header names and values were checked
/// for line breaks when the configuration was read.
fn request(checks: &ActiveChecks, host: &str) -> Vec<u8> {
    let mut head = format!("GET {} HTTP/1.0\r\n", checks.http_path);
    for (name, value) in &checks.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !checks
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        let host = checks.host_header.as_deref().unwrap_or(host);
        match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => head.push_str(&format!("Host: [{v6}]\r\n")),
            _ => head.push_str(&format!("Host: {host}\r\n")),
        }
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// The status of a status line, as Kong's `^HTTP/\d+\.\d+\s+(\d+)`
/// (case-insensitive) reads it. A status too large for any list saturates.
fn parse_status(line: &[u8]) -> Option<u32> {
    let prefix = line.get(..5)?;
    if !prefix.eq_ignore_ascii_case(b"HTTP/") {
        return None;
    }
    let rest = skip_digits(&line[5..])?;
    let rest = rest.strip_prefix(b".")?;
    let rest = skip_digits(rest)?;
    let spaces = rest.iter().take_while(|b| is_pcre_space(**b)).count();
    if spaces == 0 {
        return None;
    }
    let digits: Vec<u8> = rest[spaces..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    if digits.is_empty() {
        return None;
    }
    Some(digits.iter().fold(0u32, |n, d| {
        n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    }))
}

/// The rest after one or more digits; none when there is no digit.
fn skip_digits(s: &[u8]) -> Option<&[u8]> {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    (n > 0).then(|| &s[n..])
}

/// PCRE's `\s`.
fn is_pcre_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counter::Thresholds;

    fn checks() -> ActiveChecks {
        ActiveChecks {
            kind: ProbeKind::Http,
            timeout: Duration::from_secs(1),
            concurrency: 1,
            http_path: "/status".into(),
            https_sni: None,
            verify_certificate: true,
            headers: vec![],
            host_header: None,
            healthy_interval: Some(Duration::from_secs(1)),
            unhealthy_interval: None,
            healthy_statuses: vec![200, 302],
            unhealthy_statuses: vec![500, 302],
            thresholds: Thresholds::default(),
        }
    }

    #[test]
    fn parses_status_lines_as_kong_does() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status(b"http/1.0 503\r\n"), Some(503));
        assert_eq!(parse_status(b"HTTP/2.0\t404 Not Found\n"), Some(404));
        assert_eq!(
            parse_status(b"HTTP/1.1 99999999999 Big\r\n"),
            Some(u32::MAX)
        );
        assert_eq!(parse_status(b"HTTP/1.1 2xx\r\n"), Some(2));
        assert_eq!(parse_status(b"HTTP/1 200\r\n"), None);
        assert_eq!(parse_status(b"HTTP/1.1200\r\n"), None);
        assert_eq!(parse_status(b"HTTP/1.1 OK\r\n"), None);
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b""), None);
    }

    #[test]
    fn answers_count_as_kong_counts_them() {
        let c = checks();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let timeout = Err(Error::Timeout {
            addr,
            after: Duration::from_secs(1),
        });
        assert_eq!(outcome(&Ok(Answer::Connected), &c), Outcome::Success);
        assert_eq!(outcome(&Ok(Answer::Status(200)), &c), Outcome::Success);
        // In both lists: healthy wins.
        assert_eq!(outcome(&Ok(Answer::Status(302)), &c), Outcome::Success);
        assert_eq!(outcome(&Ok(Answer::Status(500)), &c), Outcome::HttpFailure);
        assert_eq!(outcome(&Ok(Answer::Status(418)), &c), Outcome::Neutral);
        assert_eq!(outcome(&Ok(Answer::Unparsable), &c), Outcome::HttpFailure);
        assert_eq!(outcome(&timeout, &c), Outcome::Timeout);
        assert_eq!(
            outcome(&Err(Error::Closed { addr }), &c),
            Outcome::TcpFailure
        );
        let refused = Err(Error::Refused {
            addr: addr.ip(),
            reason: hookd_model::outbound::Restricted::Loopback,
        });
        assert_eq!(outcome(&refused, &c), Outcome::TcpFailure);
    }

    #[test]
    fn request_is_kongs_http_1_0_get() {
        let mut c = checks();
        c.headers = vec![
            ("X-Probe".into(), "1".into()),
            ("X-Probe".into(), "2".into()),
        ];
        assert_eq!(
            String::from_utf8(request(&c, "api.example")).unwrap(),
            "GET /status HTTP/1.0\r\nX-Probe: 1\r\nX-Probe: 2\r\nHost: api.example\r\n\r\n"
        );
        assert_eq!(
            String::from_utf8(request(&c, "::1")).unwrap(),
            "GET /status HTTP/1.0\r\nX-Probe: 1\r\nX-Probe: 2\r\nHost: [::1]\r\n\r\n"
        );
        c.host_header = Some("virtual.example".into());
        assert!(
            String::from_utf8(request(&c, "10.0.0.1"))
                .unwrap()
                .contains("\r\nHost: virtual.example\r\n")
        );
        c.headers = vec![("host".into(), "mine".into())];
        assert_eq!(
            String::from_utf8(request(&c, "10.0.0.1")).unwrap(),
            "GET /status HTTP/1.0\r\nhost: mine\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_status_line_is_read_up_to_the_limit() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        server.write_all(b"HTTP/1.1 200 OK\r\nrest").await.unwrap();
        assert_eq!(
            read_status_line(&mut client).await.unwrap().as_deref(),
            Some(&b"HTTP/1.1 200 OK\r\n"[..])
        );

        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let long = [b'x'; MAX_STATUS_LINE + 10];
        server.write_all(&long).await.unwrap();
        assert_eq!(
            read_status_line(&mut client)
                .await
                .unwrap()
                .map(|l| l.len()),
            Some(MAX_STATUS_LINE)
        );

        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        server.write_all(b"HTTP/1.1 20").await.unwrap();
        drop(server);
        assert_eq!(read_status_line(&mut client).await.unwrap(), None);
    }
}
