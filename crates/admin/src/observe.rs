//! What the Admin API tells about itself: a request id on every request
//! (in the logs and in the answer's `x-request-id`), request metrics by
//! route, `GET /metrics` and `GET /openapi.json`.

use crate::AdminState;
use crate::api::{Api, doc};
use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hookd_metrics::{OriginLabels, RouteLabels, RouteStatusLabels};
use hookd_model::clock::{Clock, SystemClock};
use std::time::Instant;
use tower::ServiceBuilder;
use tower::layer::util::Stack;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, TraceLayer};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The metrics and OpenAPI routes.
pub fn router() -> Api {
    Api::new()
        .route(
            "/metrics",
            get(metrics),
            [doc(
                Method::GET,
                "Metrics in the Prometheus (OpenMetrics) text format",
            )
            .bytes(hookd_metrics::CONTENT_TYPE)],
        )
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi_document()) }),
            [doc(Method::GET, "This document")],
        )
}

async fn metrics(State(state): State<AdminState>) -> Response {
    let m = &state.metrics;
    m.queue_depth
        .set(state.deliveries.queue_depth().await.unwrap_or_default() as i64);
    m.queue_oldest_due_seconds
        .set(oldest_due_seconds(&state, SystemClock.now_ms()).await);
    let shards = state.deliveries.shards();
    m.cluster_shards_held.set(i64::from(shards.count()));
    m.cluster_lease_takeovers.set(shards.takeovers() as i64);
    m.cluster_dispatching
        .set(i64::from(state.deliveries.dispatching()));
    let counters = state.sandbox.counters();
    m.guests_compiled.set(counters.compiled as i64);
    m.guests_loaded_from_cache
        .set(counters.loaded_from_cache as i64);
    match state.store.quarantine_counts().await {
        Ok(counts) => {
            for (origin, n) in counts {
                let labels = OriginLabels {
                    origin: origin.as_str().to_string(),
                };
                m.quarantined_records.get_or_create(&labels).set(n as i64);
            }
        }
        Err(e) => tracing::error!(error = %e, "counting quarantined records failed"),
    }
    ([(CONTENT_TYPE, hookd_metrics::CONTENT_TYPE)], m.render()).into_response()
}

/// How overdue the most overdue delivery is at `now_ms`, in seconds; zero
/// when none is, or the store cannot tell.
pub(crate) async fn oldest_due_seconds(state: &AdminState, now_ms: i64) -> f64 {
    match state.store.next_due_ms().await {
        Ok(Some(due)) => ((now_ms - due).max(0) as f64) / 1000.0,
        _ => 0.0,
    }
}

/// Counts every request by method, route and status, with its duration.
/// Runs before authentication, so every label is taken from a fixed set.
pub async fn count(State(state): State<AdminState>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let m = &state.metrics;
    m.admin_request_seconds
        .get_or_create(&RouteLabels {
            method,
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    m.admin_requests
        .get_or_create(&RouteStatusLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// The route label of a request no route matched, whatever its path.
const UNMATCHED: &str = "unmatched";

/// The method label: a method of RFC 9110 (and PATCH) as itself, any other
/// (HTTP allows any token) as `other`.
fn method_label(method: &Method) -> &'static str {
    static KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", |known| known.as_str())
}

type RequestIds = Stack<
    PropagateRequestIdLayer,
    Stack<
        TraceLayer<
            SharedClassifier<ServerErrorsAsFailures>,
            MakeSpan,
            DefaultOnRequest,
            DefaultOnResponse,
        >,
        Stack<SetRequestIdLayer<MakeRequestUuid>, tower::layer::util::Identity>,
    >,
>;

/// The span of a request: its method, path and request id, so every log
/// line within carries them.
#[derive(Clone, Copy)]
pub struct MakeSpan;

impl<B> tower_http::trace::MakeSpan<B> for MakeSpan {
    fn make_span(&mut self, req: &axum::http::Request<B>) -> tracing::Span {
        let id = req
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
    }
}

/// Gives each request an id (or keeps the caller's `x-request-id`),
/// traces it under that id, and returns the id in the answer.
pub fn request_ids() -> RequestIds {
    ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(MakeSpan)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_methods_are_their_own_label_and_the_rest_is_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in ["M00001XXX", "get", "PROPFIND"] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{made_up}");
        }
    }
}
