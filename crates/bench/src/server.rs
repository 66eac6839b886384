//! The real `hookd` binary, release build, on a free loopback port with a
//! fresh data directory, killed when dropped (its directory removed).

use crate::client::Conn;
use crate::process_cpu_time;
use anyhow::{Context, bail};
use bytes::Bytes;
use hookd_testkit::process::follow_log;
use hyper::StatusCode;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Lines of hookd's log kept to show when something fails.
const LOG_TAIL: usize = 40;

/// A running hookd.
pub struct Hookd {
    child: Child,
    /// Where its Admin API listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
    data: tempfile::TempDir,
}

impl Hookd {
    /// Starts `bin` on its defaults and waits until it listens. Outbound
    /// requests to loopback are allowed, so webhooks can reach the receiver.
    pub fn start(bin: &Path) -> anyhow::Result<Self> {
        Hookd::start_with(bin, &[])
    }

    /// [`Hookd::start`] with these settings as `HOOKD_<KEY>` variables,
    /// e.g. `("HOOKD_STORE_CACHE_CAPACITY", "1048576")`.
    pub fn start_with(bin: &Path, settings: &[(&str, String)]) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env(
                "HOOKD_OUTBOUND_ALLOW_CIDRS",
                hookd_testkit::fixtures::LOOPBACK_CIDRS,
            )
            .envs(settings.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let tail = log.clone();
        let listening = follow_log(stderr, move |line| {
            let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
            if tail.len() == LOG_TAIL {
                tail.pop_front();
            }
            tail.push_back(line);
        });
        let mut hookd = Hookd {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            data,
        };
        match listening.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(addr)) => hookd.addr = addr,
            Ok(Err(e)) => bail!("hookd logged an unreadable address: {e}"),
            Err(_) => bail!(
                "hookd did not start listening within 30 s; its log:\n{}",
                hookd.log_tail()
            ),
        }
        Ok(hookd)
    }

    /// CPU time hookd has used so far.
    pub fn cpu_time(&self) -> Option<Duration> {
        process_cpu_time(self.child.id())
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Creates an event hook (the Admin API's `POST /event-hooks` body);
    /// the hook as created.
    pub async fn create_hook(&self, hook: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let (status, body) = Conn::open(self.addr)
            .await?
            .post("/event-hooks", Bytes::from(hook.to_string()))
            .await
            .context("creating the event hook")?;
        if status != StatusCode::CREATED {
            bail!(
                "creating the event hook answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        serde_json::from_slice(&body).context("the created hook is not JSON")
    }

    /// The last lines hookd logged.
    pub fn log_tail(&self) -> String {
        let tail = self.log.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().map(|l| format!("  {l}\n")).collect()
    }
}

impl Drop for Hookd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
