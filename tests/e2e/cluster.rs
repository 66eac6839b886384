//! hookd on PostgreSQL as three nodes sharing one database: every node
//! serves (entity writes and published events), one dispatches, the
//! hooks' deliveries are shared out by shard,
//! and a node killed with `kill -9` loses nothing: its shards are taken
//! over once their lease runs out, and only what was in flight on it is
//! sent again, under its original webhook-id.

use crate::delivery::{
    all_deliveries, delivered_once_but_in_flight, reached, stored_as_succeeded, wait_events,
    webhook,
};
use crate::support::{Options, Server};
use futures::StreamExt;
use hookd_store::testing::TestDatabase;
use hookd_testkit::eventually;
use hookd_testkit::receiver::Receiver;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts `n` nodes on `database` whose shards wait `lease` for another
/// node when they die.
async fn start_nodes(database: &Arc<TestDatabase>, n: usize, lease: &str) -> Vec<Server> {
    let options = Options::loopback().env("HOOKD_CLUSTER_LEASE", lease);
    let mut nodes = Vec::new();
    for _ in 0..n {
        let (database, options) = (Arc::clone(database), options.clone());
        nodes.push(
            tokio::task::spawn_blocking(move || {
                Server::start_node(database, options, Arc::default())
            })
            .await
            .unwrap(),
        );
    }
    nodes
}

/// Each node's `/status` `node` part.
async fn node_statuses(nodes: &[&Server]) -> Vec<Value> {
    let mut statuses = Vec::new();
    for node in nodes {
        let (status, body) = node.get("/status").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        statuses.push(body["node"].clone());
    }
    statuses
}

/// Waits until `nodes` hold every shard between them, each some, and one
/// of them dispatches; returns their statuses.
async fn shared_out(nodes: &[&Server]) -> Vec<Value> {
    eventually("the shards shared out and one node dispatching", || async {
        let statuses = node_statuses(nodes).await;
        let shards: Vec<u64> = statuses
            .iter()
            .map(|s| s["shards"].as_u64().unwrap())
            .collect();
        let dispatching = statuses.iter().filter(|s| s["dispatching"] == true).count();
        (shards.iter().all(|&n| n > 0) && shards.iter().sum::<u64>() == 64 && dispatching == 1)
            .then_some(statuses)
    })
    .await
}

