//! The server assembled from its configuration: the store, the catalogue,
//! metrics, the sandbox, the template renderer, the delivery engine, the
//! health checker and the Admin API, built once here, so that `hookd
//! serve` and the tests run the same server.

use crate::config::{Config, Storage};
use anyhow::Context;
use axum::Router;
use hookd_admin::{AdminState, Rbac, ServerInfo};
use hookd_delivery::Deliveries;
use hookd_delivery::random::ThreadRandom;
use hookd_metrics::Metrics;
use hookd_model::clock::{Clock, SystemClock};
use hookd_sandbox::Sandbox;
use hookd_sources::HealthChecker;
use hookd_store::{DispatchLock, HookChange, ShardLeases, ShardSet, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

/// How long shutdown waits for requests, then for delivery attempts, under way.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// How often the audit log's retention is applied.
const PRUNE_AUDIT_EVERY: Duration = Duration::from_secs(60);

/// A hookd server: every part built, nothing running until [`App::serve`].
pub struct App {
    config: Config,
    store: Store,
    metrics: Arc<Metrics>,
    deliveries: Deliveries,
    health: Arc<HealthChecker>,
    admin: AdminState,
    /// On PostgreSQL, this node's part beside the others on its database.
    cluster: Option<Cluster>,
    shutdown: CancellationToken,
}

/// What a node on PostgreSQL runs to share its database with others: the
/// leases of its shards of the hooks, and a bid for the dispatch lock.
struct Cluster {
    connection: hookd_store::Connection,
    leases: ShardLeases,
}

impl App {
    /// Opens the configured store and builds every part. Webhook-custom
    /// templates are rendered by this program run as `hookd
    /// template-worker`.
    pub async fn build(config: &Config) -> anyhow::Result<App> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let (store, cluster) = open_store(config).await?;
        let shards = cluster
            .as_ref()
            .map_or_else(ShardSet::all, |c| c.leases.shards());
        let catalogue = Arc::new(config.catalogue(hookd_model::entity::crud_entities())?);
        let metrics = Arc::new(Metrics::new());
        let sandbox =
            Sandbox::new(config.sandbox()?).context("setting up the WebAssembly sandbox")?;
        let deliveries = Deliveries::new(hookd_delivery::Parts {
            store: store.clone(),
            catalogue: Arc::clone(&catalogue),
            settings: config.delivery(template_renderer(config)?),
            clock: Arc::new(SystemClock),
            random: Arc::new(ThreadRandom),
            sandbox: sandbox.clone(),
            metrics: Arc::clone(&metrics),
            shards,
        })
        .context("setting up deliveries")?;
        let health = Arc::new(
            HealthChecker::new(
                store.clone(),
                hookd_sources::Settings {
                    policy: config.outbound_policy(),
                    ..hookd_sources::Settings::default()
                },
            )
            .context("setting up health checks")?,
        );
        let info = ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: hostname(),
            node_id: store.node_id().await?.to_string(),
            configuration: config.redacted(),
        };
        metrics
            .node
            .get_or_create(&hookd_metrics::NodeLabels {
                backend: store.kind().to_string(),
                node_id: info.node_id.clone(),
            })
            .set(1);
        let admin = AdminState {
            store: store.clone(),
            catalogue,
            body_limit: config.body_limit,
            body_max_depth: config.body_max_depth,
            info: Arc::new(info),
            deliveries: deliveries.clone(),
            health: Arc::clone(&health),
            sandbox,
            guest_size_limit: config.guest_size_limit,
            metrics: Arc::clone(&metrics),
            rbac: Rbac::new(config.enforce_rbac, &config.admin_token),
            secret_overlap: config.secret_overlap.0,
        };
        Ok(App {
            config: config.clone(),
            store,
            metrics,
            deliveries,
            health,
            admin,
            cluster,
            shutdown: CancellationToken::new(),
        })
    }

    /// The Admin API of this server, with the console at `/console` unless
    /// it is turned off, to serve or to call in-process. The console calls
    /// the same Admin API in-process for everything it shows and does.
    pub fn router(&self) -> NormalizePath<Router> {
        let admin = hookd_admin::app(self.admin.clone());
        let routes = if self.config.console {
            hookd_console::router(admin.clone(), self.config.console())
        } else {
            Router::new()
        };
        NormalizePathLayer::trim_trailing_slash().layer(routes.fallback_service(admin))
    }

    /// Cancelling this token (a signal handler, a test) stops the server:
    /// [`App::serve`] then lets the work under way finish and returns.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Starts deliveries, health checks and audit retention, serves the
    /// Admin API on `listener` until shutdown, then stops every part in
    /// turn and closes the store. On PostgreSQL the node dispatches and
    /// checks health only while it holds the dispatch lock.
    pub async fn serve(mut self, listener: TcpListener) -> anyhow::Result<()> {
        let leases_stop = CancellationToken::new();
        let cluster = match self.cluster.take() {
            None => {
                self.deliveries.start();
                self.health.start().context("starting health checks")?;
                None
            }
            Some(cluster) => {
                self.deliveries.start_attempts();
                Some(ClusterTasks {
                    leases: tokio::spawn(cluster.leases.run(leases_stop.clone().cancelled_owned())),
                    lead: tokio::spawn(lead(
                        cluster.connection,
                        self.deliveries.clone(),
                        Arc::clone(&self.health),
                        self.shutdown.clone(),
                    )),
                    news: self
                        .store
                        .hook_changes()
                        .map(|news| tokio::spawn(hear_hooks(news, self.deliveries.clone()))),
                })
            }
        };
        let config = &self.config;
        if config.enforce_rbac && config.admin_token.is_empty() {
            tracing::warn!(
                "enforce_rbac is on without admin_token: only admins with tokens can use the Admin API"
            );
        }
        let audit_retention = tokio::spawn(prune_audit(
            self.store.clone(),
            AuditRetention::of(config),
            self.shutdown.clone(),
        ));
        let addr = listener.local_addr()?;
        tracing::info!(data_dir = %config.data_dir.display(), "hookd admin API listening on http://{addr}");
        crate::listener::serve(
            listener,
            self.router(),
            config.listener(),
            Arc::clone(&self.metrics),
            self.shutdown.clone(),
            SHUTDOWN_GRACE,
        )
        .await;
        // Attempts under way finish and are recorded; one that outlasts this
        // wait runs again after the next start (at least once).
        if tokio::time::timeout(SHUTDOWN_GRACE, self.deliveries.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("deliveries still running at shutdown will run again after restart");
        }
        self.health.shutdown().await;
        let _ = audit_retention.await;
        let mut lost = None;
        if let Some(tasks) = cluster {
            // Attempts have ended: the shards go back at once.
            leases_stop.cancel();
            let _ = tasks.leases.await;
            if let Some(news) = tasks.news {
                news.abort();
            }
            if tasks.lead.is_finished() {
                lost = tasks.lead.await.context("bidding for the dispatch lock")?;
            } else {
                // Dropping the lock lets another node dispatch.
                tasks.lead.abort();
            }
        }
        self.store.close().await;
        if let Some(e) = lost {
            return Err(e).context("stopped");
        }
        tracing::info!("hookd stopped; store flushed");
        Ok(())
    }
}

