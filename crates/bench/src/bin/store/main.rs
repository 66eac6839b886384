//! The store's share of a delivered event, without HTTP: consumers written
//! through hookd-store from concurrent tasks (as the Admin API writes
//! them), a dispatcher turning their outbox records into deliveries in
//! memory and a completer storing each once with one successful attempt,
//! removing its outbox record in the same transaction, every step made
//! durable as the server makes it. First the writes alone, then the whole
//! path on a fresh store; each with events per second and the CPU the
//! process used per event (sled's I/O threads and hookd's writer and
//! flusher threads included).
//!
//! What it leaves out, the server adds: HTTP in and out, hook matching,
//! on_change and snooze, the handler. Every event must be delivered; a
//! missing one fails the run.
//!
//! Both on sled and on PostgreSQL (a fresh database on
//! `HOOKD_TEST_POSTGRES_URL`, by default the local server; skipped when
//! it cannot be reached). PostgreSQL's own CPU is not this process's and
//! is not counted.

use anyhow::{Context, bail};
use clap::Parser;
use hookd_bench::report::{Table, rate};
use hookd_bench::{load_average, process_cpu_time};
use hookd_model::delivery::{Attempt, Delivery, DeliveryState};
use hookd_store::testing::TestDatabase;
use hookd_store::{Attempted, Store, record_of};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use uuid::Uuid;

// hookd's allocator, so that the store runs here as it runs in the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Deliveries the completer takes at a time: the server's worker pool size.
const WORKERS: usize = 64;

/// The time every write, delivery and attempt is stamped with: the store
/// never reads the clock, and one instant makes every delivery due at once.
const AT_MS: i64 = 1_700_000_000_000;

/// How long a stage waits for work it expects before it gives up.
const STALL: Duration = Duration::from_secs(30);

#[derive(Parser)]
#[command(
    about = "The store's share of a delivered event: writes, dispatch and completion, no HTTP"
)]
struct Args {
    /// Consumers written, hence deliveries.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    events: usize,
    /// Concurrent writers.
    #[arg(long, short = 'c', default_value_t = 64)]
    writers: usize,
}

/// What one run measured.
struct Run {
    events: usize,
    elapsed: Duration,
    cpu: Duration,
}

impl Run {
    fn row(&self, name: &str) -> Vec<String> {
        let per_event = self.cpu.as_secs_f64() * 1e6 / self.events as f64;
        vec![
            name.into(),
            rate(self.events as f64 / self.elapsed.as_secs_f64()),
            format!("{per_event:.0} µs"),
        ]
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let per_writer = args.events.div_ceil(args.writers.max(1));
    let events = per_writer * args.writers.max(1);
    println!(
        "store: {events} consumers from {} writers, dispatched and completed; {}",
        args.writers,
        load_average()
    );
    let writes =
        |store: Store| async move { write_consumers(&store, args.writers, per_writer).await };
    let path = |store: Store| async move {
        let hook = Uuid::new_v4();
        let (made, attempted) = mpsc::unbounded_channel();
        let dispatcher = tokio::spawn(dispatch(store.clone(), hook, events, made));
        let completer = tokio::spawn(complete(store.clone(), events, attempted));
        write_consumers(&store, args.writers, per_writer).await?;
        dispatcher.await??;
        completer.await?
    };
    let mut table = Table::new(&["", "rate", "CPU per event"]);
    for backend in [Backend::Sled, Backend::Postgres] {
        let Some(writes) = measure(events, backend, writes).await? else {
            println!("PostgreSQL: skipped, its server cannot be reached");
            continue;
        };
        let path = measure(events, backend, path)
            .await?
            .expect("reached before");
        let name = backend.name();
        table
            .row(writes.row(&format!("{name}: entity writes alone (durable)")))
            .row(path.row(&format!("{name}: write -> dispatch -> attempt recorded")));
    }
    print!("{table}");
    println!(
        "CPU: the whole process, sled's and hookd's threads included; at the end, {}",
        load_average()
    );
    Ok(())
}

/// The store a run measures.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sled,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// Runs `work` on a fresh store of `backend` and measures it; none when
/// PostgreSQL cannot be reached.
async fn measure<F, Fut>(events: usize, backend: Backend, work: F) -> anyhow::Result<Option<Run>>
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let dir = tempfile::tempdir()?;
    let database;
    let store = match backend {
        Backend::Sled => Store::open(dir.path())?,
        Backend::Postgres => {
            let Some(db) = TestDatabase::create("the store benchmark").await else {
                return Ok(None);
            };
            database = db;
            database.store().await
        }
    };
    let cpu = || process_cpu_time(std::process::id()).context("reading the process's CPU time");
    let (cpu_before, started) = (cpu()?, Instant::now());
    work(store.clone()).await?;
    let elapsed = started.elapsed();
    let cpu = cpu()? - cpu_before;
    store.close().await;
    Ok(Some(Run {
        events,
        elapsed,
        cpu,
    }))
}

