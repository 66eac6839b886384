//! Who is looking: the session a request's cookie names, and what the
//! Admin API says its token may do, asked afresh on every page so that a
//! revoked token or a changed role takes effect at once. A change comes as
//! a [`Posted`] form, which must carry its session's CSRF token and come
//! from the console's own origin.

use crate::Console;
use crate::api::{AdminApi, Answer, Upload};
use crate::form::Fields;
use crate::page::{Failure, Reply, render};
use crate::session::{Session, same_secret};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

/// The signed-in admin (or, without RBAC, anyone) looking at a page.
pub(crate) struct Viewer {
    api: AdminApi,
    pub session: Session,
    /// Whether the API enforces RBAC.
    pub rbac_enforced: bool,
    /// The admin's name and role, with RBAC.
    pub admin: Option<(String, String)>,
}

impl FromRequestParts<Console> for Viewer {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Failure> {
        // A page asked for is shown after signing in; a change is not made.
        let sign_in = || {
            let next = (parts.method == Method::GET)
                .then(|| parts.uri.path_and_query().map(|p| p.to_string()))
                .flatten();
            Failure::SignIn(next)
        };
        let session = console.sessions.find(&parts.headers).ok_or_else(sign_in)?;
        let who = console
            .api
            .call(session.token.as_deref(), Method::GET, "/userinfo", None)
            .await;
        if who.status == StatusCode::UNAUTHORIZED {
            console.sessions.end(&session.id);
            return Err(sign_in());
        }
        if !who.status.is_success() {
            return Err(Failure::status(who.status, who.message()));
        }
        let admin = who.body["admin"].as_object().map(|admin| {
            let text = |key: &str| admin.get(key).and_then(Value::as_str).unwrap_or_default();
            (text("username").to_string(), text("role").to_string())
        });
        Ok(Viewer {
            api: console.api.clone(),
            session,
            rbac_enforced: who.body["rbac_enforced"] == true,
            admin,
        })
    }
}

impl Viewer {
    /// Whether the viewer may change anything (read-only admins may not):
    /// the console shows no change buttons then. The API decides anyway.
    pub fn may_change(&self) -> bool {
        match &self.admin {
            Some((_, role)) => role != "read-only",
            None => !self.rbac_enforced,
        }
    }

    /// Calls the Admin API with the viewer's token.
    pub async fn call(&self, method: Method, path: &str, upload: Option<Upload>) -> Answer {
        self.api
            .call(self.session.token.as_deref(), method, path, upload)
            .await
    }

    /// Deletes what the API has at `path`, then sends the browser to
    /// `then`.
    pub async fn delete_then(&self, path: &str, then: String) -> Result<Reply, Failure> {
        ok(self.call(Method::DELETE, path, None).await)?;
        Ok(Reply::Redirect(then))
    }

    /// The API's answer to a read, which must succeed.
    pub async fn get(&self, path: &str) -> Result<Value, Failure> {
        let answer = self.call(Method::GET, path, None).await;
        ok(answer).map(|a| a.body)
    }

    /// Every item of an API listing, following its pages up to `most`
    /// items (the console never walks an unbounded listing).
    pub async fn get_all(&self, path: &str, most: usize) -> Result<Vec<Value>, Failure> {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(path) = next.take() {
            let page = self.get(&path).await?;
            if let Some(data) = page["data"].as_array() {
                items.extend(data.iter().cloned());
            }
            if items.len() >= most {
                items.truncate(most);
                break;
            }
            next = page["next"].as_str().map(str::to_string);
        }
        Ok(items)
    }

    /// Renders `template` for the viewer: `context` plus who is signed in,
    /// whether they may change things, the CSRF token and `section`, the
    /// part of the navigation the page belongs to.
    pub fn page(
        &self,
        status: StatusCode,
        template: &str,
        section: &str,
        mut context: Value,
    ) -> Result<Reply, Failure> {
        context["viewer"] = json!({
            "admin": self.admin.as_ref().map(|(name, role)| json!({"name": name, "role": role})),
            "rbac_enforced": self.rbac_enforced,
            "may_change": self.may_change(),
            "csrf": self.session.csrf,
        });
        context["section"] = json!(section);
        Ok(Reply::Page(status, render(template, &context)?))
    }

