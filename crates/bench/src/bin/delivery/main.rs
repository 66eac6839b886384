//! Events per second from entity write to webhook received, on loopback,
//! through the real hookd: a webhook hook on `consumers:create`, then N
//! consumers created from C keep-alive connections, each write stamped
//! when sent and each webhook when it arrives; on sled, then on a fresh
//! PostgreSQL database when the server of the store's tests
//! (`HOOKD_TEST_POSTGRES_URL`) can be reached: one node, then two nodes
//! sharing a database, the writes spread over both. The same for published
//! events (`POST /events`, one event a request, a webhook hook on their
//! source), each through a fresh hookd. Then, in the same run, a bare hyper
//! client posts bodies of the same size to the same receiver with the same
//! concurrency: the ceiling the pipeline is measured against.
//!
//! Isolation: nine hooks on `consumers:create`, alone and then beside a
//! tenth whose receiver never answers; the nine's deliveries per second in
//! both, and their ratio.
//!
//! Every webhook must arrive (distinct events are counted); a missing one
//! fails the run. Speed never does: these machines are shared.

mod receiver;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use hookd_bench::client::{Conn, Load};
use hookd_bench::report::{Table, rate, ratio};
use hookd_bench::server::Hookd;
use hookd_bench::stamps::{Stamps, Stopwatch, latencies};
use hookd_bench::{Summary, load_average, process_cpu_time};
use hookd_store::testing::TestDatabase;
use hyper::StatusCode;
use receiver::{Arrivals, FAN_OUT_HOOKS, bare_username, name};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The goal of the issue, end to end and durable, on 2 cores.
const GOAL: f64 = 9_000.0;

/// The share of their rate the nine hooks keep beside a dead one.
const ISOLATION_GOAL: f64 = 0.8;

/// How long the run waits without a new webhook before it gives up.
const STALL: Duration = Duration::from_secs(30);

#[derive(Parser)]
#[command(about = "Entity write to webhook received through hookd, against a bare hyper client")]
struct Args {
    /// Consumers created, hence webhooks delivered.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    events: usize,
    /// Concurrent keep-alive connections writing, and posting in the bare run.
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,
    /// Consumers created in each fan-out run (nine deliveries each).
    #[arg(long, default_value_t = 2_000)]
    fan_out_events: usize,
}

/// What one run through a fresh hookd measured.
struct Measured {
    end_to_end: Summary,
    api: Summary,
    redelivered: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = hookd_bench::locate_hookd()?;
    let stopwatch = Stopwatch::start();
    let (receiver, arrivals) = receiver::start(args.events, args.fan_out_events, stopwatch).await?;
    println!(
        "delivery: {} events from {} connections, hookd {}; {}",
        args.events,
        args.connections,
        bin.display(),
        load_average()
    );
    let webhook = |source: &str, event: &str, url: String| json!({"source": source, "event": event, "handler": "webhook", "config": {"url": url}});

    let consumer_hook = webhook(
        "crud",
        "consumers:create",
        format!("http://{receiver}/hook"),
    );
    let writes = through_hookd(
        &bin,
        (&[], 1),
        std::slice::from_ref(&consumer_hook),
        consumer_writes(args.connections, args.events, "u"),
        &arrivals.hookd,
        stopwatch,
    )
    .await?;
    let mut on_postgres = Vec::new();
    for (nodes, prefix, arrived) in [
        (1, "g", &arrivals.on_postgres),
        (2, "t", &arrivals.on_two_nodes),
    ] {
        let Some(database) = TestDatabase::create("the delivery benchmark").await else {
            break;
        };
        let settings = [
            ("HOOKD_STORAGE", "postgres".to_string()),
            ("HOOKD_POSTGRES_URL", database.connection.url.clone()),
            ("HOOKD_CLUSTER_LEASE", "2s".to_string()),
        ];
        let measured = through_hookd(
            &bin,
            (&settings, nodes),
            std::slice::from_ref(&consumer_hook),
            consumer_writes(args.connections, args.events, prefix),
            arrived,
            stopwatch,
        )
        .await?;
        on_postgres.push((nodes, measured));
    }
    let published = through_hookd(
        &bin,
        (&[], 1),
        &[webhook(
            "service-protection",
            "rate-limit-exceeded",
            format!("http://{receiver}/hook"),
        )],
        Load {
            addrs: Vec::new(),
            connections: args.connections,
            count: args.events,
            path: "/events",
            body: |i| {
                let data = json!({"service": name("p", i), "rate": 11, "limit": 10, "window": "second"});
                Bytes::from(
                    json!({"source": "service-protection", "event": "rate-limit-exceeded", "data": data})
                        .to_string(),
                )
            },
            expect: StatusCode::ACCEPTED,
        },
        &arrivals.published,
        stopwatch,
    )
    .await?;
    // Nine hooks of the same event, each to its own receiver, with the
    // hooks in `beside`.
    let nine = async |prefix, beside: &[Value], arrivals| {
        let mut hooks: Vec<Value> = (0..FAN_OUT_HOOKS)
            .map(|k| {
                webhook(
                    "crud",
                    "consumers:create",
                    format!("http://{receiver}/nine/{k}"),
                )
            })
            .collect();
        hooks.extend_from_slice(beside);
        let load = consumer_writes(args.connections, args.fan_out_events, prefix);
        through_hookd(&bin, (&[], 1), &hooks, load, arrivals, stopwatch).await
    };
    let alone = nine("n", &[], &arrivals.nine_alone).await?;
    let dead = hookd_bench::receiver::black_hole().await?;
    let never = webhook("crud", "consumers:create", format!("http://{dead}/never"));
    let beside_dead = nine("m", &[never], &arrivals.nine_beside_dead).await?;

