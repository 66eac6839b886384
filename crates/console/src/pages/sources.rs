//! The catalogue: every source and its events, each with its fields,
//! unique fields and an example payload, as hooks may use them.

use super::encode;
use crate::page::{Failure, Reply};
use crate::viewer::Viewer;
use crate::{Console, at};
use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use serde_json::json;

/// The catalogue of sources and events.
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route(&at("/sources"), get(list))
        .route(&at("/sources/{source}/{event}"), get(event))
}

/// `GET /console/sources`.
async fn list(viewer: Viewer) -> Result<Reply, Failure> {
    let catalogue = viewer.get("/event-hooks/sources").await?;
    viewer.show(
        "sources.html",
        "sources",
        json!({"title": "Sources", "sources": catalogue["data"]}),
    )
}

/// `GET /console/sources/{source}/{event}`.
async fn event(
    viewer: Viewer,
    Path((source, event)): Path<(String, String)>,
) -> Result<Reply, Failure> {
    let path = format!(
        "/event-hooks/sources/{}/{}",
        encode(&source),
        encode(&event)
    );
    let info = viewer.get(&path).await?;
    let example = viewer.get(&format!("{path}/example")).await?;
    viewer.show(
        "event.html",
        "sources",
        json!({
            "title": format!("{source} {event}"),
            "source": source,
            "event": event,
            "info": info["data"],
            "example": serde_json::to_string_pretty(&example).unwrap_or_default(),
        }),
    )
}
