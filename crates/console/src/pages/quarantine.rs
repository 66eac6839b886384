//! The quarantine: stored records that do not decode, moved aside so that
//! nothing stalls on them; each can be tried again or deleted.

use super::{Paging, encode};
use crate::page::{Failure, Reply};
use crate::viewer::{Posted, Viewer, ok};
use crate::{Console, at};
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// The quarantine's page and actions.
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route(&at("/quarantine"), get(list))
        .route(&at("/quarantine/{id}/retry"), post(retry))
        .route(&at("/quarantine/{id}/delete"), post(delete))
}

/// Records a page shows.
const PAGE_SIZE: usize = 50;

fn back_path() -> String {
    at("/quarantine")
}

fn back() -> Reply {
    Reply::Redirect(back_path())
}

/// `GET /console/quarantine`.
async fn list(viewer: Viewer, Query(paging): Query<Paging>) -> Result<Reply, Failure> {
    quarantine_page(&viewer, StatusCode::OK, &paging, Value::Null).await
}

/// A page of the quarantine, with the error of a retry that failed.
async fn quarantine_page(
    viewer: &Viewer,
    status: StatusCode,
    paging: &Paging,
    retry_error: Value,
) -> Result<Reply, Failure> {
    let records = paging
        .read(viewer, "/quarantine", PAGE_SIZE, &back_path())
        .await?;
    viewer.page(
        status,
        "quarantine.html",
        "quarantine",
        json!({"title": "Quarantine", "records": records.data, "next": records.next,
               "retry_error": retry_error}),
    )
}

/// `POST /console/quarantine/{id}/retry`: a record that still does not
/// decode stays, and the page says why.
async fn retry(Path(id): Path<String>, posted: Posted) -> Result<Reply, Failure> {
    let viewer = posted.sender;
    let answer = viewer
        .call(
            Method::POST,
            &format!("/quarantine/{}/retry", encode(&id)),
            None,
        )
        .await;
    if answer.status == StatusCode::CONFLICT {
        let retry_error = json!({"id": id, "message": answer.message()});
        return quarantine_page(
            &viewer,
            StatusCode::CONFLICT,
            &Paging::default(),
            retry_error,
        )
        .await;
    }
    ok(answer)?;
    Ok(back())
}

/// `POST /console/quarantine/{id}/delete`.
async fn delete(Path(id): Path<String>, posted: Posted) -> Result<Reply, Failure> {
    let path = format!("/quarantine/{}", encode(&id));
    posted.sender.delete_then(&path, back_path()).await
}
