//! The event hook entity and its four handlers, validated as Kong
//! validates `/event-hooks` input. Each handler's configuration and its
//! schema are a module of their own; [`crate::with_handlers!`] lists them.

mod custom;
mod lambda;
mod log;
mod secret;
mod webhook;

pub use custom::{CUSTOM_METHODS, WebhookCustomConfig};
pub use lambda::{InstanceMode, LambdaConfig, pinned_digest};
pub use log::LogConfig;
pub use secret::{MAX_EXPIRES_AT, PreviousSecret, Secrets};
pub use webhook::WebhookConfig;

use crate::catalogue::Catalogue;
use crate::schema::{Check, Field, Input, Kind, Schema};
use crate::violation::Violations;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The entity name of event hooks: their store name, their section in
/// `hookd dump`, and the crud event their own writes cause (as in Kong).
pub const ENTITY: &str = "event_hooks";

/// An event hook: which events it listens to and what handles them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventHook {
    /// Its id.
    pub id: Uuid,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// The source listened to.
    pub source: String,
    /// The event listened to; `None` takes every event of the source.
    pub event: Option<String>,
    /// Fire only when the event's digest differs from the last one seen.
    pub on_change: Option<bool>,
    /// Seconds during which further events are dropped after one fires.
    pub snooze: Option<i64>,
    /// A minijinja expression over the event data (hookd's, not Kong's):
    /// the hook takes only the events for which it is true. `None` takes
    /// every event, as Kong's hooks do; a hook stored without it has none.
    #[serde(default)]
    pub condition: Option<String>,
    /// Whether the hook takes events and its deliveries are attempted. A
    /// hook that failed for too long is disabled by the server and keeps
    /// its queue; writing `true` enables it again. Not Kong's: stored
    /// hooks without it are enabled.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// At most this many attempts of the hook's deliveries at once; none
    /// takes the server's `hook_concurrency`.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// At most this many deliveries a second, spread evenly; none is
    /// unlimited. What waits stays queued.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// The handler and its configuration.
    #[serde(flatten)]
    pub handler: Handler,
}

/// The handlers, listed once, each with its configuration and the name it
/// has in `handler`: `with_handlers!(m)` calls the macro `m` with the list.
/// [`Handler`] and its names here, and the dispatch to each handler's code
/// in hookd-delivery, are all written from it, so a handler added here
/// without its code there does not compile.
#[macro_export]
macro_rules! with_handlers {
    ($callback:ident) => {
        $callback! {
            /// POSTs the event to a URL.
            Webhook($crate::hook::WebhookConfig) = "webhook",
            /// A templated request.
            WebhookCustom($crate::hook::WebhookCustomConfig) = "webhook-custom",
            /// Writes the event to the server log.
            Log($crate::hook::LogConfig) = "log",
            /// Runs a chain of WebAssembly guests.
            Lambda($crate::hook::LambdaConfig) = "lambda",
        }
    };
}

/// The model's part of each handler: the enum's serde names,
/// [`Handler::name`], [`HANDLERS`] and [`config_fields`].
macro_rules! handlers {
    ($( $(#[$doc:meta])* $variant:ident($config:ty) = $name:literal, )+) => {
        /// A handler with its configuration; serialised as Kong's `handler`
        /// and `config` members.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "handler", content = "config")]
        pub enum Handler {
            $( $(#[$doc])* #[serde(rename = $name)] $variant($config), )+
        }

        /// Names of the handlers, as accepted in `handler`.
        pub const HANDLERS: &[&str] = &[$($name),+];

        impl Handler {
            /// The handler's name.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Handler::$variant(_) => $name, )+
                }
            }
        }

        /// The `config` fields of a handler.
        pub fn config_fields(handler: &str) -> Option<Vec<Field>> {
            match handler {
                $( $name => Some(<$config as HandlerConfig>::fields()), )+
                _ => None,
            }
        }
    };
}

with_handlers!(handlers);

/// A handler's configuration, as its schema describes it.
pub trait HandlerConfig {
    /// The fields of `config`, with their defaults and checks.
    fn fields() -> Vec<Field>;
}

fn enabled_by_default() -> bool {
    true
}

/// A rate limit is a positive number of deliveries a second.
fn positive_rate(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(rate) if rate > 0.0 && rate.is_finite() => Ok(()),
        _ => Err("must be greater than 0".into()),
    }
}

/// An http(s) URL with a host, as the request handlers' `url` must be.
fn http_url_check(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        Ok(_) => Err("missing host in url or scheme is not http or https".into()),
        Err(e) => Err(format!("invalid url: {e}")),
    }
}

/// A map of strings, as the request handlers' `headers` and `payload`.
fn string_map(name: &'static str) -> Field {
    Field::new(name, Kind::Map(Box::new(Field::element(Kind::String))))
}

