//! The Admin API as the console calls it: in-process, through the same
//! router, middleware and RBAC a client over HTTP meets.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;
use std::convert::Infallible;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

/// Largest Admin API answer the console reads: far above any page of the
/// API's listings, which are what it asks for.
const ANSWER_LIMIT: usize = 16 << 20;

/// The Admin API, to call in-process.
#[derive(Clone)]
pub(crate) struct AdminApi {
    service: BoxCloneSyncService<Request, Response, Infallible>,
}

/// What the Admin API answered.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: StatusCode,
    /// The JSON answer; null when there is none (204) or it is not JSON.
    pub body: Value,
}

impl Answer {
    /// The API's own words for a failure: Kong's `message`, or the status.
    pub fn message(&self) -> String {
        match self.body.get("message").and_then(Value::as_str) {
            Some(message) => message.to_string(),
            None => self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
        }
    }
}

/// A request body and its content type.
pub(crate) struct Upload {
    pub content_type: &'static str,
    pub bytes: Bytes,
}

impl Upload {
    /// A JSON body.
    pub fn json(value: &Value) -> Self {
        Upload {
            content_type: "application/json",
            bytes: Bytes::from(value.to_string()),
        }
    }
}

impl AdminApi {
    pub fn new<S>(admin: S) -> Self
    where
        S: Service<Request, Response = Response, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        AdminApi {
            service: BoxCloneSyncService::new(admin),
        }
    }

    /// Calls the API as the holder of `token` (none without RBAC).
    /// `path` is the API's path with its query, already encoded.
    pub async fn call(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        upload: Option<Upload>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "console.invalid");
        if let Some(token) = token {
            request = request.header("kong-admin-token", token);
        }
        let body = match upload {
            Some(upload) => {
                request = request.header(CONTENT_TYPE, upload.content_type);
                Body::from(upload.bytes)
            }
            None => Body::empty(),
        };
        let request = match request.body(body) {
            Ok(request) => request,
            Err(e) => return failure(StatusCode::BAD_REQUEST, format!("a bad request: {e}")),
        };
        let Ok(answer) = self.service.clone().oneshot(request).await;
        let (parts, body) = answer.into_parts();
        let bytes = match http_body_util::Limited::new(body, ANSWER_LIMIT)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                return failure(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("reading the Admin API's answer: {e}"),
                );
            }
        };
        Answer {
            status: parts.status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }
}

fn failure(status: StatusCode, message: String) -> Answer {
    Answer {
        status,
        body: serde_json::json!({ "message": message }),
    }
}
