//! hookd's Admin API: Kong's `/event-hooks`, the sources catalogue and the
//! gateway entities whose writes make the crud source, on axum.
#![deny(missing_docs)]

mod api;
mod body;
mod crud;
mod deliveries;
mod error;
mod events;
mod guests;
mod health;
mod observe;
mod openapi;
mod paging;
mod primary_key;
mod quarantine;
mod rbac;
mod resource;
mod root;
mod sources;
mod wit;

pub use error::{ApiError, ApiResult};
pub use rbac::Rbac;

use api::Api;
use axum::Router;
use hookd_model::Catalogue;
use hookd_model::entity;
use hookd_store::Store;
use resource::Resource;
use serde_json::Value;
use std::sync::Arc;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

/// What `GET /` tells about this server.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// hookd's version.
    pub version: String,
    /// The machine's name.
    pub hostname: String,
    /// This node's id, stable across restarts.
    pub node_id: String,
    /// The effective configuration, secrets redacted.
    pub configuration: Value,
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AdminState {
    /// The store.
    pub store: Store,
    /// Sources, events and their fields.
    pub catalogue: Arc<Catalogue>,
    /// Largest request body read, in bytes.
    pub body_limit: usize,
    /// Most levels of objects and arrays a request body may nest, in any
    /// format: at most `hookd_store::codec::MAX_VALUE_DEPTH`, so that what
    /// the API accepts is stored and read back.
    pub body_max_depth: usize,
    /// What `GET /` answers.
    pub info: Arc<ServerInfo>,
    /// The delivery engine: tests, pings, redelivery.
    pub deliveries: hookd_delivery::Deliveries,
    /// The active health checks of upstream targets.
    pub health: Arc<hookd_sources::HealthChecker>,
    /// The sandbox of lambda guests: inspection at upload, grants.
    pub sandbox: hookd_sandbox::Sandbox,
    /// Largest guest upload, in bytes.
    pub guest_size_limit: usize,
    /// Every metric of the server.
    pub metrics: Arc<hookd_metrics::Metrics>,
    /// How requests are authenticated.
    pub rbac: Rbac,
    /// How long a hook's replaced secret stays valid beside the new one.
    pub secret_overlap: std::time::Duration,
}

/// The Admin API, with trailing slashes ignored as Kong ignores them.
pub fn app(state: AdminState) -> NormalizePath<Router> {
    NormalizePathLayer::trim_trailing_slash().layer(router(state))
}

/// Every route of the Admin API with its documentation.
fn api() -> Api {
    let mut api = Api::new()
        .merge(root::router())
        .merge(sources::router())
        .merge(crud::routes("/event-hooks", Resource::Hooks))
        .merge(deliveries::router())
        .merge(events::router())
        .merge(health::router())
        .merge(guests::router())
        .merge(quarantine::router())
        .merge(rbac::router())
        .merge(observe::router())
        .merge(wit::router());
    for e in entity::all() {
        // Entities that only exist under a parent (targets) are served there only.
        let nested_only = e
            .foreign_keys
            .iter()
            .any(|fk| fk.nested && e.schema.field(fk.field).is_some_and(|f| f.required));
        if !nested_only {
            api = api.merge(crud::routes(&format!("/{}", e.name), Resource::Entity(e)));
            for fk in &e.foreign_keys {
                api = api.merge(crud::referenced_route(e, fk));
            }
        }
        for fk in e.foreign_keys.iter().filter(|fk| fk.nested) {
            if let Some(parent) = entity::by_name(fk.entity) {
                api = api.merge(crud::nested_routes(parent, e, fk));
            }
        }
    }
    api
}

/// The OpenAPI document of [`api`], built once.
fn openapi_document() -> &'static Value {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| openapi::document(&api().into_parts().1))
}

fn router(state: AdminState) -> Router {
    let (routes, _) = api().into_parts();
    routes
        .fallback(|| async { ApiError::NOT_FOUND })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rbac::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::count,
        ))
        .layer(observe::request_ids())
        .with_state(state)
}
