//! `/event-hooks/sources`: the catalogue of sources, events and fields.

use crate::AdminState;
use crate::api::{Api, doc};
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::get;
use serde_json::{Value, json};

const NOT_FOUND: &str = "Not Found";

/// The catalogue routes.
pub fn router() -> Api {
    Api::new()
        .route(
            "/event-hooks/sources",
            get(all),
            [doc(
                Method::GET,
                "Every source, its events and their fields",
            )],
        )
        .route(
            "/event-hooks/sources/{source}",
            get(source),
            [doc(Method::GET, "The events of one source")],
        )
        .route(
            "/event-hooks/sources/{source}/{event}",
            get(event),
            [doc(
                Method::GET,
                "One event: its fields, unique fields and description",
            )],
        )
}

async fn all(State(state): State<AdminState>) -> Json<Value> {
    Json(json!({ "data": &*state.catalogue }))
}

async fn source(
    State(state): State<AdminState>,
    Path(source): Path<String>,
) -> ApiResult<Json<Value>> {
    let events = state
        .catalogue
        .source(&source)
        .ok_or(ApiError::NotFound(NOT_FOUND))?;
    Ok(Json(json!({ "data": events })))
}

async fn event(
    State(state): State<AdminState>,
    Path((source, event)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let info = state
        .catalogue
        .event(&source, &event)
        .ok_or(ApiError::NotFound(NOT_FOUND))?;
    Ok(Json(json!({ "data": info })))
}
