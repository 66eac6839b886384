//! Lambda invocations per second and their latency, one thread: a fresh
//! wasm instance per event (hookd's default) and an instance kept for the
//! hook (`instance = "reused"`), for a trivial guest and for a guest that
//! parses the crud JSON, changes it and returns it, next to the same
//! transform in LuaJIT run Kong's way (one state, the function loaded
//! once) and with a fresh state per event; and the same transform written
//! in Python and JavaScript, when built, so that users see what a language
//! costs.
//!
//! Both sides get the same job: the event data arrives as a JSON string
//! and leaves as one. Rounds interleave the four runs so that the load of
//! a shared machine weighs on all of them alike.

mod lua;
mod wasm;

use anyhow::{Context, bail};
use clap::Parser;
use hookd_bench::report::{Table, rate, ratio};
use hookd_bench::{Summary, load_average, thread_cpu_time};
use hookd_model::{Event, Operation};
use hookd_sandbox::Instance;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The goal: per-event isolation at this fraction of Kong's shared state.
const FRESH_GOAL: f64 = 0.6;
/// The goal: an instance kept for the hook (Kong's isolation: one state
/// per function) at this multiple of Kong's shared state.
const REUSED_GOAL: f64 = 1.2;
/// What the reused runs stand for: one hook's one configuration.
const REUSED: Instance = Instance::Reused {
    version: 0,
    step: 0,
};

#[derive(Parser)]
#[command(about = "Lambda invocations per second: fresh and reused wasm instances against LuaJIT")]
struct Args {
    /// Measured invocations per run and round.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    iterations: usize,
    /// Invocations before each measured run, not counted.
    #[arg(long, default_value_t = 1_000)]
    warmup: usize,
    /// Rounds; each runs every variant once, and the figures pool them.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Divides the iterations of the fresh-Lua-state run, which is an
    /// order of magnitude slower than the others.
    #[arg(long, default_value_t = 10)]
    fresh_lua_divisor: usize,
    /// Divides the iterations of the Python and JavaScript transforms,
    /// whose interpreters make each call two orders of magnitude slower.
    #[arg(long, default_value_t = 100)]
    other_language_divisor: usize,
    /// Runs the guests on an engine that counts fuel (the server's
    /// `sandbox_fuel_metering`), to measure what counting costs.
    #[arg(long)]
    fuel_metering: bool,
    /// Directory of the example guests.
    #[arg(long, default_value_os_t = hookd_testkit::guests::examples_dir())]
    guests: PathBuf,
    /// Instead of the usual figures, compares the `transform` of this
    /// directory (laid out as `--guests`) with the one of `--guests`, in
    /// batches that alternate within this one process: a change to a
    /// guest of a few percent shows there, where separate runs on a
    /// shared machine differ by a third.
    #[arg(long)]
    compare_with: Option<PathBuf>,
}

/// A realistic crud `consumers:create` event's data, as hookd's store
/// makes it (about 300 bytes of JSON).
fn crud_event() -> Event {
    let consumer = json!({
        "id": "8a3e6b0c-5f21-4c7e-9a55-2b0f6c1d9e47",
        "created_at": 1_764_230_400,
        "updated_at": 1_764_230_400,
        "username": "alice.johnson@example.com",
        "custom_id": "crm-customer-00047110815",
        "tags": ["billing", "tier-gold", "eu-west"],
        "type": 0,
    });
    Event::crud(
        Operation::Create,
        "consumers",
        &consumer,
        None,
        1_764_230_400_000,
    )
    .into_iter()
    .find(|e| e.event == "consumers:create")
    .expect("a create makes a consumers:create event")
}

/// Runs `once` `warmup` times, then `n` times timing each call, awaited
/// on this thread's runtime as a delivery worker awaits the sandbox.
async fn measure<F: Future<Output = anyhow::Result<()>>>(
    n: usize,
    warmup: usize,
    mut once: impl FnMut() -> F,
) -> Run {
    for _ in 0..warmup {
        if let Err(e) = once().await {
            return Run::Failed(e);
        }
    }
    let mut latencies = Vec::with_capacity(n);
    let cpu = thread_cpu_time();
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        if let Err(e) = once().await {
            return Run::Failed(e);
        }
        latencies.push(t.elapsed());
    }
    Run::Done {
        elapsed: started.elapsed(),
        cpu: thread_cpu_time().zip(cpu).map(|(end, start)| end - start),
        latencies,
    }
}

enum Run {
    Done {
        elapsed: Duration,
        cpu: Option<Duration>,
        latencies: Vec<Duration>,
    },
    Failed(anyhow::Error),
}

