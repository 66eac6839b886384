//! The harness: the real `hookd` binary on a free loopback port with a
//! temporary data directory, an HTTP client for it, and polling helpers.
//!
//! With `HOOKD_E2E_STORAGE=postgres` every server keeps its records in a
//! PostgreSQL database of its own, made for it on `HOOKD_TEST_POSTGRES_URL`
//! and dropped after, instead of sled in its data directory: the whole
//! suite runs on either backend.

pub mod browser;

use hookd_store::Store;
use hookd_store::testing::TestDatabase;
use hookd_testkit::process::follow_log;
use hookd_testkit::{PATIENCE, eventually};
use reqwest::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra environment variables (`HOOKD_*`).
    pub env: Vec<(String, String)>,
    /// Contents of a configuration file passed with `--config`.
    pub config_toml: Option<String>,
}

impl Options {
    /// A server that may call receivers on loopback (its outbound policy
    /// admits 127.0.0.0/8) and retries failed deliveries after 50 ms.
    pub fn loopback() -> Self {
        Options::default()
            .env(
                "HOOKD_OUTBOUND_ALLOW_CIDRS",
                hookd_testkit::fixtures::LOOPBACK_CIDRS,
            )
            .env("HOOKD_RETRY_SCHEDULE", "50ms")
            .env("HOOKD_RETRY_JITTER", "0")
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the configuration file.
    pub fn config(mut self, toml: &str) -> Self {
        self.config_toml = Some(toml.into());
        self
    }
}

/// A running `hookd serve`.
pub struct Server {
    child: Option<Child>,
    /// Address of the Admin API.
    pub addr: SocketAddr,
    dir: Arc<tempfile::TempDir>,
    /// The server's database, when the suite runs on PostgreSQL.
    database: Option<Arc<TestDatabase>>,
    options: Options,
    log: Arc<Mutex<String>>,
    /// Client for the Admin API.
    pub http: reqwest::Client,
}

impl Server {
    /// Starts a server with default settings.
    pub async fn start() -> Server {
        Server::start_with(Options::default()).await
    }

    /// Starts a server with these options and a fresh data directory
    /// (and database, on PostgreSQL).
    pub async fn start_with(options: Options) -> Server {
        let dir = Arc::new(tempfile::tempdir().expect("temporary directory"));
        let database = match on_postgres() {
            true => Some(Arc::new(
                TestDatabase::create("e2e")
                    .await
                    .expect("HOOKD_E2E_STORAGE=postgres needs PostgreSQL"),
            )),
            false => None,
        };
        Server::spawn(dir, database, options, Arc::new(Mutex::new(String::new())))
    }

    /// Starts a node on `database`, which other nodes may share, with a
    /// fresh data directory. Returns once it listens; its log fills `log`.
    pub fn start_node(
        database: Arc<TestDatabase>,
        options: Options,
        log: Arc<Mutex<String>>,
    ) -> Server {
        let dir = Arc::new(tempfile::tempdir().expect("temporary directory"));
        Server::spawn(dir, Some(database), options, log)
    }

