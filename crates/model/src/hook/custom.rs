//! The `webhook-custom` handler's configuration.

use super::secret::{PreviousSecret, previous_secret_field};
use super::{HandlerConfig, string_map, url_field};
use crate::schema::{Check, Field, Kind};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// `webhook-custom` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCustomConfig {
    /// Where the request goes.
    pub url: String,
    /// Its method.
    pub method: String,
    /// Key/value pairs sent as query string or body.
    pub payload: Option<BTreeMap<String, String>>,
    /// Whether payload values are templates.
    pub payload_format: bool,
    /// A raw body; wins over `payload` when non-empty.
    pub body: Option<String>,
    /// Whether the body is a template.
    pub body_format: bool,
    /// Request headers.
    pub headers: BTreeMap<String, String>,
    /// Whether header values are templates.
    pub headers_format: bool,
    /// Key of the request signatures; none sends no signature.
    pub secret: Option<String>,
    /// The secret `secret` replaced, also signed with until it expires.
    // Hooks stored before the field existed have none.
    #[serde(default)]
    pub previous_secret: Option<PreviousSecret>,
    /// Whether the target's TLS certificate is verified.
    pub ssl_verify: bool,
}

impl WebhookCustomConfig {
    /// A request of `method` to `url`, every other field at its schema
    /// default: what a hook saved with only those two holds.
    pub fn new(url: impl Into<String>, method: impl Into<String>) -> Self {
        WebhookCustomConfig {
            url: url.into(),
            method: method.into(),
            payload: None,
            payload_format: true,
            body: None,
            body_format: true,
            headers: BTreeMap::new(),
            headers_format: false,
            secret: None,
            previous_secret: None,
            ssl_verify: false,
        }
    }
}

/// Methods webhook-custom may use.
pub const CUSTOM_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

impl HandlerConfig for WebhookCustomConfig {
    fn fields() -> Vec<Field> {
        vec![
            url_field(),
            Field::new("method", Kind::String)
                .required()
                .check(Check::OneOf(CUSTOM_METHODS)),
            string_map("payload"),
            Field::new("payload_format", Kind::Boolean).default(json!(true)),
            Field::new("body", Kind::String),
            Field::new("body_format", Kind::Boolean).default(json!(true)),
            string_map("headers").default(json!({})),
            Field::new("headers_format", Kind::Boolean).default(json!(false)),
            Field::new("secret", Kind::String),
            previous_secret_field(),
            Field::new("ssl_verify", Kind::Boolean).default(json!(false)),
        ]
    }
}