/// The rounds of one variant, pooled.
#[derive(Default)]
struct Pooled {
    elapsed: Duration,
    cpu: Option<Duration>,
    latencies: Vec<Duration>,
}

impl Pooled {
    fn add(&mut self, name: &str, run: Run) -> anyhow::Result<()> {
        match run {
            Run::Done {
                elapsed,
                cpu,
                latencies,
            } => {
                self.elapsed += elapsed;
                self.cpu = cpu.map(|c| c + self.cpu.unwrap_or_default());
                self.latencies.extend(latencies);
                Ok(())
            }
            Run::Failed(e) => Err(e.context(format!("{name}: an invocation failed"))),
        }
    }

    fn summary(self) -> Summary {
        Summary::new(self.latencies.len(), self.elapsed, self.latencies).with_cpu(self.cpu)
    }
}

// hookd's allocator, so that the guests run here as they run in the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One thread, as one delivery worker runs guests.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let event = crud_event();
    let data = event.data.to_string();
    let wasm = wasm::Bench::new(&args.guests, &event, args.fuel_metering)?;
    let lua = lua::Shared::new()?;
    check_same_transform(&wasm, &lua, &data).await?;
    if let Some(dir) = &args.compare_with {
        let other = wasm::Bench::new(dir, &event, args.fuel_metering)?;
        return compare(&wasm, &other, dir, &args).await;
    }
    let (wasm, lua, event, data) = (&wasm, &lua, &event, data.as_str());
    let n = args.iterations;
    let fresh_n = (n / args.fresh_lua_divisor.max(1)).max(1);
    let fresh_warmup = (args.warmup / args.fresh_lua_divisor.max(1)).max(1);

    println!(
        "lambda: {} rounds of {n} invocations ({fresh_n} with a fresh Lua state), \
         event data {} bytes, one thread, fuel metering {}; {}",
        args.rounds,
        data.len(),
        if args.fuel_metering { "on" } else { "off" },
        load_average()
    );
    let [
        mut noop,
        mut noop_reused,
        mut transform,
        mut transform_reused,
        mut shared,
        mut fresh,
    ]: [Pooled; 6] = Default::default();
    let others = wasm.others();
    let other_n = (n / args.other_language_divisor.max(1)).max(1);
    let other_warmup = (args.warmup / args.other_language_divisor.max(1)).max(1);
    let mut other_runs: Vec<[Pooled; 2]> = others.iter().map(|_| Default::default()).collect();
    for _ in 0..args.rounds {
        for (i, [fresh_run, reused_run]) in other_runs.iter_mut().enumerate() {
            fresh_run.add(
                others[i],
                measure(other_n, other_warmup, move || async move {
                    wasm.other(i, Instance::Fresh).await.map(drop)
                })
                .await,
            )?;
            reused_run.add(
                others[i],
                measure(other_n, other_warmup, move || async move {
                    wasm.other(i, REUSED).await.map(drop)
                })
                .await,
            )?;
            wasm.drop_kept();
        }
        noop.add(
            "wasm-noop",
            measure(n, args.warmup, || wasm.noop(Instance::Fresh)).await,
        )?;
        noop_reused.add(
            "wasm-noop-reused",
            measure(n, args.warmup, || wasm.noop(REUSED)).await,
        )?;
        wasm.drop_kept();
        transform.add(
            "wasm-transform",
            measure(n, args.warmup, || async {
                wasm.transform(Instance::Fresh).await.map(drop)
            })
            .await,
        )?;
        transform_reused.add(
            "wasm-transform-reused",
            measure(n, args.warmup, || async {
                wasm.transform(REUSED).await.map(drop)
            })
            .await,
        )?;
        wasm.drop_kept();
        shared.add(
            "lua-shared",
            measure(n, args.warmup, || async {
                lua.transform(event, data).map(drop)
            })
            .await,
        )?;
        fresh.add(
            "lua-fresh",
            measure(fresh_n, fresh_warmup, || async {
                lua::fresh_transform(event, data).map(drop)
            })
            .await,
        )?;
    }
    let (noop, noop_reused) = (noop.summary(), noop_reused.summary());
    let (transform, transform_reused) = (transform.summary(), transform_reused.summary());
    let (shared, fresh) = (shared.summary(), fresh.summary());

    let mut table = Table::of_summaries();
    table
        .summary("wasm-noop (fresh instance)", &noop)
        .summary("wasm-noop (reused instance)", &noop_reused)
        .summary("wasm-transform (fresh instance)", &transform)
        .summary("wasm-transform (reused instance)", &transform_reused)
        .summary("lua-shared (Kong: one state)", &shared)
        .summary("lua-fresh (a state per event)", &fresh);
    for (name, [fresh_run, reused_run]) in others.iter().zip(other_runs) {
        table
            .summary(
                &format!("wasm-{name} (fresh instance)"),
                &fresh_run.summary(),
            )
            .summary(
                &format!("wasm-{name} (reused instance)"),
                &reused_run.summary(),
            );
    }
    print!("{table}");
    for name in &wasm.missing {
        println!("{name}: not built (guest-examples/build.sh builds it), not measured");
    }
    // On a shared machine the wall-clock rates also count time other
    // processes held the CPU; per CPU-second they do not.
    let cpu_ratio = |a: &Summary, b: &Summary| cpu_ratio_of(a, b).unwrap_or(a.rate / b.rate);
    for (name, run, goal) in [
        ("wasm-transform (fresh)", &transform, FRESH_GOAL),
        ("wasm-transform (reused)", &transform_reused, REUSED_GOAL),
    ] {
        let vs_shared = cpu_ratio(run, &shared);
        println!(
            "{name} / lua-shared: {} per CPU-second ({} wall), goal >= {goal}x: {}   \
             / lua-fresh: {} per CPU-second",
            ratio(vs_shared),
            ratio(run.rate / shared.rate),
            if vs_shared >= goal { "met" } else { "not met" },
            ratio(cpu_ratio(run, &fresh)),
        );
    }
    println!(
        "{} through mlua; its JSON is decoded straight into a table and encoded \
         from it by serde_json (native code, as lua-cjson is for Kong); at the end, {}",
        lua.version()?,
        load_average()
    );
    Ok(())
}

