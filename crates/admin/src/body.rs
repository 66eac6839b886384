//! Request bodies as Kong reads them: JSON, or form fields with dotted
//! keys (`config.url=...`, `tags[]=a`, `tags=a&tags=b`), within a size limit.

use crate::AdminState;
use crate::error::ApiError;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::{Map, Value};

/// A decoded request body.
#[derive(Debug)]
pub struct KongBody {
    /// The body as a JSON value (an object for form input).
    pub value: Value,
    /// Whether it came from form fields, whose values are all strings.
    pub from_form: bool,
}

impl FromRequest<AdminState> for KongBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AdminState) -> Result<Self, ApiError> {
        let limit = state.body_limit;
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if mime == "multipart/form-data" {
            return read_multipart(req, state).await;
        }
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| ApiError::TooLarge(limit))?;
        match mime.as_str() {
            "" if bytes.iter().all(u8::is_ascii_whitespace) => Ok(KongBody {
                value: Value::Object(Map::new()),
                from_form: false,
            }),
            "" | "application/json" => json_body(&bytes),
            m if m.ends_with("+json") => json_body(&bytes),
            "application/x-www-form-urlencoded" => {
                let mut obj = Map::new();
                for (k, v) in form_urlencoded::parse(&bytes) {
                    insert_field(&mut obj, &k, Value::String(v.into_owned()));
                }
                Ok(KongBody {
                    value: Value::Object(obj),
                    from_form: true,
                })
            }
            other => Err(ApiError::UnsupportedMediaType(other.to_string())),
        }
    }
}

fn json_body(bytes: &[u8]) -> Result<KongBody, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(KongBody {
            value: Value::Object(Map::new()),
            from_form: false,
        });
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("Cannot parse JSON body: {e}")))?;
    Ok(KongBody {
        value,
        from_form: false,
    })
}

async fn read_multipart(req: Request, state: &AdminState) -> Result<KongBody, ApiError> {
    let limit = state.body_limit;
    let req = limit_body(req, limit);
    let mut multipart = axum::extract::Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::BadRequest(format!("Cannot parse multipart body: {e}")))?;
    let mut obj = Map::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        let Some(name) = field.name().map(str::to_string) else {
            continue;
        };
        let text = field.text().await.map_err(|e| multipart_error(e, limit))?;
        insert_field(&mut obj, &name, Value::String(text));
    }
    Ok(KongBody {
        value: Value::Object(obj),
        from_form: true,
    })
}

/// Caps the body a multipart reader may consume.
pub(crate) fn limit_body(req: Request, limit: usize) -> Request {
    let (parts, body) = req.into_parts();
    let body = axum::body::Body::new(http_body_util::Limited::new(body, limit));
    Request::from_parts(parts, body)
}

pub(crate) fn multipart_error(
    e: axum::extract::multipart::MultipartError,
    limit: usize,
) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(limit)
    } else {
        ApiError::BadRequest(format!("Cannot parse multipart body: {}", e.body_text()))
    }
}

/// Places one form field into the object its dotted name describes.
fn insert_field(obj: &mut Map<String, Value>, name: &str, value: Value) {
    let (path, append) = match name.strip_suffix("[]") {
        Some(stripped) => (stripped, true),
        None => (name, false),
    };
    // `tags[1]` is `tags.1`: a list position, sorted out by the schema.
    let path = path.replace('[', ".").replace(']', "");
    let mut segments: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
    let Some(last) = segments.pop() else {
        return;
    };
    let mut node = obj;
    for seg in segments {
        let entry = node
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            // A field given both as a value and as a parent: the nested form wins.
            *entry = Value::Object(Map::new());
        }
        node = entry.as_object_mut().expect("just made an object");
    }
    match node.get_mut(last) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None if append => {
            node.insert(last.to_string(), Value::Array(vec![value]));
        }
        None => {
            node.insert(last.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(pairs: &[(&str, &str)]) -> Value {
        let mut obj = Map::new();
        for (k, v) in pairs {
            insert_field(&mut obj, k, json!(v));
        }
        Value::Object(obj)
    }

    #[test]
    fn dotted_keys_nest() {
        assert_eq!(
            form(&[
                ("source", "crud"),
                ("config.url", "http://x"),
                ("config.headers.X-A", "1")
            ]),
            json!({"source": "crud", "config": {"url": "http://x", "headers": {"X-A": "1"}}})
        );
    }

    #[test]
    fn lists_by_repetition_brackets_or_position() {
        assert_eq!(
            form(&[("tags", "a"), ("tags", "b")]),
            json!({"tags": ["a", "b"]})
        );
        assert_eq!(form(&[("tags[]", "a")]), json!({"tags": ["a"]}));
        assert_eq!(
            form(&[("paths[1]", "/a"), ("paths[2]", "/b")]),
            json!({"paths": {"1": "/a", "2": "/b"}})
        );
    }
}
