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
mod quarantine;
mod rbac;
mod resource;
mod root;
mod sources;

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
use std::time::{SystemTime, UNIX_EPOCH};
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
        .merge(observe::router());
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
        .fallback(|| async { ApiError::NotFound("Not found") })
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

/// The wall clock in unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Method, Request};
    use hookd_delivery::clock::{SystemClock, ThreadRandom};
    use tower::ServiceExt;

    fn state(dir: &std::path::Path) -> AdminState {
        let store = Store::open(dir).unwrap();
        let catalogue = Arc::new(Catalogue::builtin(entity::crud_entities()));
        let sandbox = hookd_sandbox::Sandbox::new(hookd_sandbox::SandboxConfig::default()).unwrap();
        let metrics = Arc::new(hookd_metrics::Metrics::new());
        let settings = hookd_delivery::Settings {
            retry: Default::default(),
            workers: 1,
            http: Default::default(),
            retention: Default::default(),
            // These tests render no template: no worker is ever started.
            templates: hookd_template::Renderer::new(
                hookd_template::WorkerCommand {
                    program: "hookd".into(),
                    args: vec!["template-worker".into()],
                },
                Default::default(),
            ),
        };
        let deliveries = hookd_delivery::Deliveries::new(
            store.clone(),
            Arc::clone(&catalogue),
            settings,
            Arc::new(SystemClock),
            Arc::new(ThreadRandom),
            sandbox.clone(),
            Arc::clone(&metrics),
        )
        .unwrap();
        AdminState {
            health: Arc::new(
                hookd_sources::HealthChecker::new(store.clone(), Default::default()).unwrap(),
            ),
            store,
            catalogue,
            body_limit: 1 << 20,
            body_max_depth: 32,
            info: Arc::new(ServerInfo {
                version: "test".into(),
                hostname: "test".into(),
                node_id: "test".into(),
                configuration: Value::Null,
            }),
            deliveries,
            sandbox,
            guest_size_limit: 1 << 20,
            metrics,
            rbac: Rbac::default(),
        }
    }

    /// Every method every registered path answers (anything but 405) is
    /// documented, and every documented operation is answered.
    #[tokio::test]
    async fn the_openapi_document_covers_every_route_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let app = router(state(dir.path()));
        let api = api();
        let paths: Vec<String> = api.paths().to_vec();
        let (_, ops) = api.into_parts();
        let documented: std::collections::HashSet<(String, String)> = ops
            .iter()
            .map(|o| (o.method.to_string(), o.path.clone()))
            .collect();
        let id = uuid::Uuid::new_v4().to_string();
        let mut checked = 0;
        for path in &paths {
            let concrete: String = path
                .split('/')
                .map(|seg| {
                    if seg.starts_with('{') {
                        id.as_str()
                    } else {
                        seg
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            for method in [
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ] {
                let request = Request::builder()
                    .method(method.clone())
                    .uri(&concrete)
                    .header("content-type", "application/json")
                    .body(Body::from("{}"))
                    .unwrap();
                let status = app.clone().oneshot(request).await.unwrap().status();
                let routed = status != axum::http::StatusCode::METHOD_NOT_ALLOWED;
                let is_documented = documented.contains(&(method.to_string(), path.clone()));
                assert_eq!(routed, is_documented, "{method} {path}: answered {status}");
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked} combinations checked");
        let doc = openapi_document();
        let parsed: openapiv3::OpenAPI =
            serde_json::from_value(doc.clone()).expect("a valid OpenAPI 3 document");
        assert_eq!(
            parsed.paths.paths.len(),
            paths.iter().collect::<std::collections::HashSet<_>>().len()
        );
    }
}
