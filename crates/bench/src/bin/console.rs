//! The console's pages under a full store: 1,000 hooks and 100,000 stored
//! deliveries (100 `log` hooks take every published event, so each event
//! makes 100 deliveries; the others listen to an event nobody publishes).
//! Once every delivery has ended, each page is fetched over and over
//! through one keep-alive connection with a console session, and the run
//! prints each page's p50, p99 and slowest answer beside the goal (issue
//! 16): every page under 100 ms. A page that does not answer 200 fails the
//! run; its time never does.

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use hookd_bench::client::Conn;
use hookd_bench::percentile;
use hookd_bench::report::{Table, ms, thousands};
use hookd_bench::server::Hookd;
use hyper::StatusCode;
use hyper::header::{COOKIE, HeaderMap, HeaderValue, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The goal of the issue: each page answers within this.
const GOAL: Duration = Duration::from_millis(100);

const SOURCE: &str = "service-protection";
const EVENT: &str = "rate-limit-exceeded";
/// What the other hooks listen to: nothing publishes it.
const IDLE_SOURCE: &str = "oas-validation";
const IDLE_EVENT: &str = "validation-failed";

/// Events published in one request (`POST /events` takes an array).
const BATCH: usize = 100;

#[derive(Parser)]
#[command(about = "the console's pages with 1,000 hooks and 100,000 stored deliveries")]
struct Args {
    /// Hooks stored.
    #[arg(long, default_value_t = 1_000)]
    hooks: usize,
    /// Of them, hooks that take every published event.
    #[arg(long, default_value_t = 100)]
    busy_hooks: usize,
    /// Deliveries stored (events published × busy hooks).
    #[arg(long, default_value_t = 100_000)]
    deliveries: usize,
    /// Times each page is fetched.
    #[arg(long, default_value_t = 50)]
    repeat: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = hookd_bench::locate_hookd()?;
    let hookd = Hookd::start_with(
        &bin,
        &[(
            "HOOKD_DELIVERY_RETENTION_COUNT",
            (args.deliveries * 2).to_string(),
        )],
    )?;
    let mut conn = Conn::open(hookd.addr).await?;
    let started = Instant::now();
    let mut busy = Vec::new();
    for i in 0..args.hooks {
        let (source, event) = if i < args.busy_hooks {
            (SOURCE, EVENT)
        } else {
            (IDLE_SOURCE, IDLE_EVENT)
        };
        let hook = hookd
            .create_hook(&json!({"source": source, "event": event, "handler": "log"}))
            .await?;
        if i < args.busy_hooks {
            busy.push(hook["id"].as_str().unwrap_or_default().to_string());
        }
    }
    let events = args.deliveries / args.busy_hooks.max(1);
    for first in (0..events).step_by(BATCH) {
        let batch: Vec<Value> = (first..(first + BATCH).min(events))
            .map(|i| {
                json!({"source": SOURCE, "event": EVENT,
                       "data": {"service": "billing", "rate": i, "limit": 1, "window": "second"}})
            })
            .collect();
        let (status, body) = conn
            .post("/events", Bytes::from(Value::Array(batch).to_string()))
            .await?;
        if status != StatusCode::ACCEPTED {
            bail!(
                "publishing answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    wait_until_delivered(&mut conn).await?;
    println!(
        "console: {} hooks, {} deliveries stored ({} events × {} hooks) in {:.0} s",
        thousands(args.hooks as u64),
        thousands((events * args.busy_hooks) as u64),
        thousands(events as u64),
        args.busy_hooks,
        started.elapsed().as_secs_f64()
    );

    let session = session(&mut conn).await?;
    let hook = &busy[0];
    let (_, page) = conn
        .get(&format!("/event-hooks/{hook}/deliveries?size=1"))
        .await?;
    let page: Value = serde_json::from_slice(&page)?;
    let delivery = page["data"][0]["id"]
        .as_str()
        .context("the busy hook has a delivery")?
        .to_string();
    let pages = [
        ("overview", "/console".to_string()),
        ("hooks", "/console/hooks".to_string()),
        ("hook", format!("/console/hooks/{hook}")),
        ("hook form", format!("/console/hooks/{hook}/edit")),
        ("delivery", format!("/console/deliveries/{delivery}")),
        // None died: the page reads through every finished delivery's
        // index entry to find none, its slowest case.
        ("dead letters", "/console/dead-letters".to_string()),
        ("guests", "/console/guests".to_string()),
        ("audit", "/console/audit".to_string()),
        ("sources", "/console/sources".to_string()),
        ("quarantine", "/console/quarantine".to_string()),
    ];
    let mut table = Table::new(&["page", "p50", "p99", "slowest", "goal"]);
    for (name, path) in &pages {
        let mut times = Vec::with_capacity(args.repeat);
        for _ in 0..args.repeat {
            let mut headers = HeaderMap::new();
            headers.insert(COOKIE, session.clone());
            let asked = Instant::now();
            let (status, _, body) = conn.get_with(path, headers).await?;
            times.push(asked.elapsed());
            if status != StatusCode::OK {
                bail!(
                    "{path} answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
        times.sort_unstable();
        let slowest = *times.last().unwrap_or(&Duration::ZERO);
        table.row(vec![
            name.to_string(),
            ms(percentile(&times, 50.0)),
            ms(percentile(&times, 99.0)),
            ms(slowest),
            if percentile(&times, 99.0) <= GOAL {
                "met".into()
            } else {
                format!("over {}", ms(GOAL))
            },
        ]);
    }
    print!("{table}");
    Ok(())
}

/// Waits until no event waits for dispatch and no delivery for an attempt.
async fn wait_until_delivered(conn: &mut Conn) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (_, body) = conn.get("/status").await?;
        let status: Value = serde_json::from_slice(&body)?;
        if status["outbox"]["pending"] == 0 && status["deliveries"]["queued"] == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("deliveries still waiting after 10 minutes: {status}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A console session (the server runs without RBAC, so signing in gives
/// one at once): the `Cookie` header that carries it.
async fn session(conn: &mut Conn) -> anyhow::Result<HeaderValue> {
    let (status, headers, _) = conn.get_with("/console/sign-in", HeaderMap::new()).await?;
    if status != StatusCode::SEE_OTHER || headers.get(LOCATION).is_none() {
        bail!("signing in answered {status}");
    }
    let cookie = headers
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("signing in set no cookie")?;
    Ok(HeaderValue::from_str(cookie)?)
}
