//! Footprint over a soak: one hookd, a webhook hook on a published source,
//! then rounds of events posted to `POST /events` (one event a request,
//! from keep-alive connections) until retention (100,000 finished
//! deliveries by default) has long been reached. After each round, once
//! every webhook of the round has arrived, it prints the round's events
//! per second, hookd's resident memory, its data directory's bytes on
//! disk, the deliveries the server holds (counted through the Admin API)
//! and the bytes on disk per delivery held; then the same once retention
//! has pruned the deliveries held back to what it keeps.
//!
//! The goals (issue 14): memory bounded by `store_cache_capacity`, and at
//! most 1,000 bytes on disk per retained delivery. A missing webhook fails
//! the run; speed and size never do.

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use hookd_bench::client::{Conn, Load};
use hookd_bench::receiver::{self, Record};
use hookd_bench::report::{Table, mib, rate, thousands};
use hookd_bench::server::Hookd;
use hookd_bench::stamps::{Stamps, Stopwatch, latencies};
use hookd_bench::{Summary, disk_usage, load_average, resident_memory};
use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The goal of the issue: bytes on disk per retained delivery, at most.
const DISK_GOAL: u64 = 1_000;

/// How long a round waits without a new webhook before it gives up.
const STALL: Duration = Duration::from_secs(30);

/// How long the run waits for retention after the last round: it runs
/// every second, and a slow machine may take a while to remove a round.
const RETENTION_WAIT: Duration = Duration::from_secs(75);

/// Deliveries read per page when counting them (the API's largest page).
const PAGE: usize = 1_000;

const SOURCE: &str = "service-protection";
const EVENT: &str = "rate-limit-exceeded";

#[derive(Parser)]
#[command(about = "hookd's memory and bytes on disk per retained delivery over rounds of events")]
struct Args {
    /// Rounds of events.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Events published in each round, hence webhooks delivered.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    events: usize,
    /// Concurrent keep-alive connections posting events.
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,
    /// Runs hookd with this `store_cache_capacity` (bytes) instead of its
    /// default.
    #[arg(long)]
    store_cache_capacity: Option<u64>,
}

/// The arrivals of every round: event `i` of round `r` is named
/// `p-<r * events + i>` (the `service` of its data).
struct Rounds {
    events: usize,
    arrived: Vec<Stamps>,
}

#[derive(Deserialize)]
struct Payload<'a> {
    service: Option<&'a str>,
}

impl Record for Rounds {
    fn record(&self, _path: &str, body: &Bytes, now: u64) {
        let Ok(Payload {
            service: Some(name),
        }) = serde_json::from_slice(body)
        else {
            return;
        };
        let Some(n) = name
            .strip_prefix("p-")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return;
        };
        if let Some(round) = self.arrived.get(n / self.events) {
            round.mark(n % self.events, now);
        }
    }
}

/// What was measured after a round.
#[derive(Clone, Copy)]
struct Footprint {
    resident: u64,
    peak: u64,
    disk: u64,
    retained: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.rounds == 0 || args.events == 0 {
        bail!("--rounds and --events must be at least 1");
    }
    let bin = hookd_bench::locate_hookd()?;
    let stopwatch = Stopwatch::start();
    let rounds = Arc::new(Rounds {
        events: args.events,
        arrived: (0..args.rounds).map(|_| Stamps::new(args.events)).collect(),
    });
    let receiver = receiver::serve(rounds.clone(), stopwatch).await?;
    let settings: Vec<(&str, String)> = args
        .store_cache_capacity
        .map(|bytes| ("HOOKD_STORE_CACHE_CAPACITY", bytes.to_string()))
        .into_iter()
        .collect();
    let hookd = Hookd::start_with(&bin, &settings)?;
    let settings = Settings::of(&hookd).await?;
    let hook = hookd
        .create_hook(
            &json!({"source": SOURCE, "event": EVENT, "handler": "webhook",
                             "config": {"url": format!("http://{receiver}/hook")}}),
        )
        .await?;
    let hook = hook["id"].as_str().context("the created hook has no id")?;
    println!(
        "soak: {} rounds of {} published events from {} connections through one hookd \
         (store_cache_capacity {}, delivery_retention_count {}), hookd {}; {}",
        args.rounds,
        args.events,
        args.connections,
        mib(settings.cache),
        thousands(settings.retention as u64),
        bin.display(),
        load_average()
    );

