//! No stored record poisons a queue: records that do not decode, written
//! straight into the store of a stopped server, are moved to the
//! quarantine when it starts again, everything behind them is delivered,
//! and the API and the CLI list, show, retry and delete them.

use crate::support::{Options, Server};
use hookd_testkit::eventually;
use hookd_testkit::receiver::Receiver;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What the poisoned record looked like to serde_json: an event
/// nested deeper than it reads back. Any undecodable bytes would do.
fn too_deep() -> Vec<u8> {
    let mut data = String::from("[{\"source\":\"crud\",\"event\":\"consumers\",\"data\":");
    data.push_str(&"{\"a\":".repeat(200));
    data.push('1');
    data.push_str(&"}".repeat(200));
    data.push_str("}]");
    data.into_bytes()
}

/// Writes records into the outbox of the stopped server's store, each
/// under a fresh key: after every record already there, before every
/// record written once it restarts.
async fn write_into_outbox(server: &Server, values: &[&[u8]]) {
    if let Some(database) = server.database() {
        for value in values {
            database
                .write_raw("INSERT INTO outbox (body) VALUES ($1)", value)
                .await;
        }
        return;
    }
    let db = sled::open(server.data_dir()).expect("opening the stopped server's store");
    let tree = db.open_tree("outbox").unwrap();
    for value in values {
        let key = db.generate_id().unwrap().to_be_bytes();
        tree.insert(key, *value).unwrap();
    }
    db.flush().unwrap();
}

/// Overwrites a stored consumer of the stopped server with `value`.
async fn overwrite_consumer(server: &Server, id: uuid::Uuid, value: &[u8]) {
    if let Some(database) = server.database() {
        let statement =
            format!("UPDATE entities SET body = $1 WHERE kind = 'consumers' AND id = '{id}'");
        assert_eq!(database.write_raw(&statement, value).await, 1);
        return;
    }
    let db = sled::open(server.data_dir()).unwrap();
    let entities = db.open_tree("entities").unwrap();
    let mut key = b"consumers/".to_vec();
    key.extend_from_slice(id.as_bytes());
    assert!(entities.get(&key).unwrap().is_some());
    entities.insert(key, value).unwrap();
    db.flush().unwrap();
}

