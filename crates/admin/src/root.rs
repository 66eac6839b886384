//! `GET /` and `GET /status`: what this server is and how it is doing.

use crate::AdminState;
use crate::api::{Api, doc};
use crate::error::ApiResult;
use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
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
                "Whether the store is reachable, and queue figures",
            )],
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

async fn status(State(state): State<AdminState>) -> ApiResult<Json<Value>> {
    let pending = state.store.outbox_len()?;
    Ok(Json(json!({
        "database": { "reachable": true },
        "outbox": { "pending": pending },
    })))
}
