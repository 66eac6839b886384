//! `GET /wit`: the guest contract, the WIT of world `hookd:lambda/lambda`
//! this server's sandbox implements, so that a guest author builds against
//! exactly the server they upload to.

use crate::api::{Api, doc};
use axum::http::Method;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;

/// What `GET /wit` answers with.
const CONTENT_TYPE_WIT: &str = "text/plain; charset=utf-8";

/// The WIT route.
pub fn router() -> Api {
    Api::new().route(
        "/wit",
        get(|| async { ([(CONTENT_TYPE, CONTENT_TYPE_WIT)], hookd_sandbox::WIT) }),
        [doc(
            Method::GET,
            "The guest contract: the WIT of world hookd:lambda/lambda",
        )
        .text(CONTENT_TYPE_WIT)],
    )
}
