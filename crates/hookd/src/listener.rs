//! The Admin API's listener: HTTP/1 on hyper, with the limits that keep a
//! slow or silent client from holding the server's connections: time to
//! send headers, time at rest between requests, time to send a body, and a
//! cap on connections open at once.
//!
//! At the cap the listener stops accepting; further clients wait in the
//! kernel's backlog and are served as slots free up, which the timeouts
//! guarantee they do.

mod connection;

use connection::{Activity, AdminService, Deadline, Tracked, Watched};
use hookd_metrics::{ConnectionTimeoutLabels, Metrics};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The listener's limits (see the configuration keys of the same names).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to send a request's headers, from connecting or from the first
    /// byte of the next request on a kept-alive connection.
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may rest between requests.
    pub idle_timeout: Duration,
    /// Time to send a request's body once its headers are in.
    pub request_body_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets the
/// requests under way finish (closing idle connections at once) for at
/// most `grace`.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    grace: Duration,
) where
    S: AdminService,
{
    let slots = u32::try_from(limits.max_connections)
        .unwrap_or(u32::MAX)
        .max(1);
    let free = Arc::new(Semaphore::new(slots as usize));
    loop {
        // A slot first, then a connection: at the cap, clients queue in the
        // backlog instead of being accepted and left unread.
        let slot = tokio::select! {
            slot = Arc::clone(&free).acquire_owned() => slot.expect("the semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    backoff_after_accept_error(e).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let app = app.clone();
        let metrics = Arc::clone(&metrics);
        let stopping = shutdown.clone();
        tokio::spawn(async move {
            metrics.connections_open.inc();
            serve_connection(stream, app, &limits, &metrics, stopping).await;
            metrics.connections_open.dec();
            drop(slot);
        });
    }
    drop(listener);
    // Every slot back means every connection has ended.
    if tokio::time::timeout(grace, free.acquire_many(slots))
        .await
        .is_err()
    {
        tracing::warn!("connections still open at shutdown are dropped");
    }
}

/// Accepting fails when the process is out of file descriptors (or a
/// client gave up in the backlog); a pause lets descriptors free up rather
/// than spinning on the error.
async fn backoff_after_accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves one connection until it ends, outlives its phase's deadline, or
/// shutdown has let its request finish.
async fn serve_connection<S>(
    stream: TcpStream,
    app: S,
    limits: &Limits,
    metrics: &Metrics,
    stopping: CancellationToken,
) where
    S: AdminService,
{
    // Answers are written whole; waiting to coalesce them only adds latency.
    let _ = stream.set_nodelay(true);
    let activity = Activity::new();
    let io = TokioIo::new(Watched {
        stream,
        activity: Arc::clone(&activity),
    });
    let service = Tracked {
        app,
        activity: Arc::clone(&activity),
    };
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let changed = activity.changed();
        let deadline = activity.deadline(limits);
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = changed => {}
            () = sleep_until(deadline) => {
                // The phase may have moved on in the same instant.
                if let Some(passed) = activity.deadline(limits).filter(|d| d.at <= Instant::now()) {
                    timed_out(passed.limit, metrics);
                    return;
                }
            }
            () = stopping.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Sleeps until the deadline; forever without one.
async fn sleep_until(deadline: Option<Deadline>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.at).await,
        None => std::future::pending().await,
    }
}

/// Counts a connection dropped at its deadline. Logged at debug only: a
/// slow-loris client would otherwise write a line per connection it holds.
fn timed_out(limit: &'static str, metrics: &Metrics) {
    tracing::debug!(limit, "connection closed: it outlived its limit");
    metrics
        .connections_timed_out
        .get_or_create(&ConnectionTimeoutLabels { limit })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SHORT: Duration = Duration::from_millis(200);

    /// A server with short limits whose `/slow` answers after four of them.
    async fn start() -> (
        std::net::SocketAddr,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let app = axum::Router::new()
            .route("/", get(|| async { "ok" }))
            .route(
                "/refuse",
                axum::routing::post(|| async { axum::http::StatusCode::PAYLOAD_TOO_LARGE }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(SHORT * 4).await;
                    "slow but sure"
                }),
            );
        let limits = Limits {
            header_read_timeout: SHORT,
            idle_timeout: SHORT,
            request_body_timeout: SHORT,
            max_connections: 4,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let served = tokio::spawn(serve(
            listener,
            app,
            limits,
            Arc::new(Metrics::new()),
            stop.clone(),
            Duration::from_secs(5),
        ));
        (addr, stop, served)
    }

    /// Everything the server sends until it closes the connection, which
    /// it must within a few seconds.
    async fn until_closed(stream: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer));
        assert!(read.await.is_ok(), "the connection was left open");
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_the_header_read_timeout() {
        let (addr, _stop, _served) = start().await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        assert_eq!(until_closed(&mut stream).await, "");
        assert!(started.elapsed() >= SHORT);
    }

    #[tokio::test]
    async fn a_slow_answer_is_not_cut_and_the_connection_is_closed_once_idle() {
        let (addr, _stop, _served) = start().await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let answer = until_closed(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("slow but sure"), "{answer}");
    }

    #[tokio::test]
    async fn an_answer_given_before_the_body_is_read_says_the_connection_closes() {
        let (addr, _stop, _served) = start().await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123")
            .await
            .unwrap();
        let answer = until_closed(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
        // A request read to its end leaves the connection to be reused.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let answer = until_closed(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(!answer.contains("connection: close"), "{answer}");
    }

    #[tokio::test]
    async fn shutdown_lets_the_request_under_way_finish_and_closes_the_rest() {
        let (addr, stop, served) = start().await;
        let mut busy = TcpStream::connect(addr).await.unwrap();
        busy.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut resting = TcpStream::connect(addr).await.unwrap();
        resting
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 12];
        resting.read_exact(&mut first).await.unwrap();
        stop.cancel();
        let answer = until_closed(&mut busy).await;
        assert!(answer.ends_with("slow but sure"), "{answer}");
        tokio::time::timeout(Duration::from_secs(5), served)
            .await
            .expect("serve returns once its connections have ended")
            .unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    }
}
