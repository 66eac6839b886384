//! `hookd guests run`: a guest run offline in the server's sandbox, as a
//! guest author does between edits: state kept with `--instance reused`,
//! each way a call ends told by its exit code, and the same decisions the
//! server records for the same guest and grants.

use crate::lambda::{lambda_hook, test_hook, uploaded};
use crate::support::{Options, Server};
use hookd_testkit::guests;
use hookd_testkit::receiver::Receiver;
use serde_json::{Value, json};
use std::process::Stdio;

/// What one `hookd guests run` did.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// Runs `hookd guests run` on an example guest with `data` as the event
/// data, these flags and extra environment variables.
async fn guests_run(guest: &str, data: Value, flags: &[&str], env: &[(&str, &str)]) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, data.to_string()).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .arg("guests")
        .arg("run")
        .arg(guests::path(guest))
        .arg("--data")
        .arg(&event)
        .args(flags)
        .env_remove("HOOKD_CONFIG")
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("running hookd");
    Ran {
        code: out.status.code().expect("an exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn reused_instances_keep_state_and_each_ending_has_its_exit_code() {
    let ran = guests_run(
        "counter",
        json!({}),
        &["--instance", "reused", "--repeat", "3", "--json"],
        &[],
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let runs = ran.json()["runs"].as_array().unwrap().clone();
    let calls: Vec<&Value> = runs.iter().map(|r| &r["result"]["calls"]).collect();
    assert_eq!(calls, [&json!(1), &json!(2), &json!(3)]);
    assert_eq!(runs[0]["reused"], false);
    assert_eq!(runs[2]["reused"], true);
    assert!(runs[0]["peak_memory"].as_u64().unwrap() > 0);

    let fresh = guests_run("counter", json!({}), &["--repeat", "2", "--json"], &[]).await;
    assert_eq!(fresh.json()["runs"][1]["result"]["calls"], 1);

    for (data, flags, code) in [
        (json!({"then": "trap"}), vec![], 4),
        (json!({"then": "spin"}), vec!["--timeout", "300ms"], 5),
        (json!({"then": "grow"}), vec!["--memory", "16777216"], 5),
    ] {
        let ran = guests_run("counter", data.clone(), &flags, &[]).await;
        assert_eq!(ran.code, code, "{data}: {}{}", ran.stdout, ran.stderr);
        assert!(ran.stdout.starts_with("failed: "), "{}", ran.stdout);
    }
    let own_error = guests_run("transform", json!([1]), &[], &[]).await;
    assert_eq!(own_error.code, 3, "{}", own_error.stdout);
    assert!(
        own_error
            .stdout
            .contains("transform: event data is not a JSON object"),
        "{}",
        own_error.stdout
    );
    // The guest's log line reaches stderr, as the server would log it.
    let logged = guests_run("transform", json!({"entity": {"username": "a"}}), &[], &[]).await;
    assert_eq!(logged.code, 0);
    assert!(
        logged.stdout.contains("\"username\": \"A\""),
        "{}",
        logged.stdout
    );
    assert!(
        logged.stderr.contains("transform: crud consumers:create"),
        "{}",
        logged.stderr
    );

    let bad_flag = guests_run("counter", json!({}), &["--dir", "relative:/d"], &[]).await;
    assert_eq!(bad_flag.code, 1);
    assert!(
        bad_flag.stderr.contains("the host path must be absolute"),
        "{}",
        bad_flag.stderr
    );
}

#[tokio::test]
async fn it_shows_the_decisions_the_server_records_for_the_same_guest_and_grants() {
    let receiver = Receiver::start().await;
    let granted = format!("127.0.0.1:{}", receiver.addr.port());
    let loopback = [("HOOKD_OUTBOUND_ALLOW_CIDRS", "127.0.0.0/8")];
    let server =
        Server::start_with(Options::loopback().env("HOOKD_SANDBOX_ALLOWED_HOSTS", &granted)).await;
    uploaded(&server, "poster", "http-post").await;
    // The server lists its log newest first: compare as sets.
    let decisions = |records: &Value| -> Vec<(String, String, String)> {
        let mut all: Vec<_> = records
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let field = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                (field("capability"), field("target"), field("verdict"))
            })
            .collect();
        all.sort();
        all
    };
    for (grant, url) in [
        (Some(&granted), receiver.url("/granted")),
        (None, receiver.url("/refused")),
    ] {
        let data = json!({"target_url": url});
        let mut flags = vec!["--json"];
        let caps = match grant {
            Some(host) => {
                flags.extend(["--http", host.as_str()]);
                json!({"http": [host]})
            }
            None => json!({}),
        };
        let offline = guests_run("http-post", data.clone(), &flags, &loopback).await;
        let offline = decisions(&offline.json()["runs"][0]["audit"]);

        let hook = lambda_hook(
            &server,
            "consumers",
            json!({"functions": ["poster"], "capabilities": caps}),
        )
        .await;
        test_hook(&server, &hook, data).await;
        let (_, audit) = server
            .get(&format!("/audit?hook={}", hook["id"].as_str().unwrap()))
            .await;
        assert!(!offline.is_empty());
        assert_eq!(offline, decisions(&audit["data"]), "grant {grant:?}");
    }
}

#[tokio::test]
async fn inspect_tells_unusable_imports_from_denied_items() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["guests", "inspect"])
        .arg(guests::path("counter"))
        .env_remove("HOOKD_CONFIG")
        .output()
        .await
        .expect("running hookd");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    // Rust's std imports the environment: unusable without a grant, not
    // something the guest was refused.
    assert!(
        stdout.contains("  unusable: environment: no variable is granted"),
        "{stdout}"
    );
    assert!(!stdout.contains("denied:"), "{stdout}");
}

#[tokio::test]
async fn offline_verbs_do_not_offer_the_clients_server_options() {
    let help = |args: &'static [&'static str]| async move {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
            .args(args)
            .arg("--help")
            .output()
            .await
            .expect("running hookd");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for offline in [
        &["guests", "inspect"][..],
        &["guests", "run"],
        &["guests", "new"],
        &["wit"],
        &["serve"],
    ] {
        let text = help(offline).await;
        assert!(
            text.starts_with("Usage:") || text.contains("Usage:"),
            "{text}"
        );
        assert!(
            !text.contains("--url") && !text.contains("--token"),
            "{offline:?}: {text}"
        );
    }
    let client = help(&["guests", "list"]).await;
    assert!(
        client.contains("--url") && client.contains("--token"),
        "{client}"
    );
}
