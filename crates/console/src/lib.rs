//! The console: hookd's Admin API as pages in the browser, for operators
//! (which hooks fail, what one delivery's attempts looked like) and for
//! auditors (what each guest may reach, what it was denied).
//!
//! Every page is built from the Admin API's own answers, asked in-process
//! with the signed-in admin's token: the API stays the one source of truth
//! and the one place that decides who may do what, and a form's errors are
//! the API's Kong-shaped ones. The pages are rendered on the server from
//! templates compiled into the binary and carry no script at all, so that
//! nothing they show (hook configurations, guest names, event payloads,
//! all of it hostile input) can run in the browser; see DESIGN.md
//! "Console".
#![deny(missing_docs)]

mod api;
mod form;
mod page;
mod pages;
mod session;
mod viewer;

use api::AdminApi;
use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use session::Sessions;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tower::Service;

/// Where the console is served.
pub const PREFIX: &str = "/console";

/// A console path: `path` under [`PREFIX`].
pub(crate) fn at(path: &str) -> String {
    format!("{PREFIX}{path}")
}

/// The console's limits.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A session unused this long is signed out.
    pub session_idle: Duration,
    /// Sessions kept at most; past it, the longest unused is dropped.
    pub max_sessions: usize,
    /// Largest guest upload, in bytes (the Admin API's own limit).
    pub upload_limit: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            session_idle: Duration::from_secs(8 * 3600),
            max_sessions: 1000,
            upload_limit: 64 << 20,
        }
    }
}

/// What every page handler is given.
#[derive(Clone)]
pub(crate) struct Console {
    api: AdminApi,
    sessions: Arc<Sessions>,
    settings: Arc<Settings>,
}

/// The console's routes under [`PREFIX`], each page asking `admin` (the
/// Admin API, called in-process) for what it shows and does.
pub fn router<S>(admin: S, settings: Settings) -> Router
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let console = Console {
        api: AdminApi::new(admin),
        sessions: Arc::new(Sessions::new(settings.session_idle, settings.max_sessions)),
        settings: Arc::new(settings),
    };
    pages::routes(console)
}
