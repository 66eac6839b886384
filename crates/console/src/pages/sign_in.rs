//! Signing in with an admin token, and out. Without RBAC there is nothing
//! to sign in with: the console starts a session at once (for its CSRF
//! token) and says on every page that the API is open.

use crate::Console;
use crate::api::AdminApi;
use crate::at;
use crate::page::{Failure, Reply, render};
use crate::session::{clear_cookie, set_cookie};
use crate::viewer::{Form, SessionForm};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

/// Signing in and out.
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route(&at("/sign-in"), get(form).post(submit))
        .route(&at("/sign-out"), post(sign_out))
}

/// Whether the API lets anyone in without a token.
async fn rbac_off(api: &AdminApi) -> bool {
    api.call(None, Method::GET, "/userinfo", None)
        .await
        .status
        .is_success()
}

/// Where to go after signing in: the console page asked for, or the
/// overview. Only a path of the console itself, so that no link can make
/// the sign-in send anyone elsewhere.
fn after_sign_in(next: Option<&str>) -> String {
    match next {
        Some(next)
            if (next == crate::PREFIX || next.starts_with(&at("/")))
                && !next.contains("//")
                && !next.contains('\\') =>
        {
            next.to_string()
        }
        _ => crate::PREFIX.to_string(),
    }
}

/// The page asked for before signing in.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

/// `GET /console/sign-in`: the form, in a session of its own so that the
/// form carries a CSRF token too; without RBAC, straight in.
async fn form(
    State(console): State<Console>,
    Query(next): Query<Next>,
    headers: HeaderMap,
) -> Response {
    let next = after_sign_in(next.next.as_deref());
    if rbac_off(&console.api).await {
        let session = console.sessions.start(None);
        return Reply::Redirect(next).with_cookie(set_cookie(&session));
    }
    let session = match console.sessions.find(&headers) {
        Some(session) => session,
        None => console.sessions.start(None),
    };
    match sign_in_page(StatusCode::OK, &session.csrf, &next, None) {
        Ok(page) => page.with_cookie(set_cookie(&session)),
        Err(failure) => failure.into_response(),
    }
}

fn sign_in_page(
    status: StatusCode,
    csrf: &str,
    next: &str,
    error: Option<&str>,
) -> Result<Reply, Failure> {
    let html = render(
        "sign_in.html",
        json!({"title": "Sign in", "csrf": csrf, "next": next, "error": error}),
    )?;
    Ok(Reply::Page(status, html))
}

/// `POST /console/sign-in`: a token the API accepts starts a new session
/// holding it (a new id, so that an id planted before sign-in is worth
/// nothing after).
async fn submit(
    State(console): State<Console>,
    Form {
        sender: before,
        fields,
    }: SessionForm,
) -> Result<Response, Failure> {
    let next = after_sign_in(fields.get("next"));
    let token = fields.text("token").trim().to_string();
    let who = console
        .api
        .call(Some(&token), Method::GET, "/userinfo", None)
        .await;
    if token.is_empty() || !who.status.is_success() || who.body["admin"].is_null() {
        let page = sign_in_page(
            StatusCode::UNAUTHORIZED,
            &before.csrf,
            &next,
            Some("That token is not valid: check it, or ask a super-admin for a new one."),
        )?;
        return Ok(page.into_response());
    }
    console.sessions.end(&before.id);
    let session = console.sessions.start(Some(token));
    Ok(Reply::Redirect(next).with_cookie(set_cookie(&session)))
}

/// `POST /console/sign-out`.
async fn sign_out(State(console): State<Console>, form: SessionForm) -> Response {
    console.sessions.end(&form.sender.id);
    Reply::Redirect(at("/sign-in")).with_cookie(clear_cookie())
}

#[cfg(test)]
mod tests {
    use super::after_sign_in;

    #[test]
    fn signing_in_returns_only_to_a_page_of_the_console() {
        assert_eq!(
            after_sign_in(Some("/console/hooks?offset=x")),
            "/console/hooks?offset=x"
        );
        assert_eq!(after_sign_in(Some("/console")), "/console");
        for elsewhere in [
            "https://evil.example/",
            "//evil.example",
            "/consoles",
            "/console//evil",
            "/console/\\evil",
            "/status",
        ] {
            assert_eq!(after_sign_in(Some(elsewhere)), "/console", "{elsewhere}");
        }
        assert_eq!(after_sign_in(None), "/console");
    }
}
