//! Console sessions: the admin token lives here, on the server, and the
//! browser holds only a random session id in an HttpOnly, SameSite=Strict
//! cookie, so no page and no script can read the token. Each session has
//! its own CSRF token, which every form carries back.
//!
//! Sessions are kept in memory: a restart signs everyone out, and the
//! count is bounded (the longest unused goes first, one not signed in
//! before any signed in) so that a client making sessions can neither grow
//! the server nor sign admins out.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "hookd_console";

/// One browser's session.
#[derive(Clone)]
pub(crate) struct Session {
    /// Its id, the cookie's value.
    pub id: String,
    /// The admin token it was signed in with; none before sign-in, or
    /// without RBAC.
    pub token: Option<String>,
    /// What every form of the session carries back.
    pub csrf: String,
}

struct Kept {
    session: Session,
    last_seen: Instant,
}

/// Every session.
pub(crate) struct Sessions {
    kept: Mutex<HashMap<String, Kept>>,
    idle: Duration,
    max: usize,
}

/// 32 random bytes, hex.
fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    pub fn new(idle: Duration, max: usize) -> Self {
        Sessions {
            kept: Mutex::new(HashMap::new()),
            idle,
            max: max.max(1),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<String, Kept>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session, holding `token` if signed in.
    pub fn start(&self, token: Option<String>) -> Session {
        let session = Session {
            id: random_hex(),
            token,
            csrf: random_hex(),
        };
        let now = Instant::now();
        let mut kept = self.kept();
        kept.retain(|_, k| now.duration_since(k.last_seen) < self.idle);
        // Past the limit a session not signed in goes first, so that
        // anyone can open sign-in forms without signing admins out.
        if kept.len() >= self.max
            && let Some(oldest) = kept
                .iter()
                .min_by_key(|(_, k)| (k.session.token.is_some(), k.last_seen))
                .map(|(id, _)| id.clone())
        {
            kept.remove(&oldest);
        }
        kept.insert(
            session.id.clone(),
            Kept {
                session: session.clone(),
                last_seen: now,
            },
        );
        session
    }

    /// The session the request's cookie names, if it is live; using it
    /// keeps it live.
    pub fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers)?;
        let now = Instant::now();
        let mut kept = self.kept();
        let live = kept
            .get(id)
            .is_some_and(|k| now.duration_since(k.last_seen) < self.idle);
        if !live {
            kept.remove(id);
            return None;
        }
        let k = kept.get_mut(id)?;
        k.last_seen = now;
        Some(k.session.clone())
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        self.kept().remove(id);
    }
}

/// The session id the request's cookie carries.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value that gives the browser `session`: sent back only
/// to the console's own pages, never readable by script, never sent by
/// another site's request.
pub(crate) fn set_cookie(session: &Session) -> String {
    format!(
        "{COOKIE_NAME}={}; Path={}; HttpOnly; SameSite=Strict",
        session.id,
        crate::PREFIX
    )
}

/// The `Set-Cookie` value that takes the session cookie away.
pub(crate) fn clear_cookie() -> String {
    format!(
        "{COOKIE_NAME}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0",
        crate::PREFIX
    )
}

/// Whether two secrets are equal, in time that does not tell where they
/// differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_session_is_found_by_its_cookie_among_others() {
        let sessions = Sessions::new(Duration::from_secs(60), 10);
        let session = sessions.start(Some("token".into()));
        let headers = with_cookie(&format!("other=1; {COOKIE_NAME}={}; x=y", session.id));
        let found = sessions.find(&headers).unwrap();
        assert_eq!(found.token.as_deref(), Some("token"));
        assert_eq!(found.csrf, session.csrf);
        assert!(
            sessions
                .find(&with_cookie("hookd_console=forged"))
                .is_none()
        );
        assert!(sessions.find(&HeaderMap::new()).is_none());
    }

    #[test]
    fn an_idle_session_is_gone() {
        let sessions = Sessions::new(Duration::ZERO, 10);
        let session = sessions.start(None);
        assert!(
            sessions
                .find(&with_cookie(&format!("{COOKIE_NAME}={}", session.id)))
                .is_none()
        );
    }

    #[test]
    fn past_the_limit_the_longest_unused_session_goes() {
        let sessions = Sessions::new(Duration::from_secs(60), 2);
        let first = sessions.start(None);
        let second = sessions.start(None);
        std::thread::sleep(Duration::from_millis(2));
        assert!(
            sessions
                .find(&with_cookie(&format!("{COOKIE_NAME}={}", first.id)))
                .is_some()
        );
        let third = sessions.start(None);
        let live = |s: &Session| {
            sessions
                .find(&with_cookie(&format!("{COOKIE_NAME}={}", s.id)))
                .is_some()
        };
        assert!(live(&first));
        assert!(!live(&second));
        assert!(live(&third));
    }

    #[test]
    fn sessions_not_signed_in_go_before_signed_in_ones() {
        let sessions = Sessions::new(Duration::from_secs(60), 2);
        let admin = sessions.start(Some("token".into()));
        std::thread::sleep(Duration::from_millis(2));
        let form = sessions.start(None);
        let flood = sessions.start(None);
        let live = |s: &Session| {
            sessions
                .find(&with_cookie(&format!("{COOKIE_NAME}={}", s.id)))
                .is_some()
        };
        assert!(live(&admin), "the older, signed-in session stays");
        assert!(!live(&form));
        assert!(live(&flood));
    }

    #[test]
    fn ended_sessions_and_secrets() {
        let sessions = Sessions::new(Duration::from_secs(60), 10);
        let session = sessions.start(None);
        sessions.end(&session.id);
        assert!(
            sessions
                .find(&with_cookie(&format!("{COOKIE_NAME}={}", session.id)))
                .is_none()
        );
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(set_cookie(&session).contains("HttpOnly; SameSite=Strict"));
    }
}
