//! hookd's metrics, in one registry exposed at `GET /metrics`.
//!
//! Every part records into the [`Metrics`] it is given: the dispatcher
//! counts events and the verdicts of hooks' conditions, the workers attempts and their latency, the lambda
//! handler invocations and how they ended, the Admin API its requests.
//! Gauges of state (queue depth, compiled guests) are set when scraped.
#![deny(missing_docs)]

mod last_hour;

pub use last_hour::{LastHour, MINUTES, Minute};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An event by its source and name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// The source.
    pub source: String,
    /// The event.
    pub event: String,
}

/// A handler and how something ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `webhook`, `webhook-custom`, `log` or `lambda`.
    pub handler: String,
    /// How it ended.
    pub outcome: String,
}

/// A handler.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandlerLabels {
    /// `webhook`, `webhook-custom`, `log` or `lambda`.
    pub handler: String,
}

/// How a guest invocation ended: `ok`, `error`, `timeout`, `memory`,
/// `fuel`, `stack_overflow`, `trap`, `output_too_large`, `disabled`, `host`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InvocationLabels {
    /// How it ended.
    pub outcome: String,
}

/// What became of a hook's condition on an event: `held`, `not_held`,
/// or `failed` (an error, a limit, or no answer; it counts as not held).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    /// How it ended.
    pub outcome: &'static str,
}

/// A capability class.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CapabilityLabels {
    /// `http`, `network`, `filesystem`, …
    pub capability: String,
}

/// Which node this is and where it keeps its records.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    /// `sled` or `postgres`.
    pub backend: String,
    /// The node's id, as `/` shows it.
    pub node_id: String,
}

/// Where a stored record came from: its sled tree.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OriginLabels {
    /// `outbox`, `deliveries`, `hook_state`, `entities`, `audit_allowed`,
    /// `audit_denied`.
    pub origin: String,
}

/// An Admin API route.
///
/// Label values never come from the request as sent, or every made-up
/// method or path would add a series for good: the method is one of a
/// fixed set (a static string), the route a template of the router.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The HTTP method: a standard one, or `other`.
    pub method: &'static str,
    /// The route's path template, e.g. `/event-hooks/{key}`, or `unmatched`.
    pub route: String,
}

