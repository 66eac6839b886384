//! The signing secrets of the handlers that sign (`webhook`,
//! `webhook-custom`): the current `secret` and the `previous_secret` it
//! replaced. While the previous one is live, requests carry a Standard
//! Webhooks signature made with each, so a receiver can move to the new
//! secret without a moment when its deliveries fail to verify.

use super::{EventHook, Handler, WebhookConfig, WebhookCustomConfig};
use crate::schema::{Check, Field, Kind};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The latest `expires_at` accepted: the last second of year 9999, far
/// beyond any overlap and far within `i64`, so arithmetic on it is safe.
pub const MAX_EXPIRES_AT: i64 = 253_402_300_799;

/// The secret a hook had before its current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecret {
    /// The secret.
    pub secret: String,
    /// When requests stop being signed with it, unix seconds.
    pub expires_at: i64,
}

/// A handler's signing secrets, as a request is signed with them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Secrets<'a> {
    /// The hook's `secret`.
    pub current: Option<&'a str>,
    /// The hook's `previous_secret`, live or not.
    pub previous: Option<&'a PreviousSecret>,
}

impl<'a> Secrets<'a> {
    fn of(current: &'a Option<String>, previous: &'a Option<PreviousSecret>) -> Self {
        Secrets {
            current: current.as_deref(),
            previous: previous.as_ref(),
        }
    }

    /// The previous secret if it is still live at `now_s` (unix seconds).
    pub fn previous_at(&self, now_s: i64) -> Option<&'a str> {
        self.previous
            .filter(|p| now_s < p.expires_at)
            .map(|p| p.secret.as_str())
    }
}

/// The `previous_secret` field of a signing handler's config: null, or a
/// record of both members.
pub(super) fn previous_secret_field() -> Field {
    Field::new(
        "previous_secret",
        Kind::Record(vec![
            // Shaped as `secret` itself: it held that value.
            Field::new("secret", Kind::String).required(),
            Field::new("expires_at", Kind::Integer)
                .required()
                .check(Check::Between(0.0, MAX_EXPIRES_AT as f64)),
        ]),
    )
}

impl WebhookConfig {
    /// Its signing secrets.
    pub fn secrets(&self) -> Secrets<'_> {
        Secrets::of(&self.secret, &self.previous_secret)
    }
}

impl WebhookCustomConfig {
    /// Its signing secrets.
    pub fn secrets(&self) -> Secrets<'_> {
        Secrets::of(&self.secret, &self.previous_secret)
    }
}

impl Handler {
    /// The signing secrets of a handler that signs its requests; `None`
    /// for one that does not.
    pub fn secrets(&self) -> Option<Secrets<'_>> {
        match self {
            Handler::Webhook(c) => Some(c.secrets()),
            Handler::WebhookCustom(c) => Some(c.secrets()),
            Handler::Log(_) | Handler::Lambda(_) => None,
        }
    }

    fn previous_secret_mut(&mut self) -> Option<&mut Option<PreviousSecret>> {
        match self {
            Handler::Webhook(c) => Some(&mut c.previous_secret),
            Handler::WebhookCustom(c) => Some(&mut c.previous_secret),
            Handler::Log(_) | Handler::Lambda(_) => None,
        }
    }
}

