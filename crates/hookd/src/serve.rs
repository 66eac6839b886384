//! `hookd serve`: opens the store, wires the parts together, serves the
//! Admin API and shuts down cleanly on SIGINT or SIGTERM.

use crate::config::{Config, LogFormat};
use anyhow::Context;
use hookd_admin::{AdminState, Rbac, ServerInfo};
use hookd_delivery::Deliveries;
use hookd_delivery::clock::{SystemClock, ThreadRandom};
use hookd_metrics::Metrics;
use hookd_sandbox::Sandbox;
use hookd_sources::HealthChecker;
use hookd_store::Store;
use std::io::IsTerminal;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// How long shutdown waits for requests, then for delivery attempts, under way.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

pub fn run(config: Config) -> anyhow::Result<()> {
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match config.log_format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let catalogue = Arc::new(config.catalogue(hookd_model::entity::crud_entities())?);
    let metrics = Arc::new(Metrics::new());
    let sandbox = Sandbox::new(config.sandbox()?).context("setting up the WebAssembly sandbox")?;
    let deliveries = Deliveries::new(
        store.clone(),
        Arc::clone(&catalogue),
        config.delivery(template_renderer(&config)?),
        Arc::new(SystemClock),
        Arc::new(ThreadRandom),
        sandbox.clone(),
        Arc::clone(&metrics),
    )
    .context("setting up deliveries")?;
    deliveries.start();
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
    health.start().context("starting health checks")?;
    let info = ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: hostname(),
        node_id: store.node_id()?.to_string(),
        configuration: config.redacted(),
    };
    let state = AdminState {
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
    };
    if config.enforce_rbac && config.admin_token.is_empty() {
        tracing::warn!(
            "enforce_rbac is on without admin_token: only admins with tokens can use the Admin API"
        );
    }
    let audit_retention = tokio::spawn(prune_audit(store.clone(), config.clone()));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(data_dir = %config.data_dir.display(), "hookd admin API listening on http://{addr}");
    crate::listener::serve(
        listener,
        hookd_admin::app(state),
        config.listener(),
        metrics,
        shutdown_signal(),
        SHUTDOWN_GRACE,
    )
    .await;
    // Attempts under way finish and are recorded; one that outlasts this
    // wait runs again after the next start (at least once).
    if tokio::time::timeout(SHUTDOWN_GRACE, deliveries.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("deliveries still running at shutdown will run again after restart");
    }
    health.shutdown().await;
    audit_retention.abort();
    store.close();
    tracing::info!("hookd stopped; store flushed");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
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

/// Applies the audit log's retention every minute.
async fn prune_audit(store: Store, config: Config) {
    loop {
        let now = hookd_delivery::clock::Clock::now_ms(&SystemClock);
        let keep = |keep: usize, age: crate::config::Dur| hookd_store::Retention {
            keep,
            before_ms: now - age.0.as_millis() as i64,
        };
        match store.prune_audit(
            keep(config.audit_retention_count, config.audit_retention_age),
            keep(
                config.audit_denied_retention_count,
                config.audit_denied_retention_age,
            ),
        ) {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "audit decisions past retention removed"),
            Err(e) => tracing::error!(error = %e, "applying audit retention failed"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}