/// An Admin API route and the status answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteStatusLabels {
    /// The HTTP method: a standard one, or `other`.
    pub method: &'static str,
    /// The route's path template, or `unmatched`.
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// The listener limit a connection was dropped under.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionTimeoutLabels {
    /// `header_read_timeout`, `idle_timeout` or `request_body_timeout`.
    pub limit: &'static str,
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    /// Events taken from the outbox, by source and event.
    pub events: Family<EventLabels, Counter>,
    /// Hook conditions evaluated by the dispatcher, by outcome.
    pub conditions: Family<ConditionLabels, Counter>,
    /// Delivery attempts, by handler and outcome (`ok`, `failed`).
    pub attempts: Family<OutcomeLabels, Counter>,
    /// Deliveries that ended, by handler and outcome (`succeeded`, `dead`).
    pub deliveries: Family<OutcomeLabels, Counter>,
    /// Delivery attempts minute by minute over the last hour.
    pub last_hour: LastHour,
    /// Duration of delivery attempts, by handler.
    pub attempt_seconds: Latencies<HandlerLabels>,
    /// Deliveries waiting for an attempt.
    pub queue_depth: Gauge,
    /// How overdue the most overdue delivery is, in seconds.
    pub queue_oldest_due_seconds: Gauge<f64, AtomicU64>,
    /// Guest invocations by outcome (traps and limit kills included).
    pub lambda_invocations: Family<InvocationLabels, Counter>,
    /// Guests compiled since start.
    pub guests_compiled: Gauge,
    /// Guests loaded precompiled from the cache since start.
    pub guests_loaded_from_cache: Gauge,
    /// Sandbox decisions that denied a guest something, by capability.
    pub audit_denials: Family<CapabilityLabels, Counter>,
    /// Stored records in the quarantine (they do not decode), by origin.
    pub quarantined_records: Family<OriginLabels, Gauge>,
    /// 1, labelled with the node's backend and id.
    pub node: Family<NodeLabels, Gauge>,
    /// Shards of the hooks whose deliveries this node attempts (of 64).
    pub cluster_shards_held: Gauge,
    /// Shards this node took over from nodes whose leases ran out.
    pub cluster_lease_takeovers: Gauge,
    /// 1 while this node dispatches the outbox (one node at a time).
    pub cluster_dispatching: Gauge,
    /// Admin API requests, by method, route and status.
    pub admin_requests: Family<RouteStatusLabels, Counter>,
    /// Admin API request duration, by method and route.
    pub admin_request_seconds: Latencies<RouteLabels>,
    /// Admin API connections open.
    pub connections_open: Gauge,
    /// Admin API connections dropped for outliving a limit, by limit.
    pub connections_timed_out: Family<ConnectionTimeoutLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric, registered under the `hookd` prefix.
    pub fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::with_prefix("hookd"),
            events: Family::default(),
            conditions: Family::default(),
            attempts: Family::default(),
            deliveries: Family::default(),
            last_hour: LastHour::default(),
            attempt_seconds: Family::new_with_constructor(latency_histogram),
            queue_depth: Gauge::default(),
            queue_oldest_due_seconds: Gauge::default(),
            lambda_invocations: Family::default(),
            guests_compiled: Gauge::default(),
            guests_loaded_from_cache: Gauge::default(),
            audit_denials: Family::default(),
            quarantined_records: Family::default(),
            node: Family::default(),
            cluster_shards_held: Gauge::default(),
            cluster_lease_takeovers: Gauge::default(),
            cluster_dispatching: Gauge::default(),
            admin_requests: Family::default(),
            admin_request_seconds: Family::new_with_constructor(latency_histogram),
            connections_open: Gauge::default(),
            connections_timed_out: Family::default(),
        };
        let r = &mut m.registry;
        r.register("events", "Events taken from the outbox", m.events.clone());
        r.register(
            "conditions",
            "Hook conditions evaluated on events, by outcome",
            m.conditions.clone(),
        );
        r.register("delivery_attempts", "Delivery attempts", m.attempts.clone());
        r.register(
            "deliveries",
            "Deliveries that ended (succeeded or dead)",
            m.deliveries.clone(),
        );
        r.register(
            "attempt_duration_seconds",
            "Duration of delivery attempts",
            m.attempt_seconds.clone(),
        );
        r.register(
            "queue_depth",
            "Deliveries waiting for an attempt",
            m.queue_depth.clone(),
        );
        r.register(
            "queue_oldest_due_seconds",
            "How overdue the most overdue delivery is",
            m.queue_oldest_due_seconds.clone(),
        );
        r.register(
            "lambda_invocations",
            "Guest invocations by outcome",
            m.lambda_invocations.clone(),
        );
        r.register(
            "guests_compiled",
            "Guests compiled since start",
            m.guests_compiled.clone(),
        );
        r.register(
            "guests_loaded_from_cache",
            "Guests loaded precompiled from the cache since start",
            m.guests_loaded_from_cache.clone(),
        );
        r.register(
            "audit_denials",
            "Sandbox decisions denying a guest",
            m.audit_denials.clone(),
        );
        r.register(
            "quarantined_records",
            "Stored records moved to the quarantine because they do not decode",
            m.quarantined_records.clone(),
        );
        r.register(
            "node",
            "This node: its storage backend and its id (always 1)",
            m.node.clone(),
        );
        r.register(
            "cluster_shards_held",
            "Shards of the hooks whose deliveries this node attempts (of 64)",
            m.cluster_shards_held.clone(),
        );
        r.register(
            "cluster_lease_takeovers",
            "Shards taken over from nodes whose leases ran out, since start",
            m.cluster_lease_takeovers.clone(),
        );
        r.register(
            "cluster_dispatching",
            "1 while this node dispatches the outbox",
            m.cluster_dispatching.clone(),
        );
        r.register(
            "admin_requests",
            "Admin API requests",
            m.admin_requests.clone(),
        );
        r.register(
            "admin_request_duration_seconds",
            "Admin API request duration",
            m.admin_request_seconds.clone(),
        );
        r.register(
            "admin_connections_open",
            "Admin API connections open",
            m.connections_open.clone(),
        );
        r.register(
            "admin_connections_timed_out",
            "Admin API connections dropped for outliving a listener limit",
            m.connections_timed_out.clone(),
        );
        m
    }

    /// The registry in the OpenMetrics text format Prometheus scrapes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::new();
        m.events
            .get_or_create(&EventLabels {
                source: "crud".into(),
                event: "consumers".into(),
            })
            .inc();
        m.queue_depth.set(3);
        let text = m.render();
        assert!(
            text.contains(r#"hookd_events_total{source="crud",event="consumers"} 1"#),
            "{text}"
        );
        assert!(text.contains("hookd_queue_depth 3"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
