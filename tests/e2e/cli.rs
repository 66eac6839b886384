//! The client verbs of the `hookd` binary against a real server: tables
//! and `--json` for hooks, guests, deliveries and audit; Kong's errors on
//! stderr; and the declarative `dump` and `apply`: a dump applied to an
//! empty server dumps the same, and applying a file twice writes nothing.

use crate::support::{Options, Server};
use hookd_testkit::eventually;
use hookd_testkit::receiver::Receiver;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;

const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

/// What one run of the binary did.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Standard output of a run that must have succeeded.
    fn ok(&self) -> &str {
        assert!(
            self.success,
            "hookd failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Standard error of a run that must have failed.
    fn failed(&self) -> &str {
        assert!(!self.success, "hookd succeeded:\n{}", self.stdout);
        assert!(self.stdout.is_empty(), "nothing on stdout: {}", self.stdout);
        &self.stderr
    }

    /// Standard output of a successful run, parsed as JSON.
    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// Runs `hookd ARGS` against the Admin API at `url` with these extra
/// environment variables, in a directory of its own (a dump to stdout
/// writes guest files in the current one).
async fn hookd_with(url: &str, env: &[(&str, &str)], args: &[&str]) -> Run {
    let cwd = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(args)
        .current_dir(cwd.path())
        .env("HOOKD_URL", url)
        .env_remove("HOOKD_ADMIN_TOKEN")
        .env_remove("HOOKD_CONFIG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("running hookd");
    Run {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `hookd ARGS` against the Admin API at `url`.
async fn hookd_at(url: &str, args: &[&str]) -> Run {
    hookd_with(url, &[], args).await
}

/// Runs `hookd ARGS` against the server.
async fn hookd(server: &Server, args: &[&str]) -> Run {
    hookd_at(&server.url(""), args).await
}

fn guest_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../guest-examples")
        .join(name)
        .join(format!("{name}.wasm"))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {v}"))
        .to_string()
}

/// Waits until every event written so far is dispatched.
async fn outbox_drained(server: &Server) {
    eventually("an empty outbox", || async {
        let (_, status) = server.get("/status").await;
        (status["outbox"]["pending"] == 0).then_some(())
    })
    .await;
}

/// How many deliveries a hook has.
async fn deliveries_of(server: &Server, hook: &str) -> usize {
    let (_, page) = server
        .get(&format!("/event-hooks/{hook}/deliveries?size=1000"))
        .await;
    page["data"].as_array().map_or(0, Vec::len)
}

/// One of every kind a document holds, related as Kong relates them.
async fn populate(server: &Server, receiver: &Receiver) {
    let cert = server
        .create(
            "/certificates",
            &json!({"cert": CERT, "key": KEY, "tags": ["edge"]}),
        )
        .await;
    let service = server
        .create(
            "/services",
            &json!({"name": "billing", "url": "http://billing.internal:8080/v1",
                    "client_certificate": {"id": id(&cert)}}),
        )
        .await;
    let upstream = server
        .create("/upstreams", &json!({"name": "backend.internal"}))
        .await;
    let (service, upstream) = (id(&service), id(&upstream));
    for (path, body) in [
        (
            format!("/services/{service}/routes"),
            json!({"name": "billing-route", "paths": ["/billing"]}),
        ),
        (
            "/consumers".into(),
            json!({"username": "alice", "custom_id": "a-1"}),
        ),
        ("/consumer_groups".into(), json!({"name": "gold"})),
        (
            format!("/upstreams/{upstream}/targets"),
            json!({"target": "10.0.0.7", "weight": 50}),
        ),
        (
            "/plugins".into(),
            json!({"name": "rate-limiting", "service": {"id": service}, "config": {"minute": 5}}),
        ),
        (
            "/admins".into(),
            json!({"username": "ops", "email": "ops@example.com"}),
        ),
    ] {
        server.create(&path, &body).await;
    }
    let bytes = std::fs::read(guest_file("transform")).unwrap();
    let (status, guest) = server
        .post_raw("/guests?name=transform", "application/wasm", bytes)
        .await;
    assert_eq!(status, 201, "{guest}");
    for hook in [
        json!({"source": "crud", "event": "services", "handler": "log", "config": {},
               "on_change": true, "snooze": 30}),
        json!({"source": "crud", "event": "routes", "handler": "lambda",
               "config": {"functions": ["transform"]}}),
    ] {
        server.create("/event-hooks", &hook).await;
    }
    // A webhook whose secret was changed: it has a previous secret.
    let webhook = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "event": "consumers", "handler": "webhook",
                    "config": {"url": receiver.url("/hook"), "headers": {"X-A": "1"},
                               "secret": "old"}}),
        )
        .await;
    let path = format!("/event-hooks/{}", id(&webhook));
    let (status, webhook) = server
        .patch(&path, &json!({"config": {"secret": "new"}}))
        .await;
    assert_eq!(status, 200, "{webhook}");
    assert_eq!(webhook["config"]["previous_secret"]["secret"], "old");
}

/// Sections of a dump, as the document has them.
const SECTIONS: &[&str] = &[
    "certificates",
    "services",
    "routes",
    "consumers",
    "consumer_groups",
    "upstreams",
    "targets",
    "plugins",
    "admins",
    "guests",
    "event_hooks",
];

#[tokio::test]
async fn dump_then_apply_on_an_empty_server_reproduces_it() {
    let receiver = Receiver::start().await;
    let first = Server::start_with(Options::loopback()).await;
    populate(&first, &receiver).await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let dumped = a.join("hookd.yaml");
    hookd(&first, &["dump", "-o", dumped.to_str().unwrap()])
        .await
        .ok();

    // Every section is there with its entity, the ids the server gave,
    // no server-set timestamps, and the guest as a file beside it.
    let text = std::fs::read_to_string(&dumped).unwrap();
    let doc: Value = serde_norway::from_str(&text).unwrap();
    for section in SECTIONS {
        let items = doc[section]
            .as_array()
            .unwrap_or_else(|| panic!("{section}: {text}"));
        assert!(!items.is_empty(), "{section} is empty: {text}");
    }
    let (_, services) = first.get("/services").await;
    assert_eq!(doc["services"][0]["id"], services["data"][0]["id"]);
    assert!(
        !text.contains("created_at") && !text.contains("updated_at"),
        "{text}"
    );
    assert_eq!(
        doc["guests"],
        json!([{"name": "transform", "file": "guests/transform.wasm"}])
    );
    let webhook = doc["event_hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["handler"] == "webhook")
        .unwrap();
    assert_eq!(webhook["config"]["previous_secret"]["secret"], "old");
    assert_eq!(
        std::fs::read(a.join("guests/transform.wasm")).unwrap(),
        std::fs::read(guest_file("transform")).unwrap()
    );
    assert_eq!(
        hookd(&first, &["dump"]).await.ok(),
        text,
        "stdout gets the same"
    );

    // An empty server given the dump holds the same: its dump is the same
    // text, ids included.
    let second = Server::start_with(Options::loopback()).await;
    let applied = hookd(&second, &["apply", "-f", dumped.to_str().unwrap()]).await;
    assert!(
        applied
            .ok()
            .ends_with("created 13, updated 0, unchanged 0, deleted 0\n"),
        "{}",
        applied.stdout
    );
    let redumped = b.join("hookd.yaml");
    hookd(&second, &["dump", "-o", redumped.to_str().unwrap()])
        .await
        .ok();
    assert_eq!(std::fs::read_to_string(&redumped).unwrap(), text);
    assert_eq!(
        std::fs::read(b.join("guests/transform.wasm")).unwrap(),
        std::fs::read(a.join("guests/transform.wasm")).unwrap()
    );
    let service = services["data"][0]["id"].as_str().unwrap();
    assert_eq!(second.get(&format!("/services/{service}")).await.0, 200);

    // And applying it again there changes nothing.
    let again = hookd(&second, &["apply", "-f", dumped.to_str().unwrap()]).await;
    assert_eq!(
        again.ok(),
        "created 0, updated 0, unchanged 13, deleted 0\n"
    );
}

/// Everything the server holds, timestamps included.
async fn snapshot(server: &Server, upstream: &str) -> Value {
    let mut all = serde_json::Map::new();
    for path in [
        "/certificates",
        "/services",
        "/routes",
        "/consumers",
        "/consumer_groups",
        "/upstreams",
        "/plugins",
        "/admins",
        "/event-hooks",
        "/guests",
        &format!("/upstreams/{upstream}/targets"),
    ] {
        let (status, page) = server.get(path).await;
        assert_eq!(status, 200, "{path}: {page}");
        all.insert(path.to_string(), page["data"].clone());
    }
    Value::Object(all)
}

#[tokio::test]
async fn applying_a_file_twice_writes_nothing_the_second_time() {
    let receiver = Receiver::start().await;
    let server = Server::start_with(Options::loopback()).await;
    // A hook taking every crud event counts the writes.
    let watcher = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "handler": "log", "config": {}}),
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guest_file("transform"), dir.path().join("transform.wasm")).unwrap();
    // Written by hand: ids only where something refers to them, defaults
    // and shorthands (a service's url, a target without port) as people
    // write them.
    let (cert, svc, up) = (
        "6e2a3c1d-1111-4a4a-8b8b-000000000001",
        "6e2a3c1d-1111-4a4a-8b8b-000000000002",
        "6e2a3c1d-1111-4a4a-8b8b-000000000003",
    );
    let file = write(
        dir.path(),
        "hookd.yaml",
        &format!(
            r#"_format_version: "1"
certificates:
  - id: {cert}
    cert: {cert_pem:?}
    key: {key_pem:?}
services:
  - id: {svc}
    name: billing
    url: http://billing.internal:8080/v1
    client_certificate: {{id: {cert}}}
routes:
  - name: billing-route
    paths: [/billing]
    service: {{id: {svc}}}
consumers:
  - username: alice
  - custom_id: c-2
consumer_groups:
  - name: gold
upstreams:
  - id: {up}
    name: backend.internal
targets:
  - upstream: {{id: {up}}}
    target: 10.0.0.7
plugins:
  - name: rate-limiting
    service: {{id: {svc}}}
    config: {{minute: 5}}
admins:
  - username: ops
    email: ops@example.com
guests:
  - name: transform
    file: transform.wasm
event_hooks:
  - source: crud
    event: consumers
    handler: webhook
    config:
      url: {url}
  - source: crud
    event: routes
    handler: lambda
    config:
      functions: [transform]
"#,
            cert_pem = CERT,
            key_pem = KEY,
            url = receiver.url("/hook"),
        ),
    );

    let first = hookd(&server, &["apply", "-f", &file]).await;
    assert!(
        first
            .ok()
            .ends_with("created 13, updated 0, unchanged 0, deleted 0\n"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("created services"),
        "{}",
        first.stdout
    );
    outbox_drained(&server).await;
    let events = deliveries_of(&server, &id(&watcher)).await;
    assert!(events >= 24, "two crud events per write: {events}");
    let before = snapshot(&server, up).await;

    // updated_at has a one-second grain: let a write show in it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = hookd(&server, &["apply", "-f", &file]).await;
    assert_eq!(
        second.ok(),
        "created 0, updated 0, unchanged 13, deleted 0\n"
    );
    outbox_drained(&server).await;
    assert_eq!(
        deliveries_of(&server, &id(&watcher)).await,
        events,
        "no crud event"
    );
    assert_eq!(snapshot(&server, up).await, before, "nothing written");
    // The watcher is not in the file, and without --prune it stays.
    assert_eq!(
        server
            .get(&format!("/event-hooks/{}", id(&watcher)))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn dry_run_plans_and_prune_deletes_only_in_the_files_sections() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let v1 = write(
        dir.path(),
        "v1.yaml",
        "services:\n  - {name: a, host: a.internal}\n  - {name: b, host: b.internal}\n\
         consumers:\n  - {username: alice}\n  - {username: bob}\n\
         event_hooks:\n  - {source: crud, handler: log, config: {}}\n",
    );
    let out = hookd(&server, &["apply", "-f", &v1]).await;
    assert!(
        out.ok()
            .ends_with("created 5, updated 0, unchanged 0, deleted 0\n")
    );
    let (_, b) = server.get("/services/b").await;

    // a changes, b goes, consumers are not this file's business.
    let v2 = write(
        dir.path(),
        "v2.json",
        r#"{"services": [{"name": "a", "host": "a2.internal"}],
            "event_hooks": [{"source": "crud", "handler": "log", "config": {}}]}"#,
    );
    let plan = hookd(&server, &["apply", "-f", &v2, "--prune", "--dry-run"]).await;
    let plan = plan.ok();
    assert!(plan.contains("would update services"), "{plan}");
    assert!(
        plan.contains(&format!("would delete services {} (b)", id(&b))),
        "{plan}"
    );
    assert!(
        plan.ends_with("dry run, nothing written: created 0, updated 1, unchanged 1, deleted 1\n"),
        "{plan}"
    );
    assert_eq!(server.get("/services/a").await.1["host"], "a.internal");
    assert_eq!(server.get("/services/b").await.0, 200);
    let (_, a) = server.get("/services/a").await;
    let report = hookd(
        &server,
        &["apply", "-f", &v2, "--prune", "--dry-run", "--json"],
    )
    .await
    .json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        report["changes"],
        json!([{"action": "update", "section": "services", "key": id(&a), "label": "a"},
               {"action": "delete", "section": "services", "key": id(&b), "label": "b"}])
    );

    let applied = hookd(&server, &["apply", "-f", &v2, "--prune"]).await;
    assert!(
        applied
            .ok()
            .ends_with("created 0, updated 1, unchanged 1, deleted 1\n"),
        "{}",
        applied.stdout
    );
    assert_eq!(server.get("/services/a").await.1["host"], "a2.internal");
    assert_eq!(server.get("/services/b").await.0, 404);
    assert_eq!(server.get("/consumers/bob").await.0, 200);

    let report = hookd(&server, &["apply", "-f", &v2, "--prune", "--json"])
        .await
        .json();
    assert_eq!(
        (
            &report["created"],
            &report["updated"],
            &report["unchanged"],
            &report["deleted"]
        ),
        (&json!(0), &json!(0), &json!(2), &json!(0))
    );
    assert_eq!(report["changes"], json!([]));
}

