//! The webhook receiver on loopback: answers 200 to every POST and stamps
//! the arrival of each event, told apart by the consumer's username in the
//! body: `u-<i>` for hookd's webhooks, `b-<i>` for the bare client's
//! posts. Anything else (hookd's ping) is ignored.

use crate::stamps::{Stamps, Stopwatch};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// The username of event `i` written through hookd.
pub fn hookd_username(i: usize) -> String {
    format!("u-{i:07}")
}

/// The username of event `i` posted by the bare client: as long as
/// hookd's, so that the bodies are the same size.
pub fn bare_username(i: usize) -> String {
    format!("b-{i:07}")
}

/// What has arrived.
pub struct Arrivals {
    pub hookd: Stamps,
    pub bare: Stamps,
    /// The first webhook body from hookd, for the bare client to copy.
    pub sample: OnceLock<Bytes>,
}

/// The part of a crud webhook's body that names the event.
#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    entity: Option<Entity<'a>>,
}

#[derive(Deserialize)]
struct Entity<'a> {
    username: Option<&'a str>,
}

impl Arrivals {
    fn record(&self, body: &Bytes, now: u64) {
        let username = serde_json::from_slice::<Payload>(body)
            .ok()
            .and_then(|p| p.entity?.username);
        let index = |prefix| {
            username
                .and_then(|u| u.strip_prefix(prefix))
                .and_then(|i| i.parse::<usize>().ok())
        };
        if let Some(i) = index("u-") {
            self.sample.get_or_init(|| body.clone());
            self.hookd.mark(i, now);
        } else if let Some(i) = index("b-") {
            self.bare.mark(i, now);
        }
    }
}

/// Serves on 127.0.0.1 (a free port) until the process ends; returns the
/// address and what arrives there.
pub async fn start(
    events: usize,
    stopwatch: Stopwatch,
) -> anyhow::Result<(SocketAddr, Arc<Arrivals>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let arrivals = Arc::new(Arrivals {
        hookd: Stamps::new(events),
        bare: Stamps::new(events),
        sample: OnceLock::new(),
    });
    let shared = arrivals.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let arrivals = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let arrivals = arrivals.clone();
                    async move {
                        let body = req.into_body().collect().await?.to_bytes();
                        arrivals.record(&body, stopwatch.now());
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, arrivals))
}