    let bare = bare_run(&args, receiver, &arrivals, stopwatch).await?;

    let mut table = Table::of_summaries();
    table
        .summary(
            "hookd: consumer write -> webhook received",
            &writes.end_to_end,
        )
        .summary("hookd: its API write alone (201)", &writes.api);
    for (nodes, measured) in &on_postgres {
        let on = postgres_label(*nodes);
        table
            .summary(
                &format!("hookd on {on}: consumer write -> webhook received"),
                &measured.end_to_end,
            )
            .summary(
                &format!("hookd on {on}: its API write alone"),
                &measured.api,
            );
    }
    table
        .summary(
            "hookd: POST /events -> webhook received",
            &published.end_to_end,
        )
        .summary("hookd: its POST alone (202)", &published.api)
        .summary("bare hyper client -> receiver", &bare);
    print!("{table}");
    println!(
        "per CPU-second: events per second of CPU used by hookd (end to end), \
         by this process's client and receiver (bare)"
    );
    let postgres_runs: Vec<(String, &Measured)> = on_postgres
        .iter()
        .map(|(nodes, m)| (format!("consumer writes on {}", postgres_label(*nodes)), m))
        .collect();
    let runs = std::iter::once(("consumer writes".to_string(), &writes))
        .chain(postgres_runs)
        .chain([("published".to_string(), &published)]);
    for (path, measured) in runs {
        let per_second = measured.end_to_end.rate;
        println!(
            "{path}: hookd end to end / bare client: {}; goal {} end to end: {}",
            ratio(per_second / bare.rate),
            rate(GOAL),
            if per_second >= GOAL { "met" } else { "not met" },
        );
        if measured.redelivered > 0 {
            println!(
                "{path}: {} webhooks arrived more than once (at-least-once redelivery)",
                measured.redelivered
            );
        }
    }
    let kept = beside_dead.end_to_end.rate / alone.end_to_end.rate;
    println!(
        "isolation: {FAN_OUT_HOOKS} hooks deliver {} alone, {} beside one whose receiver never \
         answers: {} kept (goal {}: {}); at the end, {}",
        rate(alone.end_to_end.rate),
        rate(beside_dead.end_to_end.rate),
        ratio(kept),
        ratio(ISOLATION_GOAL),
        if kept >= ISOLATION_GOAL {
            "met"
        } else {
            "not met"
        },
        load_average()
    );
    Ok(())
}

/// How a run on PostgreSQL is named: by its nodes.
fn postgres_label(nodes: usize) -> String {
    match nodes {
        1 => "PostgreSQL".to_string(),
        n => format!("PostgreSQL, {n} nodes"),
    }
}

/// `count` consumers named `<prefix>-<i>`, created from `connections`.
fn consumer_writes(
    connections: usize,
    count: usize,
    prefix: &'static str,
) -> Load<impl Fn(usize) -> Bytes + Send + Sync + 'static> {
    Load {
        addrs: Vec::new(),
        connections,
        count,
        path: "/consumers",
        body: move |i| Bytes::from(json!({ "username": name(prefix, i) }).to_string()),
        expect: StatusCode::CREATED,
    }
}

