//! The console's pages, one module each, and the routes that reach them.

mod audit;
mod dead_letters;
mod deliveries;
mod grant;
mod guests;
mod hooks;
mod overview;
mod quarantine;
mod sign_in;
mod sources;

use crate::Console;
use crate::page::{Failure, STYLESHEET, security_headers};
use crate::viewer::Viewer;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

/// Every route, under [`crate::PREFIX`], each answer with the console's
/// security headers.
pub(crate) fn routes(console: Console) -> Router {
    let upload_limit = console.settings.upload_limit + (64 << 10);
    let at = |path: &str| format!("{}{path}", crate::PREFIX);
    Router::new()
        .route(&at(""), get(overview::show))
        .route(&at("/sign-in"), get(sign_in::form).post(sign_in::submit))
        .route(&at("/sign-out"), post(sign_in::sign_out))
        .route(&at("/console.css"), get(stylesheet))
        .route(&at("/hooks"), get(hooks::list).post(hooks::create))
        .route(&at("/hooks/new"), get(hooks::new))
        .route(&at("/hooks/{id}"), get(hooks::show))
        .route(
            &at("/hooks/{id}/edit"),
            get(hooks::edit).post(hooks::update),
        )
        .route(&at("/hooks/{id}/delete"), post(hooks::delete))
        .route(&at("/hooks/{id}/test"), post(hooks::test))
        .route(&at("/hooks/{id}/ping"), post(hooks::ping))
        .route(&at("/dead-letters"), get(dead_letters::list))
        .route(&at("/deliveries/{id}"), get(deliveries::show))
        .route(&at("/deliveries/{id}/retry"), post(deliveries::retry))
        .route(
            &at("/guests"),
            get(guests::list)
                .post(guests::upload)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route(&at("/guests/{name}"), get(guests::show))
        .route(&at("/guests/{name}/delete"), post(guests::delete))
        .route(&at("/audit"), get(audit::show))
        .route(&at("/sources"), get(sources::list))
        .route(&at("/sources/{source}/{event}"), get(sources::event))
        .route(&at("/quarantine"), get(quarantine::list))
        .route(&at("/quarantine/{id}/retry"), post(quarantine::retry))
        .route(&at("/quarantine/{id}/delete"), post(quarantine::delete))
        .layer(axum::middleware::map_response(
            |mut response: axum::response::Response| async move {
                response.headers_mut().extend(security_headers());
                response
            },
        ))
        .with_state(console)
}

async fn stylesheet() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], STYLESHEET)
}

/// Which page of a listing.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Paging {
    offset: Option<String>,
}

/// One page of an Admin API listing, and the console's link to the page
/// after it.
pub(crate) struct Listing {
    /// The listing's `data`.
    pub data: Value,
    /// The console's link to the next page, when there is one.
    pub next: Option<String>,
}

impl Paging {
    /// This page, of `size` items, of the API's listing at `api_path`; the
    /// next page is linked on the console's page at `page_path`.
    pub async fn read(
        &self,
        viewer: &Viewer,
        api_path: &str,
        size: usize,
        page_path: &str,
    ) -> Result<Listing, Failure> {
        let mut page = viewer
            .get(&format!("{api_path}?{}", self.query(size)))
            .await?;
        Ok(Listing {
            next: next_link(&page, page_path),
            data: page["data"].take(),
        })
    }

    /// The API's query for this page of `size` items.
    fn query(&self, size: usize) -> String {
        match &self.offset {
            Some(offset) => format!("size={size}&offset={}", encode(offset)),
            None => format!("size={size}"),
        }
    }
}

/// A path segment or query value from the console's own links and forms,
/// encoded for the Admin API's URL.
pub(crate) fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The console's link to the page after `page` (an API listing) of the
/// console page at `base`.
fn next_link(page: &serde_json::Value, base: &str) -> Option<String> {
    next_offset(page).map(|offset| format!("{base}?offset={}", encode(&offset)))
}

/// The `offset` of an API listing's `next` path.
pub(crate) fn next_offset(page: &serde_json::Value) -> Option<String> {
    let next = page["next"].as_str()?;
    let (_, query) = next.split_once('?')?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "offset")
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn next_pages_and_encoding() {
        assert_eq!(
            next_offset(&json!({"next": "/event-hooks?offset=abc%3D&size=5"})).as_deref(),
            Some("abc=")
        );
        assert_eq!(next_offset(&json!({"next": null})), None);
        assert_eq!(
            next_link(
                &json!({"next": "/quarantine?offset=a+b%2F"}),
                "/console/quarantine"
            )
            .as_deref(),
            Some("/console/quarantine?offset=a%20b%2F")
        );
        assert_eq!(encode("a b/c?d"), "a%20b%2Fc%3Fd");
    }
}