/// The request handlers' `url`.
fn url_field() -> Field {
    Field::new("url", Kind::String)
        .required()
        .check(Check::Custom(http_url_check))
        .example(json!("https://example.com/hook"))
}

/// The schema of an event hook whose handler is `handler` (any config
/// object when the handler is unknown: the handler field reports it).
pub fn schema(handler: Option<&str>) -> Schema {
    let config = match handler.and_then(config_fields) {
        Some(fields) => Kind::Record(fields),
        None => Kind::Object,
    };
    Schema::new(vec![
        Field::new("id", Kind::Uuid),
        Field::new("created_at", Kind::Integer).example(json!(crate::example::TIME_S)),
        // Examples the catalogue has: a hook is valid only for those.
        Field::new("source", Kind::String)
            .required()
            .example(json!("crud")),
        Field::new("event", Kind::String).example(json!("consumers")),
        Field::new("handler", Kind::String)
            .required()
            .check(Check::OneOf(HANDLERS)),
        Field::new("on_change", Kind::Boolean),
        Field::new("snooze", Kind::Integer).check(Check::Between(0.0, 2147483647.0)),
        // Compiled at save by hookd-delivery, which has the template engine.
        Field::new("condition", Kind::String).example(json!("operation == \"create\"")),
        Field::new("enabled", Kind::Boolean).default(json!(true)),
        // The server's maximum is checked when the hook is saved.
        Field::new("concurrency", Kind::Integer)
            .check(Check::Between(1.0, 2147483647.0))
            .example(json!(4)),
        Field::new("rate_limit", Kind::Number)
            .check(Check::Custom(positive_rate))
            .example(json!(50)),
        // As Kong: a hook sent without `config` has `{}`, and then its
        // handler's defaults and required fields apply.
        Field::new("config", config).required().default(json!({})),
    ])
}

impl EventHook {
    /// Validates a complete hook (id and created_at already set by the
    /// caller) against its schema and the sources catalogue.
    pub fn validate(input: &Value, how: Input, catalogue: &Catalogue) -> Result<Self, Violations> {
        let handler = input.get("handler").and_then(Value::as_str);
        let out = schema(handler).validate(input, how)?;
        check_source_and_event(&out, catalogue)?;
        serde_json::from_value(Value::Object(out)).map_err(|e| {
            // The schema admits only what the typed hook accepts; reaching
            // here means the two disagree, which is a bug worth naming.
            Violations::entity(format!("invalid event hook: {e}"))
        })
    }

    /// The hook as Kong shows it: every field, null where unset.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Whether the hook takes this event of this source.
    pub fn matches(&self, source: &str, event: &str) -> bool {
        self.source == source && self.event.as_deref().is_none_or(|e| e == event)
    }
}