/// Delivery attempts a node has made, from its `/metrics`.
async fn attempts_made(node: &Server) -> f64 {
    node.metrics()
        .await
        .lines()
        .filter(|line| line.starts_with("hookd_delivery_attempts_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Events published through the nodes in the kill test.
const PUBLISHED: usize = 300;

#[tokio::test]
async fn three_nodes_share_the_work_and_lose_nothing_to_a_kill_dash_nine() {
    let Some(database) = TestDatabase::create("three nodes").await else {
        return;
    };
    let database = Arc::new(database);
    let receiver = Receiver::start().await;
    // Four seconds: the killed node's shards are not taken over before
    // what reached the receiver from it has been counted.
    let mut nodes = start_nodes(&database, 3, "4s").await;
    shared_out(&nodes.iter().collect::<Vec<_>>()).await;

    // A hook made through one node fires for a write made through another.
    let hook = webhook(
        &nodes[0],
        "consumers:create",
        json!({"url": receiver.url("/")}),
    )
    .await;
    let hook = hook["id"].as_str().unwrap().to_string();
    let written = Instant::now();
    nodes[1]
        .create("/consumers", &json!({"username": "user-0"}))
        .await;
    wait_events(&receiver, 1).await;
    eprintln!(
        "a hook made through node 0 fired for a write through node 1 in {:?}",
        written.elapsed()
    );

    // The node that attempted it holds the hook's shard: it is the one
    // killed, mid-run, with writes made through all three.
    let mut owner = None;
    for (i, node) in nodes.iter().enumerate() {
        if attempts_made(node).await > 0.0 {
            assert!(owner.is_none(), "one node attempts a hook's deliveries");
            owner = Some(i);
        }
    }
    let owner = owner.expect("a node attempted the delivery");
    // Published events too, to a hook of their own, through every node,
    // before the consumer writes, which the kill follows at once.
    let published = Receiver::start().await;
    nodes[2]
        .create(
            "/event-hooks",
            &json!({"source": "rate-limiting-advanced", "event": "rate-limit-exceeded",
                    "handler": "webhook", "config": {"url": published.url("/")}}),
        )
        .await;
    receiver.set_delay(Duration::from_millis(20));
    let events = (0..PUBLISHED).map(|i| {
        let node = &nodes[i % 3];
        let data = json!({"consumer": format!("c-{i}"), "ip": "203.0.113.9", "service": "billing",
                          "rate": 11, "limit": 10, "window": "minute"});
        let event = json!({"source": "rate-limiting-advanced", "event": "rate-limit-exceeded",
                           "data": data});
        async move { node.post("/events", &event).await.0 }
    });
    let answers: Vec<StatusCode> = futures::stream::iter(events)
        .buffer_unordered(48)
        .collect()
        .await;
    assert!(
        answers.iter().all(|s| *s == StatusCode::ACCEPTED),
        "{answers:?}"
    );
    let writes = (1..1000).map(|i| {
        let node = &nodes[i % 3];
        async move {
            node.create("/consumers", &json!({"username": format!("user-{i}")}))
                .await
        }
    });
    let created: Vec<Value> = futures::stream::iter(writes)
        .buffer_unordered(48)
        .collect()
        .await;
    assert_eq!(created.len(), 999);
    nodes[owner].kill9();
    // Its last requests are read by the receiver in a moment (the other
    // nodes keep connections to it open, so it does not settle).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = reached(&receiver);
    let done = stored_as_succeeded(&nodes[owner], &hook).await;
    receiver.set_delay(Duration::ZERO);
    let survivors: Vec<&Server> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != owner)
        .map(|(_, node)| node)
        .collect();
    let again =
        delivered_once_but_in_flight(survivors[0], &receiver, &hook, (&before, &done)).await;
    let statuses = shared_out(&survivors).await;
    let takeovers: u64 = statuses
        .iter()
        .map(|s| s["lease_takeovers"].as_u64().unwrap())
        .sum();
    assert!(
        takeovers > 0,
        "the killed node's shards were taken over: {statuses:?}"
    );
    assert_eq!(all_deliveries(survivors[1], &hook).await.len(), 1000);
    let consumers = eventually("every published event delivered", || async {
        let mut consumer_of = std::collections::HashMap::new();
        for request in published.received() {
            let body = request.json();
            if body["source"] != "rate-limiting-advanced" {
                continue;
            }
            let consumer = body["consumer"].as_str().unwrap().to_string();
            let id = request.header("webhook-id").unwrap();
            let earlier = consumer_of.insert(id, consumer.clone());
            assert!(
                earlier.is_none_or(|e| e == consumer),
                "a webhook-id is sent again with its own event"
            );
        }
        let consumers: std::collections::HashSet<String> = consumer_of.into_values().collect();
        (consumers.len() == PUBLISHED).then_some(consumers)
    })
    .await;
    assert_eq!(consumers.len(), PUBLISHED);
    eprintln!(
        "node {owner} killed: {} reached the receiver before, {} stored as succeeded, \
         {again} sent again, {takeovers} shards taken over",
        before.len(),
        done.len()
    );
}

/// Active checks every 100 ms, unhealthy after 2 failures, healthy after 2
/// successes.
fn checks() -> Value {
    json!({"active": {"type": "http", "http_path": "/status", "timeout": 1,
        "healthy": {"interval": 0.1, "successes": 2},
        "unhealthy": {"interval": 0.1, "http_failures": 2, "tcp_failures": 2, "timeouts": 2}}})
}

#[tokio::test]
async fn three_nodes_publish_each_health_transition_once() {
    let Some(database) = TestDatabase::create("three nodes health").await else {
        return;
    };
    let database = Arc::new(database);
    let nodes = start_nodes(&database, 3, "2s").await;
    shared_out(&nodes.iter().collect::<Vec<_>>()).await;
    let hook_receiver = Receiver::start().await;
    nodes[0]
        .create(
            "/event-hooks",
            &json!({"source": "balancer", "event": "health", "handler": "webhook",
                    "config": {"url": hook_receiver.url("/health")}}),
        )
        .await;
    let target = Receiver::start().await;
    nodes[1]
        .create(
            "/upstreams",
            &json!({"name": "api", "healthchecks": checks()}),
        )
        .await;
    nodes[2]
        .create(
            "/upstreams/api/targets",
            &json!({"target": format!("127.0.0.1:{}", target.addr.port())}),
        )
        .await;
    let transitions = || -> Vec<String> {
        hook_receiver
            .received()
            .iter()
            .map(|r| r.json())
            .filter(|e| e["source"] == "balancer")
            .map(|e| e["health"].as_str().unwrap().to_string())
            .collect()
    };
    target.wait_for(2).await;
    target.set_status(500);
    eventually("the target unhealthy", || async {
        (!transitions().is_empty()).then_some(())
    })
    .await;
    target.set_status(200);
    eventually("the target healthy again", || async {
        (transitions().len() >= 2).then_some(())
    })
    .await;
    // Long enough for a second or third checker's events to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(transitions(), ["unhealthy", "healthy"]);
}
