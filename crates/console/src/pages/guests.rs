//! Guests: the list and the upload form (a file input that takes a
//! dropped file), and one guest with its versions, the hooks that run
//! each, its imports classed into capabilities, and what the server's
//! mode and ceiling would grant it.

use super::encode;
use crate::Console;
use crate::api::Upload;
use crate::at;
use crate::page::{Failure, Reply};
use crate::viewer::{Posted, Viewer, check_csrf, ok, same_origin};
use axum::Router;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, Multipart, Path, Request, State,
};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

/// The guests' pages and actions; an upload may be as large as the Admin
/// API takes (`upload_limit`) plus room for the form around it.
pub(super) fn routes(upload_limit: usize) -> Router<Console> {
    let form_limit = upload_limit + (64 << 10);
    Router::new()
        .route(
            &at("/guests"),
            get(list)
                .post(upload)
                .layer(DefaultBodyLimit::max(form_limit)),
        )
        .route(&at("/guests/{name}"), get(show))
        .route(&at("/guests/{name}/delete"), post(delete))
}

fn guest_path(name: &str) -> String {
    format!("/guests/{}", encode(name))
}

/// The guests page, with an upload's errors when there are some.
async fn guests_page(viewer: &Viewer, status: StatusCode, upload: Value) -> Result<Reply, Failure> {
    let guests = viewer.get("/guests").await?;
    viewer.page(
        status,
        "guests.html",
        "guests",
        json!({"title": "Guests", "guests": guests["data"], "upload": upload}),
    )
}

/// `GET /console/guests`.
async fn list(viewer: Viewer) -> Result<Reply, Failure> {
    guests_page(&viewer, StatusCode::OK, Value::Null).await
}

/// What the upload form sent.
#[derive(Default)]
struct Sent {
    csrf: Option<String>,
    name: String,
    file: Option<(String, Bytes)>,
}

async fn read_upload(mut multipart: Multipart) -> Result<Sent, Failure> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        Failure::status(e.status(), format!("The upload could not be read: {e}"))
    };
    let mut sent = Sent::default();
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        match field.name().unwrap_or_default() {
            "csrf" => sent.csrf = Some(field.text().await.map_err(bad)?),
            "name" => sent.name = field.text().await.map_err(bad)?,
            "file" => {
                let file_name = field.file_name().unwrap_or_default().to_string();
                sent.file = Some((file_name, field.bytes().await.map_err(bad)?));
            }
            _ => {}
        }
    }
    Ok(sent)
}

/// `POST /console/guests`: the dropped or chosen file to `POST
/// /guests?name=` (the name defaults to the file's, without `.wasm`).
async fn upload(State(console): State<Console>, request: Request) -> Response {
    match upload_guest(&console, request).await {
        Ok(reply) => reply.into_response(),
        Err(failure) => failure.into_response(),
    }
}

async fn upload_guest(console: &Console, request: Request) -> Result<Reply, Failure> {
    let (mut parts, body) = request.into_parts();
    same_origin(&parts.headers)?;
    let viewer = Viewer::from_request_parts(&mut parts, console).await?;
    let request = Request::from_parts(parts, body);
    let multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| Failure::status(StatusCode::BAD_REQUEST, e.body_text()))?;
    let sent = read_upload(multipart).await?;
    check_csrf(&viewer.session, sent.csrf.as_deref())?;
    let refuse =
        |field: &str, message: String| json!({"name": sent.name, "errors": {field: message}});
    let Some((file_name, bytes)) = sent.file.clone().filter(|(_, b)| !b.is_empty()) else {
        let upload = refuse("file", "Choose or drop a .wasm file.".into());
        return guests_page(&viewer, StatusCode::BAD_REQUEST, upload).await;
    };
    let name = match sent.name.trim() {
        "" => file_name.trim_end_matches(".wasm").to_string(),
        name => name.to_string(),
    };
    let answer = viewer
        .call(
            Method::POST,
            &format!("/guests?name={}", encode(&name)),
            Some(Upload {
                content_type: "application/wasm",
                bytes,
            }),
        )
        .await;
    if matches!(
        answer.status,
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE
    ) {
        let errors = match answer.body["fields"].as_object() {
            Some(fields) if !fields.is_empty() => Value::Object(fields.clone()),
            _ => json!({"file": answer.message()}),
        };
        let upload = json!({"name": name, "errors": errors});
        return guests_page(&viewer, answer.status, upload).await;
    }
    let saved = ok(answer)?;
    let name = saved.body["name"].as_str().unwrap_or(&name);
    Ok(Reply::Redirect(at(&format!("/guests/{}", encode(name)))))
}

/// `GET /console/guests/{name}`.
async fn show(viewer: Viewer, Path(name): Path<String>) -> Result<Reply, Failure> {
    let guest = viewer.get(&guest_path(&name)).await?;
    let versions = viewer
        .get(&format!("{}/versions", guest_path(&name)))
        .await?;
    let audit = viewer.get(&format!("{}/audit", guest_path(&name))).await?;
    viewer.show(
        "guest.html",
        "guests",
        json!({
            "title": format!("Guest {name}"),
            "guest": guest,
            "versions": versions["data"],
            "audit": audit,
        }),
    )
}

/// `POST /console/guests/{name}/delete`: refused (409) while a hook runs
/// it, and the page says which.
async fn delete(Path(name): Path<String>, posted: Posted) -> Result<Reply, Failure> {
    let then = at("/guests");
    posted.sender.delete_then(&guest_path(&name), then).await
}
