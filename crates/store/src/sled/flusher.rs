//! Group commit: one thread flushes sled, every writer waits for the first
//! flush that began after its write.
//!
//! sled 0.34.7's `flush_async` deadlocks when 8 or more tasks call it at
//! once (spacejam/sled#1308), and a flush per write caps throughput at a
//! few thousand writes per second. Here writers only announce that they
//! need a flush; the flusher thread flushes once for all of them.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use tokio::sync::watch;

/// Progress of the flusher: `done` counts requests whose flush has been
/// attempted; `failed` is the last failed flush, with the tickets it
/// covered (`from..=to`).
#[derive(Debug, Clone, Default)]
struct Progress {
    done: u64,
    failed: Option<(u64, u64, String)>,
}

#[derive(Debug, Default)]
struct Requests {
    /// Requests announced so far (a writer's ticket is its number).
    announced: u64,
    stopping: bool,
}

/// Handle on the flusher thread.
#[derive(Debug)]
pub(crate) struct Flusher {
    requests: Arc<(Mutex<Requests>, Condvar)>,
    progress: watch::Receiver<Progress>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Flusher {
    pub(crate) fn start(db: sled::Db) -> Self {
        let requests = Arc::new((Mutex::new(Requests::default()), Condvar::new()));
        let (tx, progress) = watch::channel(Progress::default());
        let thread_requests = Arc::clone(&requests);
        let thread = std::thread::Builder::new()
            .name("hookd-flusher".into())
            .spawn(move || run(db, thread_requests, tx))
            .expect("spawning the flusher thread");
        Flusher {
            requests,
            progress,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Waits until everything written before this call is on disk.
    pub(crate) async fn durable(&self) -> Result<(), String> {
        let ticket = {
            let (lock, cvar) = &*self.requests;
            let mut r = lock.lock().unwrap_or_else(|e| e.into_inner());
            r.announced += 1;
            cvar.notify_one();
            r.announced
        };
        let mut progress = self.progress.clone();
        let seen = progress
            .wait_for(|p| p.done >= ticket)
            .await
            .map_err(|_| "the flusher has stopped".to_string())?;
        match &seen.failed {
            Some((from, to, err)) if (*from..=*to).contains(&ticket) => Err(err.clone()),
            _ => Ok(()),
        }
    }

    /// Flushes what is pending and stops the thread.
    pub(crate) fn stop(&self) {
        {
            let (lock, cvar) = &*self.requests;
            let mut r = lock.lock().unwrap_or_else(|e| e.into_inner());
            r.stopping = true;
            cvar.notify_one();
        }
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

fn run(db: sled::Db, requests: Arc<(Mutex<Requests>, Condvar)>, progress: watch::Sender<Progress>) {
    let (lock, cvar) = &*requests;
    let mut done = 0;
    loop {
        let (target, stopping) = {
            let mut r = lock.lock().unwrap_or_else(|e| e.into_inner());
            while r.announced == done && !r.stopping {
                r = cvar.wait(r).unwrap_or_else(|e| e.into_inner());
            }
            (r.announced, r.stopping)
        };
        // Every writer counted in `target` wrote before announcing, so this
        // flush covers all of them.
        let result = db.flush();
        progress.send_modify(|p| {
            if let Err(e) = &result {
                tracing::error!(error = %e, "flushing the store failed");
                p.failed = Some((done + 1, target, e.to_string()));
            }
            p.done = target;
        });
        done = target;
        if stopping {
            return;
        }
    }
}
