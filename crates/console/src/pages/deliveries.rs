//! One delivery: its event and every attempt (status, latency, error,
//! the answer's first bytes), and redelivery.

use super::encode;
use crate::page::{Failure, Reply};
use crate::viewer::{Posted, Viewer, ok};
use crate::{Console, at};
use axum::Router;
use axum::extract::Path;
use axum::http::Method;
use axum::routing::{get, post};
use serde_json::json;

/// A delivery and its redelivery.
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route(&at("/deliveries/{id}"), get(show))
        .route(&at("/deliveries/{id}/retry"), post(retry))
}

fn delivery_path(id: &str) -> String {
    format!("/deliveries/{}", encode(id))
}

/// `GET /console/deliveries/{id}`.
async fn show(viewer: Viewer, Path(id): Path<String>) -> Result<Reply, Failure> {
    let delivery = viewer.get(&delivery_path(&id)).await?;
    let event = serde_json::to_string_pretty(&delivery["event"]).unwrap_or_default();
    let attempts: Vec<_> = delivery["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .map(|a| {
            json!({
                "attempt": a,
                "result": if a["result"].is_null() { String::new() } else {
                    serde_json::to_string_pretty(&a["result"]).unwrap_or_default()
                },
            })
        })
        .collect();
    viewer.show(
        "delivery.html",
        "hooks",
        json!({
            "title": format!("Delivery {id}"),
            "delivery": delivery,
            "event": event,
            "attempts": attempts,
            "redeliverable": !matches!(delivery["state"].as_str(), Some("in_flight")),
        }),
    )
}

/// `POST /console/deliveries/{id}/retry`: `POST /deliveries/{id}/retry`,
/// then the delivery again, queued.
async fn retry(Path(id): Path<String>, posted: Posted) -> Result<Reply, Failure> {
    ok(posted
        .sender
        .call(Method::POST, &format!("{}/retry", delivery_path(&id)), None)
        .await)?;
    Ok(Reply::Redirect(at(&format!("/deliveries/{}", encode(&id)))))
}
