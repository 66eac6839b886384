//! Stored records that do not decode, moved aside by the loops that met
//! them: `/quarantine` lists them, `/quarantine/{id}` shows or deletes one,
//! `/quarantine/{id}/retry` puts one back where it came from.

use crate::AdminState;
use crate::api::{Api, doc};
use crate::error::{ApiError, ApiResult};
use crate::paging::ListRequest;
use crate::primary_key::PrimaryKey;
use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hookd_store::{Quarantined, Retried};
use serde_json::{Value, json};
use uuid::Uuid;

/// The routes.
pub fn router() -> Api {
    Api::new()
        .route(
            "/quarantine",
            get(list),
            [doc(
                Method::GET,
                "Stored records that do not decode, moved aside, oldest first",
            )
            .json(200, "List:Quarantined")],
        )
        .route(
            "/quarantine/{id}",
            get(one).delete(remove),
            [
                doc(Method::GET, "One quarantined record with its raw bytes")
                    .json(200, "Quarantined"),
                doc(Method::DELETE, "Delete a quarantined record for good").empty(204),
            ],
        )
        .route(
            "/quarantine/{id}/retry",
            post(retry),
            [doc(
                Method::POST,
                "Put a quarantined record back where it came from, if it decodes now",
            )
            .json(200, "Quarantined")],
        )
}

/// A record as the API shows it; `raw` only when shown alone, since it
/// may be large.
pub(crate) fn view(record: &Quarantined, with_raw: bool) -> Value {
    let mut value = json!({
        "id": record.id,
        "origin": record.origin.as_str(),
        "key": record.key_text(),
        "error": record.error,
        "quarantined_at_ms": record.at_ms,
        "size": record.raw.len(),
    });
    if with_raw {
        value["raw"] = json!(STANDARD.encode(&record.raw));
        value["raw_text"] = json!(String::from_utf8_lossy(&record.raw));
    }
    value
}

async fn list(State(state): State<AdminState>, asked: ListRequest) -> ApiResult<Json<Value>> {
    let listed = state.store.quarantine_page(&asked.page()?).await?;
    let data = listed.data.iter().map(|r| view(r, false)).collect();
    Ok(asked.answer(data, listed.next))
}

/// The quarantined record `id`; 404 when there is none.
async fn find(state: &AdminState, id: Uuid) -> ApiResult<Quarantined> {
    state
        .store
        .quarantined(id)
        .await?
        .ok_or(ApiError::NOT_FOUND)
}

async fn one(
    State(state): State<AdminState>,
    PrimaryKey(id): PrimaryKey,
) -> ApiResult<Json<Value>> {
    Ok(Json(view(&find(&state, id).await?, true)))
}

async fn remove(
    State(state): State<AdminState>,
    PrimaryKey(id): PrimaryKey,
) -> ApiResult<StatusCode> {
    if state.store.delete_quarantined(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NOT_FOUND)
    }
}

/// 200 with the record as it was when it went back; 409 when it stays,
/// with why (the new decode error, or a newer record under its key).
async fn retry(
    State(state): State<AdminState>,
    PrimaryKey(id): PrimaryKey,
) -> ApiResult<Json<Value>> {
    let record = find(&state, id).await?;
    match state.store.retry_quarantined(id).await? {
        Some(Retried::Restored) => Ok(Json(view(&record, false))),
        Some(Retried::StillCorrupt(again)) => Err(ApiError::Conflict(format!(
            "the record still does not decode and stays in the quarantine: {}",
            again.error
        ))),
        Some(Retried::Superseded) => Err(ApiError::Conflict(
            "a newer record is stored under its key; delete this one".into(),
        )),
        None => Err(ApiError::NOT_FOUND),
    }
}
