//! The real `hookd` binary, release build, on a free loopback port with a
//! fresh data directory, killed when dropped.

use anyhow::{Context, bail};
use hookd_bench::process_cpu_time;
use hookd_testkit::process::follow_log;
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
    pub addr: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
    _data: tempfile::TempDir,
}

impl Hookd {
    /// Starts `bin` and waits until it listens. Outbound requests to
    /// loopback are allowed, so webhooks can reach the receiver.
    pub fn start(bin: &Path) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env(
                "HOOKD_OUTBOUND_ALLOW_CIDRS",
                hookd_testkit::fixtures::LOOPBACK_CIDRS,
            )
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
            _data: data,
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