/// Calls in one batch of a comparison: long enough to time, short enough
/// that the machine's speed rarely changes within a pair of batches.
const BATCH: usize = 1_000;

/// `transform` of `a` (from `--guests`) and of `b` (from `b_dir`) per
/// CPU-second, fresh and reused, their batches alternating.
async fn compare(
    a: &wasm::Bench,
    b: &wasm::Bench,
    b_dir: &std::path::Path,
    args: &Args,
) -> anyhow::Result<()> {
    let batches = (args.iterations / BATCH).max(1);
    println!(
        "lambda: transform of {} (a) against {} (b), {batches} alternating batches of {BATCH} calls each; {}",
        args.guests.display(),
        b_dir.display(),
        load_average()
    );
    let mut table = Table::new(&["", "a per CPU-second", "b per CPU-second", "b / a"]);
    for (name, instance) in [
        ("fresh instance", Instance::Fresh),
        ("reused instance", REUSED),
    ] {
        let [mut pooled_a, mut pooled_b]: [Pooled; 2] = Default::default();
        for i in 0..batches {
            // The warm-up, once per side, comes with the first batch.
            let warmup = if i == 0 { args.warmup } else { 0 };
            for (side, bench, pooled) in [("a", a, &mut pooled_a), ("b", b, &mut pooled_b)] {
                let run = measure(BATCH, warmup, || async {
                    bench.transform(instance).await.map(drop)
                });
                pooled.add(side, run.await)?;
            }
        }
        a.drop_kept();
        b.drop_kept();
        let (a, b) = (pooled_a.summary(), pooled_b.summary());
        let cpu_rate = |s: &Summary| s.cpu_rate.map_or_else(|| "-".into(), rate);
        table.row(vec![
            name.to_string(),
            cpu_rate(&a),
            cpu_rate(&b),
            cpu_ratio_of(&b, &a).map_or_else(|| "-".into(), ratio),
        ]);
    }
    print!("{table}");
    Ok(())
}

/// `a` per CPU-second over `b` per CPU-second, when the CPU was measured.
fn cpu_ratio_of(a: &Summary, b: &Summary) -> Option<f64> {
    Some(a.cpu_rate? / b.cpu_rate?)
}

/// Fails unless the guest and the Lua function make the same JSON of the
/// event: the comparison is only fair if they do the same work.
async fn check_same_transform(
    wasm: &wasm::Bench,
    lua: &lua::Shared,
    data: &str,
) -> anyhow::Result<()> {
    let from_wasm: Value = serde_json::from_str(&wasm.transform(Instance::Fresh).await?)
        .context("the wasm transform's output")?;
    let from_lua: Value = serde_json::from_str(&lua.transform(&wasm.event, data)?)
        .context("the Lua transform's output")?;
    if from_wasm != from_lua {
        bail!("the transforms disagree:\n  wasm: {from_wasm}\n  lua:  {from_lua}");
    }
    if from_wasm["entity"]["username"] != "ALICE.JOHNSON@EXAMPLE.COM" {
        bail!("the transform did not uppercase the username: {from_wasm}");
    }
    Ok(())
}
