//! The health checker against real targets on loopback and a real store:
//! transitions land in the outbox as `balancer` / `health` events.

mod support;

use hookd_model::outbound::OutboundPolicy;
use hookd_sources::{HealthChecker, HealthStatus, Settings};
use hookd_testkit::eventually;
use hookd_testkit::fixtures::loopback_policy;
use serde_json::{Value, json};
use std::net::IpAddr;
use support::{Harness, HttpTarget, Reply, TcpTarget, TlsTarget, health_events};
use uuid::Uuid;

fn event(up: Uuid, ip: &str, port: u16, hostname: &str, health: &str) -> Value {
    json!({"upstream_id": up.to_string(), "ip": ip, "port": port, "hostname": hostname, "health": health})
}

#[tokio::test]
async fn an_http_target_turns_unhealthy_and_back_after_the_configured_counts() {
    let h = Harness::start(loopback_policy()).await;
    // Two failures, a success that clears them, three failures (unhealthy at
    // the 8th answer), two successes (healthy at the 10th), then only 200s.
    let script = [200, 200, 500, 500, 200, 500, 500, 500, 200, 200];
    let target = HttpTarget::start(&h.store, Reply::Status(200), &script).await;
    let up = h
        .upstream(json!({
            "type": "http",
            "http_path": "/status",
            "headers": {"X-Probe": ["hookd"]},
            "healthy": {"interval": 0.05, "successes": 2},
            "unhealthy": {"interval": 0.05, "http_failures": 3},
        }))
        .await;
    let tid = h.target(up, &format!("127.0.0.1:{}", target.port())).await;

    eventually("14 probes", || async {
        (target.requests().len() >= 14).then_some(())
    })
    .await;

    let events = health_events(&h.store).await;
    let port = target.port();
    assert_eq!(
        events.iter().map(|e| &e.data).collect::<Vec<_>>(),
        [
            &event(up, "127.0.0.1", port, "127.0.0.1", "unhealthy"),
            &event(up, "127.0.0.1", port, "127.0.0.1", "healthy"),
        ]
    );
    assert!(events.iter().all(|e| e.at_ms == support::NOW_MS));
    // Each request saw the events published before it: the unhealthy one
    // came right after the 8th answer, the healthy one after the 10th.
    let seen: Vec<usize> = target.requests().iter().map(|r| r.events_before).collect();
    assert_eq!(seen[..8], [0; 8]);
    assert_eq!(seen[8..10], [1; 2]);
    assert!(seen[10..].iter().all(|n| *n == 2), "{seen:?}");

    let head = &target.requests()[0].head;
    assert!(head.starts_with("GET /status HTTP/1.0\r\n"), "{head}");
    assert!(head.contains("\r\nX-Probe: hookd\r\n"), "{head}");
    assert!(head.contains("\r\nHost: 127.0.0.1\r\n"), "{head}");

    let report = h.checker.health(up).await.unwrap().unwrap();
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json[0]["id"], tid.to_string());
    assert_eq!(json[0]["upstream"], json!({"id": up.to_string()}));
    assert_eq!(json[0]["target"], format!("127.0.0.1:{port}"));
    assert_eq!(json[0]["weight"], 100);
    assert_eq!(json[0]["health"], "HEALTHY");
    assert_eq!(
        json[0]["data"]["addresses"],
        json!([{"ip": "127.0.0.1", "port": port, "health": "HEALTHY", "weight": 100}])
    );
    assert!(h.checker.health(Uuid::new_v4()).await.unwrap().is_none());
    h.stop().await;
}

