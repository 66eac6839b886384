//! A webhook receiver on loopback that records every request and answers
//! with statuses the test chooses; it can be stopped and started again on
//! the same port, to play a receiver that is down.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The method.
    pub method: Method,
    /// Path and query, as sent.
    pub uri: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
}

impl Received {
    /// The body parsed as JSON (panics if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_string())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// Statuses to answer next, in order; then `default_status`.
    script: VecDeque<u16>,
    default_status: u16,
    /// Headers added to every answer.
    answer_headers: Vec<(String, String)>,
    /// Time to wait before answering.
    delay: Duration,
}

/// The receiver.
pub struct Receiver {
    /// Where it listens (kept across stop and start).
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    /// Connections accepted and not yet closed.
    open: Arc<AtomicUsize>,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    /// A receiver answering 200, listening now.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Receiver {
            addr,
            shared: Arc::new(Mutex::new(Shared {
                default_status: 200,
                ..Shared::default()
            })),
            open: Arc::default(),
            task: None,
        };
        r.serve(listener);
        r
    }

    /// A receiver whose port is reserved but which does not listen yet.
    pub async fn down() -> Receiver {
        let mut r = Receiver::start().await;
        r.stop().await;
        r
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = Router::new()
            .fallback(record)
            .with_state(Arc::clone(&self.shared));
        let listener = Counting {
            listener,
            open: Arc::clone(&self.open),
        };
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// Stops listening (connections are refused from now on).
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn resume(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// The URL of a path on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Answers these statuses to the next requests, in order.
    pub fn script(&self, statuses: &[u16]) {
        self.shared.lock().unwrap().script.extend(statuses);
    }

    /// The status answered when the script is used up.
    pub fn set_status(&self, status: u16) {
        self.shared.lock().unwrap().default_status = status;
    }

    /// Adds a header to every answer.
    pub fn answer_header(&self, name: &str, value: &str) {
        self.shared
            .lock()
            .unwrap()
            .answer_headers
            .push((name.into(), value.into()));
    }

    /// Waits this long before each answer.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().unwrap().delay = delay;
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Waits until every connection to the receiver has closed, to be
    /// called after its clients died: by then every request they had sent,
    /// even one still unread in a socket or a connection not yet accepted,
    /// has been recorded.
    pub async fn settle(&self) {
        // Two polls in a row alike, with no connection open: between them
        // the runtime has run the accept loop, which takes at once what
        // the backlog holds.
        let mut last = None;
        crate::eventually("the receiver's connections to close", || {
            let now = (
                self.open.load(Ordering::SeqCst),
                self.shared.lock().unwrap().received.len(),
            );
            let settled = now.0 == 0 && last == Some(now);
            last = Some(now);
            async move { settled.then_some(()) }
        })
        .await
    }

    /// Waits until at least `n` requests arrived; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        crate::eventually(&format!("{n} requests at the receiver"), || async {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn record(State(shared): State<Arc<Mutex<Shared>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let (status, headers, delay) = {
        let mut s = shared.lock().unwrap();
        s.received.push(Received {
            method: parts.method,
            uri: parts.uri.to_string(),
            headers: parts.headers,
            body,
        });
        let status = s.script.pop_front().unwrap_or(s.default_status);
        (status, s.answer_headers.clone(), s.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut response = (StatusCode::from_u16(status).unwrap(), "received").into_response();
    for (k, v) in headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    response
}

/// The receiver's listener: a TCP listener that counts the connections it
/// has open, so that [`Receiver::settle`] knows when they have all closed.
struct Counting {
    listener: TcpListener,
    open: Arc<AtomicUsize>,
}

impl axum::serve::Listener for Counting {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        self.open.fetch_add(1, Ordering::SeqCst);
        let open = Arc::clone(&self.open);
        (Counted { stream, open }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// An accepted connection, counted open until dropped.
struct Counted {
    stream: TcpStream,
    open: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
