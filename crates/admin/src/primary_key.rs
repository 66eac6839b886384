//! A path whose last segment must be an id: deliveries and quarantined
//! records are found by id only.

use crate::error::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use uuid::Uuid;

/// The id a path names; anything else is Kong's invalid primary key (400).
pub(crate) struct PrimaryKey(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PrimaryKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        Uuid::try_parse(&id)
            .map(PrimaryKey)
            .map_err(|_| ApiError::InvalidPrimaryKey(id))
    }
}
