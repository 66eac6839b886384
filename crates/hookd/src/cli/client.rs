//! A small client of a running server's Admin API: JSON in and out, Kong's
//! error shape turned into an error that names the request, the status and
//! the server's message.

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use std::fmt;

/// Header carrying the RBAC token, as Kong's.
const TOKEN_HEADER: &str = "Kong-Admin-Token";

/// How a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing accepts connections at the URL: no server there, or the
    /// wrong address.
    #[error("{method} {url}: no server answers there (its address: --url or HOOKD_URL)")]
    Unreachable {
        /// The method.
        method: Method,
        /// The full URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// No answer: the connection cut, a timeout. The reason is the source,
    /// shown after the request by `{:#}`.
    #[error("{method} {url}")]
    Transport {
        /// The method.
        method: Method,
        /// The full URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The server answered something that is not the JSON expected.
    #[error("{method} {path}: the answer is not JSON ({reason})")]
    NotJson {
        /// The method.
        method: Method,
        /// The path.
        path: String,
        /// What the parser said.
        reason: String,
    },
    /// The token cannot be sent as a header.
    #[error("the admin token is not a valid header value")]
    BadToken,
}

/// An error answer: status and Kong's `{"message", "fields", ...}` body.
#[derive(Debug)]
pub struct ApiError {
    /// The method of the request.
    pub method: Method,
    /// Its path.
    pub path: String,
    /// The status answered.
    pub status: StatusCode,
    /// The body: Kong's error object, or the text when it is not JSON.
    pub body: Value,
}

impl ApiError {
    /// The server's words: Kong's `message`, with `err` when the handler
    /// failed under `/test`, or the raw text of a body that is not Kong's.
    pub fn message(&self) -> String {
        match (&self.body["message"], &self.body["err"]) {
            (Value::String(m), Value::String(err)) => format!("{m}: {err}"),
            (Value::String(m), _) => m.clone(),
            (_, _) => match &self.body {
                Value::String(text) if !text.trim().is_empty() => text.trim().to_string(),
                Value::Null => String::from("no details given"),
                other => other.to_string(),
            },
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}: {}",
            self.method,
            self.path,
            self.status,
            self.message()
        )
    }
}

impl std::error::Error for ApiError {}

/// The result of a request.
pub type Result<T> = std::result::Result<T, Error>;

/// A client of one server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<HeaderValue>,
}

impl Client {
    /// A client of the Admin API at `base` (`http://127.0.0.1:8001`),
    /// sending `token` as `Kong-Admin-Token` when given.
    pub fn new(base: &str, token: Option<&str>) -> Result<Client> {
        let token = match token {
            Some(t) => {
                let mut value = HeaderValue::from_str(t).map_err(|_| Error::BadToken)?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Client {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.header(TOKEN_HEADER, token.clone());
        }
        req
    }

    /// Sends the request; an error status becomes [`Error::Api`].
    async fn send(&self, method: Method, path: &str, req: RequestBuilder) -> Result<Vec<u8>> {
        let transport = |source: reqwest::Error| {
            let (method, url) = (method.clone(), format!("{}{path}", self.base));
            if source.is_connect() {
                Error::Unreachable {
                    method,
                    url,
                    source,
                }
            } else {
                Error::Transport {
                    method,
                    url,
                    source,
                }
            }
        };
        let response = req.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Err(ApiError {
            method,
            path: path.to_string(),
            status,
            body,
        }
        .into())
    }

    /// Sends and reads a JSON answer (null for an empty one, as a 204).
    async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let mut req = self.request(method.clone(), path);
        if let Some(body) = body {
            req = req.json(body);
        }
        let bytes = self.send(method.clone(), path, req).await?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::NotJson {
            method,
            path: path.to_string(),
            reason: e.to_string(),
        })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.json(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.json(Method::POST, path, Some(body)).await
    }

    /// `POST path` without a body (an action such as a retry).
    pub async fn post_empty(&self, path: &str) -> Result<Value> {
        self.json(Method::POST, path, None).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value> {
        self.json(Method::PUT, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<()> {
        self.json(Method::DELETE, path, None).await.map(drop)
    }

    /// `GET path` answered with bytes (a guest's `application/wasm`).
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let req = self.request(Method::GET, path);
        self.send(Method::GET, path, req).await
    }

    /// Uploads guest bytes under `name` (`POST /guests?name=`).
    pub async fn upload_guest(&self, name: &str, bytes: Vec<u8>) -> Result<Value> {
        let path = format!("/guests?name={}", encode(name));
        let req = self
            .request(Method::POST, &path)
            .header(CONTENT_TYPE, "application/wasm")
            .body(bytes);
        let answer = self.send(Method::POST, &path, req).await?;
        serde_json::from_slice(&answer).map_err(|e| Error::NotJson {
            method: Method::POST,
            path,
            reason: e.to_string(),
        })
    }

    /// Every item of a paginated list, page after page.
    ///
    /// The next page is asked for with the answer's `offset` on `path`
    /// itself rather than by following `next`: `next` carries only `size`
    /// and `offset`, so it would drop a filter such as `/audit?hook=`.
    pub async fn list(&self, path: &str) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut page_path = path.to_string();
        loop {
            let page = self.get(&page_path).await?;
            let Value::Array(data) = &page["data"] else {
                return Err(Error::NotJson {
                    method: Method::GET,
                    path: page_path,
                    reason: "no `data` list".into(),
                });
            };
            items.extend(data.iter().cloned());
            match (&page["next"], &page["offset"]) {
                (Value::Null, _) | (_, Value::Null) => return Ok(items),
                (_, offset) => {
                    let offset = offset
                        .as_str()
                        .map_or_else(|| offset.to_string(), str::to_string);
                    let sep = if path.contains('?') { '&' } else { '?' };
                    page_path = format!("{path}{sep}offset={}", encode(&offset));
                }
            }
        }
    }
}

/// Percent-encodes a path segment or query value: everything but
/// RFC 3986's unreserved characters, so that a name or id typed on the
/// command line can never change the path it goes into.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api_error(body: Value) -> ApiError {
        ApiError {
            method: Method::POST,
            path: "/event-hooks".into(),
            status: StatusCode::BAD_REQUEST,
            body,
        }
    }

    #[test]
    fn kongs_message_is_shown_with_the_request() {
        let e = api_error(json!({"code": 2, "name": "schema violation",
            "message": "schema violation (config.url: required field missing)",
            "fields": {"config": {"url": "required field missing"}}}));
        assert_eq!(
            e.to_string(),
            "POST /event-hooks: 400 Bad Request: schema violation (config.url: required field missing)"
        );
    }

    #[test]
    fn handler_failures_and_plain_bodies_are_shown_too() {
        let e = api_error(json!({"message": "An unexpected error occurred", "err": "refused"}));
        assert_eq!(e.message(), "An unexpected error occurred: refused");
        assert_eq!(api_error(json!("bad gateway\n")).message(), "bad gateway");
        assert_eq!(api_error(Value::Null).message(), "no details given");
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode("../x y?"), "..%2Fx%20y%3F");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
