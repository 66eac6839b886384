//! Hooks: the list with each hook's last delivery, one hook with its
//! deliveries (and, for a lambda hook, what its guests are granted), the
//! form that creates or edits one, and `/test` and `/ping` from the page.

use super::{Paging, encode};
use crate::Console;
use crate::api::Upload;
use crate::at;
use crate::form::{Widget, fill, hook_body, hook_widgets, place_errors};
use crate::page::{Failure, Reply};
use crate::viewer::{Form, Posted, Viewer, ok};
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use hookd_model::hook::HANDLERS;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The hooks' pages and actions.
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route(&at("/hooks"), get(list).post(create))
        .route(&at("/hooks/new"), get(new))
        .route(&at("/hooks/{id}"), get(show))
        .route(&at("/hooks/{id}/edit"), get(edit).post(update))
        .route(&at("/hooks/{id}/delete"), post(delete))
        .route(&at("/hooks/{id}/test"), post(test))
        .route(&at("/hooks/{id}/ping"), post(ping))
}

/// Hooks a page of the list shows.
const PAGE_SIZE: usize = 50;

/// Deliveries the hook page shows at once.
const DELIVERIES_SHOWN: usize = 20;

fn hook_path(id: &str) -> String {
    format!("/event-hooks/{}", encode(id))
}

fn console_hook(id: &str) -> String {
    at(&format!("/hooks/{}", encode(id)))
}

/// The hooks failing now, by id, each with its failures in a row and
/// whether it is paused, from `GET /status`.
async fn failing_hooks(viewer: &Viewer) -> Result<HashMap<String, Value>, Failure> {
    let status = viewer.get("/status").await?;
    Ok(status["failing_hooks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f["hook"].as_str()?.to_string(), f.clone())))
        .collect())
}

/// `GET /console/hooks`.
async fn list(viewer: Viewer, Query(paging): Query<Paging>) -> Result<Reply, Failure> {
    let page_path = at("/hooks");
    let hooks = paging
        .read(&viewer, "/event-hooks", PAGE_SIZE, &page_path)
        .await?;
    let failing = failing_hooks(&viewer).await?;
    let mut rows = Vec::new();
    for hook in hooks.data.as_array().into_iter().flatten() {
        let id = hook["id"].as_str().unwrap_or_default();
        let last = viewer
            .get(&format!("{}/deliveries?size=1", hook_path(id)))
            .await?;
        rows.push(json!({
            "hook": hook,
            "failing": failing.get(id),
            "last": last["data"][0],
        }));
    }
    viewer.show(
        "hooks.html",
        "hooks",
        json!({
            "title": "Hooks",
            "rows": rows,
            "handlers": HANDLERS,
            "next": hooks.next,
        }),
    )
}

/// `GET /console/hooks/{id}`, with a page of its deliveries, newest first.
async fn show(
    viewer: Viewer,
    Path(id): Path<String>,
    Query(paging): Query<Paging>,
) -> Result<Reply, Failure> {
    hook_page(&viewer, &id, paging, None).await
}

/// The hook page, with the answer of a `/test` or `/ping` just made.
async fn hook_page(
    viewer: &Viewer,
    id: &str,
    paging: Paging,
    tried: Option<Value>,
) -> Result<Reply, Failure> {
    let hook = viewer.get(&hook_path(id)).await?;
    let deliveries = paging
        .read(
            viewer,
            &format!("{}/deliveries", hook_path(id)),
            DELIVERIES_SHOWN,
            &console_hook(id),
        )
        .await?;
    let grants = if hook["handler"] == "lambda" {
        super::grant::view(
            &viewer
                .get(&format!("{}/capabilities", hook_path(id)))
                .await?,
        )
    } else {
        Value::Null
    };
    let failing = failing_hooks(viewer).await?.remove(id);
    viewer.show(
        "hook.html",
        "hooks",
        json!({
            "title": format!("Hook {id}"),
            "hook": hook,
            "config": serde_json::to_string_pretty(&hook["config"]).unwrap_or_default(),
            "pingable": matches!(hook["handler"].as_str(), Some("webhook" | "webhook-custom")),
            "failing": failing,
            "deliveries": deliveries.data,
            "deliveries_next": deliveries.next,
            "grants": grants,
            "tried": tried,
        }),
    )
}

/// Which handler a new hook has.
#[derive(Debug, Deserialize)]
pub(crate) struct NewHook {
    handler: Option<String>,
}

/// The catalogue's sources and every event name, for the form's choices.
async fn choices(viewer: &Viewer) -> Result<Value, Failure> {
    let catalogue = viewer.get("/event-hooks/sources").await?;
    let sources: Vec<&String> = catalogue["data"]
        .as_object()
        .map(|s| s.keys().collect())
        .unwrap_or_default();
    let mut events: Vec<&String> = catalogue["data"]
        .as_object()
        .into_iter()
        .flat_map(|s| s.values())
        .filter_map(Value::as_object)
        .flat_map(|events| events.keys())
        .collect();
    events.sort();
    events.dedup();
    Ok(json!({"sources": sources, "events": events}))
}

/// The create or edit form, with what was entered and the API's errors.
async fn form_page(
    viewer: &Viewer,
    status: StatusCode,
    handler: &str,
    hook_id: Option<&str>,
    widgets: &[Widget],
    errors: &[String],
) -> Result<Reply, Failure> {
    let title = match hook_id {
        Some(id) => format!("Edit hook {id}"),
        None => format!("New {handler} hook"),
    };
    viewer.page(
        status,
        "hook_form.html",
        "hooks",
        json!({
            "title": title,
            "handler": handler,
            "handlers": HANDLERS,
            "hook_id": hook_id,
            "widgets": widgets,
            "errors": errors,
            "choices": choices(viewer).await?,
        }),
    )
}

fn known_handler(handler: &str) -> Result<&'static str, Failure> {
    HANDLERS
        .iter()
        .copied()
        .find(|h| *h == handler)
        .ok_or_else(|| {
            Failure::status(
                StatusCode::BAD_REQUEST,
                format!("There is no handler '{handler}'."),
            )
        })
}

