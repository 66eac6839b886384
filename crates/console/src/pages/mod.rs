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

use crate::page::{Failure, STYLESHEET, security_headers};
use crate::viewer::Viewer;
use crate::{Console, at};
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;

/// Every route, under [`crate::PREFIX`], each answer with the console's
/// security headers. Each page lists its own routes.
pub(crate) fn routes(console: Console) -> Router {
    Router::new()
        .route(&at("/console.css"), get(stylesheet))
        .merge(overview::routes())
        .merge(sign_in::routes())
        .merge(hooks::routes())
        .merge(dead_letters::routes())
        .merge(deliveries::routes())
        .merge(guests::routes(console.settings.upload_limit))
        .merge(audit::routes())
        .merge(sources::routes())
        .merge(quarantine::routes())
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
