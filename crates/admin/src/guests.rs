//! Guests of the lambda handler over REST: upload (raw `application/wasm`
//! with `?name=`, or multipart `file` and `name`), list, show, delete, and
//! what each may touch: `/guests/{id}/audit`, `/event-hooks/{id}/capabilities`
//! and the runtime decisions at `/audit`.

use crate::AdminState;
use crate::api::{Api, doc};
use crate::body::{limit_body, multipart_error};
use crate::crud::find;
use crate::error::{ApiError, ApiResult};
use crate::paging::ListRequest;
use crate::resource::Resource;
use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::Method;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hookd_model::audit::{CapabilityClass, Verdict};
use hookd_model::clock::{Clock, SystemClock};
use hookd_model::hook::{Handler, pinned_digest};
use hookd_model::{EventHook, Violations};
use hookd_sandbox::{GuestRejected, GuestReport};
use hookd_store::{AuditFilter, GuestVersion, Page, Upload};
use serde_json::{Value, json};

/// The routes.
pub fn router() -> Api {
    Api::new()
        .route(
            "/guests",
            get(list).post(upload),
            [
                doc(Method::GET, "Every guest").json(200, "List:Guest"),
                doc(
                    Method::POST,
                    "Upload a guest: application/wasm with ?name=, or multipart file and name",
                )
                .json(201, "Guest"),
            ],
        )
        .route(
            "/guests/{key}",
            get(one).delete(remove),
            [
                doc(Method::GET, "One guest by name or id").json(200, "Guest"),
                doc(Method::DELETE, "Delete a guest no hook uses").empty(204),
            ],
        )
        .route(
            "/guests/{key}/audit",
            get(guest_audit),
            [doc(
                Method::GET,
                "What the guest imports and what mode and ceiling would grant it",
            )
            .json(200, "GuestAudit")],
        )
        .route(
            "/guests/{key}/versions",
            get(versions),
            [doc(
                Method::GET,
                "Every version kept under the guest's name, the current one first, with the hooks that run it",
            )
            .json(200, "List:GuestVersion")],
        )
        .route(
            "/guests/{key}/wasm",
            get(download),
            [doc(Method::GET, "The guest's bytes").bytes("application/wasm")],
        )
        .route(
            "/event-hooks/{key}/capabilities",
            get(capabilities),
            [
                doc(Method::GET, "What each guest of a lambda hook is granted")
                    .json(200, "Capabilities"),
            ],
        )
        .route(
            "/audit",
            get(audit_log),
            [doc(
                Method::GET,
                "Runtime decisions of the sandbox, newest first; filters hook, guest, verdict, capability",
            )
            .json(200, "List:AuditRecord")],
        )
}

/// A guest name follows Kong's rule for names (`typedefs.name`: ASCII
/// letters and digits, `.`, `-`, `_` and `~`), and since it is also a path
/// segment (`/guests/{name or id}`), it is not a UUID and not made only of
/// dots, which a URL path would resolve away (`/guests/../wasm`).
fn check_name(name: Option<String>) -> ApiResult<String> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Err(Violations::field("name", "required field missing").into());
    };
    let refusal = if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~'))
    {
        "the only accepted ascii characters are alphanumerics or ., -, _, and ~"
    } else if name.chars().all(|c| c == '.') {
        "a name may not be made of dots only"
    } else if uuid::Uuid::try_parse(&name).is_ok() {
        "a name may not be a UUID"
    } else {
        return Ok(name);
    };
    Err(Violations::field("name", format!("invalid value '{name}': {refusal}")).into())
}

/// The uploaded bytes and the name, from either form of upload.
async fn read_upload(state: &AdminState, req: Request) -> ApiResult<(String, Vec<u8>)> {
    let limit = state.guest_size_limit;
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "multipart/form-data" => {
            let req = limit_body(req, limit);
            let mut multipart = axum::extract::Multipart::from_request(req, state)
                .await
                .map_err(|e| ApiError::BadRequest(format!("Cannot parse multipart body: {e}")))?;
            let (mut name, mut file) = (None, None);
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|e| multipart_error(e, limit))?
            {
                match field.name() {
                    Some("name") => {
                        name = Some(field.text().await.map_err(|e| multipart_error(e, limit))?)
                    }
                    Some("file") => {
                        file = Some(
                            field
                                .bytes()
                                .await
                                .map_err(|e| multipart_error(e, limit))?
                                .to_vec(),
                        )
                    }
                    Some(other) => {
                        return Err(Violations::field(other, "unknown field").into());
                    }
                    None => {}
                }
            }
            let name = check_name(name)?;
            let file = file.ok_or_else(|| Violations::field("file", "required field missing"))?;
            Ok((name, file))
        }
        "application/wasm" | "application/octet-stream" => {
            let name = req.uri().query().and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "name")
                    .map(|(_, v)| v.into_owned())
            });
            // The body first: a refusal answered while the client is still
            // sending reaches it as a reset connection, not as the answer.
            let bytes = axum::body::to_bytes(req.into_body(), limit)
                .await
                .map_err(|_| ApiError::TooLarge(limit))?;
            let name = check_name(name)?;
            Ok((name, bytes.to_vec()))
        }
        other => {
            let got = other.to_string();
            // Read (within the limit) and dropped, for the same reason.
            let _ = axum::body::to_bytes(req.into_body(), limit).await;
            Err(ApiError::UnsupportedMediaType {
                got,
                accepted: &[
                    "application/wasm (with ?name=)",
                    "application/octet-stream (with ?name=)",
                    "multipart/form-data (fields file and name)",
                ],
            })
        }
    }
}

