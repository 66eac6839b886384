//! `GET /upstreams/{id or name}/health`: each target's state under the
//! active health checks, in the shape of Kong's endpoint.

use crate::AdminState;
use crate::api::{Api, doc};
use crate::crud::find;
use crate::error::{ApiError, ApiResult};
use crate::resource::Resource;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::get;
use hookd_model::entity;
use serde_json::{Value, json};
use uuid::Uuid;

/// The route.
pub fn router() -> Api {
    Api::new().route(
        "/upstreams/{key}/health",
        get(health),
        [
            doc(Method::GET, "Each target's health under the active checks")
                .json(200, "List:TargetHealth"),
        ],
    )
}

async fn health(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let upstreams = entity::by_name("upstreams").ok_or(ApiError::NOT_FOUND)?;
    let upstream = find(&state, Resource::Entity(upstreams), None, &key)
        .await?
        .ok_or(ApiError::NOT_FOUND)?;
    let id: Uuid = upstream["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or(ApiError::NOT_FOUND)?;
    let targets = state
        .health
        .health(id)
        .await
        .map_err(|e| ApiError::Internal(format!("reading target health: {e}")))?
        .ok_or(ApiError::NOT_FOUND)?;
    Ok(Json(
        json!({"data": targets, "next": null, "node_id": state.info.node_id}),
    ))
}
