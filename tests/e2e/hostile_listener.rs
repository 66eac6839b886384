//! The listener defends itself (issue 11, items 6 and 7): requests with
//! made-up methods and paths add no metric series, with or without RBAC;
//! connections that never finish their headers, rest too long or trickle
//! their body are closed; the connection cap holds, and clients queued
//! behind it are served as slots free up.

use crate::support::{Options, Server};
use hookd_testkit::eventually;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BOOT: &str = "bootstrap-secret-token";

/// Most a test waits for the server to close a connection it should close.
const CLOSE_PATIENCE: Duration = Duration::from_secs(30);

async fn scrape(server: &Server, token: Option<&str>) -> String {
    let mut request = server.http.get(server.url("/metrics"));
    if let Some(token) = token {
        request = request.header("Kong-Admin-Token", token);
    }
    let response = request.send().await.expect("scraping /metrics");
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// A value of `name_and_labels` in the metrics text.
fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// 500 requests, each with its own 1 KB method and its own path, as the
/// attack of item 6; `/metrics` must not grow by a series per request.
async fn made_up_methods_leave_metrics_small(server: &Server, token: Option<&str>, expected: u16) {
    let before = scrape(server, token).await;
    let padding = "X".repeat(1000);
    for i in 0..500 {
        let method = Method::from_bytes(format!("M{i:05}{padding}").as_bytes()).unwrap();
        let response = server
            .http
            .request(method, server.url(&format!("/made-up-{i}")))
            .send()
            .await
            .expect("a made-up method is answered");
        assert_eq!(response.status().as_u16(), expected);
    }
    let after = scrape(server, token).await;
    assert!(
        after.len() < before.len() + 16 * 1024,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    assert!(!after.contains("M00001"), "a made-up method is a label");
    assert!(!after.contains("made-up-"), "a made-up path is a label");
    let requests = format!(
        r#"hookd_admin_requests_total{{method="other",route="unmatched",status="{expected}"}}"#
    );
    assert_eq!(metric(&after, &requests), Some(500.0), "{after}");
    // The server still answers.
    let mut root = server.http.get(server.url("/"));
    if let Some(token) = token {
        root = root.header("Kong-Admin-Token", token);
    }
    assert_eq!(root.send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn made_up_methods_add_no_metric_series_without_rbac() {
    let server = Server::start().await;
    made_up_methods_leave_metrics_small(&server, None, 404).await;
}

#[tokio::test]
async fn made_up_methods_add_no_metric_series_with_rbac() {
    let server = Server::start_with(
        Options::default()
            .env("HOOKD_ENFORCE_RBAC", "true")
            .env("HOOKD_ADMIN_TOKEN", BOOT),
    )
    .await;
    made_up_methods_leave_metrics_small(&server, Some(BOOT), 401).await;
}

/// A connection that sent `prefix` and nothing more.
async fn hold(server: &Server, prefix: &str) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.expect("connecting");
    stream.write_all(prefix.as_bytes()).await.unwrap();
    stream
}

/// Waits for the server to close the connection, reading (and discarding)
/// whatever it answered before; how long that took from `since`.
async fn closed_by_server(stream: &mut TcpStream, since: Instant) -> Duration {
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(CLOSE_PATIENCE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept the connection open");
    since.elapsed()
}

/// Half a request's headers, as a slow-loris client sends them.
const HALF_A_HEADER: &str = "GET / HTTP/1.1\r\nHost: hookd\r\nX-Slow: ";

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed_and_the_cap_holds() {
    const CAP: usize = 20;
    const HELD: usize = 60;
    let server = Server::start_with(
        Options::default()
            .env("HOOKD_HEADER_READ_TIMEOUT", "1s")
            .env("HOOKD_MAX_CONNECTIONS", &CAP.to_string()),
    )
    .await;
    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..HELD {
        held.push(hold(&server, HALF_A_HEADER).await);
    }
    // A normal client queues behind the cap and is served once slots free.
    let (status, _) = server.get("/").await;
    assert_eq!(status, StatusCode::OK);
    let mut last_close = Duration::ZERO;
    for stream in &mut held {
        last_close = last_close.max(closed_by_server(stream, started).await);
    }
    // At most CAP connections were served at a time, each closed a second
    // after it was accepted: the last ones waited for two rounds at least.
    let rounds = HELD.div_ceil(CAP) as u32 - 1;
    assert!(
        last_close >= Duration::from_secs(1) * rounds,
        "{HELD} connections closed within {last_close:?}: the cap of {CAP} did not hold"
    );
    let text = scrape(&server, None).await;
    let timed_out = r#"hookd_admin_connections_timed_out_total{limit="header_read_timeout"}"#;
    assert!(
        metric(&text, timed_out).is_some_and(|n| n >= HELD as f64),
        "{text}"
    );
}

#[tokio::test]
async fn resting_connections_and_trickled_bodies_are_closed() {
    let server = Server::start_with(
        Options::default()
            .env("HOOKD_IDLE_TIMEOUT", "1s")
            .env("HOOKD_REQUEST_BODY_TIMEOUT", "1s"),
    )
    .await;

    // A kept-alive connection at rest after one answer.
    let mut resting = hold(&server, "GET /status HTTP/1.1\r\nHost: hookd\r\n\r\n").await;
    let mut answer = [0u8; 12];
    resting.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let rested = closed_by_server(&mut resting, Instant::now()).await;
    assert!(
        rested >= Duration::from_millis(900),
        "closed after {rested:?}"
    );

    // A 1 KB body sent a byte every 100 ms would take 100 s.
    let mut trickling = hold(
        &server,
        "POST /consumers HTTP/1.1\r\nHost: hookd\r\nContent-Type: application/json\r\nContent-Length: 1024\r\n\r\n{",
    )
    .await;
    let started = Instant::now();
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if trickling.write_all(b" ").await.is_err() {
                return;
            }
        }
    };
    let gave_up = tokio::time::timeout(CLOSE_PATIENCE, trickle).await;
    assert!(gave_up.is_ok(), "the server kept reading the trickled body");
    assert!(started.elapsed() < Duration::from_secs(10));

    // Neither held the server: it answers and still writes.
    let (status, consumer) = server
        .post("/consumers", &json!({"username": "after-the-trickle"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{consumer}");
    eventually("both closes counted", || async {
        let text = scrape(&server, None).await;
        let counted = |limit: &str| {
            metric(
                &text,
                &format!(r#"hookd_admin_connections_timed_out_total{{limit="{limit}"}}"#),
            )
        };
        let at_least_one = |limit| counted(limit).is_some_and(|n| n >= 1.0);
        (at_least_one("idle_timeout") && at_least_one("request_body_timeout")).then_some(())
    })
    .await;
}
