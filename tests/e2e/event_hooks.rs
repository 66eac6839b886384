//! `/event-hooks` as Kong's documentation and curl examples use it.

use crate::support::Server;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn kongs_own_curl_example_creates_a_hook() {
    let server = Server::start().await;
    // Verbatim from Kong's overview: trailing slash, Accept header, JSON body.
    let response = server
        .http
        .post(server.url("/event-hooks/"))
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .body(
            r#"
{
"source": "crud",
"event": "consumers",
"handler": "webhook",
"on_change": true,
"config": {
"url": "https://example.com/hook"
}
}
"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let hook: Value = response.json().await.unwrap();
    let id = hook["id"].as_str().unwrap().to_string();
    let created_at = hook["created_at"].as_i64().unwrap();
    assert!(created_at > 1_600_000_000, "unix seconds: {created_at}");
    assert_eq!(
        hook,
        json!({"config": {"headers": {}, "secret": null, "previous_secret": null, "ssl_verify": false,
                          "url": "https://example.com/hook"},
               "created_at": created_at, "event": "consumers", "handler": "webhook", "id": id,
               "on_change": true, "snooze": null, "source": "crud", "condition": null,
               "enabled": true, "concurrency": null, "rate_limit": null})
    );
    let (status, fetched) = server.get(&format!("/event-hooks/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, hook);
    let (status, list) = server.get("/event-hooks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!({"data": [hook], "next": null}));
}

#[tokio::test]
async fn form_encoded_bodies_with_dotted_keys() {
    let server = Server::start().await;
    let (status, hook) = server
        .post_form(
            "/event-hooks",
            &[
                ("source", "crud"),
                ("event", "consumers:create"),
                ("handler", "webhook-custom"),
                ("snooze", "60"),
                ("on_change", "false"),
                ("config.url", "http://example.com/a"),
                ("config.method", "POST"),
                ("config.headers.X-Team", "ops"),
                ("config.payload.text", "{{ entity.username }} created"),
                ("config.ssl_verify", "true"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    assert_eq!(hook["snooze"], 60);
    assert_eq!(hook["on_change"], false);
    assert_eq!(hook["config"]["headers"], json!({"X-Team": "ops"}));
    assert_eq!(
        hook["config"]["payload"],
        json!({"text": "{{ entity.username }} created"})
    );
    assert_eq!(hook["config"]["ssl_verify"], true);
    assert_eq!(hook["config"]["payload_format"], true);
    assert_eq!(hook["config"]["body_format"], true);
    assert_eq!(hook["config"]["headers_format"], false);
}

#[tokio::test]
async fn every_handler_gets_its_config_shape_and_defaults() {
    let server = Server::start().await;
    let log = server
        .create(
            "/event-hooks",
            &json!({"source": "dao:crud", "handler": "log", "config": {}}),
        )
        .await;
    assert_eq!(log["config"], json!({}));
    assert_eq!(log["event"], Value::Null);
    let custom = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "handler": "webhook-custom",
                    "config": {"url": "http://example.com/", "method": "GET"}}),
        )
        .await;
    assert_eq!(
        custom["config"],
        json!({"url": "http://example.com/", "method": "GET", "payload": null, "payload_format": true,
               "body": null, "body_format": true, "headers": {}, "headers_format": false,
               "secret": null, "previous_secret": null, "ssl_verify": false})
    );
}

#[tokio::test]
async fn patch_merges_config_put_upserts_delete_removes() {
    let server = Server::start().await;
    let hook = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "event": "consumers", "handler": "webhook",
                    "config": {"url": "http://example.com/a", "secret": "s3"}}),
        )
        .await;
    let path = format!("/event-hooks/{}", hook["id"].as_str().unwrap());
    let (status, patched) = server
        .patch(
            &path,
            &json!({"snooze": 30, "config": {"headers": {"X-A": "1"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["snooze"], 30);
    assert_eq!(patched["config"]["url"], "http://example.com/a");
    assert_eq!(patched["config"]["secret"], "s3");
    assert_eq!(patched["config"]["headers"], json!({"X-A": "1"}));
    assert_eq!(patched["created_at"], hook["created_at"]);
    assert_eq!(server.get(&path).await.1, patched);

    // PUT replaces the whole hook: what it leaves out returns to defaults.
    let (status, replaced) = server
        .put(
            &path,
            &json!({"source": "crud", "handler": "log", "config": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["handler"], "log");
    assert_eq!(replaced["snooze"], Value::Null);
    assert_eq!(replaced["id"], hook["id"]);

    // PUT at an unused id creates the hook with that id.
    let fresh = uuid::Uuid::new_v4();
    let (status, created) = server
        .put(
            &format!("/event-hooks/{fresh}"),
            &json!({"source": "balancer", "handler": "log", "config": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["id"], fresh.to_string());

    assert_eq!(server.delete(&path).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        server.get(&path).await,
        (StatusCode::NOT_FOUND, json!({"message": "Not found"}))
    );
    // Deleting what is gone is not an error, as in Kong.
    assert_eq!(server.delete(&path).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn pagination_with_size_offset_and_next() {
    let server = Server::start().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let hook = server
            .create(
                "/event-hooks",
                &json!({"source": "crud", "handler": "log", "config": {}}),
            )
            .await;
        ids.push(hook["id"].as_str().unwrap().to_string());
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut path = "/event-hooks?size=2".to_string();
    loop {
        let (status, page) = server.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|h| h["id"].as_str().unwrap().to_string()));
        match page["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with("/event-hooks?size=2&offset="), "{next}");
                assert_eq!(
                    page["offset"].as_str().map(|o| next.ends_with(o)),
                    Some(true)
                );
                path = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(seen, ids, "every hook once, ordered by id");
}
