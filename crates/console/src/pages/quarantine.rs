//! The quarantine: stored records that do not decode, moved aside so that
//! nothing stalls on them; each can be tried again or deleted.

use super::{Paging, encode, next_link};
use crate::page::{Failure, Reply};
use crate::viewer::{Posted, Viewer, ok};
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use serde_json::json;

/// Records a page shows.
const PAGE_SIZE: usize = 50;

fn back_path() -> String {
    format!("{}/quarantine", crate::PREFIX)
}

fn back() -> Reply {
    Reply::Redirect(back_path())
}

/// `GET /console/quarantine`.
pub(crate) async fn list(viewer: Viewer, Query(paging): Query<Paging>) -> Result<Reply, Failure> {
    let page = viewer
        .get(&format!("/quarantine?{}", paging.query(PAGE_SIZE)))
        .await?;
    viewer.show(
        "quarantine.html",
        "quarantine",
        json!({"title": "Quarantine", "records": page["data"], "next": next_link(&page, &back_path()), "retry_error": null}),
    )
}

/// `POST /console/quarantine/{id}/retry`: a record that still does not
/// decode stays, and the page says why.
pub(crate) async fn retry(Path(id): Path<String>, posted: Posted) -> Result<Reply, Failure> {
    let viewer = posted.sender;
    let answer = viewer
        .call(
            Method::POST,
            &format!("/quarantine/{}/retry", encode(&id)),
            None,
        )
        .await;
    if answer.status == StatusCode::CONFLICT {
        let page = viewer.get(&format!("/quarantine?size={PAGE_SIZE}")).await?;
        return viewer.page(
            StatusCode::CONFLICT,
            "quarantine.html",
            "quarantine",
            json!({"title": "Quarantine", "records": page["data"], "next": next_link(&page, &back_path()),
                   "retry_error": {"id": id, "message": answer.message()}}),
        );
    }
    ok(answer)?;
    Ok(back())
}

/// `POST /console/quarantine/{id}/delete`.
pub(crate) async fn delete(Path(id): Path<String>, posted: Posted) -> Result<Reply, Failure> {
    ok(posted
        .sender
        .call(
            Method::DELETE,
            &format!("/quarantine/{}", encode(&id)),
            None,
        )
        .await)?;
    Ok(back())
}
