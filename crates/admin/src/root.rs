//! `GET /` and `GET /status`: what this server is and how it is doing.

use crate::AdminState;
use crate::api::{Api, doc};
use crate::error::ApiResult;
use crate::observe::oldest_due_seconds;
use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use hookd_model::clock::{Clock, SystemClock};
use serde_json::{Value, json};

/// The root routes.
pub fn router() -> Api {
    Api::new()
        .route(
            "/",
            get(root),
            [doc(
                Method::GET,
                "Version, hostname, node id and configuration (secrets redacted)",
            )],
        )
        .route(
            "/status",
            get(status),
            [doc(
                Method::GET,
                "Whether the store is reachable, queue figures, the last hour's \
                 attempts minute by minute and the hooks failing now",
            )
            .json(200, "Status")],
        )
}

async fn root(State(state): State<AdminState>) -> Json<Value> {
    let info = &state.info;
    Json(json!({
        "tagline": "Welcome to hookd",
        "version": info.version,
        "hostname": info.hostname,
        "node_id": info.node_id,
        "configuration": info.configuration,
    }))
}

/// This node's part in the work: whether it dispatches, the shards of the
/// hooks it attempts, and those it took over from nodes that died.
fn node_status(state: &AdminState) -> Value {
    let shards = state.deliveries.shards();
    json!({
        "id": state.info.node_id,
        "dispatching": state.deliveries.dispatching(),
        "shards": shards.count(),
        "lease_takeovers": shards.takeovers(),
    })
}

async fn status(State(state): State<AdminState>) -> ApiResult<Json<Value>> {
    let now_ms = SystemClock.now_ms();
    let pending = state.store.outbox_len().await?;
    let last_hour: Vec<Value> = state
        .metrics
        .last_hour
        .minutes(now_ms)
        .iter()
        .map(|m| json!({"start": m.start, "ok": m.ok, "failed": m.failed}))
        .collect();
    let failing: Vec<Value> = state
        .deliveries
        .failing_hooks()
        .await?
        .iter()
        .map(|f| {
            json!({
                "hook": f.hook,
                "failures": f.failures,
                "failing_since": f.failing_since_ms / 1000,
                "paused_since": f.paused_at_ms.map(|at| at / 1000),
            })
        })
        .collect();
    Ok(Json(json!({
        "database": { "reachable": true, "backend": state.store.kind() },
        "node": node_status(&state),
        "outbox": { "pending": pending },
        "deliveries": {
            "queued": state.deliveries.queue_depth().await?,
            "oldest_due_seconds": oldest_due_seconds(&state, now_ms).await,
            "last_hour": last_hour,
        },
        "failing_hooks": failing,
    })))
}
