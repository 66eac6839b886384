//! Lambda hooks with `instance = "reused"`, end to end: a kept instance
//! keeps its guest's state between its own hook's events and never shares
//! it with another hook, a call that ends badly leaves the next event a
//! clean instance, changing the hook or the guest starts over, and grants
//! hold as they do on fresh instances.

use crate::lambda::{lambda_hook, test_hook, uploaded};
use crate::support::{Options, Server};
use hookd_testkit::eventually;
use hookd_testkit::receiver::Receiver;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The counter guest's count after one `/test` of `hook`.
async fn count(server: &Server, hook: &Value) -> u64 {
    let (status, answer) = test_hook(server, hook, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["result"]["calls"].as_u64().unwrap()
}

fn id(hook: &Value) -> &str {
    hook["id"].as_str().unwrap()
}

#[tokio::test]
async fn a_reused_instance_keeps_state_for_its_own_hook_and_starts_clean_after_a_bad_end() {
    let server = Server::start().await;
    uploaded(&server, "counter", "counter").await;
    let config = json!({
        "functions": ["counter"],
        "instance": "reused",
        "limits": {"memory": 16 << 20, "timeout_ms": 500},
    });
    let a = lambda_hook(&server, "consumers", config.clone()).await;
    let b = lambda_hook(&server, "consumers", config).await;
    let fresh = lambda_hook(&server, "consumers", json!({"functions": ["counter"]})).await;
    assert_eq!(fresh["config"]["instance"], "per-event");
    assert_eq!(a["config"]["instance"], "reused");

    assert_eq!(count(&server, &a).await, 1);
    assert_eq!(count(&server, &a).await, 2);
    // Another hook running the same guest has its own instance.
    assert_eq!(count(&server, &b).await, 1);
    assert_eq!(count(&server, &a).await, 3);
    for _ in 0..2 {
        assert_eq!(count(&server, &fresh).await, 1);
    }
    let (_, grants) = server
        .get(&format!("/event-hooks/{}/capabilities", id(&a)))
        .await;
    assert_eq!(grants["data"][0]["instance"], "reused", "{grants}");

    for then in ["trap", "spin", "grow"] {
        assert!(count(&server, &a).await > 1, "before {then}");
        let (status, answer) = test_hook(&server, &a, json!({"then": then})).await;
        assert_eq!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{then}: {answer}"
        );
        assert_eq!(
            count(&server, &a).await,
            1,
            "after {then}: a clean instance"
        );
    }
    assert_eq!(count(&server, &b).await, 2, "b's instance was not touched");
}

#[tokio::test]
async fn changing_the_hook_or_its_guest_drops_the_kept_instances() {
    let server = Server::start().await;
    uploaded(&server, "counter", "counter").await;
    let hook = lambda_hook(
        &server,
        "consumers",
        json!({"functions": ["counter"], "instance": "reused"}),
    )
    .await;
    assert_eq!(count(&server, &hook).await, 1);
    assert_eq!(count(&server, &hook).await, 2);

    let path = format!("/event-hooks/{}", id(&hook));
    let (status, body) = server
        .patch(&path, &json!({"config": {"limits": {"timeout_ms": 4000}}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(count(&server, &body).await, 1, "a changed configuration");
    assert_eq!(count(&server, &body).await, 2);

    // A new version of the guest under its name, then the old bytes again:
    // each replaces the instances of the one before.
    uploaded(&server, "counter", "noop").await;
    let (status, answer) = test_hook(&server, &hook, json!({"kept": true})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"], json!({"kept": true}), "noop ran");
    uploaded(&server, "counter", "counter").await;
    assert_eq!(count(&server, &hook).await, 1, "a changed guest");

    // Deleted and created again under the same id: a clean start.
    assert_eq!(count(&server, &hook).await, 2);
    let (status, _) = server.delete(&path).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server
        .put(
            &path,
            &json!({"source": "crud", "event": "consumers", "handler": "lambda",
                    "config": {"functions": ["counter"], "instance": "reused"}}),
        )
        .await;
    assert!(status.is_success(), "{status}: {body}");
    // The deletion reaches the sandbox with its crud event, shortly after
    // the answer; until then the old instance answers, counting on.
    eventually("the recreated hook's first clean instance", || async {
        (count(&server, &hook).await == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn grants_hold_on_kept_instances_as_on_fresh_ones() {
    let receiver = Receiver::start().await;
    let granted = format!("127.0.0.1:{}", receiver.addr.port());
    let server =
        Server::start_with(Options::loopback().env("HOOKD_SANDBOX_ALLOWED_HOSTS", &granted)).await;
    uploaded(&server, "poster", "http-post").await;
    let data = json!({"target_url": receiver.url("/from-guest")});
    for instance in ["per-event", "reused"] {
        let allowed = lambda_hook(
            &server,
            "consumers",
            json!({"functions": ["poster"], "instance": instance,
                   "capabilities": {"http": [&granted]}}),
        )
        .await;
        let refused = lambda_hook(
            &server,
            "consumers",
            json!({"functions": ["poster"], "instance": instance}),
        )
        .await;
        // Twice each: the second call of a reused hook runs on its kept
        // instance.
        for _ in 0..2 {
            let (status, answer) = test_hook(&server, &allowed, data.clone()).await;
            assert_eq!(status, StatusCode::OK, "{instance}: {answer}");
            assert_eq!(answer["result"]["http_status"], 200, "{instance}");
            let (status, answer) = test_hook(&server, &refused, data.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{instance}: {answer}"
            );
            assert!(
                answer["guest_error"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("http request refused"),
                "{instance}: {answer}"
            );
        }
    }
    assert_eq!(
        receiver.received().len(),
        4,
        "only the granted calls arrived"
    );
}