    fn spawn(
        dir: Arc<tempfile::TempDir>,
        database: Option<Arc<TestDatabase>>,
        options: Options,
        log: Arc<Mutex<String>>,
    ) -> Server {
        let data = dir.path().join("data");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookd"));
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data)
            .env_remove("RUST_LOG")
            .env("HOOKD_LOG_FORMAT", "pretty")
            .env("HOOKD_LOG_LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(db) = &database {
            cmd.env("HOOKD_STORAGE", "postgres")
                .env("HOOKD_POSTGRES_URL", &db.connection.url);
        }
        if let Some(toml) = &options.config_toml {
            let file = dir.path().join("hookd.toml");
            std::fs::write(&file, toml).expect("writing the configuration file");
            cmd.arg("--config").arg(file);
        }
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting hookd");
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&log);
        let rx = follow_log(stderr, move |line| {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        });
        let addr = match rx.recv_timeout(PATIENCE) {
            Ok(Ok(addr)) => addr,
            other => {
                let _ = child.kill();
                panic!(
                    "hookd did not start ({other:?}); its log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Server {
            child: Some(child),
            addr,
            dir,
            database,
            options,
            log,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
        }
    }

    /// The Admin API URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's store, opened beside it: its database on PostgreSQL,
    /// its data directory on sled (which only one process may open: stop
    /// the server first).
    pub async fn store(&self) -> Store {
        match &self.database {
            Some(db) => db.store().await,
            None => Store::open(&self.data_dir()).expect("opening the stopped server's store"),
        }
    }

    /// Whether this server keeps its records on PostgreSQL.
    pub fn on_postgres(&self) -> bool {
        self.database.is_some()
    }

    /// The server's database, when it keeps its records on PostgreSQL.
    pub fn database(&self) -> Option<&TestDatabase> {
        self.database.as_deref()
    }

    /// A scratch directory that lives as long as the server.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server with SIGKILL: no shutdown, no final flush.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reaping hookd");
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Sends SIGTERM and waits for the server to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success());
        child.wait().expect("reaping hookd")
    }

    /// Starts the server again on the same data directory.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
        let mut next = Server::spawn(
            Arc::clone(&self.dir),
            self.database.clone(),
            self.options.clone(),
            Arc::clone(&self.log),
        );
        self.child = next.child.take();
        self.addr = next.addr;
    }

    /// Starts the server again on the same data directory with other options.
    pub fn restart_with(&mut self, options: Options) {
        self.options = options;
        self.restart();
    }

    /// GET, answering status and JSON body (null when empty or not JSON).
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        answer(self.http.get(self.url(path)).send().await).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        answer(self.http.post(self.url(path)).json(body).send().await).await
    }

    /// POST form fields.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, Value) {
        answer(self.http.post(self.url(path)).form(fields).send().await).await
    }

    /// PATCH a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        answer(self.http.patch(self.url(path)).json(body).send().await).await
    }

    /// PUT a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        answer(self.http.put(self.url(path)).json(body).send().await).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        answer(self.http.delete(self.url(path)).send().await).await
    }

    /// POST a raw body with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        answer(
            self.http
                .post(self.url(path))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await,
        )
        .await
    }

    /// Waits until the newest delivery of `hook` satisfies `done`.
    pub async fn newest_delivery(
        &self,
        hook: &Value,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let path = format!(
            "/event-hooks/{}/deliveries",
            hook["id"].as_str().expect("a hook id")
        );
        eventually(what, || async {
            let (_, page) = self.get(&path).await;
            page["data"]
                .as_array()?
                .first()
                .filter(|d| done(d))
                .cloned()
        })
        .await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.http.get(self.url("/metrics")).send().await;
        let response = response.expect("scraping /metrics");
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.expect("reading /metrics")
    }

    /// Creates something that must be created, returning it.
    pub async fn create(&self, path: &str, body: &Value) -> Value {
        let (status, value) = self.post(path, body).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path} {body}: {value}");
        value
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn answer(response: reqwest::Result<reqwest::Response>) -> (StatusCode, Value) {
    let response = response.expect("request to hookd");
    let status = response.status();
    let bytes = response.bytes().await.expect("reading the answer");
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

/// Whether a delivery (as the API shows it) was attempted at least once.
pub fn attempted(delivery: &Value) -> bool {
    delivery["attempts"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
}

/// A request as the holder of `token` (none: without one), answering
/// status and JSON body (null when empty or not JSON).
pub async fn call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = server.http.request(method, server.url(path));
    if let Some(t) = token {
        req = req.header("Kong-Admin-Token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let response = req.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Whether this run of the suite keeps servers' records on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("HOOKD_E2E_STORAGE").is_ok_and(|v| v == "postgres")
}
