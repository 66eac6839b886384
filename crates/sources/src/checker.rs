//! The health checker: keeps one task per checked target in step with the
//! upstreams and targets in the store, and reports their health.

use crate::config::ActiveChecks;
use crate::health::{Checking, LiveTarget, TargetHealth};
use crate::probe::Prober;
use crate::target::{self, Plan, TargetConfig, TargetSpec};
use crate::{Chain, Error, Result};
use hookd_model::clock::{Clock, SystemClock};
use hookd_model::outbound::OutboundPolicy;
use hookd_outbound::Dialer;
use hookd_store::{ChildrenOf, Store};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How the checker runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which addresses may be probed; the one webhooks obey.
    pub policy: OutboundPolicy,
    /// How often upstreams and targets are read again from the store, so
    /// that changes apply without a restart.
    pub refresh: Duration,
    /// The time of the events published.
    pub clock: Arc<dyn Clock>,
}

impl Default for Settings {
    /// Private addresses refused, the store read every second, the wall clock.
    fn default() -> Self {
        Settings {
            policy: OutboundPolicy::default(),
            refresh: Duration::from_secs(1),
            clock: Arc::new(SystemClock),
        }
    }
}

/// What the reconciler and the target tasks share.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) dialer: Dialer,
    pub(crate) prober: Prober,
    pub(crate) clock: Arc<dyn Clock>,
    refresh: Duration,
    /// The state of each checked target, by target id.
    live: Mutex<HashMap<Uuid, LiveTarget>>,
}

impl Shared {
    /// Records what a target task knows, for the health report.
    pub(crate) fn report(&self, target: Uuid, state: LiveTarget) {
        lock(&self.live).insert(target, state);
    }

    fn forget(&self, target: Uuid) {
        lock(&self.live).remove(&target);
    }
}

/// A lock that outlives a panic elsewhere: the maps it guards stay
/// consistent whatever panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Kong's active health checks of upstream targets, publishing a
/// `balancer` / `health` event on each change (see the crate docs).
pub struct HealthChecker {
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl HealthChecker {
    /// A checker of the upstreams in `store`; nothing runs before
    /// [`HealthChecker::start`].
    pub fn new(store: Store, settings: Settings) -> Result<Self> {
        let dialer = Dialer::new(settings.policy);
        Ok(HealthChecker {
            shared: Arc::new(Shared {
                store,
                dialer: dialer.clone(),
                prober: Prober::new(dialer)?,
                clock: settings.clock,
                refresh: settings.refresh,
                live: Mutex::new(HashMap::new()),
            }),
            running: Mutex::new(None),
        })
    }

    /// Starts checking on the current Tokio runtime. Starting a running
    /// checker does nothing.
    pub fn start(&self) -> Result<()> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let mut running = lock(&self.running);
        if running.is_none() {
            let stop = CancellationToken::new();
            let task = runtime.spawn(reconcile_loop(Arc::clone(&self.shared), stop.clone()));
            *running = Some(Running { stop, task });
        }
        Ok(())
    }

    /// Stops every check and waits for them. Health and counters are
    /// forgotten: a restarted checker starts every address healthy, as
    /// Kong does after a restart.
    pub async fn shutdown(&self) {
        let running = lock(&self.running).take();
        let Some(running) = running else {
            return;
        };
        running.stop.cancel();
        if let Err(e) = running.task.await {
            tracing::error!(error = %e, "the health checker ended abnormally");
        }
        lock(&self.shared.live).clear();
    }

    /// The health of the targets of an upstream, for
    /// `GET /upstreams/{id}/health`; none when there is no such upstream.
    /// Targets come from the store, so a target is listed as soon as it is
    /// written, healthy until its first probe says otherwise.
    pub async fn health(&self, upstream_id: Uuid) -> Result<Option<Vec<TargetHealth>>> {
        let store = &self.shared.store;
        let Some(upstream) = store.get("upstreams", upstream_id).await? else {
            return Ok(None);
        };
        let checked = matches!(ActiveChecks::of_upstream(&upstream), Ok(Some(_)));
        let targets = store.list_all_children(targets_of(upstream_id)).await?;
        let live = lock(&self.shared.live);
        let reports = targets
            .iter()
            .filter_map(|entity| {
                let spec = TargetSpec::of_entity(entity)?;
                let checking = match live.get(&spec.id) {
                    _ if !checked || spec.weight == 0 => Checking::Off,
                    Some(state) => Checking::Live(state),
                    None => Checking::Pending,
                };
                Some(TargetHealth::new(entity, &spec, checking))
            })
            .collect();
        Ok(Some(reports))
    }
}