impl EventHook {
    /// Completes a write that replaces `stored` with this hook, when the
    /// input left `previous_secret` out (`gave_previous` false; one given
    /// is kept as given): changing or removing a non-null secret makes
    /// the old one the previous secret, live for `overlap` from `now_s`;
    /// any other write keeps the stored previous secret. Nothing changes
    /// for a hook whose handler does not sign.
    pub fn keep_secret_overlap(
        &mut self,
        stored: &EventHook,
        gave_previous: bool,
        now_s: i64,
        overlap: Duration,
    ) {
        if gave_previous {
            return;
        }
        let (Some(stored), Some(new)) = (stored.handler.secrets(), self.handler.secrets()) else {
            return;
        };
        let previous = match stored.current {
            Some(old) if new.current != Some(old) => {
                let overlap_s = i64::try_from(overlap.as_secs()).unwrap_or(i64::MAX);
                Some(PreviousSecret {
                    secret: old.to_string(),
                    expires_at: now_s.saturating_add(overlap_s).min(MAX_EXPIRES_AT),
                })
            }
            _ => stored.previous.cloned(),
        };
        if let Some(slot) = self.handler.previous_secret_mut() {
            *slot = previous;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;
    use crate::schema::Input;
    use serde_json::{Value, json};

    const DAY: Duration = Duration::from_secs(86_400);

    fn hook(config: Value) -> EventHook {
        let handler = if config.get("method").is_some() {
            "webhook-custom"
        } else {
            "webhook"
        };
        EventHook::validate(
            &json!({"id": uuid::Uuid::nil().to_string(), "created_at": 0, "source": "crud",
                    "handler": handler, "config": config}),
            Input::default(),
            &Catalogue::builtin(["consumers"]),
        )
        .unwrap()
    }

    fn previous(h: &EventHook) -> Option<PreviousSecret> {
        h.handler.secrets().unwrap().previous.cloned()
    }

    fn with_secret(secret: Value) -> Value {
        json!({"url": "http://x/", "secret": secret})
    }

    #[test]
    fn a_changed_or_removed_secret_becomes_the_previous_one() {
        let stored = hook(with_secret(json!("a")));
        for new in [json!("b"), Value::Null] {
            let mut h = hook(with_secret(new));
            h.keep_secret_overlap(&stored, false, 1_000, DAY);
            assert_eq!(
                previous(&h),
                Some(PreviousSecret {
                    secret: "a".into(),
                    expires_at: 1_000 + 86_400
                })
            );
        }
        // The same for webhook-custom.
        let stored = hook(json!({"url": "http://x/", "method": "POST", "secret": "a"}));
        let mut h = hook(json!({"url": "http://x/", "method": "POST", "secret": "b"}));
        h.keep_secret_overlap(&stored, false, 0, DAY);
        assert_eq!(previous(&h).unwrap().secret, "a");
    }

    #[test]
    fn the_same_secret_or_none_before_keeps_the_stored_previous_one() {
        let live = json!({"secret": "old", "expires_at": 5_000});
        let stored = hook(json!({"url": "http://x/", "secret": "a", "previous_secret": live}));
        let mut h = hook(with_secret(json!("a")));
        h.keep_secret_overlap(&stored, false, 1_000, DAY);
        assert_eq!(previous(&h).unwrap().secret, "old");
        let stored = hook(json!({"url": "http://x/", "secret": null, "previous_secret": live}));
        let mut h = hook(with_secret(json!("b")));
        h.keep_secret_overlap(&stored, false, 1_000, DAY);
        assert_eq!(previous(&h).unwrap().secret, "old");
    }

    #[test]
    fn a_previous_secret_given_is_kept_as_given() {
        let stored = hook(with_secret(json!("a")));
        let mut h = hook(with_secret(json!("b")));
        h.keep_secret_overlap(&stored, true, 1_000, DAY);
        assert_eq!(previous(&h), None);
    }

    #[test]
    fn the_overlap_saturates_and_other_handlers_are_left_alone() {
        let stored = hook(with_secret(json!("a")));
        let mut h = hook(with_secret(json!("b")));
        h.keep_secret_overlap(&stored, false, 1_000, Duration::MAX);
        assert_eq!(previous(&h).unwrap().expires_at, MAX_EXPIRES_AT);
        let mut log = EventHook {
            handler: Handler::Log(crate::hook::LogConfig {}),
            ..stored.clone()
        };
        let before = log.clone();
        log.keep_secret_overlap(&stored, false, 0, DAY);
        assert_eq!(log, before);
    }

    #[test]
    fn the_previous_secret_is_live_until_it_expires() {
        let p = PreviousSecret {
            secret: "a".into(),
            expires_at: 100,
        };
        let secrets = Secrets {
            current: None,
            previous: Some(&p),
        };
        assert_eq!(secrets.previous_at(99), Some("a"));
        assert_eq!(secrets.previous_at(100), None);
        assert_eq!(Secrets::default().previous_at(0), None);
    }

    #[test]
    fn previous_secret_is_validated_in_kongs_shape() {
        let validate = |previous: Value| {
            EventHook::validate(
                &json!({"id": uuid::Uuid::nil().to_string(), "created_at": 0,
                        "source": "crud", "handler": "webhook",
                        "config": {"url": "http://x/", "previous_secret": previous}}),
                Input::default(),
                &Catalogue::builtin(["consumers"]),
            )
            .map_err(|e| e.fields())
        };
        assert_eq!(
            validate(json!({"secret": 1})).unwrap_err(),
            json!({"config": {"previous_secret": {"secret": "expected a string",
                                                  "expires_at": "required field missing"}}})
        );
        assert_eq!(
            validate(json!({"secret": "a", "expires_at": -1, "x": 1})).unwrap_err(),
            json!({"config": {"previous_secret": {"x": "unknown field",
                   "expires_at": "value should be between 0 and 253402300799"}}})
        );
        assert_eq!(
            validate(json!("a")).unwrap_err(),
            json!({"config": {"previous_secret": "expected a record"}})
        );
        assert!(validate(Value::Null).is_ok());
        let h = validate(json!({"secret": "a", "expires_at": 7})).unwrap();
        assert_eq!(h.handler.secrets().unwrap().previous_at(6), Some("a"));
    }
}
