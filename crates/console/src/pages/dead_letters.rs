//! Dead letters: the deliveries of every hook whose every attempt failed,
//! the latest to die first, each with its last error and a redeliver
//! button.

use super::{Paging, next_link};
use crate::page::{Failure, Reply};
use crate::viewer::Viewer;
use axum::extract::Query;
use serde_json::json;

/// Dead letters a page shows.
const PAGE_SIZE: usize = 50;

/// `GET /console/dead-letters`.
pub(crate) async fn list(viewer: Viewer, Query(paging): Query<Paging>) -> Result<Reply, Failure> {
    let page = viewer
        .get(&format!("/dead-letters?{}", paging.query(PAGE_SIZE)))
        .await?;
    viewer.show(
        "dead_letters.html",
        "dead-letters",
        json!({
            "title": "Dead letters",
            "deliveries": page["data"],
            "next": next_link(&page, &format!("{}/dead-letters", crate::PREFIX)),
        }),
    )
}
