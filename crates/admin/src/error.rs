//! Errors of the Admin API, answered in Kong's JSON shape.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookd_model::Violations;
use hookd_model::kong::{ErrorCode, KongError};
use serde_json::{Value, json};

/// An Admin API failure; each variant knows its status and body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Input that does not fit the schema (400, Kong code 2).
    #[error("{0}")]
    Schema(Violations),
    /// A path id that is not valid for the entity (400, Kong code 1).
    #[error("invalid primary key: '{{id=\"{0}\"}}'")]
    InvalidPrimaryKey(String),
    /// A page size out of range (400, Kong code 9).
    #[error("{0}")]
    InvalidSize(String),
    /// A body that could not be read (400 `{"message"}`).
    #[error("{0}")]
    BadRequest(String),
    /// A body over the size limit (413).
    #[error("request body too large (limit: {0} bytes)")]
    TooLarge(usize),
    /// A content type the API does not read (415), and those it reads
    /// there.
    #[error("unsupported content type '{got}': send {}", accepted.join(", "))]
    UnsupportedMediaType {
        /// The type sent.
        got: String,
        /// The types this path reads.
        accepted: &'static [&'static str],
    },
    /// A published event of a source or event not in the catalogue (404).
    #[error("{0}")]
    UnknownEvent(String),
    /// No valid admin token with RBAC enforced (401).
    #[error("Invalid credentials. Token or User credentials required")]
    Unauthorized,
    /// An admin whose role may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// A path that exists, asked with a method it does not answer (405).
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// Nothing at this path (404 with Kong's message).
    #[error("{0}")]
    NotFound(&'static str),
    /// A conflict not expressed as a Kong DAO error (409 `{"message"}`).
    #[error("{0}")]
    Conflict(String),
    /// Something that should not happen; logged, answered as an opaque 500.
    #[error("{0}")]
    Internal(String),
    /// The store said no, or failed.
    #[error(transparent)]
    Store(#[from] hookd_store::Error),
}

impl ApiError {
    /// Kong's answer for an entity, or anything else, that is not there.
    pub const NOT_FOUND: ApiError = ApiError::NotFound("Not found");
}

impl From<Violations> for ApiError {
    fn from(v: Violations) -> Self {
        ApiError::Schema(v)
    }
}

/// A body nested past the limit: a schema violation naming where.
impl From<hookd_model::nesting::TooDeep> for ApiError {
    fn from(too_deep: hookd_model::nesting::TooDeep) -> Self {
        ApiError::Schema(too_deep.into_violations())
    }
}

/// `Result` with the API's error.
pub type ApiResult<T> = Result<T, ApiError>;

fn kong(status: StatusCode, code: ErrorCode, message: String, fields: Value) -> Response {
    (status, Json(KongError::new(code, message, fields))).into_response()
}

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(json!({ "message": text.into() }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use hookd_store::Error as S;
        let text = self.to_string();
        match self {
            ApiError::Schema(v) => kong(
                StatusCode::BAD_REQUEST,
                ErrorCode::SchemaViolation,
                v.message(),
                v.fields(),
            ),
            ApiError::InvalidPrimaryKey(_) => kong(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidPrimaryKey,
                text,
                json!({"id": "expected a valid UUID"}),
            ),
            ApiError::InvalidSize(_) => kong(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidSize,
                text.clone(),
                json!({ "size": text }),
            ),
            ApiError::BadRequest(_) => message(StatusCode::BAD_REQUEST, text),
            ApiError::TooLarge(_) => message(StatusCode::PAYLOAD_TOO_LARGE, text),
            ApiError::UnsupportedMediaType { accepted, .. } => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Json(json!({"message": text, "accepted": accepted})),
            )
                .into_response(),
            ApiError::Unauthorized => message(StatusCode::UNAUTHORIZED, text),
            ApiError::Forbidden(_) => message(StatusCode::FORBIDDEN, text),
            ApiError::MethodNotAllowed => message(StatusCode::METHOD_NOT_ALLOWED, text),
            ApiError::NotFound(m) => message(StatusCode::NOT_FOUND, m),
            ApiError::UnknownEvent(_) => message(StatusCode::NOT_FOUND, text),
            ApiError::Conflict(_) => message(StatusCode::CONFLICT, text),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error answered with 500");
                message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "An unexpected error occurred",
                )
            }
            ApiError::Store(e) => match e {
                S::NotFound => ApiError::NOT_FOUND.into_response(),
                S::PrimaryKey { id, .. } => kong(
                    StatusCode::CONFLICT,
                    ErrorCode::PrimaryKeyViolation,
                    text,
                    json!({ "id": id }),
                ),
                S::Unique { fields, .. } => kong(
                    StatusCode::CONFLICT,
                    ErrorCode::UniqueViolation,
                    text,
                    Value::Object(fields),
                ),
                S::ForeignKey { field, id, .. } => kong(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::ForeignKeyViolation,
                    text,
                    json!({ field: { "id": id } }),
                ),
                S::ReferencedBy { child, .. } => kong(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::ForeignKeyViolation,
                    text,
                    json!({ "@referenced_by": child }),
                ),
                // The nesting limit at the door keeps this from happening;
                // should it, the write is refused, not the store poisoned.
                S::TooDeep { .. } => kong(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::SchemaViolation,
                    format!("schema violation ({text})"),
                    json!({ "@entity": [text] }),
                ),
                S::InvalidOffset => kong(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidOffset,
                    "invalid offset".into(),
                    json!({ "offset": "invalid offset" }),
                ),
                other => {
                    tracing::error!(error = ?other, "store failure answered with 500");
                    message(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "An unexpected error occurred",
                    )
                }
            },
        }
    }
}
