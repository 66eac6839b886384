//! `/event-hooks/sources`: the catalogue of sources, events and fields,
//! answered as Kong answers it, and hookd's example of each event.

use crate::AdminState;
use crate::api::{Api, doc};
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::get;
use hookd_model::example::{self, Example, ExampleError};
use serde::Serialize;
use serde_json::{Value, json};

/// Kong's catalogue answers say `Not Found`, unlike its other endpoints.
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
        .route(
            "/event-hooks/sources/{source}/{event}/example",
            get(event_example),
            [doc(
                Method::GET,
                "An example of the event as a handler receives it: {source, event, data}",
            )
            .json(200, "EventExample")],
        )
}

async fn all(State(state): State<AdminState>) -> Json<Value> {
    Json(json!({ "data": &*state.catalogue }))
}

async fn source(
    State(state): State<AdminState>,
    Path(source): Path<String>,
) -> ApiResult<Json<Value>> {
    found(state.catalogue.source(&source))
}

async fn event(
    State(state): State<AdminState>,
    Path((source, event)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    found(state.catalogue.event(&source, &event))
}

/// A part of the catalogue as Kong answers it, `{"data": ...}`, or its
/// 404 when there is no such source or event.
fn found(part: Option<impl Serialize>) -> ApiResult<Json<Value>> {
    let part = part.ok_or(ApiError::NotFound(NOT_FOUND))?;
    Ok(Json(json!({ "data": part })))
}

/// Not part of Kong's API: its 404 is hookd's own (`Not found`).
async fn event_example(
    State(state): State<AdminState>,
    Path((source, event)): Path<(String, String)>,
) -> ApiResult<Json<Example>> {
    match example::example(&state.catalogue, &source, &event) {
        Ok(example) => Ok(Json(example)),
        Err(ExampleError::Unknown { .. }) => Err(ApiError::NOT_FOUND),
        Err(bug) => Err(ApiError::Internal(bug.to_string())),
    }
}
