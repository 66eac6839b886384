//! A webhook receiver on loopback: answers 200 to every POST and hands
//! each body, with its path and arrival time, to the benchmark's
//! [`Record`], which tells the events apart. Beside it, a black hole: a
//! listener that never answers.

use crate::stamps::Stopwatch;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;

/// What a benchmark does with each webhook that arrives.
pub trait Record: Send + Sync + 'static {
    /// A POST to `path` with `body` arrived at `now` (the run's stopwatch).
    fn record(&self, path: &str, body: &Bytes, now: u64);
}

/// Serves on 127.0.0.1 (a free port) until the process ends, recording
/// every arrival into `arrivals`; returns the address.
pub async fn serve<R: Record>(
    arrivals: Arc<R>,
    stopwatch: Stopwatch,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let arrivals = arrivals.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let body = req.into_body().collect().await?.to_bytes();
                        arrivals.record(&path, &body, stopwatch.now());
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// A receiver that accepts connections and never answers: every request
/// to it waits for hookd's `webhook_timeout`.
pub async fn black_hole() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    Ok(addr)
}