    /// [`Viewer::page`] answering 200.
    pub fn show(&self, template: &str, section: &str, context: Value) -> Result<Reply, Failure> {
        self.page(StatusCode::OK, template, section, context)
    }
}

/// The answer, if the API accepted the request; its failure otherwise:
/// sign in again on 401, the API's message and status on anything else.
pub(crate) fn ok(answer: Answer) -> Result<Answer, Failure> {
    match answer.status {
        s if s.is_success() => Ok(answer),
        StatusCode::UNAUTHORIZED => Err(Failure::SignIn(None)),
        s => Err(Failure::status(s, answer.message())),
    }
}

/// A form sent by `S`: its fields, checked to come from the console's own
/// origin and to carry the CSRF token of the sender's session.
pub(crate) struct Form<S> {
    pub sender: S,
    pub fields: Fields,
}

/// A form sent to change something, by whoever is signed in.
pub(crate) type Posted = Form<Viewer>;

/// A form of a session that need not be signed in (signing in and out).
pub(crate) type SessionForm = Form<Session>;

/// Who may send a form.
pub(crate) trait Sender: Sized + Send {
    /// Who sent a request, or why they may not send it.
    fn of(
        parts: &mut Parts,
        console: &Console,
    ) -> impl Future<Output = Result<Self, Failure>> + Send;

    /// The session whose CSRF token the form must carry.
    fn session(&self) -> &Session;
}

impl Sender for Viewer {
    fn of(
        parts: &mut Parts,
        console: &Console,
    ) -> impl Future<Output = Result<Self, Failure>> + Send {
        Viewer::from_request_parts(parts, console)
    }

    fn session(&self) -> &Session {
        &self.session
    }
}

impl Sender for Session {
    async fn of(parts: &mut Parts, console: &Console) -> Result<Self, Failure> {
        console
            .sessions
            .find(&parts.headers)
            .ok_or(Failure::SignIn(None))
    }

    fn session(&self) -> &Session {
        self
    }
}

impl<S: Sender> FromRequest<Console> for Form<S> {
    type Rejection = Failure;

    async fn from_request(request: Request, console: &Console) -> Result<Self, Failure> {
        let (mut parts, body) = request.into_parts();
        same_origin(&parts.headers)?;
        let sender = S::of(&mut parts, console).await?;
        let fields = Fields::read(body).await?;
        check_csrf(sender.session(), fields.get("csrf"))?;
        Ok(Form { sender, fields })
    }
}

/// Refuses a change whose `Origin` is another site's. Browsers send it
/// with every form POST; the session cookie's SameSite=Strict and the
/// CSRF token are the other two locks.
pub(crate) fn same_origin(headers: &HeaderMap) -> Result<(), Failure> {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    if origin_host == Some(host) {
        Ok(())
    } else {
        Err(Failure::status(
            StatusCode::FORBIDDEN,
            "This change was sent from another site: refused.",
        ))
    }
}

/// Refuses a form without its session's CSRF token.
pub(crate) fn check_csrf(session: &Session, sent: Option<&str>) -> Result<(), Failure> {
    match sent {
        Some(sent) if same_secret(sent, &session.csrf) => Ok(()),
        _ => Err(Failure::status(
            StatusCode::FORBIDDEN,
            "This form is stale or did not come from this console: reload the page and try again.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(axum::http::HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn only_the_consoles_own_origin_may_change_things() {
        assert!(same_origin(&headers(&[(HOST, "127.0.0.1:8001")])).is_ok());
        assert!(
            same_origin(&headers(&[
                (HOST, "127.0.0.1:8001"),
                (ORIGIN, "http://127.0.0.1:8001")
            ]))
            .is_ok()
        );
        assert!(
            same_origin(&headers(&[
                (HOST, "127.0.0.1:8001"),
                (ORIGIN, "http://evil.example")
            ]))
            .is_err()
        );
        assert!(same_origin(&headers(&[(HOST, "127.0.0.1:8001"), (ORIGIN, "null")])).is_err());
    }

    #[test]
    fn a_form_needs_its_sessions_token() {
        let session = Session {
            id: "s".into(),
            token: None,
            csrf: "c".repeat(64),
        };
        assert!(check_csrf(&session, Some(&"c".repeat(64))).is_ok());
        assert!(check_csrf(&session, Some("c")).is_err());
        assert!(check_csrf(&session, None).is_err());
    }
}
