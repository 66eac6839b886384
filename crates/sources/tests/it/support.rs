//! A checker on a temporary store, targets to probe, and polling.

use hookd_model::Event;
use hookd_model::clock::ManualClock;
use hookd_model::outbound::OutboundPolicy;
use hookd_sources::{HealthChecker, Settings};
use hookd_store::Store;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The time stamp every test event carries.
pub const NOW_MS: i64 = 1_700_000_000_000;

/// The `balancer` / `health` events in the outbox, oldest first.
pub async fn health_events(store: &Store) -> Vec<Event> {
    store
        .outbox_events()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.source == "balancer" && e.event == "health")
        .collect()
}

/// A running checker on its own store.
pub struct Harness {
    _dir: tempfile::TempDir,
    pub store: Store,
    pub checker: HealthChecker,
}

impl Harness {
    pub async fn start(policy: OutboundPolicy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let settings = Settings {
            policy,
            refresh: Duration::from_millis(20),
            clock: Arc::new(ManualClock::at(NOW_MS)),
        };
        let checker = HealthChecker::new(store.clone(), settings).unwrap();
        checker.start().unwrap();
        Harness {
            _dir: dir,
            store,
            checker,
        }
    }

    pub async fn stop(self) {
        self.checker.shutdown().await;
    }

    /// Stores an upstream with these `healthchecks.active`.
    pub async fn upstream(&self, active: Value) -> Uuid {
        let id = Uuid::new_v4();
        let upstream = json!({
            "id": id.to_string(),
            "name": format!("up-{id}"),
            "healthchecks": {"active": active},
        });
        self.store.insert("upstreams", upstream, 0).await.unwrap();
        id
    }

    /// Replaces the upstream's `healthchecks.active`.
    pub async fn set_active(&self, upstream: Uuid, active: Value) {
        let mut stored = self
            .store
            .get("upstreams", upstream)
            .await
            .unwrap()
            .unwrap();
        stored["healthchecks"]["active"] = active;
        self.store.update("upstreams", stored, 0).await.unwrap();
    }

    /// Stores a target of the upstream.
    pub async fn target(&self, upstream: Uuid, target: &str) -> Uuid {
        let id = Uuid::new_v4();
        let entity = json!({
            "id": id.to_string(),
            "target": target,
            "upstream": {"id": upstream.to_string()},
            "weight": 100,
        });
        self.store.insert("targets", entity, 0).await.unwrap();
        id
    }
}

/// How an HTTP target answers.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    /// With this status.
    Status(u16),
    /// Never: the request is read and the connection held open.
    Hang,
}

/// One request an HTTP target got.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request head.
    pub head: String,
    /// The status answered; 0 when none.
    pub status: u16,
    /// Health events in the outbox when the request came.
    pub events_before: usize,
}

struct HttpState {
    script: VecDeque<u16>,
    reply: Reply,
    seen: Vec<Seen>,
}

/// A plain HTTP target answering scripted statuses, then a settable reply.
pub struct HttpTarget {
    addr: SocketAddr,
    state: Arc<Mutex<HttpState>>,
    task: JoinHandle<()>,
}

impl HttpTarget {
    pub async fn start(store: &Store, reply: Reply, script: &[u16]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(HttpState {
            script: script.iter().copied().collect(),
            reply,
            seen: Vec::new(),
        }));
        let (store, shared) = (store.clone(), Arc::clone(&state));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (store, state) = (store.clone(), Arc::clone(&shared));
                tokio::spawn(serve_http(stream, store, state));
            }
        });
        HttpTarget { addr, state, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Answers this way once the script is used up.
    pub fn answer(&self, reply: Reply) {
        self.state.lock().unwrap().reply = reply;
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for HttpTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_http(mut stream: TcpStream, store: Store, state: Arc<Mutex<HttpState>>) {
    let Some(head) = read_head(&mut stream).await else {
        return;
    };
    let events_before = health_events(&store).await.len();
    let reply = {
        let mut state = state.lock().unwrap();
        let reply = match state.script.pop_front() {
            Some(status) => Reply::Status(status),
            None => state.reply,
        };
        let status = match reply {
            Reply::Status(s) => s,
            Reply::Hang => 0,
        };
        state.seen.push(Seen {
            head,
            status,
            events_before,
        });
        reply
    };
    respond(&mut stream, reply).await;
}

async fn respond<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, reply: Reply) {
    match reply {
        Reply::Status(status) => {
            let answer = format!("HTTP/1.1 {status} Test\r\nContent-Length: 0\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Reply::Hang => {
            // Held until the prober gives up and closes.
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
        }
    }
}

/// Reads up to the end of the request head.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(head).ok()
}

/// A bare TCP listener counting the connections it accepts.
pub struct TcpTarget {
    port: u16,
    accepted: Arc<AtomicUsize>,
    task: Option<JoinHandle<()>>,
}

impl TcpTarget {
    /// Listens on 127.0.0.1 at `port` (0 for any).
    pub async fn open(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            loop {
                if listener.accept().await.is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        TcpTarget {
            port,
            accepted,
            task: Some(task),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Stops listening: connections are refused from when this returns.
    pub async fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for TcpTarget {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// An HTTPS target with a self-signed certificate for localhost, answering
/// one status and noting the server names clients ask for.
pub struct TlsTarget {
    port: u16,
    answered: Arc<AtomicUsize>,
    names: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl TlsTarget {
    pub async fn start(status: u16) -> Self {
        let cert = CertificateDer::from_pem_slice(include_bytes!("tls/cert.pem")).unwrap();
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("tls/key.pem")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let answered = Arc::new(AtomicUsize::new(0));
        let names = Arc::new(Mutex::new(Vec::new()));
        let (count, noted) = (Arc::clone(&answered), Arc::clone(&names));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, count, noted) =
                    (acceptor.clone(), Arc::clone(&count), Arc::clone(&noted));
                tokio::spawn(async move {
                    // A client refusing the certificate ends here.
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    if let Some(name) = tls.get_ref().1.server_name() {
                        noted.lock().unwrap().push(name.to_string());
                    }
                    if read_head(&mut tls).await.is_some() {
                        count.fetch_add(1, Ordering::SeqCst);
                        respond(&mut tls, Reply::Status(status)).await;
                    }
                });
            }
        });
        TlsTarget {
            port,
            answered,
            names,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    pub fn server_names(&self) -> Vec<String> {
        self.names.lock().unwrap().clone()
    }
}

impl Drop for TlsTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}