async fn upload(
    State(state): State<AdminState>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (name, bytes) = read_upload(&state, req).await?;
    let sandbox = state.sandbox.clone();
    // Compiling takes up to seconds of CPU: off the async workers.
    let (report, bytes) = tokio::task::spawn_blocking(move || (sandbox.inspect(&bytes), bytes))
        .await
        .map_err(|e| ApiError::Internal(format!("inspecting the guest: {e}")))?;
    let report = report.map_err(rejected)?;
    let Value::Object(report) = serde_json::to_value(&report).unwrap_or_default() else {
        return Err(ApiError::Internal(
            "the guest report is not an object".into(),
        ));
    };
    let (record, upload) = state
        .store
        .put_guest(
            GuestVersion {
                name: &name,
                bytes: &bytes,
                report: &report,
            },
            SystemClock.now_ms() / 1000,
        )
        .await?;
    tracing::info!(guest = %name, digest = %record["digest"], replaced = (upload == Upload::Replaced), "guest uploaded");
    Ok((StatusCode::CREATED, Json(record)))
}

/// An upload the sandbox does not accept: a 400 naming the reason.
fn rejected(e: GuestRejected) -> ApiError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    Violations::field("file", text).into()
}

async fn list(State(state): State<AdminState>) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({"data": state.store.guests().await?, "next": null}),
    ))
}

async fn load(state: &AdminState, key: &str) -> ApiResult<Value> {
    state.store.guest(key).await?.ok_or(ApiError::NOT_FOUND)
}

async fn one(State(state): State<AdminState>, Path(key): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(load(&state, &key).await?))
}

/// The guest's current bytes, as uploaded (for `hookd dump`).
async fn download(State(state): State<AdminState>, Path(key): Path<String>) -> ApiResult<Response> {
    let record = load(&state, &key).await?;
    let digest = record["digest"].as_str().unwrap_or_default();
    let bytes = state.store.guest_bytes(digest).await?.ok_or_else(|| {
        ApiError::Internal(format!("the bytes of guest digest {digest} are missing"))
    })?;
    Ok(([(CONTENT_TYPE, "application/wasm")], bytes).into_response())
}