/// Runs the `hookd` client against the server.
async fn hookd(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(args)
        .arg("--url")
        .arg(server.url(""))
        .env_remove("HOOKD_ADMIN_TOKEN")
        .output()
        .await
        .expect("running hookd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn quarantined(server: &Server) -> Vec<Value> {
    let (status, page) = server.get("/quarantine").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

fn metric(text: &str, origin: &str) -> Option<u64> {
    let name = format!("hookd_quarantined_records{{origin=\"{origin}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&name))
        .and_then(|n| n.parse().ok())
}

/// A server with a webhook hook on consumers, and its receiver.
async fn consumer_webhook() -> (Server, Receiver) {
    let server = Server::start_with(Options::loopback()).await;
    let receiver = Receiver::start().await;
    crate::delivery::webhook(&server, "consumers", json!({"url": receiver.url("/hook")})).await;
    (server, receiver)
}

#[tokio::test]
async fn corrupt_outbox_records_are_quarantined_and_later_events_are_delivered() {
    let (mut server, receiver) = consumer_webhook().await;
    // An operator's hook hears of each record quarantined.
    server
        .create(
            "/event-hooks",
            &json!({"source": "hookd", "event": "quarantined", "handler": "webhook",
                    "config": {"url": receiver.url("/ops")}}),
        )
        .await;
    server.terminate();
    write_into_outbox(&server, &[&too_deep(), b"\xff\xfe not even utf-8"]).await;
    server.restart();

    // Events written after the poisoned records flow past them.
    let consumer = server
        .create("/consumers", &json!({"username": "after"}))
        .await;
    eventually("the later consumer's event", || async {
        receiver
            .received()
            .iter()
            .any(|r| r.json()["entity"]["id"] == consumer["id"])
            .then_some(())
    })
    .await;

    let records = quarantined(&server).await;
    assert_eq!(records.len(), 2, "{records:?}");
    for r in &records {
        assert_eq!(r["origin"], "outbox");
        assert!(r["error"].as_str().unwrap().contains("corrupt"), "{r}");
    }
    let is_deep = |r: &&Value| {
        r["error"]
            .as_str()
            .unwrap()
            .contains("recursion limit exceeded")
    };
    let deep = records
        .iter()
        .find(is_deep)
        .expect("the deep record, with its error");
    let other = records.iter().find(|r| !is_deep(r)).unwrap();
    assert_eq!(metric(&server.metrics().await, "outbox"), Some(2));
    let mut announced: Vec<Value> = eventually("both quarantines announced", || async {
        let ops: Vec<Value> = receiver
            .received()
            .iter()
            .filter(|r| r.uri == "/ops")
            .map(|r| r.json())
            .filter(|e| e["source"] == "hookd")
            .collect();
        (ops.len() >= 2).then_some(ops)
    })
    .await;
    announced.sort_by_key(|e| e["id"].as_str().unwrap().to_string());
    let mut ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    for (event, id) in announced.iter().zip(ids) {
        assert_eq!(
            (event["event"].as_str(), event["id"].as_str()),
            (Some("quarantined"), Some(id))
        );
        assert_eq!(event["origin"], "outbox");
        assert!(
            event["error"].as_str().unwrap().contains("corrupt"),
            "{event}"
        );
    }
    // Nothing stays pending behind the quarantined records: each event's
    // record goes once its delivery's first attempt is committed, a moment
    // after the receiver has it.
    eventually("an empty outbox", || async {
        let (_, status) = server.get("/status").await;
        (status["outbox"]["pending"] == 0).then_some(())
    })
    .await;

    // The API: shown with its bytes; a retry that still cannot decode
    // leaves it, with the new error; delete drops it.
    let first = deep["id"].as_str().unwrap();
    let (status, shown) = server.get(&format!("/quarantine/{first}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["raw_text"], String::from_utf8(too_deep()).unwrap());
    let (status, answer) = server
        .post(&format!("/quarantine/{first}/retry"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("recursion limit exceeded"),
        "{answer}"
    );
    assert_eq!(quarantined(&server).await.len(), 2);
    let (status, _) = server.delete(&format!("/quarantine/{first}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.get(&format!("/quarantine/{first}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The CLI, on the other one.
    let second = other["id"].as_str().unwrap();
    let (ok, out, err) = hookd(&server, &["quarantine", "list"]).await;
    assert!(ok, "{err}");
    assert!(out.contains(second) && out.contains("outbox"), "{out}");
    assert!(!out.contains(first), "{out}");
    let (ok, out, err) = hookd(&server, &["quarantine", "show", second]).await;
    assert!(ok, "{err}");
    assert!(out.contains("not even utf-8"), "{out}");
    let (ok, _, err) = hookd(&server, &["quarantine", "retry", second]).await;
    assert!(!ok);
    assert!(err.contains("still does not decode"), "{err}");
    let (ok, out, err) = hookd(&server, &["quarantine", "delete", second]).await;
    assert!(ok, "{err}");
    assert!(out.contains(second), "{out}");
    assert!(quarantined(&server).await.is_empty());
    assert_eq!(metric(&server.metrics().await, "outbox"), Some(0));

    // And a normal event is still delivered.
    let later = server
        .create("/consumers", &json!({"username": "last"}))
        .await;
    eventually("the last consumer's event", || async {
        receiver
            .received()
            .iter()
            .any(|r| r.json()["entity"]["id"] == later["id"])
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_corrupt_entity_leaves_its_listing_and_its_hooks_working() {
    let (mut server, receiver) = consumer_webhook().await;
    let bad = server
        .create("/consumers", &json!({"username": "bad"}))
        .await;
    let good = server
        .create("/consumers", &json!({"username": "good"}))
        .await;
    server.terminate();
    let id: uuid::Uuid = bad["id"].as_str().unwrap().parse().unwrap();
    overwrite_consumer(&server, id, &too_deep()).await;
    server.restart();

    let (status, listed) = server.get("/consumers").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["data"], json!([good]));
    let (status, _) = server
        .get(&format!("/consumers/{}", bad["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let records = quarantined(&server).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["origin"], "entities");
    assert_eq!(
        records[0]["key"],
        format!("consumers/{}", bad["id"].as_str().unwrap())
    );
    assert_eq!(metric(&server.metrics().await, "entities"), Some(1));
    // Its name is held while it may come back, and free once deleted.
    let (status, _) = server.post("/consumers", &json!({"username": "bad"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let id = records[0]["id"].as_str().unwrap();
    let (status, _) = server.delete(&format!("/quarantine/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let again = server
        .create("/consumers", &json!({"username": "bad"}))
        .await;
    eventually("the new consumer's event", || async {
        receiver
            .received()
            .iter()
            .any(|r| r.json()["entity"]["id"] == again["id"])
            .then_some(())
    })
    .await;
}
