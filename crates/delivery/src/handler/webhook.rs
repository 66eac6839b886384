//! Kong's `webhook` handler and its ping.

use super::outbound::{Outbound, Request, append_header, parse_url};
use super::response::Response;
use super::{AttemptId, Call, Handled, HandlerError, HookHandler};
use futures::future::{BoxFuture, FutureExt};
use hookd_model::hook::WebhookConfig;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};

/// The `webhook` handler: nothing to check beyond the schema.
impl HookHandler for WebhookConfig {
    fn handle<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Handled> {
        let sent = call.engine.outbound.webhook(self, call.attempt);
        sent.map(Handled::Sent).boxed()
    }
}

impl Outbound {
    /// Kong's webhook: POSTs the event's payload (the data with `event` and
    /// `source` added) as `application/json`, with the configured headers,
    /// signed when the hook has a secret.
    pub async fn webhook(
        &self,
        cfg: &WebhookConfig,
        attempt: &AttemptId<'_>,
    ) -> Result<Response, HandlerError> {
        self.send(json_post(cfg, &attempt.event.payload())?, attempt)
            .await
    }

    /// Kong's ping, sent when a webhook hook is created, updated or deleted
    /// and by `GET /event-hooks/{id}/ping`: POSTs
    /// `{"source":"kong:event_hooks","event":"ping","operation":<operation>,"event_hooks":<hook>}`
    /// the way [`Outbound::webhook`] posts an event.
    pub async fn ping(
        &self,
        cfg: &WebhookConfig,
        operation: &str,
        hook: &Value,
        attempt: &AttemptId<'_>,
    ) -> Result<Response, HandlerError> {
        let body = json!({
            "source": "kong:event_hooks",
            "event": "ping",
            "operation": operation,
            "event_hooks": hook,
        });
        self.send(json_post(cfg, &body)?, attempt).await
    }
}

/// A webhook request: the configured headers, then Content-Type, which
/// Kong sets over any configured one.
fn json_post<'a>(cfg: &'a WebhookConfig, body: &Value) -> Result<Request<'a>, HandlerError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &cfg.headers {
        append_header(&mut headers, name, value)?;
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(Request {
        method: Method::POST,
        url: parse_url(&cfg.url)?,
        headers,
        body: body.to_string().into_bytes(),
        secrets: cfg.secrets(),
        ssl_verify: cfg.ssl_verify,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(headers: &[(&str, &str)]) -> WebhookConfig {
        WebhookConfig {
            url: "https://example.com/hook?x=1".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            secret: Some("s".into()),
            previous_secret: None,
            ssl_verify: true,
        }
    }

    #[test]
    fn content_type_is_json_whatever_is_configured() {
        let cfg = config(&[("content-TYPE", "text/plain"), ("X-Extra", "1")]);
        let req = json_post(&cfg, &json!({"a": 1})).unwrap();
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.url.as_str(), "https://example.com/hook?x=1");
        assert_eq!(req.headers.get_all(CONTENT_TYPE).iter().count(), 1);
        assert_eq!(req.headers[CONTENT_TYPE], "application/json");
        assert_eq!(req.headers["x-extra"], "1");
        assert_eq!(req.body, br#"{"a":1}"#);
        assert_eq!(req.secrets.current, Some("s"));
        assert!(req.ssl_verify);
    }

    #[test]
    fn framing_headers_are_left_to_the_client() {
        let cfg = config(&[("Content-Length", "3"), ("Transfer-Encoding", "chunked")]);
        let req = json_post(&cfg, &json!({})).unwrap();
        assert!(req.headers.get("content-length").is_none());
        assert!(req.headers.get("transfer-encoding").is_none());
    }

    #[test]
    fn invalid_headers_are_named() {
        let err = json_post(&config(&[("Bad Name", "v")]), &json!({})).unwrap_err();
        assert!(
            matches!(&err, HandlerError::InvalidHeader { name, .. } if name == "Bad Name"),
            "{err}"
        );
        let err = json_post(&config(&[("X-A", "line\nbreak")]), &json!({})).unwrap_err();
        assert!(
            matches!(&err, HandlerError::InvalidHeader { name, .. } if name == "X-A"),
            "{err}"
        );
    }
}
