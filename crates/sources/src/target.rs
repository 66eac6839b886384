//! The checks of one target: a task that resolves its host, probes each
//! address when due, counts, and publishes each change of health.
//!
//! The task gets its configuration through a watch channel, so a change
//! applies from the next probe without losing the health and counters;
//! it ends when the channel's sender is dropped or the checker stops.

use crate::checker::Shared;
use crate::config::ActiveChecks;
use crate::counter::{Counter, Health};
use crate::health::{LiveAddress, LiveTarget};
use crate::probe::{self, Answer};
use crate::{Chain, Error, Result};
use hookd_model::Event;
use hookd_model::balancer::health_event;
use hookd_model::host_port::split_host_port;
use hookd_model::outbound::Restricted;
use hookd_outbound::Dialer;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Kong's port for a target written without one.
const DEFAULT_PORT: u16 = 8000;
/// Kong's weight for a target written without one.
const DEFAULT_WEIGHT: u32 = 100;
/// The longest a name lookup may take; a slower one fails like any other.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait before publishing an event again after the store failed.
const PUBLISH_RETRY_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two tries to publish an event.
const PUBLISH_RETRY_MAX: Duration = Duration::from_secs(5);

/// What identifies a target and what the report needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetSpec {
    /// The target's id.
    pub(crate) id: Uuid,
    /// Its upstream's id.
    pub(crate) upstream: Uuid,
    /// The host part: a name or an IP address (without brackets).
    pub(crate) host: String,
    /// The port.
    pub(crate) port: u16,
    /// The weight; 0 takes the target out of the balancer.
    pub(crate) weight: u32,
}

impl TargetSpec {
    /// Reads a stored target; none when it is not one (no id, no upstream,
    /// a port out of range).
    pub(crate) fn of_entity(entity: &Value) -> Option<Self> {
        let id = entity.get("id")?.as_str()?.parse().ok()?;
        let upstream = entity.get("upstream")?.get("id")?.as_str()?.parse().ok()?;
        let (host, port) = split_host_port(entity.get("target")?.as_str()?).ok()?;
        let port = match port {
            Some(p) => p.parse().ok()?,
            None => DEFAULT_PORT,
        };
        let weight = match entity.get("weight").and_then(Value::as_u64) {
            Some(w) => u32::try_from(w).ok()?,
            None => DEFAULT_WEIGHT,
        };
        Some(TargetSpec {
            id,
            upstream,
            host: host.to_string(),
            port,
            weight,
        })
    }
}

/// The checks of one upstream and the permits its probes share.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The checks.
    pub(crate) checks: ActiveChecks,
    /// `concurrency` permits, one held by each probe in flight.
    pub(crate) permits: Semaphore,
}

impl Plan {
    /// A plan for these checks.
    pub(crate) fn new(checks: ActiveChecks) -> Self {
        let permits = Semaphore::new(checks.concurrency);
        Plan { checks, permits }
    }
}

/// Everything a target task follows.
#[derive(Debug, Clone)]
pub(crate) struct TargetConfig {
    /// Shared by the upstream's targets, replaced when its checks change.
    pub(crate) plan: Arc<Plan>,
    /// The target.
    pub(crate) spec: TargetSpec,
}

impl PartialEq for TargetConfig {
    /// A plan is equal only to itself: a new one means new checks and new
    /// permits.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.plan, &other.plan) && self.spec == other.spec
    }
}

/// One address of the target.
#[derive(Debug)]
struct Address {
    counter: Counter,
    /// When it was last probed, or found: the interval counts from there.
    last: Instant,
    refused: Option<Restricted>,
}

impl Address {
    fn due(&self, checks: &ActiveChecks) -> Option<Instant> {
        self.last
            .checked_add(checks.interval(self.counter.health())?)
    }
}

/// The state of one target's checks.
struct Target {
    /// Fixed for the task's life: a target whose host or port changes gets
    /// a new task.
    spec: TargetSpec,
    addresses: BTreeMap<IpAddr, Address>,
    resolved_at: Instant,
    dns_error: Option<String>,
}

