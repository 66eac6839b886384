//! Dead letters: the deliveries of every hook whose every attempt failed,
//! the latest to die first, each with its last error and a redeliver
//! button.

use super::Paging;
use crate::page::{Failure, Reply};
use crate::viewer::Viewer;
use crate::{Console, at};
use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde_json::json;

/// The dead letters of every hook.
pub(super) fn routes() -> Router<Console> {
    Router::new().route(&at("/dead-letters"), get(list))
}

/// Dead letters a page shows.
const PAGE_SIZE: usize = 50;

/// `GET /console/dead-letters`.
async fn list(viewer: Viewer, Query(paging): Query<Paging>) -> Result<Reply, Failure> {
    let page_path = at("/dead-letters");
    let dead = paging
        .read(&viewer, "/dead-letters", PAGE_SIZE, &page_path)
        .await?;
    viewer.show(
        "dead_letters.html",
        "dead-letters",
        json!({"title": "Dead letters", "deliveries": dead.data, "next": dead.next}),
    )
}