async fn write_consumers(store: &Store, writers: usize, each: usize) -> anyhow::Result<()> {
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..each {
                    let consumer = json!({
                        "id": Uuid::new_v4(), "username": format!("user-{w}-{i}"),
                        "custom_id": null, "tags": null, "type": 0,
                        "created_at": 1_700_000_000, "updated_at": 1_700_000_000,
                    });
                    store.insert("consumers", consumer, AT_MS).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Takes the outbox as the server's dispatcher does: a delivery to `hook`
/// for each `consumers:create` event, handed on in memory; the records
/// stay in the outbox until their delivery is stored.
async fn dispatch(
    store: Store,
    hook: Uuid,
    expected: usize,
    made: mpsc::UnboundedSender<Delivery>,
) -> anyhow::Result<()> {
    let (mut dispatched, mut after) = (0, None);
    let mut idle_since = Instant::now();
    while dispatched < expected {
        let batch = store.outbox_batch_after(after, 1024).await?;
        let Some(&last) = batch.records.last() else {
            stall_check(idle_since, "the dispatcher")?;
            let _ = tokio::time::timeout(Duration::from_millis(100), store.outbox_changed()).await;
            continue;
        };
        idle_since = Instant::now();
        after = Some(last);
        for (seq, event) in batch.events {
            if event.source == "crud" && event.event == "consumers:create" {
                dispatched += 1;
                made.send(Delivery::new(hook, event, seq, AT_MS))?;
            }
        }
    }
    Ok(())
}

/// Records one successful attempt for each delivery made, up to a worker
/// pool's worth per transaction, each stored once with its outbox record
/// removed (one delivery per record here), then flushes.
async fn complete(
    store: Store,
    expected: usize,
    mut attempted: mpsc::UnboundedReceiver<Delivery>,
) -> anyhow::Result<()> {
    let mut done = 0;
    let mut batch = Vec::with_capacity(WORKERS);
    while done < expected {
        match tokio::time::timeout(STALL, attempted.recv_many(&mut batch, WORKERS)).await {
            Ok(0) => bail!("the dispatcher stopped early"),
            Ok(_) => {}
            Err(_) => bail!("the completer waited {STALL:?} for work that did not come"),
        }
        let finished: Vec<Delivery> = batch
            .drain(..)
            .map(|mut d| {
                d.state = DeliveryState::Succeeded;
                d.next_attempt_at_ms = None;
                d.attempts.push(Attempt {
                    number: 1,
                    at_ms: AT_MS,
                    latency_ms: 1,
                    ok: true,
                    status: Some(200),
                    error: None,
                    response: Some("ok".into()),
                    result: None,
                });
                d
            })
            .collect();
        let ended: Vec<u64> = finished.iter().map(|d| record_of(d.seq)).collect();
        done += finished.len();
        store
            .commit_attempts(Attempted {
                first: &finished,
                ended: &ended,
                ..Attempted::default()
            })
            .await?;
        store.durable().await?;
    }
    Ok(())
}

fn stall_check(idle_since: Instant, who: &str) -> anyhow::Result<()> {
    if idle_since.elapsed() > STALL {
        bail!("{who} waited {STALL:?} for work that did not come");
    }
    Ok(())
}
