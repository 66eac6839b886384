//! Events per second from entity write to webhook received, on loopback,
//! through the real hookd: a webhook hook on `consumers:create`, then N
//! consumers created from C keep-alive connections, each write stamped
//! when sent and each webhook when it arrives. Then, in the same run, a
//! bare hyper client posts bodies of the same size to the same receiver
//! with the same concurrency: the ceiling the pipeline is measured against.
//!
//! Every webhook must arrive (distinct events are counted); a missing one
//! fails the run. Speed never does: these machines are shared.

mod client;
mod receiver;
mod server;
mod stamps;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use client::{Conn, Load};
use hookd_bench::report::{Table, rate, ratio};
use hookd_bench::{Summary, load_average, process_cpu_time};
use hyper::StatusCode;
use receiver::{Arrivals, bare_username, hookd_username};
use serde_json::json;
use server::Hookd;
use stamps::{Stamps, Stopwatch, latencies};
use std::net::SocketAddr;
use std::time::Duration;

/// The goal of the issue, end to end and durable, on 2 cores.
const GOAL: f64 = 10_000.0;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = hookd_bench::locate_hookd()?;
    let hookd = Hookd::start(&bin)?;
    let stopwatch = Stopwatch::start();
    let (receiver, arrivals) = receiver::start(args.events, stopwatch).await?;
    create_hook(hookd.addr, receiver).await?;
    println!(
        "delivery: {} events from {} connections, hookd {} ({}); {}",
        args.events,
        args.connections,
        bin.display(),
        hookd.addr,
        load_average()
    );

    let cpu_before = hookd.cpu_time();
    let writes = Load {
        addr: hookd.addr,
        connections: args.connections,
        count: args.events,
        path: "/consumers",
        body: |i| Bytes::from(json!({ "username": hookd_username(i) }).to_string()),
        expect: StatusCode::CREATED,
    }
    .run(stopwatch)
    .await?;
    if let Err(missing) = arrivals.hookd.wait_all(STALL).await {
        bail!(
            "{missing} of {} webhooks never arrived (none for {STALL:?}; first missing: {:?}); \
             hookd's log:\n{}",
            args.events,
            arrivals.hookd.missing(10),
            hookd.log_tail()
        );
    }
    let cpu = hookd
        .cpu_time()
        .zip(cpu_before)
        .map(|(end, start)| end - start);
    let end_to_end = summary(&writes.started, &arrivals.hookd).with_cpu(cpu);
    let api = summary(&writes.started, &writes.answered);
    let redelivered = arrivals.hookd.repeated();
    drop(hookd);

    let bare = bare_run(&args, receiver, &arrivals, stopwatch).await?;

    let mut table = Table::of_summaries();
    table
        .summary("hookd: write -> webhook received", &end_to_end)
        .summary("hookd: API write alone (201)", &api)
        .summary("bare hyper client -> receiver", &bare);
    print!("{table}");
    println!(
        "per CPU-second: events per second of CPU used by hookd (end to end), \
         by this process's client and receiver (bare)"
    );
    println!(
        "hookd end to end / bare client: {}; goal {} end to end: {}; at the end, {}",
        ratio(end_to_end.rate / bare.rate),
        rate(GOAL),
        if end_to_end.rate >= GOAL {
            "met"
        } else {
            "not met"
        },
        load_average()
    );
    if redelivered > 0 {
        println!("{redelivered} webhooks arrived more than once (at-least-once redelivery)");
    }
    Ok(())
}

/// The hook under test: every consumer created is POSTed to the receiver.
async fn create_hook(hookd: SocketAddr, receiver: SocketAddr) -> anyhow::Result<()> {
    let hook = json!({
        "source": "crud",
        "event": "consumers:create",
        "handler": "webhook",
        "config": { "url": format!("http://{receiver}/hook") },
    });
    let (status, body) = Conn::open(hookd)
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
    Ok(())
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
        addr: receiver,
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
