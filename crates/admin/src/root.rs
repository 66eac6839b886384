//! `GET /` and `GET /status`: what this server is and how it is doing.

use crate::AdminState;
use crate::error::ApiResult;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The root routes.
pub fn router() -> Router<AdminState> {
    Router::new()
        .route("/", get(root))
        .route("/status", get(status))
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

async fn status(State(state): State<AdminState>) -> ApiResult<Json<Value>> {
    let pending = state.store.outbox_len()?;
    Ok(Json(json!({
        "database": { "reachable": true },
        "outbox": { "pending": pending },
    })))
}