/// Runs the checks of one target until `config`'s sender is dropped or
/// `stop` is cancelled.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut config: watch::Receiver<Arc<TargetConfig>>,
    stop: CancellationToken,
) {
    let spec = config.borrow_and_update().spec.clone();
    let mut target = Target {
        spec,
        addresses: BTreeMap::new(),
        resolved_at: Instant::now(),
        dns_error: None,
    };
    tokio::select! {
        () = target.resolve(&shared) => {}
        () = stop.cancelled() => return,
    }
    shared.report(target.spec.id, target.live());
    loop {
        let current = Arc::clone(&config.borrow_and_update());
        let wake = target.next_wake(&current.plan.checks);
        tokio::select! {
            () = stop.cancelled() => return,
            changed = config.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
            () = sleep_until(wake) => {}
        }
        let results = tokio::select! {
            results = target.round(&shared, &current.plan) => results,
            () = stop.cancelled() => return,
        };
        let changes = target.count(results, &current.plan.checks);
        shared.report(target.spec.id, target.live());
        // Not cut short by a stop: an event once decided is published.
        for (ip, health) in changes {
            let spec = &target.spec;
            let now = shared.clock.now_ms();
            let event = health_event(spec.upstream, &spec.host, ip, spec.port, health, now);
            publish(&shared, event, &stop).await;
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Target {
    /// When something is next due: the earliest address's probe, or, with
    /// no address known, another try at resolving one interval on.
    fn next_wake(&self, checks: &ActiveChecks) -> Option<Instant> {
        if self.addresses.is_empty() {
            let retry = checks.healthy_interval.or(checks.unhealthy_interval)?;
            return self.resolved_at.checked_add(retry);
        }
        self.addresses.values().filter_map(|a| a.due(checks)).min()
    }

    /// Re-resolves the host, then probes every address that is due, at
    /// most `concurrency` of the upstream's at once.
    async fn round(&mut self, shared: &Shared, plan: &Plan) -> Vec<(IpAddr, Result<Answer>)> {
        self.resolve(shared).await;
        let now = Instant::now();
        let due: Vec<IpAddr> = self
            .addresses
            .iter()
            .filter(|(_, a)| a.due(&plan.checks).is_some_and(|at| at <= now))
            .map(|(ip, _)| *ip)
            .collect();
        let (host, port) = (self.spec.host.as_str(), self.spec.port);
        let probes = due.into_iter().map(|ip| async move {
            // The semaphore is never closed, so a permit always comes.
            let _permit = plan.permits.acquire().await;
            let result = shared
                .prober
                .probe(SocketAddr::new(ip, port), host, &plan.checks)
                .await;
            (ip, result)
        });
        futures::future::join_all(probes).await
    }

    /// Counts the results; returns the addresses whose health changed.
    fn count(
        &mut self,
        results: Vec<(IpAddr, Result<Answer>)>,
        checks: &ActiveChecks,
    ) -> Vec<(IpAddr, Health)> {
        let now = Instant::now();
        let mut changes = Vec::new();
        for (ip, result) in results {
            let Some(address) = self.addresses.get_mut(&ip) else {
                continue;
            };
            address.last = now;
            let outcome = probe::outcome(&result, checks);
            match &result {
                Ok(answer) => {
                    tracing::debug!(target_id = %self.spec.id, %ip, ?answer, ?outcome, "probed")
                }
                Err(e) => {
                    tracing::debug!(target_id = %self.spec.id, %ip, error = %Chain(e), ?outcome, "probe failed")
                }
            }
            if let Some(health) = address.counter.observe(outcome, &checks.thresholds) {
                tracing::warn!(
                    upstream_id = %self.spec.upstream,
                    target_id = %self.spec.id,
                    hostname = %self.spec.host,
                    %ip,
                    port = self.spec.port,
                    health = health.as_str(),
                    "target address changed health"
                );
                changes.push((ip, health));
            }
        }
        changes
    }

    /// Brings the addresses up to date with the host's: new ones start
    /// healthy, vanished ones are dropped. While resolving fails the last
    /// addresses are kept.
    async fn resolve(&mut self, shared: &Shared) {
        self.resolved_at = Instant::now();
        let found = match lookup(&shared.dialer, &self.spec.host, self.spec.port).await {
            Ok(found) => found,
            Err(e) => {
                let error = Chain(&e).to_string();
                if self.dns_error.as_ref() != Some(&error) {
                    tracing::warn!(target_id = %self.spec.id, error, "resolving a target failed");
                }
                self.dns_error = Some(error);
                return;
            }
        };
        self.dns_error = None;
        self.addresses.retain(|ip, _| found.contains_key(ip));
        let now = Instant::now();
        for (ip, refused) in found {
            self.addresses.entry(ip).or_insert_with(|| {
                if let Some(reason) = refused {
                    tracing::warn!(
                        target_id = %self.spec.id,
                        %ip,
                        %reason,
                        "the outbound policy refuses this target address: it is never connected to and counts as failing"
                    );
                }
                Address {
                    counter: Counter::default(),
                    last: now,
                    refused,
                }
            });
        }
    }

    fn live(&self) -> LiveTarget {
        LiveTarget {
            addresses: self
                .addresses
                .iter()
                .map(|(ip, a)| LiveAddress {
                    ip: *ip,
                    health: a.counter.health(),
                    refused: a.refused,
                })
                .collect(),
            dns_error: self.dns_error.clone(),
        }
    }
}

/// The addresses of `host` (itself when it is an IP address), each with
/// the reason the outbound policy refuses it, if it does.
async fn lookup(
    dialer: &Dialer,
    host: &str,
    port: u16,
) -> Result<BTreeMap<IpAddr, Option<Restricted>>> {
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, dialer.resolve(host, port))
        .await
        .map_err(|_| Error::ResolveTimeout {
            host: host.to_string(),
            after: RESOLVE_TIMEOUT,
        })?
        .map_err(|source| Error::Resolve {
            host: host.to_string(),
            source,
        })?;
    let ips: BTreeMap<IpAddr, Option<Restricted>> = found
        .into_iter()
        .map(|decision| match decision {
            Ok(admitted) => (admitted.addr().ip(), None),
            Err(refused) => (refused.addr.ip(), Some(refused.reason)),
        })
        .collect();
    if ips.is_empty() {
        return Err(Error::NoAddress {
            host: host.to_string(),
        });
    }
    Ok(ips)
}

/// Publishes `event`, trying again with backoff while the store fails;
/// gives up only when the checker stops.
async fn publish(shared: &Shared, event: Event, stop: &CancellationToken) {
    let mut wait = PUBLISH_RETRY_FIRST;
    loop {
        let Err(e) = shared.store.publish(std::slice::from_ref(&event)).await else {
            return;
        };
        tracing::error!(event_id = %event.id, error = %Chain(&e), "publishing a balancer health event failed; trying again");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => {
                tracing::error!(event_id = %event.id, data = %event.data, "stopping with a balancer health event unpublished");
                return;
            }
        }
        wait = (wait * 2).min(PUBLISH_RETRY_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_targets_as_stored() {
        let up = Uuid::new_v4();
        let id = Uuid::new_v4();
        let entity = |target: &str, weight: Value| json!({"id": id.to_string(), "upstream": {"id": up.to_string()}, "target": target, "weight": weight});
        let spec = TargetSpec::of_entity(&entity("[::1]:81", json!(5))).unwrap();
        assert_eq!(
            spec,
            TargetSpec {
                id,
                upstream: up,
                host: "::1".into(),
                port: 81,
                weight: 5
            }
        );
        let spec = TargetSpec::of_entity(&entity("api.example", Value::Null)).unwrap();
        assert_eq!((spec.port, spec.weight), (DEFAULT_PORT, DEFAULT_WEIGHT));
        assert_eq!(TargetSpec::of_entity(&entity("a:99999", json!(1))), None);
        assert_eq!(TargetSpec::of_entity(&json!({"target": "a:1"})), None);
    }

    #[tokio::test]
    async fn literal_hosts_resolve_to_themselves() {
        let ips = lookup(&Dialer::default(), "::1", 80).await.unwrap();
        assert_eq!(
            ips.into_iter().collect::<Vec<_>>(),
            [("::1".parse::<IpAddr>().unwrap(), Some(Restricted::Loopback))]
        );
    }
}