#[tokio::test]
async fn hook_verbs_print_tables_and_json_and_follow_pages() {
    let receiver = Receiver::start().await;
    let server = Server::start_with(Options::loopback()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "hook.yaml",
        &format!(
            "source: crud\nevent: consumers\nhandler: webhook\nsnooze: 5\nconfig:\n  url: {}\n",
            receiver.url("/hook")
        ),
    );
    let created = hookd(&server, &["hooks", "create", "-f", &file, "--json"])
        .await
        .json();
    let hook = id(&created);
    assert_eq!(created["snooze"], 5);

    let shown = hookd(&server, &["hooks", "show", &hook]).await;
    let shown = shown.ok();
    assert!(
        shown.starts_with(&format!("id:          {hook}\n")),
        "{shown}"
    );
    assert!(shown.contains("handler:     webhook\n"), "{shown}");
    assert!(shown.contains("enabled:     true\n"), "{shown}");
    assert!(shown.contains(&receiver.url("/hook")), "{shown}");

    let list = hookd(&server, &["hooks", "list"]).await;
    let mut lines = list.ok().lines();
    assert_eq!(
        lines.next().unwrap(),
        "ID                                    SOURCE  EVENT      HANDLER  ON_CHANGE  SNOOZE"
    );
    assert_eq!(
        lines.next().unwrap(),
        format!("{hook}  crud    consumers  webhook  -          5")
    );

    // Runs the handler by hand.
    let data = write(dir.path(), "data.json", r#"{"entity": {"username": "x"}}"#);
    let tested = hookd(&server, &["hooks", "test", &hook, "-f", &data]).await;
    let result: Value = serde_json::from_str(tested.ok()).unwrap();
    assert_eq!(result["status"], 200, "the handler's result: {result}");
    assert!(
        receiver
            .received()
            .iter()
            .any(|r| r.uri == "/hook" && r.json()["entity"]["username"] == "x"),
        "the data went to the hook's url"
    );

    // A delivery, in the hook's table.
    server
        .create("/consumers", &json!({"username": "bob"}))
        .await;
    let delivery = eventually("a delivery", || async {
        let (_, page) = server.get(&format!("/event-hooks/{hook}/deliveries")).await;
        page["data"]
            .as_array()
            .and_then(|d| d.first())
            .filter(|d| d["state"] == "succeeded")
            .cloned()
    })
    .await;
    let table = hookd(&server, &["hooks", "deliveries", &hook]).await;
    let table = table.ok();
    assert!(table.starts_with("ID  "), "{table}");
    let row = table.lines().nth(1).unwrap();
    assert!(row.starts_with(&id(&delivery)), "{row}");
    assert!(
        row.contains("succeeded  1         200   crud consumers"),
        "{row}"
    );

    // Lists follow pages: 120 hooks are more than a page of 100.
    for _ in 0..120 {
        server
            .create(
                "/event-hooks",
                &json!({"source": "crud", "handler": "log", "config": {}}),
            )
            .await;
    }
    let all = hookd(&server, &["hooks", "list", "--json"]).await.json();
    assert_eq!(all["data"].as_array().unwrap().len(), 121);
    let table = hookd(&server, &["hooks", "list"]).await;
    assert_eq!(table.ok().lines().count(), 122);

    let deleted = hookd(&server, &["hooks", "delete", &hook]).await;
    assert_eq!(deleted.ok(), format!("deleted event hook {hook}\n"));
    assert_eq!(server.get(&format!("/event-hooks/{hook}")).await.0, 404);
}

#[tokio::test]
async fn delivery_verbs_show_attempts_and_redeliver() {
    let receiver = Receiver::start().await;
    let server = Server::start_with(Options::loopback()).await;
    let hook =
        crate::delivery::webhook(&server, "consumers", json!({"url": receiver.url("/hook")})).await;
    receiver.wait_for(1).await; // the creation ping
    receiver.script(&[503]);
    server
        .create("/consumers", &json!({"username": "bob"}))
        .await;
    let delivery = eventually("a delivery that succeeded after a 503", || async {
        let (_, page) = server
            .get(&format!("/event-hooks/{}/deliveries", id(&hook)))
            .await;
        page["data"]
            .as_array()
            .and_then(|d| d.first())
            .filter(|d| d["state"] == "succeeded")
            .cloned()
    })
    .await;
    let delivery = id(&delivery);

    let shown = hookd(&server, &["deliveries", "show", &delivery]).await;
    let shown = shown.ok();
    assert!(shown.contains("state:        succeeded\n"), "{shown}");
    assert!(
        shown.contains(&format!("hook:         {}\n", id(&hook))),
        "{shown}"
    );
    let attempts: Vec<&str> = shown
        .lines()
        .skip_while(|l| !l.starts_with("#  "))
        .collect();
    assert_eq!(attempts.len(), 3, "{shown}");
    assert!(
        attempts[1].starts_with("1  ") && attempts[1].contains("false  503"),
        "{shown}"
    );
    assert!(
        attempts[2].starts_with("2  ") && attempts[2].ends_with("true   200"),
        "{shown}"
    );
    let json = hookd(&server, &["deliveries", "show", &delivery, "--json"])
        .await
        .json();
    assert_eq!(json["attempts"].as_array().unwrap().len(), 2);

    let retried = hookd(&server, &["deliveries", "retry", &delivery]).await;
    assert!(
        retried
            .ok()
            .starts_with(&format!("delivery {delivery} is ")),
        "{}",
        retried.stdout
    );
    receiver.wait_for(4).await;
}

#[tokio::test]
async fn guest_and_audit_verbs_print_tables_and_json() {
    let receiver = Receiver::start().await;
    let granted = format!("127.0.0.1:{}", receiver.addr.port());
    let server =
        Server::start_with(Options::loopback().env("HOOKD_SANDBOX_ALLOWED_HOSTS", &granted)).await;
    let poster = guest_file("http-post");
    let uploaded = hookd(
        &server,
        &[
            "guests",
            "upload",
            poster.to_str().unwrap(),
            "--name",
            "poster",
        ],
    )
    .await;
    let uploaded = uploaded.ok();
    assert!(uploaded.starts_with("name:         poster\n"), "{uploaded}");
    assert!(uploaded.contains("kind:         component\n"), "{uploaded}");
    assert!(
        uploaded.contains("  wasi:http/outgoing-handler"),
        "{uploaded}"
    );
    // The name defaults to the file's.
    let transform = guest_file("transform");
    hookd(&server, &["guest", "upload", transform.to_str().unwrap()])
        .await
        .ok();

    let list = hookd(&server, &["guests", "list"]).await;
    let list = list.ok();
    assert!(list.starts_with("NAME       KIND       SIZE"), "{list}");
    assert!(list.contains("\nposter     component  "), "{list}");
    assert!(list.contains("\ntransform  component  "), "{list}");
    let json = hookd(&server, &["guests", "list", "--json"]).await.json();
    assert_eq!(json["data"].as_array().unwrap().len(), 2);
    let shown = hookd(&server, &["guests", "show", "transform", "--json"])
        .await
        .json();
    assert_eq!(shown["name"], "transform");
    let audit = hookd(&server, &["guests", "audit", "poster"]).await;
    let audit = audit.ok();
    assert!(audit.starts_with("poster: component\n"), "{audit}");
    assert!(audit.contains("under untrusted_wasm = sandbox:"), "{audit}");

    // A hook that does not grant the guest its host: refused, and audited.
    let hook = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "event": "consumers", "handler": "lambda",
                    "config": {"functions": ["poster"]}}),
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let data = write(
        dir.path(),
        "data.yaml",
        &format!("target_url: {}\n", receiver.url("/from-guest")),
    );
    let refused = hookd(&server, &["hooks", "test", &id(&hook), "-f", &data]).await;
    let stderr = refused.failed();
    assert!(
        stderr.contains(
            "422 Unprocessable Entity: function 1 ('poster') of the chain returned an error: \
             http request refused: "
        ),
        "{stderr}"
    );

    let audit = hookd(
        &server,
        &["audit", "--hook", &id(&hook), "--verdict", "denied"],
    )
    .await;
    let audit = audit.ok();
    let mut lines = audit.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("TIME                      HOOK  "),
        "{audit}"
    );
    let row = lines.next().unwrap_or_else(|| panic!("no record: {audit}"));
    assert!(
        row.contains(&format!("{}  poster  http", id(&hook))),
        "{row}"
    );
    assert!(row.contains(&format!("{granted}  denied")), "{row}");
    let json = hookd(&server, &["audit", "--guest", "poster", "--json"])
        .await
        .json();
    assert_eq!(json["data"][0]["verdict"], "denied");
    let none = hookd(&server, &["audit", "--guest", "transform"]).await;
    assert_eq!(none.ok().lines().count(), 1, "the header alone");

    // In use: Kong's conflict, on stderr.
    let busy = hookd(&server, &["guests", "delete", "poster"]).await;
    assert!(
        busy.failed().contains("is used by event hook"),
        "{}",
        busy.stderr
    );
    let deleted = hookd(&server, &["guests", "delete", "transform"]).await;
    assert_eq!(deleted.ok(), "deleted guest transform\n");
}

