//! Running hooks by hand and watching deliveries: `/event-hooks/{id}/test`,
//! `/event-hooks/{id}/ping`, `/event-hooks/{id}/deliveries`,
//! `/dead-letters`, `/deliveries/{id}` and `/deliveries/{id}/retry`.

use crate::AdminState;
use crate::api::{Api, doc};
use crate::body::KongBody;
use crate::crud::find;
use crate::error::{ApiError, ApiResult};
use crate::paging::ListRequest;
use crate::primary_key::PrimaryKey;
use crate::resource::Resource;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hookd_delivery::Error as DeliveryError;
use hookd_delivery::condition::Verdict;
use hookd_delivery::handler::TestFailure;
use hookd_model::EventHook;
use hookd_model::delivery::Delivery;
use serde_json::{Value, json};

/// The routes.
pub fn router() -> Api {
    Api::new()
        .route(
            "/event-hooks/{key}/test",
            post(test),
            [doc(
                Method::POST,
                "Run the hook's handler now on the posted data, outside the queue \
                 (when the hook's condition, if it has one, holds for it)",
            )
            .body("Object")
            .json(200, "TestAnswer")
            .json(422, "GuestError")],
        )
        .route(
            "/event-hooks/{key}/ping",
            get(ping),
            [doc(Method::GET, "Send Kong's ping to a webhook hook's URL").empty(200)],
        )
        .route(
            "/event-hooks/{key}/deliveries",
            get(hook_deliveries),
            [doc(Method::GET, "The hook's deliveries, newest first").json(200, "List:Delivery")],
        )
        .route(
            "/dead-letters",
            get(dead_letters),
            [doc(
                Method::GET,
                "Deliveries that died (every attempt failed), across hooks, the latest to die first",
            )
            .json(200, "List:Delivery")],
        )
        .route(
            "/deliveries/{id}",
            get(one),
            [doc(Method::GET, "One delivery with every attempt").json(200, "Delivery")],
        )
        .route(
            "/deliveries/{id}/retry",
            post(retry),
            [doc(
                Method::POST,
                "Queue a delivery (dead letters included) for another attempt now",
            )
            .json(202, "Delivery")],
        )
}

async fn load_hook(state: &AdminState, key: &str) -> ApiResult<EventHook> {
    let value = find(state, Resource::Hooks, None, key)
        .await?
        .ok_or(ApiError::NOT_FOUND)?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::Internal(format!("stored event hook does not decode: {e}")))
}

/// Kong's answer when a handler fails under `/test`.
fn unexpected(err: impl Into<String>) -> (StatusCode, Value) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"message": "An unexpected error occurred", "err": err.into()}),
    )
}

/// A guest's own error under `/test`: not an unexpected failure of the
/// server but the guest refusing the data, answered 422 with its message
/// and where in the chain it stopped.
fn guest_error(refused: &TestFailure) -> (StatusCode, Value) {
    let TestFailure::GuestError {
        step,
        function,
        message,
    } = refused
    else {
        return unexpected(refused.to_string());
    };
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "message": refused.to_string(),
            "guest_error": {"step": step + 1, "function": function, "message": message},
        }),
    )
}

/// Kong's answer of `/test`, with `condition` beside Kong's members when
/// the hook has one: whether it held (the handler ran only then), and
/// `condition_error` when it could not be evaluated.
async fn test(
    State(state): State<AdminState>,
    Path(key): Path<String>,
    body: KongBody,
) -> ApiResult<Response> {
    let hook = load_hook(&state, &key).await?;
    let data = body.value;
    let tested = state.deliveries.test(&hook, data.clone()).await;
    let (status, mut answer) = match tested.result {
        Ok(result) => (StatusCode::OK, json!({"data": data, "result": result})),
        Err(refused @ TestFailure::GuestError { .. }) => guest_error(&refused),
        Err(TestFailure::Unexpected(err)) => unexpected(err),
    };
    if let Some(verdict) = &tested.condition {
        answer["condition"] = json!(verdict.held());
        if let Verdict::Failed(error) = verdict {
            answer["condition_error"] = json!(error);
        }
    }
    Ok((status, Json(answer)).into_response())
}

async fn ping(State(state): State<AdminState>, Path(key): Path<String>) -> ApiResult<Response> {
    let hook = load_hook(&state, &key).await?;
    Ok(match state.deliveries.ping(&hook, "ping").await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": e.to_string()})),
        )
            .into_response(),
    })
}

/// A delivery as the API shows it: the stored record (or the one in
/// memory, before its first attempt ends), with `in_flight` while an
/// attempt runs.
fn view(state: &AdminState, delivery: &Delivery) -> Value {
    let mut value = serde_json::to_value(delivery).unwrap_or(Value::Null);
    value["state"] = json!(state.deliveries.state_of(delivery));
    value
}

/// A page of deliveries as the API answers a listing.
fn listing(
    state: &AdminState,
    listed: hookd_store::Listed<Delivery>,
    asked: &ListRequest,
) -> Json<Value> {
    let data: Vec<Value> = listed.data.iter().map(|d| view(state, d)).collect();
    asked.answer(data, listed.next)
}

async fn hook_deliveries(
    State(state): State<AdminState>,
    Path(key): Path<String>,
    asked: ListRequest,
) -> ApiResult<Json<Value>> {
    let hook = load_hook(&state, &key).await?;
    let listed = state
        .deliveries
        .hook_deliveries(hook.id, &asked.page()?)
        .await?;
    Ok(listing(&state, listed, &asked))
}

async fn dead_letters(
    State(state): State<AdminState>,
    asked: ListRequest,
) -> ApiResult<Json<Value>> {
    let listed = state.store.dead_deliveries(&asked.page()?).await?;
    Ok(listing(&state, listed, &asked))
}

async fn one(
    State(state): State<AdminState>,
    PrimaryKey(id): PrimaryKey,
) -> ApiResult<Json<Value>> {
    let delivery = state
        .deliveries
        .delivery(id)
        .await?
        .ok_or(ApiError::NOT_FOUND)?;
    Ok(Json(view(&state, &delivery)))
}

async fn retry(
    State(state): State<AdminState>,
    PrimaryKey(id): PrimaryKey,
) -> ApiResult<(StatusCode, Json<Value>)> {
    match state.deliveries.redeliver(id).await {
        Ok(delivery) => Ok((StatusCode::ACCEPTED, Json(view(&state, &delivery)))),
        Err(DeliveryError::NotFound) => Err(ApiError::NOT_FOUND),
        Err(DeliveryError::InFlight) => {
            Err(ApiError::Conflict(DeliveryError::InFlight.to_string()))
        }
        Err(DeliveryError::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}