async fn reconcile_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let mut reconciler = Reconciler {
        shared: Arc::clone(&shared),
        stop: stop.clone(),
        plans: HashMap::new(),
        tasks: HashMap::new(),
    };
    loop {
        reconciler.reconcile().await;
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(shared.refresh) => {}
        }
    }
    reconciler.join_all().await;
}

/// The upstreams' checks as last read, and the running target tasks.
struct Reconciler {
    shared: Arc<Shared>,
    stop: CancellationToken,
    plans: HashMap<Uuid, PlanEntry>,
    tasks: HashMap<Uuid, TargetTask>,
}

/// The checks of an upstream and what they were read from, so they are
/// read (and a bad configuration logged) once per change.
struct PlanEntry {
    source: Value,
    plan: Option<Arc<Plan>>,
}

struct TargetTask {
    config: watch::Sender<Arc<TargetConfig>>,
    handle: JoinHandle<()>,
}

impl Reconciler {
    /// Starts, updates and stops target tasks to match the store. A store
    /// that fails to answer leaves everything running as it is.
    async fn reconcile(&mut self) {
        let wanted = match self.wanted().await {
            Ok(wanted) => wanted,
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "reading upstreams for health checks failed");
                return;
            }
        };
        let gone: Vec<Uuid> = self
            .tasks
            .iter()
            .filter(|(id, task)| {
                // A task that ended by itself panicked: it is started afresh.
                task.handle.is_finished()
                    || wanted.get(*id).is_none_or(|config| {
                        let running = &task.config.borrow().spec;
                        (&running.host, running.port) != (&config.spec.host, config.spec.port)
                    })
            })
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(task) = self.tasks.remove(&id) {
                task.handle.abort();
                // Waited for, so the task cannot report after being forgotten.
                if let Err(e) = task.handle.await
                    && e.is_panic()
                {
                    tracing::error!(target_id = %id, "a health check task panicked");
                }
            }
            self.shared.forget(id);
        }
        for (id, config) in wanted {
            match self.tasks.get(&id) {
                Some(task) => {
                    task.config.send_if_modified(|current| {
                        let changed = **current != *config;
                        if changed {
                            *current = Arc::clone(&config);
                        }
                        changed
                    });
                }
                None => {
                    let (tx, rx) = watch::channel(config);
                    let handle =
                        tokio::spawn(target::run(Arc::clone(&self.shared), rx, self.stop.clone()));
                    self.tasks.insert(id, TargetTask { config: tx, handle });
                }
            }
        }
    }

    /// The configuration of every target to check, by target id.
    async fn wanted(&mut self) -> Result<HashMap<Uuid, Arc<TargetConfig>>> {
        let shared = Arc::clone(&self.shared);
        let store = &shared.store;
        let upstreams = store.list_all("upstreams").await?;
        let mut seen = HashSet::new();
        let mut wanted = HashMap::new();
        for upstream in &upstreams {
            let Some(id) = upstream
                .get("id")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
            else {
                continue;
            };
            seen.insert(id);
            let Some(plan) = self.plan(id, upstream) else {
                continue;
            };
            let targets = store.list_all_children(targets_of(id)).await?;
            for spec in targets.iter().filter_map(TargetSpec::of_entity) {
                // Kong's balancer leaves targets of weight 0 out, and so its checks.
                if spec.weight > 0 {
                    let config = TargetConfig {
                        plan: Arc::clone(&plan),
                        spec,
                    };
                    wanted.insert(config.spec.id, Arc::new(config));
                }
            }
        }
        self.plans.retain(|id, _| seen.contains(id));
        Ok(wanted)
    }

    /// The upstream's checks when they are on, read again only when its
    /// configuration changed.
    fn plan(&mut self, id: Uuid, upstream: &Value) -> Option<Arc<Plan>> {
        let source = json!([upstream.get("healthchecks"), upstream.get("host_header")]);
        if let Some(entry) = self.plans.get(&id)
            && entry.source == source
        {
            return entry.plan.clone();
        }
        let plan = match ActiveChecks::of_upstream(upstream) {
            Ok(checks) => checks.map(|checks| Arc::new(Plan::new(checks))),
            Err(e) => {
                tracing::warn!(upstream_id = %id, error = %Chain(&e), "active health checks of this upstream are off");
                None
            }
        };
        self.plans.insert(
            id,
            PlanEntry {
                source,
                plan: plan.clone(),
            },
        );
        plan
    }

    /// Waits for every target task; they end on the stop signal.
    async fn join_all(self) {
        for (_, task) in self.tasks {
            if let Err(e) = task.handle.await {
                tracing::error!(error = %e, "a health check task ended abnormally");
            }
        }
    }
}

/// The targets of one upstream.
fn targets_of(upstream: Uuid) -> ChildrenOf<'static> {
    ChildrenOf {
        parent: "upstreams",
        parent_id: upstream,
        child: "targets",
    }
}
