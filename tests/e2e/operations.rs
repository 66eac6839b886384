//! Operating hookd: admin authentication, metrics, the OpenAPI document,
//! request ids, and configuration from file and environment.

use crate::support::{Options, Server, call};
use hookd_testkit::eventually;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub(crate) const BOOT: &str = "bootstrap-secret-token";

/// A server that enforces RBAC, with [`BOOT`] its bootstrap token.
pub(crate) fn rbac() -> Options {
    with_rbac(Options::default())
}

/// `options` with RBAC enforced and [`BOOT`] the bootstrap token.
pub(crate) fn with_rbac(options: Options) -> Options {
    options
        .env("HOOKD_ENFORCE_RBAC", "true")
        .env("HOOKD_ADMIN_TOKEN", BOOT)
}

pub(crate) async fn admin_with_token(server: &Server, username: &str, role: &str) -> String {
    let (status, admin) = call(
        server,
        reqwest::Method::POST,
        "/admins",
        Some(BOOT),
        Some(json!({"username": username, "role": role})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{admin}");
    admin["token"]
        .as_str()
        .expect("a token at creation")
        .to_string()
}

#[tokio::test]
async fn userinfo_names_the_tokens_admin_and_whether_rbac_is_on() {
    let open = Server::start().await;
    assert_eq!(
        call(&open, reqwest::Method::GET, "/userinfo", None, None).await,
        (
            StatusCode::OK,
            json!({"rbac_enforced": false, "admin": null})
        )
    );
    let server = Server::start_with(rbac()).await;
    let reader = admin_with_token(&server, "reader", "read-only").await;
    let (status, who) = call(
        &server,
        reqwest::Method::GET,
        "/userinfo",
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        who,
        json!({"rbac_enforced": true, "admin": {"username": "reader", "role": "read-only"}})
    );
    let (_, boot) = call(&server, reqwest::Method::GET, "/userinfo", Some(BOOT), None).await;
    assert_eq!(boot["admin"]["role"], "super-admin");
    let (status, _) = call(&server, reqwest::Method::GET, "/userinfo", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_role_with_and_without_a_valid_token() {
    use reqwest::Method as M;
    let server = Server::start_with(rbac()).await;
    let hook = json!({"source": "crud", "handler": "log", "config": {}});
    let invalid = json!({"message": "Invalid credentials. Token or User credentials required"});
    assert_eq!(
        call(&server, M::GET, "/event-hooks", None, None).await,
        (StatusCode::UNAUTHORIZED, invalid.clone())
    );
    assert_eq!(
        call(&server, M::GET, "/event-hooks", Some("wrong"), None).await,
        (StatusCode::UNAUTHORIZED, invalid.clone())
    );
    assert_eq!(
        call(&server, M::GET, "/metrics", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );

    let reader = admin_with_token(&server, "reader", "read-only").await;
    let operator = admin_with_token(&server, "operator", "admin").await;
    let root = admin_with_token(&server, "root", "super-admin").await;

    // read-only reads, and nothing else.
    assert_eq!(hooks_read(&server, Some(&reader)).await, StatusCode::OK);
    let (status, body) = call(
        &server,
        M::POST,
        "/event-hooks",
        Some(&reader),
        Some(hook.clone()),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            json!({"message": "reader, you do not have permissions to create this resource"})
        )
    );
    // admin runs hooks, guests and entities, not admins; super-admin does
    // everything.
    let asked = [
        (
            operator.as_str(),
            M::POST,
            "/event-hooks",
            Some(hook.clone()),
            StatusCode::CREATED,
        ),
        (
            operator.as_str(),
            M::POST,
            "/consumers",
            Some(json!({"username": "c"})),
            StatusCode::CREATED,
        ),
        (
            operator.as_str(),
            M::POST,
            "/admins",
            Some(json!({"username": "x"})),
            StatusCode::FORBIDDEN,
        ),
        (
            operator.as_str(),
            M::GET,
            "/admins",
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            root.as_str(),
            M::POST,
            "/admins",
            Some(json!({"username": "y"})),
            StatusCode::CREATED,
        ),
    ];
    for (token, method, path, body, want) in asked {
        let what = format!("{method} {path}");
        let (status, _) = call(&server, method, path, Some(token), body).await;
        assert_eq!(status, want, "{what}");
    }
    // An admin created by PUT gets its token too; replacing one does not show it again.
    let put_z = || {
        call(
            &server,
            M::PUT,
            "/admins/z",
            Some(&root),
            Some(json!({"role": "read-only"})),
        )
    };
    let (status, put) = put_z().await;
    assert_eq!(status, StatusCode::OK);
    let z = put["token"]
        .as_str()
        .expect("a token for the admin PUT created")
        .to_string();
    assert_eq!(hooks_read(&server, Some(&z)).await, StatusCode::OK);
    let (_, again) = put_z().await;
    assert!(again.get("token").is_none(), "{again}");
    // Authorization: Bearer works as well.
    let bearer = server
        .http
        .get(server.url("/event-hooks"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);

    // The token is shown once and stored only as a hash.
    let (_, shown) = call(&server, M::GET, "/admins/reader", Some(&root), None).await;
    assert!(shown.get("token").is_none(), "{shown}");
    for entry in walk(&server.data_dir()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(reader.len()).any(|w| w == reader.as_bytes()),
            "token in clear in {}",
            entry.display()
        );
    }
    // A new token replaces the old one.
    let (status, rotated) = call(&server, M::POST, "/admins/reader/token", Some(&root), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let fresh = rotated["token"].as_str().unwrap();
    assert_eq!(
        hooks_read(&server, Some(&reader)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(hooks_read(&server, Some(fresh)).await, StatusCode::OK);
    // A disabled token is no token.
    call(
        &server,
        M::PATCH,
        "/admins/reader",
        Some(&root),
        Some(json!({"rbac_token_enabled": false})),
    )
    .await;
    assert_eq!(
        hooks_read(&server, Some(fresh)).await,
        StatusCode::UNAUTHORIZED
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn without_rbac_no_token_is_needed() {
    let server = Server::start().await;
    assert_eq!(server.get("/event-hooks").await.0, StatusCode::OK);
}

/// The value of a metric line, if present.
fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_change_after_events_deliveries_and_a_lambda_trap() {
    let server = Server::start().await;
    let scrape = || async {
        let response = server
            .http
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        response.text().await.unwrap()
    };
    let before = scrape().await;
    assert_eq!(
        metric(
            &before,
            r#"hookd_events_total{source="crud",event="consumers"}"#
        ),
        None
    );
    server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "event": "consumers", "handler": "log", "config": {}}),
        )
        .await;
    server.create("/consumers", &json!({"username": "m"})).await;
    let text = eventually("the log delivery counted", || async {
        let text = scrape().await;
        metric(
            &text,
            r#"hookd_deliveries_total{handler="log",outcome="succeeded"}"#,
        )
        .is_some()
        .then_some(text)
    })
    .await;
    assert_eq!(
        metric(
            &text,
            r#"hookd_events_total{source="crud",event="consumers"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            r#"hookd_delivery_attempts_total{handler="log",outcome="ok"}"#
        ),
        Some(1.0)
    );
    assert!(
        text.contains("hookd_attempt_duration_seconds_bucket{"),
        "latency histogram"
    );
    assert!(metric(&text, "hookd_queue_depth").is_some());
    assert!(
        text.contains(
            r#"hookd_admin_requests_total{method="POST",route="/consumers",status="201"} 1"#
        ),
        "{text}"
    );

    let spin = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../guest-examples/spin/spin.wasm"),
    )
    .unwrap();
    assert_eq!(
        server
            .post_raw("/guests?name=spin", "application/wasm", spin)
            .await
            .0,
        StatusCode::CREATED
    );
    let hook = server
        .create("/event-hooks", &json!({"source": "crud", "event": "consumers:delete", "handler": "lambda",
                                         "config": {"functions": ["spin"], "limits": {"timeout_ms": 200}}}))
        .await;
    let (status, _) = server
        .post(
            &format!("/event-hooks/{}/test", hook["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let text = scrape().await;
    assert_eq!(
        metric(
            &text,
            r#"hookd_lambda_invocations_total{outcome="timeout"}"#
        ),
        Some(1.0)
    );
    assert_eq!(metric(&text, "hookd_guests_compiled"), Some(1.0));
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_complete() {
    let server = Server::start().await;
    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let parsed: openapiv3::OpenAPI = serde_json::from_value(doc.clone()).expect("OpenAPI 3");
    assert_eq!(parsed.openapi, "3.0.3");
    for path in [
        "/event-hooks",
        "/event-hooks/{key}",
        "/event-hooks/{key}/test",
        "/event-hooks/sources",
        "/consumers/{key}",
        "/upstreams/{key}/targets/{child_key}",
        "/guests",
        "/audit",
        "/metrics",
        "/events",
        "/deliveries/{id}/retry",
        "/openapi.json",
        "/wit",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert_eq!(
        doc["paths"]["/event-hooks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/event_hooks"
    );
    assert!(doc["components"]["schemas"]["services"]["properties"]["protocol"]["enum"].is_array());
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_logs_name_it() {
    let server = Server::start().await;
    let response = server.http.get(server.url("/status")).send().await.unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(uuid::Uuid::try_parse(&id).is_ok(), "{id}");
    let given = server
        .http
        .post(server.url("/consumers"))
        .header("x-request-id", "trace-me-42")
        .json(&json!({"username": "r"}))
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-me-42");
    eventually("a log line with the request id", || async {
        server
            .logs()
            .contains("request_id=trace-me-42")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_environment_overrides_the_configuration_file() {
    let file = "body_limit = 100\ndelivery_workers = 3\nadmin_token = \"from-the-file\"\n";
    let server = Server::start_with(
        Options::default()
            .config(file)
            .env("HOOKD_BODY_LIMIT", "2048"),
    )
    .await;
    let (_, root) = server.get("/").await;
    let conf = &root["configuration"];
    assert_eq!(conf["body_limit"], 2048, "the environment wins");
    assert_eq!(
        conf["delivery_workers"], 3,
        "the file applies where the environment is silent"
    );
    assert_eq!(conf["admin_token"], "******", "secrets are redacted");
    // `hookd config` prints the same effective configuration.
    let config_file = server.scratch().join("hookd.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .arg("config")
        .arg("--config")
        .arg(&config_file)
        .env("HOOKD_BODY_LIMIT", "4096")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["body_limit"], 4096);
    assert_eq!(printed["delivery_workers"], 3);
    assert_eq!(printed["admin_token"], "******");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .arg("config")
        .env("HOOKD_DELIVERY_WORKERS", "many")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("HOOKD_DELIVERY_WORKERS"));
}

/// The status of reading the hooks with `token`.
async fn hooks_read(server: &Server, token: Option<&str>) -> StatusCode {
    call(server, reqwest::Method::GET, "/event-hooks", token, None)
        .await
        .0
}
