//! Running a hook's handler for one event: in a delivery attempt, and
//! synchronously for `/event-hooks/{id}/test`.

use crate::Engine;
use crate::handler::{AttemptId, HandlerError, Response, RetryAfter};
use hookd_model::hook::Handler;
use hookd_model::{Event, EventHook};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// Why a delivery of a deleted hook is dead at once.
pub(crate) const HOOK_GONE: &str = "the event hook no longer exists";

/// What one run of a handler came to.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub ok: bool,
    /// The hook is gone: retrying cannot help.
    pub gone: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub response: Option<String>,
    pub result: Option<Value>,
    pub retry_after: Option<Duration>,
}

impl Outcome {
    pub(crate) fn failed(error: String) -> Self {
        Outcome {
            gone: error == HOOK_GONE,
            error: Some(error),
            ..Outcome::default()
        }
    }

    fn answered(response: Response, now_ms: i64) -> Self {
        let ok = response.is_success();
        Outcome {
            ok,
            status: Some(response.status),
            error: (!ok).then(|| format!("the receiver answered {}", response.status)),
            response: Some(response.excerpt()),
            retry_after: response
                .retry_after
                .as_ref()
                .map(|r| retry_after(r, now_ms)),
            ..Outcome::default()
        }
    }
}

fn retry_after(r: &RetryAfter, now_ms: i64) -> Duration {
    match r {
        RetryAfter::Seconds(s) => Duration::from_secs(*s),
        RetryAfter::At(at) => {
            let at_ms = at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default();
            Duration::from_millis((at_ms - now_ms).max(0) as u64)
        }
    }
}

/// Runs the hook's handler for a delivery attempt.
pub(crate) async fn handle(
    engine: &Engine,
    hook: &EventHook,
    event: &Event,
    delivery_id: Uuid,
    now_ms: i64,
) -> Outcome {
    let attempt = AttemptId {
        delivery_id,
        timestamp_s: now_ms / 1000,
        event,
    };
    let answer = match &hook.handler {
        Handler::Webhook(cfg) => engine.outbound.webhook(cfg, &attempt).await,
        Handler::WebhookCustom(cfg) => {
            engine
                .outbound
                .webhook_custom(cfg, &attempt, &engine.settings.templates)
                .await
        }
        Handler::Log(_) => {
            crate::handler::log_event(hook.id, event);
            return Outcome {
                ok: true,
                ..Outcome::default()
            };
        }
        Handler::Lambda(cfg) => {
            return match crate::lambda::run(engine, hook.id, cfg, event).await {
                Ok(data) => Outcome {
                    ok: true,
                    result: Some(data),
                    ..Outcome::default()
                },
                Err(e) => Outcome::failed(e),
            };
        }
    };
    match answer {
        Ok(response) => Outcome::answered(response, now_ms),
        Err(e) => Outcome::failed(error_text(&e)),
    }
}

/// The error with its causes, as recorded on an attempt.
fn error_text(e: &HandlerError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Runs a hook's handler at once on `data`, outside the queue, and
/// answers Kong's `result`: for webhooks `{body, headers, status}`.
pub(crate) async fn test(engine: &Engine, hook: &EventHook, data: Value) -> Result<Value, String> {
    let now_ms = engine.clock.now_ms();
    let event_name = hook.event.clone().unwrap_or_else(|| hook.source.clone());
    let event = Event::new(&hook.source, &event_name, data, now_ms);
    let attempt = AttemptId {
        delivery_id: Uuid::new_v4(),
        timestamp_s: now_ms / 1000,
        event: &event,
    };
    let response = match &hook.handler {
        Handler::Webhook(cfg) => engine.outbound.webhook(cfg, &attempt).await,
        Handler::WebhookCustom(cfg) => {
            engine
                .outbound
                .webhook_custom(cfg, &attempt, &engine.settings.templates)
                .await
        }
        Handler::Log(_) => {
            crate::handler::log_event(hook.id, &event);
            return Ok(Value::Null);
        }
        Handler::Lambda(cfg) => return crate::lambda::run(engine, hook.id, cfg, &event).await,
    };
    let response = response.map_err(|e| error_text(&e))?;
    Ok(json!({
        "body": response.body,
        "headers": response.headers,
        "status": response.status,
    }))
}
