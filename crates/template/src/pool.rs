//! The server's side of the box: a bounded pool of worker processes
//! ([`crate::worker`]). A render waits for a free worker off the async
//! runtime (it awaits pipes, never computes), at most `queue_timeout`; a
//! worker that does not answer within `timeout` is killed, and so is one
//! whose render was abandoned (the caller went away), since its answer
//! would come out of step. Workers are started when needed and kept for
//! the next render while they behave.

use crate::engine::EngineLimits;
use crate::protocol::{self, Answers, Hello, Request, Template, Verdict};
use serde::de::DeserializeOwned;
use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

/// Everything a render may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall time of one request (all the templates of one delivery
    /// attempt, or one condition on one event).
    pub timeout: Duration,
    /// How long a render waits for a free worker before it fails.
    pub queue_timeout: Duration,
    /// Worker processes, so renders at once.
    pub workers: usize,
    /// Memory of one worker process, bytes.
    pub memory: u64,
    /// Fuel and output size of one template.
    pub engine: EngineLimits,
}

impl Default for Limits {
    /// 2 s, at most 5 s waiting, 2 workers of 64 MiB, 100,000 instructions
    /// and 1 MiB of text per template: Kong's typical templates take tens
    /// of instructions, a few KiB and well under a millisecond.
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(2),
            queue_timeout: Duration::from_secs(5),
            workers: 2,
            memory: 64 * 1024 * 1024,
            engine: EngineLimits {
                fuel: 100_000,
                output: 1024 * 1024,
            },
        }
    }
}

/// How to start a worker: `hookd template-worker` in production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

/// Why a request got no answers. Each template's or condition's own error
/// (a syntax error, fuel, output size) is an answer, not one of these.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("no template worker was free within {waited:?} (template_queue_timeout)")]
    Busy { waited: Duration },
    #[error("rendering took longer than {after:?} (template_timeout)")]
    Timeout { after: Duration },
    #[error("rendering needed more than {limit} bytes of memory (template_memory)")]
    Memory { limit: u64 },
    #[error("the template worker failed: {0}")]
    Worker(String),
    #[error("cannot start a template worker: {0}")]
    Spawn(#[source] io::Error),
}

/// Renders templates in worker processes. Cheap to clone; clones share
/// the pool.
#[derive(Clone)]
pub struct Renderer {
    pool: Arc<Pool>,
}

struct Pool {
    command: WorkerCommand,
    limits: Limits,
    slots: Semaphore,
    idle: Mutex<Vec<Worker>>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("command", &self.pool.command)
            .field("limits", &self.pool.limits)
            .finish_non_exhaustive()
    }
}

impl Renderer {
    /// A pool that starts workers with `command` when renders need them.
    pub fn new(command: WorkerCommand, limits: Limits) -> Renderer {
        Renderer {
            pool: Arc::new(Pool {
                command,
                slots: Semaphore::new(limits.workers.max(1)),
                idle: Mutex::new(Vec::new()),
                limits,
            }),
        }
    }

    /// Renders `templates` with `context`, within the limits.
    pub async fn render(
        &self,
        templates: &[Template],
        context: &serde_json::Value,
    ) -> Result<Answers, PoolError> {
        self.ask(&Request::Render { templates, context }).await
    }

    /// Evaluates `condition` with `context`, within the same limits as a
    /// render: whether it held, or the condition's own failure.
    pub async fn evaluate(
        &self,
        condition: &str,
        context: &serde_json::Value,
    ) -> Result<Verdict, PoolError> {
        self.ask(&Request::Evaluate { condition, context }).await
    }

    /// Sends `request` to a free worker and reads its answer, within the
    /// limits.
    async fn ask<T: DeserializeOwned>(&self, request: &Request<'_>) -> Result<T, PoolError> {
        let pool = &self.pool;
        let limits = pool.limits;
        let Ok(Ok(_slot)) = tokio::time::timeout(limits.queue_timeout, pool.slots.acquire()).await
        else {
            return Err(PoolError::Busy {
                waited: limits.queue_timeout,
            });
        };
        let idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut worker = match idle {
            Some(worker) => worker,
            None => pool.start().await?,
        };
        match tokio::time::timeout(limits.timeout, worker.exchange(request, limits.memory)).await {
            Ok(Ok(answer)) => {
                pool.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(worker);
                Ok(answer)
            }
            Ok(Err(e)) => Err(worker.failure(e, limits.memory).await),
            // Dropping the worker kills it.
            Err(_) => Err(PoolError::Timeout {
                after: limits.timeout,
            }),
        }
    }
}

impl Pool {
    async fn start(&self) -> Result<Worker, PoolError> {
        let mut child = Command::new(&self.command.program)
            .args(&self.command.args)
            // A template has no use for the server's environment.
            .env_clear()
            // mimalloc reserves a 1 GiB arena at the first allocation, before
            // the worker limits itself, and then allocates inside it where
            // no limit applies: without it, every segment is a mapping of
            // its own that RLIMIT_DATA counts (measured: a 64 MiB worker
            // then fails its allocation at 45 MiB resident, not 570 MiB).
            .env("MIMALLOC_ARENA_RESERVE", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(PoolError::Spawn)?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(PoolError::Spawn(io::Error::other(
                "the worker has no pipes",
            )));
        };
        let hello = Hello {
            engine: self.limits.engine,
            memory: self.limits.memory,
        };
        protocol::send(&mut stdin, &hello)
            .await
            .map_err(PoolError::Spawn)?;
        Ok(Worker {
            child,
            stdin,
            stdout,
        })
    }
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

/// How long a worker that broke its pipes gets to exit before it is
/// killed: it is exiting already.
const EXIT_GRACE: Duration = Duration::from_millis(500);

impl Worker {
    async fn exchange<T: DeserializeOwned>(
        &mut self,
        request: &Request<'_>,
        memory: u64,
    ) -> io::Result<T> {
        protocol::send(&mut self.stdin, request).await?;
        // The worker cannot build a longer answer than its memory holds.
        let max = usize::try_from(memory).unwrap_or(usize::MAX);
        protocol::receive(&mut self.stdout, max).await
    }

    /// What became of a worker whose exchange failed.
    async fn failure(mut self, error: io::Error, memory: u64) -> PoolError {
        let status = match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
            Ok(Ok(status)) => status,
            _ => return PoolError::Worker(error.to_string()),
        };
        describe_exit(status, memory)
    }
}

/// A failed allocation aborts (SIGABRT): the memory limit was reached.
fn describe_exit(status: ExitStatus, memory: u64) -> PoolError {
    const SIGABRT: i32 = 6;
    match status.signal() {
        Some(SIGABRT) => PoolError::Memory { limit: memory },
        Some(signal) => PoolError::Worker(format!("killed by signal {signal}")),
        None => PoolError::Worker(format!("exited with {status}")),
    }
}
