//! Hostile guests and what they must not reach (issue 11, items 5, 8, 9):
//! a guest that floods makes a bounded number of counted audit records and
//! log lines; hookd's own secrets are never a guest's, in any mode; a
//! deleted admin's token never comes back.

use crate::support::{Options, Server};
use hookd_testkit::guests;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

async fn upload(server: &Server, name: &str) {
    let (status, body) = server
        .post_raw(
            &format!("/guests?name={name}"),
            "application/wasm",
            guests::bytes(name),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn id(v: &Value) -> &str {
    v["id"].as_str().expect("an id")
}

// --- item 5: guests cannot flood -------------------------------------------

/// Requests to one ungranted host, distinct ungranted hosts, `log` calls
/// and stderr lines, all in one call.
const REQUESTS: u64 = 20_000;
const HOSTS: u64 = 300;
const LINES: u64 = 5_000;

#[tokio::test]
async fn a_flooding_guest_makes_counted_audit_records_and_a_bounded_log() {
    let server = Server::start_with(Options::loopback()).await;
    upload(&server, "flood").await;
    let hook = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "event": "consumers", "handler": "lambda",
                    "config": {"functions": ["flood"], "limits": {"timeout_ms": 60_000}}}),
        )
        .await;
    let flood = json!({"url": "http://evil.example/", "requests": REQUESTS, "hosts": HOSTS,
                       "logs": LINES, "stderr": LINES, "long_line": 100_000});
    let (status, answer) = server
        .post(&format!("/event-hooks/{}/test", id(&hook)), &flood)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let attempts = REQUESTS + HOSTS;
    assert_eq!(
        answer["result"],
        json!({"requests": attempts, "refused": attempts})
    );

    let (status, audit) = server
        .get(&format!("/audit?hook={}&size=1000", id(&hook)))
        .await;
    assert_eq!(status, StatusCode::OK);
    let records = audit["data"].as_array().unwrap();
    // 100 distinct decisions, then one record counting the rest.
    assert_eq!(records.len(), 101, "{audit}");
    assert!(records.iter().all(|r| r["verdict"] == "denied"));
    let total: u64 = records.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(total, attempts, "every attempt is counted");
    let count_of = |target: &str| {
        records
            .iter()
            .find(|r| r["target"] == target)
            .unwrap_or_else(|| panic!("no record for {target}: {audit}"))["count"]
            .as_u64()
    };
    assert_eq!(count_of("evil.example:80"), Some(REQUESTS));
    assert_eq!(count_of("*"), Some(HOSTS - 99));

    // The CLI shows the count.
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["--url", &server.url(""), "audit", "--hook", id(&hook)])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&cli.stdout);
    assert!(table.lines().next().unwrap().contains("COUNT"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("evil.example:80") && l.contains(&REQUESTS.to_string())),
        "{table}"
    );

    // The server log: one line per distinct denial, 100 lines of each
    // output, lines cut at 1 KiB, and a line for what was dropped.
    let logs = server.logs();
    let denials = logs.lines().filter(|l| l.contains(" denied")).count();
    assert!(denials <= 100, "{denials} denial lines");
    let flood_lines = logs
        .lines()
        .filter(|l| {
            l.split("flood ")
                .nth(1)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    assert!(flood_lines <= 200, "{flood_lines} guest lines");
    assert!(
        !logs.contains(&"y".repeat(1025)),
        "the long line was not cut"
    );
    assert!(
        logs.contains("guest output past its bounds was dropped"),
        "{logs}"
    );
    assert!(logs.contains("guest decisions aggregated into counted records"));

    // The server carries on, and a normal event is delivered.
    let (status, _) = server
        .post("/consumers", &json!({"username": "after-the-flood"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let delivery = server
        .newest_delivery(&hook, "the delivery after the flood", |d| {
            d["state"] == "succeeded"
        })
        .await;
    assert_eq!(delivery["attempts"][0]["result"]["requests"], 0);
}

// --- item 8: hookd's own secrets -------------------------------------------

/// A lambda hook on `consumers` asking for these capabilities.
fn hook_asking(caps: Value) -> Value {
    json!({"source": "crud", "event": "consumers", "handler": "lambda",
           "config": {"functions": ["snoop"], "capabilities": caps}})
}

#[tokio::test]
async fn hookds_own_secrets_are_never_granted_in_any_mode() {
    for mode in ["sandbox", "on"] {
        let server = Server::start_with(
            Options::default()
                .env("HOOKD_UNTRUSTED_WASM", mode)
                .env("HOOKD_ADMIN_TOKEN", "the-bootstrap-token")
                .config("body_limit = 1048576\n"),
        )
        .await;
        upload(&server, "snoop").await;
        let data = server.data_dir();
        let config_dir = server.scratch().to_path_buf();
        let link = server.scratch().join("innocent");
        std::os::unix::fs::symlink(&data, &link).unwrap();
        let dir = |host: &std::path::Path| json!({"host": host, "guest": "/d"});
        let (status, refused) = server
            .post(
                "/event-hooks",
                &hook_asking(json!({
                    "env": ["HOOKD_ADMIN_TOKEN", "hookd_config"],
                    "dirs": [dir(&data), dir(&data.join("compiled")), dir(&config_dir), dir(&link)],
                })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{mode}: {refused}");
        let fields = &refused["fields"]["config"]["capabilities"];
        for (i, name) in ["HOOKD_ADMIN_TOKEN", "hookd_config"].iter().enumerate() {
            let text = fields["env"][(i + 1).to_string()]
                .as_str()
                .unwrap_or_default();
            assert!(
                text.contains(name) && text.contains("hookd's own"),
                "{mode}: {refused}"
            );
        }
        for i in ["1", "2", "3", "4"] {
            let text = fields["dirs"][i].as_str().unwrap_or_default();
            assert!(
                text.contains("hookd's data directory")
                    || text.contains("hookd's configuration file"),
                "{mode}: dirs.{i}: {refused}"
            );
        }

        // Through PATCH and PUT as well.
        let hook = server.create("/event-hooks", &hook_asking(json!({}))).await;
        let path = format!("/event-hooks/{}", id(&hook));
        let secret = json!({"env": ["HOOKD_ADMIN_TOKEN"]});
        let (status, answer) = server
            .patch(&path, &json!({"config": {"capabilities": secret}}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{mode}: {answer}");
        let (status, answer) = server.put(&path, &hook_asking(secret)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{mode}: {answer}");

        // A variable of the guest's own is still granted in `on`.
        if mode == "on" {
            server
                .create("/event-hooks", &hook_asking(json!({"env": ["REGION"]})))
                .await;
        }
        let (status, _) = server.get("/").await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// Runs `hookd serve` with these variables; what it printed when it exited.
fn serve_refused(vars: &[(&str, &str)], data: &std::path::Path) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .envs(vars.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("hookd started with {vars:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_ceiling_holding_hookds_own_secrets_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let err = serve_refused(&[("HOOKD_SANDBOX_ENV", "HOOKD_ADMIN_TOKEN")], &data);
    assert!(
        err.contains("sandbox_env: environment variable 'HOOKD_ADMIN_TOKEN' is hookd's own"),
        "{err}"
    );
    let around = format!("[{{host = {:?}, guest = \"/d\"}}]", dir.path());
    let err = serve_refused(&[("HOOKD_SANDBOX_DIRS", &around)], &data);
    assert!(err.contains("hookd's data directory"), "{err}");
}

// --- item 9: tokens die with their admin -----------------------------------

const BOOT: &str = "bootstrap-secret-token";

fn rbac() -> Options {
    Options::default()
        .env("HOOKD_ENFORCE_RBAC", "true")
        .env("HOOKD_ADMIN_TOKEN", BOOT)
}

async fn call(
    server: &Server,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = server
        .http
        .request(method, server.url(path))
        .header("Kong-Admin-Token", token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let response = req.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// What a token gets on a read any role may do.
async fn reads(server: &Server, token: &str) -> StatusCode {
    call(server, Method::GET, "/event-hooks", token, None)
        .await
        .0
}

async fn admin(server: &Server, body: Value) -> Value {
    let (status, admin) = call(server, Method::POST, "/admins", BOOT, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{admin}");
    admin
}

#[tokio::test]
async fn a_deleted_admins_token_never_comes_back() {
    let server = Server::start_with(rbac()).await;
    let victim = admin(&server, json!({"username": "victim", "role": "read-only"})).await;
    let token = victim["token"].as_str().unwrap();
    assert_eq!(reads(&server, token).await, StatusCode::OK);
    let path = format!("/admins/{}", id(&victim));
    let (status, _) = call(&server, Method::DELETE, &path, BOOT, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(reads(&server, token).await, StatusCode::UNAUTHORIZED);

    // The attack of issue 11: PUT the same id back, disabled and promoted,
    // then enable it.
    let (status, answer) = call(
        &server,
        Method::PUT,
        &path,
        BOOT,
        Some(json!({"username": "victim", "rbac_token_enabled": false, "role": "super-admin"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    turn_token_login_on(&server, &path).await;
    assert_eq!(reads(&server, token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&server, Method::GET, "/admins", token, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The admin it is now gets a token of its own.
    let (status, fresh) = call(&server, Method::POST, &format!("{path}/token"), BOOT, None).await;
    assert_eq!(status, StatusCode::CREATED, "{fresh}");
    let fresh = fresh["token"].as_str().unwrap();
    assert_eq!(
        call(&server, Method::GET, "/admins", fresh, None).await.0,
        StatusCode::OK
    );
    assert_eq!(reads(&server, token).await, StatusCode::UNAUTHORIZED);

    // Across a restart too.
    let mut server = server;
    server.restart();
    assert_eq!(reads(&server, token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(reads(&server, fresh).await, StatusCode::OK);
}

/// Turns token login back on for the admin at `path`.
async fn turn_token_login_on(server: &Server, path: &str) {
    let (status, answer) = call(
        server,
        Method::PATCH,
        path,
        BOOT,
        Some(json!({"rbac_token_enabled": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn recreating_an_admin_never_revives_a_token_and_updates_keep_it() {
    let server = Server::start_with(rbac()).await;
    let first = admin(&server, json!({"username": "again", "role": "admin"})).await;
    let token = first["token"].as_str().unwrap();
    let path = format!("/admins/{}", id(&first));
    call(&server, Method::DELETE, &path, BOOT, None).await;

    // POST with the same id and username, its token disabled, then enabled.
    let again = admin(
        &server,
        json!({"id": id(&first), "username": "again", "role": "super-admin",
               "rbac_token_enabled": false}),
    )
    .await;
    assert!(again.get("token").is_none(), "{again}");
    turn_token_login_on(&server, &path).await;
    assert_eq!(reads(&server, token).await, StatusCode::UNAUTHORIZED);

    // POST with the same username under a new id: a new token, the old dead.
    call(&server, Method::DELETE, &path, BOOT, None).await;
    let renamed = admin(&server, json!({"username": "again", "role": "admin"})).await;
    assert_ne!(id(&renamed), id(&first));
    let current = renamed["token"].as_str().unwrap();
    assert_eq!(reads(&server, token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(reads(&server, current).await, StatusCode::OK);

    // PUT over an existing admin is an update of the same admin: its token
    // stays, with the role the PUT gives; disabling suspends it, enabling
    // resumes it (as Kong's rbac_token_enabled).
    let path = format!("/admins/{}", id(&renamed));
    let (status, answer) = call(
        &server,
        Method::PUT,
        &path,
        BOOT,
        Some(json!({"username": "again", "role": "read-only"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(reads(&server, current).await, StatusCode::OK);
    let (status, _) = call(
        &server,
        Method::POST,
        "/consumers",
        current,
        Some(json!({"username": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "read-only now");
    for (enabled, expected) in [(false, StatusCode::UNAUTHORIZED), (true, StatusCode::OK)] {
        call(
            &server,
            Method::PATCH,
            &path,
            BOOT,
            Some(json!({"rbac_token_enabled": enabled})),
        )
        .await;
        assert_eq!(reads(&server, current).await, expected);
    }
}