/// Every stored event hook.
async fn hooks(state: &AdminState) -> ApiResult<Vec<EventHook>> {
    let page = Page {
        size: usize::MAX,
        offset: None,
    };
    Ok(state
        .store
        .list(hookd_model::hook::ENTITY, &page)
        .await?
        .data
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

async fn remove(State(state): State<AdminState>, Path(key): Path<String>) -> ApiResult<StatusCode> {
    let Some(record) = state.store.guest(&key).await? else {
        return Ok(StatusCode::NO_CONTENT);
    };
    let name = record["name"].as_str().unwrap_or_default().to_string();
    let digests = state.store.guest_digests(&name).await?;
    let refers = |f: &String| match pinned_digest(f) {
        Some(digest) => digests.contains(&digest),
        None => f.eq_ignore_ascii_case(&name),
    };
    for hook in hooks(&state).await? {
        if let Handler::Lambda(cfg) = &hook.handler
            && cfg.functions.iter().any(refers)
        {
            return Err(ApiError::Conflict(format!(
                "guest '{name}' is used by event hook {}",
                hook.id
            )));
        }
    }
    match state.store.delete_guest(&name).await {
        Ok((_, gone)) => {
            for digest in gone {
                state.sandbox.forget(&digest);
            }
            Ok(StatusCode::NO_CONTENT)
        }
        Err(hookd_store::Error::NotFound) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(e.into()),
    }
}

/// Every version kept under a guest's name, the current one first and
/// the others newest first, each with the hooks that run it: those that pin
/// its digest and, for the current version, those that name the guest.
async fn versions(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = load(&state, &key).await?;
    let name = record["name"].as_str().unwrap_or_default();
    let current = record["digest"].as_str().unwrap_or_default();
    let hooks = hooks(&state).await?;
    let mut data = Vec::new();
    for digest in state.store.guest_digests(name).await? {
        let Some(version) = state.store.guest_version(&digest).await? else {
            continue;
        };
        let is_current = digest == current;
        let runs = |f: &String| match pinned_digest(f) {
            Some(pinned) => pinned == digest,
            None => is_current && f == name,
        };
        let users: Vec<String> = hooks
            .iter()
            .filter(|hook| matches!(&hook.handler, Handler::Lambda(cfg) if cfg.functions.iter().any(runs)))
            .map(|hook| hook.id.to_string())
            .collect();
        data.push(json!({
            "digest": digest,
            "size": version["size"],
            "kind": version["kind"],
            "capabilities": version["capabilities"],
            "uploaded_at": version["uploaded_at"],
            "current": is_current,
            "hooks": users,
        }));
    }
    data.sort_by_key(|v| {
        (
            v["current"] != true,
            std::cmp::Reverse(v["uploaded_at"].as_i64()),
        )
    });
    Ok(Json(json!({"data": data, "next": null})))
}

/// A guest's static audit under the server's mode and ceiling.
async fn guest_audit(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = load(&state, &key).await?;
    let report: GuestReport = serde_json::from_value(record.clone())
        .map_err(|e| ApiError::Internal(format!("stored guest report does not decode: {e}")))?;
    let mut audit = serde_json::to_value(state.sandbox.audit(&report)).unwrap_or_default();
    audit["guest"] = json!({"id": record["id"], "name": record["name"], "digest": report.digest, "kind": report.kind});
    Ok(Json(audit))
}

async fn capabilities(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let value = find(&state, Resource::Hooks, None, &key)
        .await?
        .ok_or(ApiError::NOT_FOUND)?;
    let hook: EventHook = serde_json::from_value(value)
        .map_err(|e| ApiError::Internal(format!("stored event hook does not decode: {e}")))?;
    match state.deliveries.capabilities(&hook).await {
        Some(grants) => Ok(Json(
            json!({"data": grants, "mode": state.sandbox.config().mode}),
        )),
        None => Err(ApiError::BadRequest(format!(
            "handler '{}' has no capabilities: only lambda hooks run guests",
            hook.handler.name()
        ))),
    }
}

async fn audit_log(State(state): State<AdminState>, asked: ListRequest) -> ApiResult<Json<Value>> {
    let page = asked.page()?;
    let query = &asked.query;
    let hook = match query.get("hook") {
        Some(h) => Some(
            uuid::Uuid::try_parse(h)
                .map_err(|_| Violations::field("hook", "expected a valid UUID"))?,
        ),
        None => None,
    };
    let verdict = match query.get("verdict").map(String::as_str) {
        None => None,
        Some("allowed") => Some(Verdict::Allowed),
        Some("denied") => Some(Verdict::Denied),
        Some(_) => {
            return Err(Violations::field("verdict", "expected one of: allowed, denied").into());
        }
    };
    let capability = match query.get("capability") {
        None => None,
        Some(name) => Some(
            serde_json::from_value::<CapabilityClass>(Value::from(name.as_str())).map_err(
                |_| {
                    let names: Vec<&str> =
                        CapabilityClass::ALL.iter().map(|c| c.as_str()).collect();
                    Violations::field(
                        "capability",
                        format!("expected one of: {}", names.join(", ")),
                    )
                },
            )?,
        ),
    };
    let filter = AuditFilter {
        hook,
        guest: query.get("guest").cloned(),
        verdict,
        capability,
    };
    let listed = state.store.audit_page(&filter, &page).await?;
    let data = listed
        .data
        .iter()
        .map(|r| serde_json::to_value(r).unwrap_or_default())
        .collect();
    Ok(asked.answer(data, listed.next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(name: &str) -> String {
        match check_name(Some(name.to_string())) {
            Err(ApiError::Schema(v)) => v.fields()["name"].as_str().unwrap().to_string(),
            other => panic!("{name:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn names_follow_kongs_rule_and_survive_a_url_path() {
        for fine in ["echo", "a.b-c_d~1", "...a", "v1.2"] {
            assert_eq!(check_name(Some(fine.into())).unwrap(), fine);
        }
        for dots in [".", "..", "..."] {
            assert_eq!(
                refusal(dots),
                format!("invalid value '{dots}': a name may not be made of dots only")
            );
        }
        for odd in ["a/b", "a b", "é", "a%2e", "a?b"] {
            assert!(refusal(odd).ends_with(
                "the only accepted ascii characters are alphanumerics or ., -, _, and ~"
            ));
        }
        assert!(refusal(&uuid::Uuid::nil().to_string()).ends_with("a name may not be a UUID"));
        assert!(matches!(
            check_name(Some(String::new())),
            Err(ApiError::Schema(_))
        ));
    }
}