/// `GET /console/hooks/new?handler=`.
async fn new(viewer: Viewer, Query(new): Query<NewHook>) -> Result<Reply, Failure> {
    let handler = known_handler(new.handler.as_deref().unwrap_or("webhook"))?;
    let widgets = hook_widgets(handler, &Value::Null);
    form_page(&viewer, StatusCode::OK, handler, None, &widgets, &[]).await
}

/// `POST /console/hooks`: `POST /event-hooks` with the form's hook.
async fn create(posted: Posted) -> Result<Reply, Failure> {
    save(posted, None).await
}

/// `GET /console/hooks/{id}/edit`.
async fn edit(viewer: Viewer, Path(id): Path<String>) -> Result<Reply, Failure> {
    let hook = viewer.get(&hook_path(&id)).await?;
    let handler = known_handler(hook["handler"].as_str().unwrap_or_default())?;
    let widgets = hook_widgets(handler, &hook);
    form_page(&viewer, StatusCode::OK, handler, Some(&id), &widgets, &[]).await
}

/// `POST /console/hooks/{id}/edit`: `PUT /event-hooks/{id}`, the whole
/// hook as the form has it (a blank field takes its default).
async fn update(Path(id): Path<String>, posted: Posted) -> Result<Reply, Failure> {
    save(posted, Some(id)).await
}

async fn save(posted: Posted, id: Option<String>) -> Result<Reply, Failure> {
    let Form {
        sender: viewer,
        fields,
    } = posted;
    let handler = known_handler(fields.text("handler"))?;
    let mut widgets = hook_widgets(handler, &Value::Null);
    fill(&mut widgets, &fields);
    let refused = |widgets: Vec<Widget>, errors: Vec<String>| {
        let viewer = &viewer;
        let id = id.as_deref();
        async move {
            form_page(
                viewer,
                StatusCode::BAD_REQUEST,
                handler,
                id,
                &widgets,
                &errors,
            )
            .await
        }
    };
    let Some(body) = hook_body(handler, &mut widgets) else {
        return refused(widgets, Vec::new()).await;
    };
    let (method, path) = match &id {
        Some(id) => (Method::PUT, hook_path(id)),
        None => (Method::POST, "/event-hooks".to_string()),
    };
    let answer = viewer.call(method, &path, Some(Upload::json(&body))).await;
    if answer.status == StatusCode::BAD_REQUEST {
        let mut errors = place_errors(&mut widgets, &answer.body["fields"]);
        if errors.is_empty() && widgets.iter().all(|w| w.error.is_none()) {
            errors.push(answer.message());
        }
        return refused(widgets, errors).await;
    }
    let saved = ok(answer)?;
    let saved_id = saved.body["id"].as_str().unwrap_or_default();
    Ok(Reply::Redirect(console_hook(saved_id)))
}

/// `POST /console/hooks/{id}/delete`.
async fn delete(Path(id): Path<String>, posted: Posted) -> Result<Reply, Failure> {
    let then = at("/hooks");
    posted.sender.delete_then(&hook_path(&id), then).await
}

/// `POST /console/hooks/{id}/test`: `POST /event-hooks/{id}/test` with the
/// form's JSON data; the hook page shows the answer, whatever it is.
async fn test(Path(id): Path<String>, posted: Posted) -> Result<Reply, Failure> {
    let Form {
        sender: viewer,
        fields,
    } = posted;
    let data = fields.text("data");
    let tried =
        match serde_json::from_str::<Value>(if data.trim().is_empty() { "{}" } else { data }) {
            Ok(data) => {
                let answer = viewer
                    .call(
                        Method::POST,
                        &format!("{}/test", hook_path(&id)),
                        Some(Upload::json(&data)),
                    )
                    .await;
                tried("test", &answer)?
            }
            Err(e) => json!({"what": "test", "ok": false, "status": null,
                         "answer": format!("The test data is not valid JSON: {e}")}),
        };
    hook_page(&viewer, &id, Paging::default(), Some(tried)).await
}

/// `POST /console/hooks/{id}/ping`.
async fn ping(Path(id): Path<String>, posted: Posted) -> Result<Reply, Failure> {
    let viewer = posted.sender;
    let answer = viewer
        .call(Method::GET, &format!("{}/ping", hook_path(&id)), None)
        .await;
    let tried = tried("ping", &answer)?;
    hook_page(&viewer, &id, Paging::default(), Some(tried)).await
}

/// What a test or a ping answered, for the hook page; a refusal to the
/// viewer (401, 403) is a failure of the page instead.
fn tried(what: &str, answer: &crate::api::Answer) -> Result<Value, Failure> {
    if matches!(
        answer.status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
    ) {
        ok(answer.clone())?;
    }
    Ok(json!({
        "what": what,
        "ok": answer.status.is_success(),
        "status": answer.status.as_u16(),
        "answer": if answer.body.is_null() { String::new() } else {
            serde_json::to_string_pretty(&answer.body).unwrap_or_default()
        },
    }))
}