/// Starts `nodes` fresh hookd with `settings` (`HOOKD_<KEY>` variables;
/// more than one node shares a PostgreSQL database), creates `hooks`,
/// sends `load` spread over the nodes and waits until every event has
/// `arrived`: the rate and latency from each request's start to its
/// arrival, and of the API's answers alone.
async fn through_hookd<F: Fn(usize) -> Bytes + Send + Sync + 'static>(
    bin: &Path,
    (settings, nodes): (&[(&str, String)], usize),
    hooks: &[Value],
    mut load: Load<F>,
    arrived: &Stamps,
    stopwatch: Stopwatch,
) -> anyhow::Result<Measured> {
    let hookds = (0..nodes)
        .map(|_| Hookd::start_with(bin, settings))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if nodes > 1 {
        shared_out(&hookds).await?;
    }
    for hook in hooks {
        hookds[0].create_hook(hook).await?;
    }
    let cpu_time = || hookds.iter().map(Hookd::cpu_time).sum::<Option<Duration>>();
    let cpu_before = cpu_time();
    load.addrs = hookds.iter().map(|h| h.addr).collect();
    let sent = load.run(stopwatch).await?;
    if let Err(missing) = arrived.wait_all(STALL).await {
        let logs: String = hookds.iter().map(Hookd::log_tail).collect();
        bail!(
            "{missing} webhooks never arrived (none for {STALL:?}; first missing: {:?}); \
             hookd's log:\n{logs}",
            arrived.missing(10),
        );
    }
    let cpu = cpu_time().zip(cpu_before).map(|(end, start)| end - start);
    Ok(Measured {
        end_to_end: summary(&sent.started, arrived).with_cpu(cpu),
        api: summary(&sent.started, &sent.answered),
        redelivered: arrived.repeated(),
    })
}

/// Waits until the nodes sharing a database hold every shard of the
/// hooks between them, each some.
async fn shared_out(hookds: &[Hookd]) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + STALL;
    loop {
        let mut shards = Vec::new();
        for hookd in hookds {
            let (_, body) = Conn::open(hookd.addr).await?.get("/status").await?;
            let status: Value = serde_json::from_slice(&body)?;
            shards.push(status["node"]["shards"].as_u64().unwrap_or(0));
        }
        if shards.iter().all(|&n| n > 0) && shards.iter().sum::<u64>() == 64 {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("the nodes did not share the shards out: they hold {shards:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The same bodies hookd delivered, posted straight to the receiver.
async fn bare_run(
    args: &Args,
    receiver: SocketAddr,
    arrivals: &Arrivals,
    stopwatch: Stopwatch,
) -> anyhow::Result<Summary> {
    let sample = arrivals.sample.get().context("no webhook body to copy")?;
    let sample = String::from_utf8(sample.to_vec()).context("a webhook body is not UTF-8")?;
    // The sample names one event; each bare post names its own, in the
    // same number of bytes.
    let theirs = serde_json::from_str::<serde_json::Value>(&sample)?["entity"]["username"]
        .as_str()
        .map(|u| format!("\"{u}\""))
        .with_context(|| format!("the webhook body names no consumer: {sample}"))?;
    let (before, after) = sample
        .split_once(&theirs)
        .with_context(|| format!("{theirs} is written otherwise in {sample}"))?;
    let (before, after) = (before.to_string(), after.to_string());
    let cpu_before = process_cpu_time(std::process::id());
    let sent = Load {
        addrs: vec![receiver],
        connections: args.connections,
        count: args.events,
        path: "/hook",
        body: move |i| Bytes::from(format!("{before}\"{}\"{after}", bare_username(i))),
        expect: StatusCode::OK,
    }
    .run(stopwatch)
    .await?;
    if let Err(missing) = arrivals.bare.wait_all(STALL).await {
        bail!("{missing} bare posts were answered but never recorded");
    }
    let cpu = process_cpu_time(std::process::id())
        .zip(cpu_before)
        .map(|(end, start)| end - start);
    Ok(summary(&sent.started, &arrivals.bare).with_cpu(cpu))
}

/// Rate over the span from the first start to the last end, and the
/// latency of each event.
fn summary(started: &Stamps, ended: &Stamps) -> Summary {
    let (first, _) = started.span();
    let (_, last) = ended.span();
    Summary::new(
        ended.distinct(),
        Duration::from_nanos(last.saturating_sub(first)),
        latencies(started, ended),
    )
}
