//! Rendering pages: the templates compiled into the binary, HTML-escaped
//! wherever a value is written, and the headers every answer of the
//! console carries.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY, SET_COOKIE,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, Value as TemplateValue};
use serde::Serialize;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

/// No script from anywhere, styles only from the console's own stylesheet,
/// forms only back to the console, never framed: whatever a hook's
/// configuration or an event's payload holds, nothing it makes the page
/// say can run.
pub(crate) const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The headers of every console answer.
pub(crate) fn security_headers() -> [(HeaderName, HeaderValue); 6] {
    [
        (
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
        ),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        // Not `no-referrer`: browsers then send `Origin: null` with a form,
        // and the origin check (`viewer::same_origin`) needs the real one.
        // Same-origin still tells no other site which page linked to it.
        (REFERRER_POLICY, HeaderValue::from_static("same-origin")),
        (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ]
}

/// `(name, source)` of each file of `templates/` named, each written once.
macro_rules! templates {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),+]
    };
}

/// Every template, by name; the `.html` names turn HTML escaping on.
const TEMPLATES: &[(&str, &str)] = templates![
    "layout.html",
    "macros.html",
    "error.html",
    "sign_in.html",
    "overview.html",
    "hooks.html",
    "hook.html",
    "hook_form.html",
    "grant.html",
    "delivery.html",
    "dead_letters.html",
    "guests.html",
    "guest.html",
    "audit.html",
    "sources.html",
    "event.html",
    "quarantine.html",
];

/// The console's stylesheet.
pub(crate) const STYLESHEET: &str = include_str!("../assets/console.css");

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            // The templates are part of the program: one that does not
            // compile is caught by the tests that render every page.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "a console template does not compile");
            }
        }
        env.add_filter("time", time);
        env.add_filter("ms_time", ms_time);
        env.add_filter("short", short);
        env
    })
}

/// Unix seconds as an RFC 3339 time, UTC.
fn time(seconds: TemplateValue) -> String {
    match i64::try_from(seconds)
        .ok()
        .and_then(|s| u64::try_from(s).ok())
    {
        Some(s) => humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s))
            .to_string()
            .replace('T', " "),
        None => String::new(),
    }
}

/// Unix milliseconds as an RFC 3339 time, UTC, to the millisecond.
fn ms_time(ms: TemplateValue) -> String {
    match i64::try_from(ms).ok().and_then(|s| u64::try_from(s).ok()) {
        Some(ms) => humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms))
            .to_string()
            .replace('T', " "),
        None => String::new(),
    }
}

/// The first 8 characters of an id or a digest, as lists show them.
fn short(text: TemplateValue) -> String {
    text.as_str()
        .map(|s| s.chars().take(8).collect())
        .unwrap_or_default()
}

/// A page, a redirect or a download.
pub(crate) enum Reply {
    /// A rendered page with its status.
    Page(StatusCode, String),
    /// See other: where to go next, after a change.
    Redirect(String),
}

impl Reply {
    /// The reply, with a session cookie set (or taken away).
    pub fn with_cookie(self, cookie: String) -> Response {
        let mut response = self.into_response();
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(SET_COOKIE, value);
        }
        response
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Page(status, html) => (
                status,
                [(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                )],
                html,
            )
                .into_response(),
            Reply::Redirect(location) => match HeaderValue::from_str(&location) {
                Ok(location) => (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response(),
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            },
        }
    }
}

/// Why a page cannot be shown.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Nobody is signed in (or the token stopped working); the page to go
    /// back to after signing in, if there is one.
    SignIn(Option<String>),
    /// The API's answer, or the console's own refusal, with its status.
    Status(StatusCode, String),
}

impl Failure {
    pub fn status(status: StatusCode, message: impl Into<String>) -> Self {
        Failure::Status(status, message.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::SignIn(next) => {
                let sign_in = crate::at("/sign-in");
                Reply::Redirect(match next {
                    Some(next) => format!("{sign_in}?next={}", crate::pages::encode(&next)),
                    None => sign_in,
                })
                .into_response()
            }
            Failure::Status(status, message) => {
                let context = minijinja::context! {
                    title => status.canonical_reason().unwrap_or("Error"),
                    status => status.as_u16(),
                    message => message,
                };
                match render("error.html", context) {
                    Ok(html) => Reply::Page(status, html).into_response(),
                    Err(_) => (status, message).into_response(),
                }
            }
        }
    }
}

/// The page `template` with `context`.
pub(crate) fn render(template: &str, context: impl Serialize) -> Result<String, Failure> {
    let env = environment();
    env.get_template(template)
        .and_then(|t| t.render(context))
        .map_err(|e| {
            tracing::error!(template, error = %e, "rendering a console page failed");
            Failure::status(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("rendering {template} failed"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let env = environment();
        for (name, _) in TEMPLATES {
            env.get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn times_read_as_utc() {
        assert_eq!(time(TemplateValue::from(0)), "1970-01-01 00:00:00Z");
        assert_eq!(
            ms_time(TemplateValue::from(1_500)),
            "1970-01-01 00:00:01.500Z"
        );
        assert_eq!(time(TemplateValue::from(-1)), "");
        assert_eq!(time(TemplateValue::from("x")), "");
        assert_eq!(short(TemplateValue::from("0123456789")), "01234567");
        assert_eq!(short(TemplateValue::UNDEFINED), "");
    }

    #[test]
    fn values_are_escaped_wherever_they_are_written() {
        let html = render(
            "error.html",
            minijinja::context! {
                title => "<script>alert(1)</script>",
                status => 400,
                message => "\"><img src=x onerror=alert(1)>",
            },
        )
        .unwrap();
        assert!(!html.contains("<script>alert"));
        assert!(!html.contains("<img src=x"));
        assert!(html.contains("&lt;script&gt;"));
    }
}