/// The configured store: sled in the data directory, or PostgreSQL with
/// this node's part in sharing it.
async fn open_store(config: &Config) -> anyhow::Result<(Store, Option<Cluster>)> {
    match config.storage {
        Storage::Sled => {
            let store = Store::open_with_cache(&config.data_dir, config.store_cache_capacity)
                .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
            Ok((store, None))
        }
        Storage::Postgres => {
            let connection = config.postgres();
            let node_id = node_id_in(&config.data_dir)?;
            let store = Store::connect(&connection, node_id)
                .await
                .context("opening the store on PostgreSQL")?;
            let leases = ShardLeases::new(&connection, node_id, config.cluster_lease.0);
            Ok((store, Some(Cluster { connection, leases })))
        }
    }
}

/// The id of the node whose data directory `dir` is: made on its first
/// start, kept across restarts (on PostgreSQL the database is shared, and
/// a node's id is its own).
fn node_id_in(dir: &std::path::Path) -> anyhow::Result<uuid::Uuid> {
    let file = dir.join("node_id");
    match std::fs::read_to_string(&file) {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{} does not hold a node id", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4();
            let fresh = dir.join("node_id.new");
            std::fs::write(&fresh, id.to_string())
                .and_then(|()| std::fs::rename(&fresh, &file))
                .with_context(|| format!("writing {}", file.display()))?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

/// The tasks of a node on PostgreSQL, while it serves.
struct ClusterTasks {
    leases: tokio::task::JoinHandle<()>,
    /// Ends with why the dispatch lock may be lost, or none at shutdown.
    lead: tokio::task::JoinHandle<Option<hookd_store::Error>>,
    news: Option<tokio::task::JoinHandle<()>>,
}

/// How long a node waits to bid for the dispatch lock again after the
/// database failed to answer.
const BID_AGAIN: Duration = Duration::from_secs(1);

/// Bids for the dispatch lock until this node holds it, then dispatches
/// and checks health. Stops the server when the lock may be lost: another
/// node may dispatch by then, and two must never dispatch at once. Ends
/// with why, or with none at shutdown (aborted, it drops the lock).
async fn lead(
    connection: hookd_store::Connection,
    deliveries: Deliveries,
    health: Arc<HealthChecker>,
    shutdown: CancellationToken,
) -> Option<hookd_store::Error> {
    let mut told = false;
    let mut lock = loop {
        let bid = DispatchLock::acquire(&connection, || {
            if !std::mem::replace(&mut told, true) {
                tracing::info!(
                    "another node dispatches on this database; this one serves and attempts its shards"
                );
            }
        });
        tokio::select! {
            () = shutdown.cancelled() => return None,
            bid = bid => match bid {
                Ok(lock) => break lock,
                Err(e) => {
                    tracing::error!(error = %e, "bidding for the dispatch lock failed; bidding again");
                    tokio::time::sleep(BID_AGAIN).await;
                }
            },
        }
    };
    if shutdown.is_cancelled() {
        // Won in the same moment as shutdown began: the health checker
        // may already be stopped, and must not start again.
        return None;
    }
    tracing::info!("this node dispatches on its database");
    deliveries.start_dispatching();
    if let Err(e) = health.start() {
        tracing::error!(error = %e, "starting health checks failed");
    }
    let e = lock.lost().await;
    tracing::error!(error = %e, "the dispatch lock may be lost; stopping");
    shutdown.cancel();
    Some(e)
}

/// Passes news of hooks written through other nodes to the delivery
/// engine, until aborted.
async fn hear_hooks(
    mut news: tokio::sync::broadcast::Receiver<HookChange>,
    deliveries: Deliveries,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match news.recv().await {
            Ok(change) => deliveries.hook_changed_elsewhere(change),
            Err(RecvError::Lagged(_)) => deliveries.hook_changed_elsewhere(HookChange::Unknown),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Templates are rendered by this same program, run as
/// `hookd template-worker` (see hookd_template::worker).
fn template_renderer(config: &Config) -> anyhow::Result<hookd_template::Renderer> {
    let program = std::env::current_exe().context("finding hookd's own executable")?;
    let command = hookd_template::WorkerCommand {
        program,
        args: vec!["template-worker".into()],
    };
    Ok(hookd_template::Renderer::new(
        command,
        config.template_limits(),
    ))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// How long audit decisions are kept: allowed ones, and denials, which
/// outlive them.
struct AuditRetention {
    allowed: (usize, Duration),
    denied: (usize, Duration),
}

impl AuditRetention {
    fn of(config: &Config) -> Self {
        AuditRetention {
            allowed: (config.audit_retention_count, config.audit_retention_age.0),
            denied: (
                config.audit_denied_retention_count,
                config.audit_denied_retention_age.0,
            ),
        }
    }
}

/// Applies the audit log's retention every minute until shutdown.
async fn prune_audit(store: Store, retention: AuditRetention, shutdown: CancellationToken) {
    loop {
        let now = SystemClock.now_ms();
        let keep = |(keep, age): (usize, Duration)| hookd_store::Retention {
            keep,
            before_ms: now - age.as_millis() as i64,
        };
        match store
            .prune_audit(keep(retention.allowed), keep(retention.denied))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "audit decisions past retention removed"),
            Err(e) => tracing::error!(error = %e, "applying audit retention failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(PRUNE_AUDIT_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use std::collections::BTreeSet;
    use tower::ServiceExt;

    #[test]
    fn a_nodes_id_is_made_once_and_kept_in_its_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = node_id_in(dir.path()).unwrap();
        assert_eq!(node_id_in(dir.path()).unwrap(), first);
        std::fs::write(dir.path().join("node_id"), "not an id").unwrap();
        assert!(node_id_in(dir.path()).is_err());
    }

    /// Every method every documented path answers (anything but 405) is
    /// documented, and every documented operation is answered: the
    /// OpenAPI document and the routes are one list.
    #[tokio::test]
    async fn the_openapi_document_covers_every_route_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let app = App::build(&config).await.unwrap().router();
        let call = |method: Method, uri: &str| {
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap();
            app.clone().oneshot(request)
        };
        let answer = call(Method::GET, "/openapi.json").await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX)
            .await
            .unwrap();
        let document: openapiv3::OpenAPI =
            serde_json::from_slice(&bytes).expect("a valid OpenAPI 3 document");
        let id = uuid::Uuid::new_v4().to_string();
        let mut checked = 0;
        for (path, item) in &document.paths.paths {
            let item = item.as_item().expect("paths are inline");
            let documented: BTreeSet<&str> = item.iter().map(|(method, _)| method).collect();
            let concrete: String = path
                .split('/')
                .map(|seg| {
                    if seg.starts_with('{') {
                        id.as_str()
                    } else {
                        seg
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            for method in [
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ] {
                let status = call(method.clone(), &concrete).await.unwrap().status();
                let routed = status != StatusCode::METHOD_NOT_ALLOWED;
                let is_documented = documented.contains(method.as_str().to_lowercase().as_str());
                assert_eq!(routed, is_documented, "{method} {path}: answered {status}");
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked} combinations checked");
    }
}
