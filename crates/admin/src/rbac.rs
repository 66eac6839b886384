//! Admin authentication as Kong Enterprise's RBAC does it: with
//! `enforce_rbac` on, every request needs `Kong-Admin-Token` (or
//! `Authorization: Bearer`), and the token's role decides what it may do.
//! Tokens are kept as sha256 hashes; the bootstrap token of the
//! configuration is a super-admin.

use crate::AdminState;
use crate::api::{Api, doc};
use crate::crud::find;
use crate::error::{ApiError, ApiResult};
use crate::resource::Resource;
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hookd_model::entity;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How requests are authenticated.
#[derive(Debug, Clone, Default)]
pub struct Rbac {
    /// Whether every request needs a valid token.
    pub enforce: bool,
    /// sha256 of the bootstrap super-admin token, if one is configured.
    pub bootstrap: Option<[u8; 32]>,
}

impl Rbac {
    /// RBAC as configured; an empty bootstrap token means none.
    pub fn new(enforce: bool, bootstrap_token: &str) -> Self {
        Rbac {
            enforce,
            bootstrap: (!bootstrap_token.is_empty()).then(|| hash(bootstrap_token)),
        }
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What a role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    SuperAdmin,
    /// Hooks, guests, entities, deliveries: everything but admins.
    Admin,
    /// Reading only.
    ReadOnly,
}

impl Role {
    fn parse(name: &str) -> Option<Role> {
        match name {
            "super-admin" => Some(Role::SuperAdmin),
            "admin" => Some(Role::Admin),
            "read-only" => Some(Role::ReadOnly),
            _ => None,
        }
    }

    /// The role's name, as an admin's `role` holds it.
    pub fn name(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super-admin",
            Role::Admin => "admin",
            Role::ReadOnly => "read-only",
        }
    }

    fn permits(self, method: &Method, path: &str) -> bool {
        let reading = matches!(*method, Method::GET | Method::HEAD);
        match self {
            Role::SuperAdmin => true,
            Role::Admin => !(path == "/admins" || path.starts_with("/admins/")),
            Role::ReadOnly => reading,
        }
    }
}

/// Who made a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The admin's username, or `bootstrap`.
    pub name: String,
    /// Their role.
    pub role: Role,
}

fn token(req: &Request) -> Option<&str> {
    let headers = req.headers();
    if let Some(t) = headers
        .get("kong-admin-token")
        .and_then(|v| v.to_str().ok())
    {
        return Some(t.trim());
    }
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The admin a token belongs to, if it is valid.
async fn principal(state: &AdminState, token: &str) -> ApiResult<Option<Principal>> {
    let digest = hash(token);
    if state
        .rbac
        .bootstrap
        .is_some_and(|b| constant_time_eq(&b, &digest))
    {
        return Ok(Some(Principal {
            name: "bootstrap".into(),
            role: Role::SuperAdmin,
        }));
    }
    let Some(id) = state.store.admin_by_token(&digest).await? else {
        return Ok(None);
    };
    let Some(admin) = state.store.get("admins", id).await? else {
        return Ok(None);
    };
    if admin["rbac_token_enabled"] != true {
        return Ok(None);
    }
    Ok(admin["role"]
        .as_str()
        .and_then(Role::parse)
        .map(|role| Principal {
            name: admin["username"].as_str().unwrap_or_default().to_string(),
            role,
        }))
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn action(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => "read",
        Method::POST => "create",
        Method::DELETE => "delete",
        _ => "update",
    }
}

/// The middleware: 401 without a valid token, 403 for a role that may not.
pub async fn authorize(State(state): State<AdminState>, mut req: Request, next: Next) -> Response {
    if !state.rbac.enforce {
        return next.run(req).await;
    }
    let Some(token) = token(&req) else {
        return ApiError::Unauthorized.into_response();
    };
    let who = match principal(&state, token).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return ApiError::Unauthorized.into_response();
        }
        Err(e) => return e.into_response(),
    };
    if !who.role.permits(req.method(), req.uri().path()) {
        let message = format!(
            "{}, you do not have permissions to {} this resource",
            who.name,
            action(req.method())
        );
        return ApiError::Forbidden(message).into_response();
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

/// A fresh token: 32 random bytes, hex, shown to its owner once.
fn new_token() -> String {
    format!("hookd_{}", hex::encode(rand::random::<[u8; 32]>()))
}

/// Issues a token for an admin and stores its hash; returns the token.
pub(crate) async fn issue(state: &AdminState, admin: &Value) -> ApiResult<String> {
    let id = admin["id"]
        .as_str()
        .and_then(|s| uuid::Uuid::try_parse(s).ok())
        .ok_or_else(|| ApiError::Internal("admin without id".into()))?;
    let token = new_token();
    state.store.set_admin_token(id, hash(&token)).await?;
    Ok(token)
}

/// `POST /admins/{key}/token`: a new token for an admin, replacing the
/// old; `GET /userinfo`: who the caller is (Kong Manager's question).
pub fn router() -> Api {
    Api::new()
        .route(
            "/admins/{key}/token",
            post(rotate),
            [doc(
                Method::POST,
                "Issue a new token for an admin (shown once; the old one stops working)",
            )
            .json(201, "AdminToken")],
        )
        .route(
            "/userinfo",
            get(userinfo),
            [doc(
                Method::GET,
                "Whether RBAC is enforced, and the admin the request's token belongs to",
            )
            .json(200, "UserInfo")],
        )
}

/// Without RBAC nobody is signed in and everyone may do everything; with
/// it, the middleware has already refused a request without a valid token.
async fn userinfo(State(state): State<AdminState>, req: Request) -> Json<Value> {
    let admin = req
        .extensions()
        .get::<Principal>()
        .map(|who| json!({"username": who.name, "role": who.role.name()}));
    Json(json!({"rbac_enforced": state.rbac.enforce, "admin": admin}))
}

async fn rotate(
    State(state): State<AdminState>,
    Path(key): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let admins = entity::by_name("admins").ok_or(ApiError::NOT_FOUND)?;
    let admin = find(&state, Resource::Entity(admins), None, &key)
        .await?
        .ok_or(ApiError::NOT_FOUND)?;
    let token = issue(&state, &admin).await?;
    Ok((StatusCode::CREATED, Json(json!({"token": token}))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_permit_as_documented() {
        assert!(Role::SuperAdmin.permits(&Method::DELETE, "/admins/x"));
        assert!(Role::Admin.permits(&Method::POST, "/event-hooks"));
        assert!(Role::Admin.permits(&Method::POST, "/guests"));
        assert!(!Role::Admin.permits(&Method::POST, "/admins"));
        assert!(!Role::Admin.permits(&Method::GET, "/admins/x"));
        assert!(Role::Admin.permits(&Method::GET, "/administrators-are-not-admins"));
        assert!(Role::ReadOnly.permits(&Method::GET, "/event-hooks"));
        assert!(!Role::ReadOnly.permits(&Method::PATCH, "/event-hooks/x"));
    }

    #[test]
    fn role_names_read_back() {
        for role in [Role::SuperAdmin, Role::Admin, Role::ReadOnly] {
            assert_eq!(Role::parse(role.name()), Some(role));
        }
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), "hookd_".len() + 64);
        assert!(constant_time_eq(&hash(&a), &hash(&a)));
        assert!(!constant_time_eq(&hash(&a), &hash(&b)));
    }
}
