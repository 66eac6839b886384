//! The load: bare hyper HTTP/1.1 keep-alive connections, each posting one
//! request at a time, all drawing from one shared count of requests. The
//! same code writes entities to hookd and posts the bare bodies to the
//! receiver, so the two figures differ only in what is on the other end.
//! A [`Conn`] also reads hookd's Admin API between loads.

use crate::stamps::{Stamps, Stopwatch};
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One keep-alive connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Conn {
    /// Connects to `addr` and shakes hands.
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(connection);
        Ok(Conn {
            sender,
            host: HeaderValue::try_from(addr.to_string())?,
        })
    }

    /// POSTs a JSON body; the answer's status and body.
    pub async fn post(&mut self, path: &str, body: Bytes) -> anyhow::Result<(StatusCode, Bytes)> {
        let request = Request::post(path)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        self.send(request).await
    }

    /// GETs `path` (with its query); the answer's status and body.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
        let (status, _, body) = self.get_with(path, HeaderMap::new()).await?;
        Ok((status, body))
    }

    /// GETs `path` with these headers (a cookie); the answer's status,
    /// headers and body.
    pub async fn get_with(
        &mut self,
        path: &str,
        headers: HeaderMap,
    ) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
        let mut request = Request::get(path).body(Full::new(Bytes::new()))?;
        *request.headers_mut() = headers;
        self.exchange(request).await
    }

    async fn send(&mut self, request: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)> {
        let (status, _, body) = self.exchange(request).await?;
        Ok((status, body))
    }

    async fn exchange(
        &mut self,
        mut request: Request<Full<Bytes>>,
    ) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
        request
            .headers_mut()
            .insert(hyper::header::HOST, self.host.clone());
        // The connection may still be finishing the previous exchange.
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((parts.status, parts.headers, body))
    }
}

/// What to send: `count` POSTs of `body(i)` to `path`, each answered
/// with `expect`.
pub struct Load<F> {
    /// Where to send: the connections are spread over these in turn.
    pub addrs: Vec<SocketAddr>,
    /// Keep-alive connections sending at once.
    pub connections: usize,
    /// Requests in all.
    pub count: usize,
    /// The path posted to.
    pub path: &'static str,
    /// The body of request `i`.
    pub body: F,
    /// The status every answer must have.
    pub expect: StatusCode,
}

/// When each request was sent and when it was answered.
pub struct Sent {
    /// When each request was sent.
    pub started: Stamps,
    /// When each was answered.
    pub answered: Stamps,
}

impl<F: Fn(usize) -> Bytes + Send + Sync + 'static> Load<F> {
    /// Sends every request; fails at the first unexpected answer.
    pub async fn run(self, stopwatch: Stopwatch) -> anyhow::Result<Arc<Sent>> {
        let sent = Arc::new(Sent {
            started: Stamps::new(self.count),
            answered: Stamps::new(self.count),
        });
        let next = Arc::new(AtomicUsize::new(0));
        let load = Arc::new(self);
        let mut conns = Vec::new();
        for k in 0..load.connections {
            conns.push(Conn::open(load.addrs[k % load.addrs.len()]).await?);
        }
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|mut conn| {
                let (load, sent, next) = (load.clone(), sent.clone(), next.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= load.count {
                            return anyhow::Ok(());
                        }
                        let body = (load.body)(i);
                        sent.started.mark(i, stopwatch.now());
                        let (status, answer) = conn.post(load.path, body).await?;
                        sent.answered.mark(i, stopwatch.now());
                        if status != load.expect {
                            bail!(
                                "POST {} #{i} answered {status}: {}",
                                load.path,
                                String::from_utf8_lossy(&answer)
                            );
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        Ok(sent)
    }
}
