//! What the webhook receiver (`hookd_bench::receiver`) stamps: the
//! arrival of each event, told apart by the name in the body (a
//! consumer's username, or a published event's `service`): `u-<i>` for
//! hookd's webhooks of consumer writes, `g-<i>` of consumer writes through
//! a hookd on PostgreSQL, `p-<i>` of published events,
//! `n-<i>` and `m-<i>` for the fan-out runs (at `/nine/<k>`, hook `k`), and
//! `b-<i>` for the bare client's posts. Anything else (hookd's ping) is
//! ignored.

use bytes::Bytes;
use hookd_bench::receiver::{self, Record};
use hookd_bench::stamps::{Stamps, Stopwatch};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// The username of event `i` posted by the bare client: as long as
/// hookd's, so that the bodies are the same size.
pub fn bare_username(i: usize) -> String {
    name("b", i)
}

/// The name of event `i` of a run, by the run's prefix.
pub fn name(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:07}")
}

/// The fan-out runs: the nine hooks alone, and beside a tenth whose
/// receiver never answers.
pub const FAN_OUT_HOOKS: usize = 9;

/// What has arrived.
pub struct Arrivals {
    pub hookd: Stamps,
    pub on_postgres: Stamps,
    pub on_two_nodes: Stamps,
    pub bare: Stamps,
    pub published: Stamps,
    /// Event `i` at hook `k` of the fan-out runs: `k * events + i`.
    pub nine_alone: Stamps,
    pub nine_beside_dead: Stamps,
    fan_out_events: usize,
    /// The first webhook body from hookd, for the bare client to copy.
    pub sample: OnceLock<Bytes>,
}

/// The part of a webhook's body that names the event.
#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    entity: Option<Entity<'a>>,
    #[serde(borrow)]
    service: Option<&'a str>,
}

#[derive(Deserialize)]
struct Entity<'a> {
    username: Option<&'a str>,
}

impl Record for Arrivals {
    fn record(&self, path: &str, body: &Bytes, now: u64) {
        let Ok(payload) = serde_json::from_slice::<Payload>(body) else {
            return;
        };
        let Some((prefix, i)) = payload
            .entity
            .and_then(|e| e.username)
            .or(payload.service)
            .and_then(|name| name.split_once('-'))
        else {
            return;
        };
        let Ok(i) = i.parse::<usize>() else {
            return;
        };
        let hook = || {
            let k = path.strip_prefix("/nine/")?.parse::<usize>().ok()?;
            Some(k * self.fan_out_events + i)
        };
        match prefix {
            "u" => {
                self.sample.get_or_init(|| body.clone());
                self.hookd.mark(i, now);
            }
            "g" => self.on_postgres.mark(i, now),
            "t" => self.on_two_nodes.mark(i, now),
            "b" => self.bare.mark(i, now),
            "p" => self.published.mark(i, now),
            "n" => hook()
                .into_iter()
                .for_each(|at| self.nine_alone.mark(at, now)),
            "m" => hook()
                .into_iter()
                .for_each(|at| self.nine_beside_dead.mark(at, now)),
            _ => {}
        }
    }
}

/// Serves on 127.0.0.1 (a free port) until the process ends; returns the
/// address and what arrives there.
pub async fn start(
    events: usize,
    fan_out_events: usize,
    stopwatch: Stopwatch,
) -> anyhow::Result<(SocketAddr, Arc<Arrivals>)> {
    let arrivals = Arc::new(Arrivals {
        hookd: Stamps::new(events),
        on_postgres: Stamps::new(events),
        on_two_nodes: Stamps::new(events),
        bare: Stamps::new(events),
        published: Stamps::new(events),
        nine_alone: Stamps::new(fan_out_events * FAN_OUT_HOOKS),
        nine_beside_dead: Stamps::new(fan_out_events * FAN_OUT_HOOKS),
        fan_out_events,
        sample: OnceLock::new(),
    });
    let addr = receiver::serve(arrivals.clone(), stopwatch).await?;
    Ok((addr, arrivals))
}