fn check_source_and_event(
    hook: &Map<String, Value>,
    catalogue: &Catalogue,
) -> Result<(), Violations> {
    let source = hook["source"].as_str().unwrap_or_default();
    if catalogue.source(source).is_none() {
        return Err(Violations::field(
            "source",
            format!("source '{source}' is not registered"),
        ));
    }
    if let Some(event) = hook["event"].as_str()
        && catalogue.event(source, event).is_none()
    {
        return Err(Violations::field(
            "event",
            format!("source '{source}' has no '{event}' event"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::{Capabilities, Limits};

    fn catalogue() -> Catalogue {
        Catalogue::builtin(["consumers"])
    }

    fn with_identity(mut v: Value) -> Value {
        v["id"] = json!(Uuid::nil().to_string());
        v["created_at"] = json!(1627581575);
        v
    }

    #[test]
    fn kongs_create_answer_shape() {
        let hook = EventHook::validate(
            &with_identity(
                json!({"source": "crud", "event": "consumers", "handler": "webhook",
                                  "config": {"url": "https://example.com/hook"}}),
            ),
            Input::default(),
            &catalogue(),
        )
        .unwrap();
        assert_eq!(
            hook.to_json(),
            json!({"config": {"headers": {}, "secret": null, "previous_secret": null, "ssl_verify": false,
                              "url": "https://example.com/hook"},
                   "created_at": 1627581575, "event": "consumers", "handler": "webhook",
                   "id": Uuid::nil().to_string(), "on_change": null, "snooze": null, "source": "crud",
                   "condition": null, "enabled": true, "concurrency": null, "rate_limit": null})
        );
    }

    #[test]
    fn a_new_custom_config_is_what_the_schema_defaults_give() {
        let hook = EventHook::validate(
            &with_identity(json!({"source": "crud", "handler": "webhook-custom",
                                  "config": {"url": "http://example.com/in", "method": "PUT"}})),
            Input::default(),
            &catalogue(),
        )
        .unwrap();
        assert_eq!(
            hook.handler,
            Handler::WebhookCustom(WebhookCustomConfig::new("http://example.com/in", "PUT"))
        );
    }

    #[test]
    fn missing_url_is_kongs_example_error() {
        let err = EventHook::validate(
            &with_identity(json!({"source": "crud", "handler": "webhook", "config": {}})),
            Input::default(),
            &catalogue(),
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "schema violation (config.url: required field missing)"
        );
        assert_eq!(
            err.fields(),
            json!({"config": {"url": "required field missing"}})
        );
    }

    #[test]
    fn unknown_source_event_and_handler_are_named() {
        let c = catalogue();
        let err = EventHook::validate(
            &with_identity(json!({"source": "nope", "handler": "log", "config": {}})),
            Input::default(),
            &c,
        )
        .unwrap_err();
        assert_eq!(
            err.fields(),
            json!({"source": "source 'nope' is not registered"})
        );
        let err = EventHook::validate(
            &with_identity(
                json!({"source": "crud", "event": "nope", "handler": "log", "config": {}}),
            ),
            Input::default(),
            &c,
        )
        .unwrap_err();
        assert_eq!(
            err.fields(),
            json!({"event": "source 'crud' has no 'nope' event"})
        );
        let err = EventHook::validate(
            &with_identity(json!({"source": "crud", "handler": "email", "config": {}})),
            Input::default(),
            &c,
        )
        .unwrap_err();
        assert_eq!(
            err.fields(),
            json!({"handler": "expected one of: webhook, webhook-custom, log, lambda"})
        );
    }

    #[test]
    fn handler_configs_get_defaults_and_refuse_unknown_fields() {
        let c = catalogue();
        let custom = EventHook::validate(
            &with_identity(json!({"source": "crud", "handler": "webhook-custom",
                                  "config": {"url": "http://x/", "method": "POST"}})),
            Input::default(),
            &c,
        )
        .unwrap();
        let Handler::WebhookCustom(cfg) = custom.handler else {
            panic!("wrong handler")
        };
        assert!(cfg.payload_format && cfg.body_format && !cfg.headers_format);
        let err = EventHook::validate(
            &with_identity(json!({"source": "crud", "handler": "log", "config": {"x": 1}})),
            Input::default(),
            &c,
        )
        .unwrap_err();
        assert_eq!(err.fields(), json!({"config": {"x": "unknown field"}}));
        let lambda = EventHook::validate(
            &with_identity(
                json!({"source": "crud", "handler": "lambda", "config": {"functions": ["g"]}}),
            ),
            Input::default(),
            &c,
        )
        .unwrap();
        let Handler::Lambda(cfg) = lambda.handler else {
            panic!("wrong handler")
        };
        assert_eq!(cfg.capabilities, Capabilities::default());
        assert_eq!(cfg.limits, Limits::default());
    }

    #[test]
    fn a_missing_config_is_an_empty_one() {
        let c = catalogue();
        // Kong's own spec: a log hook needs no config at all.
        let log = EventHook::validate(
            &with_identity(json!({"source": "dao:crud", "event": "create", "handler": "log"})),
            Input::default(),
            &c,
        )
        .unwrap();
        assert_eq!(log.handler, Handler::Log(LogConfig {}));
        assert_eq!(log.to_json()["config"], json!({}));
        let err = EventHook::validate(
            &with_identity(json!({"source": "crud", "handler": "webhook"})),
            Input::default(),
            &c,
        )
        .unwrap_err();
        assert_eq!(
            err.fields(),
            json!({"config": {"url": "required field missing"}})
        );
        // An explicit null is still no config, as Kong says.
        let err = EventHook::validate(
            &with_identity(json!({"source": "crud", "handler": "log", "config": null})),
            Input::default(),
            &c,
        )
        .unwrap_err();
        assert_eq!(err.fields(), json!({"config": "required field missing"}));
    }

    #[test]
    fn null_event_matches_every_event_of_the_source() {
        let hook = EventHook::validate(
            &with_identity(json!({"source": "crud", "handler": "log", "config": {}})),
            Input::default(),
            &catalogue(),
        )
        .unwrap();
        assert!(hook.matches("crud", "consumers:create"));
        assert!(!hook.matches("dao:crud", "create"));
    }

    #[test]
    fn form_input_is_converted() {
        let hook = EventHook::validate(
            &with_identity(json!({"source": "crud", "handler": "webhook", "on_change": "true",
                                  "snooze": "60", "config": {"url": "http://x/", "ssl_verify": "true"}})),
            Input { from_form: true },
            &catalogue(),
        )
        .unwrap();
        assert_eq!(hook.on_change, Some(true));
        assert_eq!(hook.snooze, Some(60));
    }
}
