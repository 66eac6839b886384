//! The `webhook` handler's configuration.

use super::secret::{PreviousSecret, previous_secret_field};
use super::{HandlerConfig, string_map, url_field};
use crate::schema::{Field, Kind};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// `webhook` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookConfig {
    /// Where events are POSTed.
    pub url: String,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Key of the request signatures; none sends no signature.
    pub secret: Option<String>,
    /// The secret `secret` replaced, also signed with until it expires.
    // Hooks stored before the field existed have none.
    #[serde(default)]
    pub previous_secret: Option<PreviousSecret>,
    /// Whether the target's TLS certificate is verified.
    pub ssl_verify: bool,
}

impl HandlerConfig for WebhookConfig {
    fn fields() -> Vec<Field> {
        vec![
            url_field(),
            string_map("headers").default(json!({})),
            Field::new("secret", Kind::String),
            previous_secret_field(),
            Field::new("ssl_verify", Kind::Boolean).default(json!(false)),
        ]
    }
}