    let start = footprint(&hookd, hook).await?;
    let mut table = Table::new(&[
        "round",
        "events/s",
        "per CPU-second",
        "resident",
        "peak",
        "on disk",
        "deliveries held",
        "on disk per delivery",
    ]);
    table.row(footprint_row("start", None, &start));
    for round in 0..args.rounds {
        let first = round * args.events;
        let cpu_before = hookd.cpu_time();
        let sent = Load {
            addrs: vec![hookd.addr],
            connections: args.connections,
            count: args.events,
            path: "/events",
            body: move |i| {
                let data = json!({"service": format!("p-{:07}", first + i), "rate": 11,
                                  "limit": 10, "window": "second"});
                Bytes::from(json!({"source": SOURCE, "event": EVENT, "data": data}).to_string())
            },
            expect: StatusCode::ACCEPTED,
        }
        .run(stopwatch)
        .await?;
        let arrived = &rounds.arrived[round];
        if let Err(missing) = arrived.wait_all(STALL).await {
            bail!(
                "round {}: {missing} webhooks never arrived (none for {STALL:?}; first missing: \
                 {:?}); hookd's log:\n{}",
                round + 1,
                arrived.missing(10),
                hookd.log_tail()
            );
        }
        let cpu = hookd
            .cpu_time()
            .zip(cpu_before)
            .map(|(end, start)| end - start);
        let (first_sent, _) = sent.started.span();
        let (_, last_arrived) = arrived.span();
        let summary = Summary::new(
            arrived.distinct(),
            Duration::from_nanos(last_arrived.saturating_sub(first_sent)),
            latencies(&sent.started, arrived),
        )
        .with_cpu(cpu);
        let row = footprint_row(
            &(round + 1).to_string(),
            Some(&summary),
            &footprint(&hookd, hook).await?,
        );
        // A soak takes minutes: each round shows as it ends.
        eprintln!(
            "round {}/{}: {}",
            round + 1,
            args.rounds,
            row[1..].join(", ")
        );
        table.row(row);
    }
    // Until retention has run, the store holds more than it keeps, and
    // bytes per delivery would read low.
    let retained = after_retention(&hookd, hook, settings.retention).await?;
    table.row(footprint_row("retained", None, &retained));
    print!("{table}");
    println!(
        "on disk: the data directory's allocated blocks; deliveries held: what \
         GET /event-hooks/{{id}}/deliveries lists, which retention brings back to {} \
         every second (\"retained\": once it has, after the last round)",
        thousands(settings.retention as u64)
    );
    let peak = retained.peak;
    let growth = peak.saturating_sub(start.resident);
    println!(
        "memory: peak resident {} ({} above the {} at start) with store_cache_capacity {} \
         (goal: bounded by it: {})",
        mib(peak),
        mib(growth),
        mib(start.resident),
        mib(settings.cache),
        met(growth <= settings.cache)
    );
    let per_delivery = retained.disk / retained.retained.max(1) as u64;
    println!(
        "disk: {} bytes per retained delivery (goal: at most {}: {}); at the end, {}",
        thousands(per_delivery),
        thousands(DISK_GOAL),
        met(per_delivery <= DISK_GOAL),
        load_average()
    );
    Ok(())
}

/// The footprint once retention has brought the deliveries held down to
/// what it keeps, or after [`RETENTION_WAIT`] if it has not.
async fn after_retention(hookd: &Hookd, hook: &str, keep: usize) -> anyhow::Result<Footprint> {
    let waited = std::time::Instant::now();
    loop {
        let now = footprint(hookd, hook).await?;
        if now.retained <= keep {
            return Ok(now);
        }
        if waited.elapsed() > RETENTION_WAIT {
            eprintln!(
                "retention did not run within {RETENTION_WAIT:?}: {} deliveries held",
                thousands(now.retained as u64)
            );
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// hookd's memory and data directory now, and the deliveries it holds.
async fn footprint(hookd: &Hookd, hook: &str) -> anyhow::Result<Footprint> {
    // Read before the deliveries are counted: counting reads them all.
    let (resident, peak) = resident_memory(hookd.pid()).context("reading hookd's memory")?;
    let disk = disk_usage(hookd.data_dir()).context("measuring hookd's data directory")?;
    Ok(Footprint {
        resident,
        peak,
        disk,
        retained: deliveries_held(hookd, hook).await?,
    })
}

fn footprint_row(round: &str, summary: Option<&Summary>, f: &Footprint) -> Vec<String> {
    let (events, per_cpu) = summary.map_or_else(
        || ("".into(), "".into()),
        |s| (rate(s.rate), s.cpu_rate.map_or_else(|| "-".into(), rate)),
    );
    let per_delivery = if f.retained == 0 {
        "-".into()
    } else {
        format!("{} B", thousands(f.disk / f.retained as u64))
    };
    vec![
        round.into(),
        events,
        per_cpu,
        mib(f.resident),
        mib(f.peak),
        mib(f.disk),
        thousands(f.retained as u64),
        per_delivery,
    ]
}

/// The deliveries of `hook` the server holds, page by page.
async fn deliveries_held(hookd: &Hookd, hook: &str) -> anyhow::Result<usize> {
    let mut conn = Conn::open(hookd.addr).await?;
    let mut held = 0;
    let mut offset: Option<String> = None;
    loop {
        let mut path = format!("/event-hooks/{hook}/deliveries?size={PAGE}");
        if let Some(offset) = &offset {
            path.push_str(&format!("&offset={offset}"));
        }
        let (status, body) = conn.get(&path).await?;
        if status != StatusCode::OK {
            bail!(
                "listing deliveries answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let page: Value = serde_json::from_slice(&body).context("a deliveries page")?;
        held += page["data"].as_array().map_or(0, Vec::len);
        match page["offset"].as_str() {
            Some(next) => offset = Some(next.to_string()),
            None => return Ok(held),
        }
    }
}

/// The server's effective settings this benchmark reports against.
struct Settings {
    /// `store_cache_capacity`, bytes.
    cache: u64,
    /// `delivery_retention_count`.
    retention: usize,
}

impl Settings {
    /// From the effective configuration, `GET /`.
    async fn of(hookd: &Hookd) -> anyhow::Result<Self> {
        let (status, body) = Conn::open(hookd.addr).await?.get("/").await?;
        if status != StatusCode::OK {
            bail!("GET / answered {status}");
        }
        let root: Value = serde_json::from_slice(&body).context("GET / is not JSON")?;
        let setting = |key: &str| {
            root["configuration"][key]
                .as_u64()
                .with_context(|| format!("GET / shows no {key}"))
        };
        Ok(Settings {
            cache: setting("store_cache_capacity")?,
            retention: usize::try_from(setting("delivery_retention_count")?)?,
        })
    }
}

fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "not met" }
}
