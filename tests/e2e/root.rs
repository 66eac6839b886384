//! `GET /` and `GET /status`, and shutting down cleanly.

use crate::support::{Options, Server};
use reqwest::StatusCode;

#[tokio::test]
async fn root_tells_version_hostname_and_configuration_without_secrets() {
    let server = Server::start_with(Options::default().env("HOOKD_BODY_LIMIT", "4096")).await;
    let (status, root) = server.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    assert!(root["hostname"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(uuid::Uuid::try_parse(root["node_id"].as_str().unwrap()).is_ok());
    let conf = &root["configuration"];
    assert_eq!(conf["body_limit"], 4096);
    assert_eq!(conf["secret_overlap"], "1d", "a duration, not a secret");
    assert_eq!(conf["listen"], "127.0.0.1:0");
    assert_eq!(conf["data_dir"], server.data_dir().display().to_string());
    // A key names a secret by its last word: `admin_token`, not `secret_overlap`.
    for (key, value) in conf.as_object().unwrap() {
        let last_word = key.rsplit('_').next().unwrap();
        if ["token", "secret", "password"]
            .iter()
            .any(|m| last_word.contains(m))
        {
            assert!(value == "" || value == "******", "{key} = {value}");
        }
    }
}

#[tokio::test]
async fn status_reports_the_database_and_the_outbox() {
    let server = Server::start().await;
    let (status, body) = server.get("/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["database"]["reachable"], true);
    assert!(body["outbox"]["pending"].is_u64(), "{body}");
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_node_id_survives() {
    let mut server = Server::start().await;
    let (_, before) = server.get("/").await;
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(server.logs().contains("store flushed"), "{}", server.logs());
    server.restart();
    let (_, after) = server.get("/").await;
    assert_eq!(before["node_id"], after["node_id"]);
}
