//! The balancer source: active health checks of real HTTP and TCP targets
//! on loopback, their transitions delivered to a webhook with Kong's field
//! names, and configuration changes applied without restart.

use crate::support::{Options, Server};
use hookd_testkit::eventually;
use hookd_testkit::receiver::Receiver;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Active checks every 100 ms, unhealthy after 2 failures of any kind,
/// healthy after 2 successes.
fn checks(kind: &str, interval: f64) -> Value {
    json!({"active": {"type": kind, "http_path": "/status", "timeout": 1,
        "healthy": {"interval": interval, "successes": 2},
        "unhealthy": {"interval": interval, "http_failures": 2, "tcp_failures": 2, "timeouts": 2}}})
}

/// The balancer events delivered to the hook so far.
fn transitions(hook_receiver: &Receiver) -> Vec<Value> {
    hook_receiver
        .received()
        .iter()
        .map(|r| r.json())
        .filter(|e| e["source"] == "balancer")
        .collect()
}

async fn wait_transitions(hook_receiver: &Receiver, n: usize) -> Vec<Value> {
    eventually(&format!("{n} health transitions"), || async {
        let t = transitions(hook_receiver);
        (t.len() >= n).then_some(t)
    })
    .await
}

async fn balancer_hook(server: &Server, receiver: &Receiver) {
    server
        .create(
            "/event-hooks",
            &json!({"source": "balancer", "event": "health", "handler": "webhook",
                                         "config": {"url": receiver.url("/health")}}),
        )
        .await;
}

#[tokio::test]
async fn an_http_target_goes_unhealthy_and_back() {
    let server = Server::start_with(Options::loopback()).await;
    let hook_receiver = Receiver::start().await;
    balancer_hook(&server, &hook_receiver).await;
    let target = Receiver::start().await;
    let up = server
        .create(
            "/upstreams",
            &json!({"name": "api", "healthchecks": checks("http", 0.1)}),
        )
        .await;
    let address = format!("127.0.0.1:{}", target.addr.port());
    server
        .create("/upstreams/api/targets", &json!({"target": address}))
        .await;
    target.wait_for(2).await;
    assert!(
        transitions(&hook_receiver).is_empty(),
        "healthy from the start: no event"
    );

    target.set_status(500);
    let t = wait_transitions(&hook_receiver, 1).await;
    assert_eq!(
        t[0],
        json!({"upstream_id": up["id"], "ip": "127.0.0.1", "port": target.addr.port(), "hostname": "127.0.0.1",
               "health": "unhealthy", "event": "health", "source": "balancer"})
    );
    let (status, report) = server.get("/upstreams/api/health").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["data"][0]["health"], "UNHEALTHY");
    assert_eq!(report["data"][0]["target"], address);

    target.set_status(200);
    let t = wait_transitions(&hook_receiver, 2).await;
    assert_eq!(t[1]["health"], "healthy");
    assert_eq!(t.len(), 2, "exactly two transitions: {t:?}");
    let first_probe = &target.received()[0];
    assert_eq!(first_probe.uri, "/status");
}

#[tokio::test]
async fn a_tcp_target_that_stops_answering_and_comes_back() {
    let server = Server::start_with(Options::loopback()).await;
    let hook_receiver = Receiver::start().await;
    balancer_hook(&server, &hook_receiver).await;
    let mut target = Receiver::start().await;
    server
        .create(
            "/upstreams",
            &json!({"name": "tcp-up", "healthchecks": checks("tcp", 0.1)}),
        )
        .await;
    server
        .create(
            "/upstreams/tcp-up/targets",
            &json!({"target": format!("127.0.0.1:{}", target.addr.port())}),
        )
        .await;
    target.stop().await;
    let t = wait_transitions(&hook_receiver, 1).await;
    assert_eq!(t[0]["health"], "unhealthy");
    target.resume().await;
    let t = wait_transitions(&hook_receiver, 2).await;
    assert_eq!(t[1]["health"], "healthy");
}

#[tokio::test]
async fn a_changed_interval_takes_effect_without_restart() {
    let server = Server::start_with(Options::loopback()).await;
    let target = Receiver::start().await;
    server
        .create(
            "/upstreams",
            &json!({"name": "quiet", "healthchecks": checks("http", 0.0)}),
        )
        .await;
    server
        .create(
            "/upstreams/quiet/targets",
            &json!({"target": format!("127.0.0.1:{}", target.addr.port())}),
        )
        .await;
    let (_, report) = server.get("/upstreams/quiet/health").await;
    assert_eq!(report["data"][0]["health"], "HEALTHCHECKS_OFF", "{report}");
    assert!(target.received().is_empty(), "interval 0: no probes");
    let (status, _) = server
        .patch(
            "/upstreams/quiet",
            &json!({"healthchecks": {"active": {"healthy": {"interval": 0.1}}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    target.wait_for(3).await;
    let (_, report) = server.get("/upstreams/quiet/health").await;
    assert_eq!(report["data"][0]["health"], "HEALTHY");
    assert_eq!(
        server
            .get(&format!("/upstreams/{}/health", uuid::Uuid::new_v4()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}