#[tokio::test]
async fn a_tcp_target_turns_unhealthy_when_closed_and_healthy_when_reopened() {
    let h = Harness::start(loopback_policy()).await;
    let mut target = TcpTarget::open(0).await;
    let port = target.port();
    let up = h
        .upstream(json!({
            "type": "tcp",
            "healthy": {"interval": 0.05, "successes": 2},
            "unhealthy": {"interval": 0.05, "tcp_failures": 2},
        }))
        .await;
    h.target(up, &format!("127.0.0.1:{port}")).await;

    eventually("3 connections", || async {
        (target.accepted() >= 3).then_some(())
    })
    .await;
    assert!(health_events(&h.store).await.is_empty());

    target.close().await;
    eventually("the unhealthy event", || async {
        (!health_events(&h.store).await.is_empty()).then_some(())
    })
    .await;
    let report = h.checker.health(up).await.unwrap().unwrap();
    assert_eq!(report[0].health, HealthStatus::Unhealthy);

    let target = TcpTarget::open(port).await;
    eventually("the healthy event", || async {
        (health_events(&h.store).await.len() >= 2).then_some(())
    })
    .await;
    let after = target.accepted();
    eventually("3 more connections", || async {
        (target.accepted() >= after + 3).then_some(())
    })
    .await;
    let events: Vec<Value> = health_events(&h.store)
        .await
        .into_iter()
        .map(|e| e.data)
        .collect();
    assert_eq!(
        events,
        [
            event(up, "127.0.0.1", port, "127.0.0.1", "unhealthy"),
            event(up, "127.0.0.1", port, "127.0.0.1", "healthy"),
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn checks_switched_on_and_changed_apply_without_a_restart() {
    let h = Harness::start(loopback_policy()).await;
    let target = HttpTarget::start(&h.store, Reply::Status(500), &[]).await;
    let up = h
        .upstream(json!({"healthy": {"interval": 0}, "unhealthy": {"interval": 0}}))
        .await;
    h.target(up, &format!("127.0.0.1:{}", target.port())).await;
    let report = h.checker.health(up).await.unwrap().unwrap();
    assert_eq!(report[0].health, HealthStatus::HealthchecksOff);

    // On, with unhealthy addresses left alone.
    h.set_active(
        up,
        json!({
            "healthy": {"interval": 0.05, "successes": 1},
            "unhealthy": {"interval": 0, "http_failures": 1},
        }),
    )
    .await;
    eventually("the unhealthy event", || async {
        (!health_events(&h.store).await.is_empty()).then_some(())
    })
    .await;

    // The address is no longer probed, so every probe from here on follows
    // the new configuration: probed while unhealthy, three successes needed.
    target.answer(Reply::Status(200));
    h.set_active(
        up,
        json!({
            "healthy": {"interval": 0.05, "successes": 3},
            "unhealthy": {"interval": 0.05, "http_failures": 1},
        }),
    )
    .await;
    eventually("4 successful probes", || async {
        (target.requests().iter().filter(|r| r.status == 200).count() >= 4).then_some(())
    })
    .await;
    let seen: Vec<usize> = target
        .requests()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.events_before)
        .collect();
    assert_eq!(seen[..4], [1, 1, 1, 2], "healthy after exactly 3 successes");
    let healths: Vec<Value> = health_events(&h.store)
        .await
        .into_iter()
        .map(|e| e.data["health"].clone())
        .collect();
    assert_eq!(healths, ["unhealthy", "healthy"]);
    h.stop().await;
}

#[tokio::test]
async fn a_deleted_target_stops_being_probed() {
    let h = Harness::start(loopback_policy()).await;
    let a = HttpTarget::start(&h.store, Reply::Status(200), &[]).await;
    let b = HttpTarget::start(&h.store, Reply::Status(200), &[]).await;
    let up = h
        .upstream(json!({"healthy": {"interval": 0.05, "successes": 1}}))
        .await;
    let a_id = h.target(up, &format!("127.0.0.1:{}", a.port())).await;
    let b_id = h.target(up, &format!("127.0.0.1:{}", b.port())).await;
    eventually("both probed", || async {
        (a.requests().len() >= 2 && b.requests().len() >= 2).then_some(())
    })
    .await;

    h.store.delete("targets", a_id, 0).await.unwrap();
    let report = h.checker.health(up).await.unwrap().unwrap();
    assert_eq!(report.iter().map(|t| t.id).collect::<Vec<_>>(), [b_id]);

    // B's probes measure time passing without a clock in the assertion:
    // once the checker has surely seen the delete, A gets no probe at all.
    let b_probes = b.requests().len();
    eventually("10 probes of B", || async {
        (b.requests().len() >= b_probes + 10).then_some(())
    })
    .await;
    let a_probes = a.requests().len();
    let b_probes = b.requests().len();
    eventually("10 more probes of B", || async {
        (b.requests().len() >= b_probes + 10).then_some(())
    })
    .await;
    assert_eq!(a.requests().len(), a_probes);
    h.stop().await;
}

#[tokio::test]
async fn a_refused_address_is_never_connected_to_and_counts_as_failing() {
    // No allowlist: loopback is refused, as for a webhook.
    let h = Harness::start(OutboundPolicy::default()).await;
    let target = TcpTarget::open(0).await;
    let port = target.port();
    let up = h
        .upstream(json!({
            "type": "tcp",
            "healthy": {"interval": 0.05},
            "unhealthy": {"interval": 0.05, "tcp_failures": 2},
        }))
        .await;
    h.target(up, &format!("localhost:{port}")).await;

    eventually("an unhealthy event", || async {
        (!health_events(&h.store).await.is_empty()).then_some(())
    })
    .await;
    let report = h.checker.health(up).await.unwrap().unwrap();
    assert_eq!(report[0].health, HealthStatus::Unhealthy);
    assert!(!report[0].data.addresses.is_empty());
    for address in &report[0].data.addresses {
        assert!(address.ip.is_loopback(), "{address:?}");
        assert_eq!(address.refused.as_deref(), Some("loopback"));
        assert_eq!(address.health, HealthStatus::Unhealthy);
    }
    for e in health_events(&h.store).await {
        assert_eq!(e.data["hostname"], "localhost");
        assert_eq!(e.data["health"], "unhealthy");
        assert_eq!(e.data["port"], port);
        let ip: IpAddr = e.data["ip"].as_str().unwrap().parse().unwrap();
        assert!(ip.is_loopback());
    }
    assert_eq!(target.accepted(), 0, "a refused address was connected to");
    h.stop().await;
}

#[tokio::test]
async fn an_http_target_that_never_answers_times_out() {
    let h = Harness::start(loopback_policy()).await;
    let target = HttpTarget::start(&h.store, Reply::Hang, &[]).await;
    // Only timeouts are counted: the change proves they were timeouts.
    let up = h
        .upstream(json!({
            "timeout": 0.1,
            "healthy": {"interval": 0.05},
            "unhealthy": {"timeouts": 2, "http_failures": 0, "tcp_failures": 0},
        }))
        .await;
    h.target(up, &format!("127.0.0.1:{}", target.port())).await;
    eventually("the unhealthy event", || async {
        (!health_events(&h.store).await.is_empty()).then_some(())
    })
    .await;
    assert!(target.requests().len() >= 2);
    assert_eq!(health_events(&h.store).await[0].data["health"], "unhealthy");
    h.stop().await;
}

#[tokio::test]
async fn https_probes_verify_the_certificate_as_configured() {
    let h = Harness::start(loopback_policy()).await;
    let target = TlsTarget::start(500).await;
    let addr = format!("127.0.0.1:{}", target.port());
    // Unverified: the self-signed certificate passes, the 500 is read and
    // counted as an HTTP failure, the only kind counted.
    let unverified = h
        .upstream(json!({
            "type": "https",
            "https_verify_certificate": false,
            "https_sni": "sni.example",
            "healthy": {"interval": 0.05},
            "unhealthy": {"http_failures": 1, "tcp_failures": 0},
        }))
        .await;
    h.target(unverified, &addr).await;
    // Verified: the handshake fails, a TCP failure, the only kind counted.
    let verified = h
        .upstream(json!({
            "type": "https",
            "https_sni": "localhost",
            "healthy": {"interval": 0.05},
            "unhealthy": {"http_failures": 0, "tcp_failures": 1},
        }))
        .await;
    h.target(verified, &addr).await;

    eventually("both unhealthy", || async {
        (health_events(&h.store).await.len() >= 2).then_some(())
    })
    .await;
    let mut from: Vec<String> = health_events(&h.store)
        .await
        .into_iter()
        .map(|e| e.data["upstream_id"].as_str().unwrap().to_string())
        .collect();
    from.sort();
    let mut expected = vec![unverified.to_string(), verified.to_string()];
    expected.sort();
    assert_eq!(from, expected);
    assert!(target.answered() >= 1);
    assert!(target.server_names().iter().any(|n| n == "sni.example"));
    h.stop().await;
}

#[test]
fn starting_needs_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = hookd_store::Store::open(dir.path()).unwrap();
    let checker = HealthChecker::new(store, Settings::default()).unwrap();
    assert!(matches!(
        checker.start(),
        Err(hookd_sources::Error::NoRuntime)
    ));
}

#[test]
fn the_checker_can_be_shared_with_the_admin_api() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<HealthChecker>();
    shareable::<hookd_sources::TargetHealth>();
}