#[tokio::test]
async fn server_and_input_errors_exit_non_zero_with_the_reason() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let no_url = write(
        dir.path(),
        "hook.json",
        r#"{"source": "crud", "handler": "webhook", "config": {}}"#,
    );
    let run = hookd(&server, &["hooks", "create", "-f", &no_url]).await;
    assert_eq!(
        run.failed(),
        "hookd: POST /event-hooks: 400 Bad Request: schema violation (config.url: required field missing)\n"
    );

    let run = hookd(
        &server,
        &["hooks", "show", "00000000-0000-4000-8000-000000000000"],
    )
    .await;
    assert!(
        run.failed().contains("404 Not Found: Not found"),
        "{}",
        run.stderr
    );

    // Files apply refuses before writing anything, and what it says.
    let refused = [
        ("broken.yaml", "services: [\n", "is not valid YAML"),
        ("unknown.yaml", "servces: []\n", "unknown section `servces`"),
        (
            "missing.yaml",
            "guests:\n  - {name: g, file: nope.wasm}\n",
            "nope.wasm",
        ),
    ];
    for (name, text, says) in refused {
        let file = write(dir.path(), name, text);
        let run = hookd(&server, &["apply", "-f", &file]).await;
        assert!(run.failed().contains(says), "{name}: {}", run.stderr);
    }

    // The server refuses one entity: what came before it is written, the
    // error names the entity and Kong's message.
    let bad = write(
        dir.path(),
        "bad.yaml",
        "consumers:\n  - {username: alice}\nevent_hooks:\n  - {source: crud, handler: webhook, config: {}}\n",
    );
    let run = hookd(&server, &["apply", "-f", &bad]).await;
    assert!(!run.success);
    assert!(
        run.stdout.starts_with("created consumers "),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.starts_with("hookd: creating event_hooks ")
            && run
                .stderr
                .contains("schema violation (config.url: required field missing)"),
        "{}",
        run.stderr
    );

    // Nobody listening: the error says where the address comes from.
    let run = hookd_at("http://127.0.0.1:1", &["hooks", "list"]).await;
    assert!(
        run.failed().starts_with(
            "hookd: GET http://127.0.0.1:1/event-hooks: no server answers there \
             (its address: --url or HOOKD_URL)"
        ),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn the_token_opens_a_server_that_enforces_rbac() {
    const BOOT: &str = "bootstrap-secret-token";
    let server = Server::start_with(
        Options::default()
            .env("HOOKD_ENFORCE_RBAC", "true")
            .env("HOOKD_ADMIN_TOKEN", BOOT),
    )
    .await;
    let refused = hookd(&server, &["hooks", "list"]).await;
    assert!(
        refused
            .failed()
            .contains("GET /event-hooks: 401 Unauthorized: Invalid credentials"),
        "{}",
        refused.stderr
    );
    let list = hookd(&server, &["--token", BOOT, "hooks", "list"]).await;
    assert_eq!(list.ok(), "ID  SOURCE  EVENT  HANDLER  ON_CHANGE  SNOOZE\n");
    // The same variable as the server's bootstrap token, so one setting
    // serves both on one machine.
    let url = server.url("");
    let dumped = hookd_with(&url, &[("HOOKD_ADMIN_TOKEN", BOOT)], &["dump", "--json"]).await;
    assert_eq!(dumped.json()["event_hooks"], json!([]));

    // Kong's header, exactly: a receiver sees what is sent.
    let receiver = Receiver::start().await;
    let run = hookd_at(&receiver.url(""), &["hooks", "list", "--token", "s3cret"]).await;
    assert!(
        run.failed().contains("the answer is not JSON"),
        "{}",
        run.stderr
    );
    assert_eq!(
        receiver.received()[0].header("kong-admin-token").as_deref(),
        Some("s3cret")
    );
}

/// `hookd migrate` brings a PostgreSQL database's schema up to date and
/// then has nothing to do; on sled it says it needs PostgreSQL.
#[tokio::test]
async fn migrate_applies_the_schema_once() {
    // `migrate` talks to the database, never to a server's Admin API.
    async fn migrate(env: &[(&str, &str)]) -> Run {
        hookd_with("http://127.0.0.1:9", env, &["migrate"]).await
    }
    let on_sled = migrate(&[("HOOKD_STORAGE", "sled")]).await;
    assert!(!on_sled.success);
    assert!(
        on_sled.stderr.contains("needs storage = \"postgres\""),
        "{}",
        on_sled.stderr
    );
    let Some(db) = hookd_store::testing::TestDatabase::create("hookd migrate").await else {
        return;
    };
    let on_db = [
        ("HOOKD_STORAGE", "postgres"),
        ("HOOKD_POSTGRES_URL", db.connection.url.as_str()),
    ];
    let first = migrate(&on_db).await;
    assert!(first.success, "{}", first.stderr);
    assert_eq!(first.stdout, "applied migration 1\napplied migration 2\n");
    let again = migrate(&on_db).await;
    assert!(again.success, "{}", again.stderr);
    assert_eq!(again.stdout, "the schema is up to date\n");
}
