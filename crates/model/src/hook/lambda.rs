//! The `lambda` handler's configuration.

use super::HandlerConfig;
use crate::capability::{Capabilities, Limits};
use crate::schema::{Check, Field, Kind};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// `lambda` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LambdaConfig {
    /// Guest names or digests, run in order, each output the next input.
    pub functions: Vec<String>,
    /// What the guests may touch.
    pub capabilities: Capabilities,
    /// Per-invocation limits within the server's maxima.
    pub limits: Limits,
    /// Whether each event gets fresh guest instances or the hook keeps
    /// live ones between its events.
    #[serde(default)]
    pub instance: InstanceMode,
}

/// The digest a function of a lambda hook pins (`sha256:<hex>` or bare
/// hex), lower-cased, if it pins one; a function that pins none names a
/// guest and runs its current version.
pub fn pinned_digest(function: &str) -> Option<String> {
    let hex = function.strip_prefix("sha256:").unwrap_or(function);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// How a lambda hook's guests are instantiated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceMode {
    /// A fresh instance per event, dropped after its call: nothing a guest
    /// does survives to the next event.
    #[default]
    PerEvent,
    /// Live instances kept for this hook alone, one call at a time each,
    /// serving its successive events: a guest's memory (its globals, its
    /// caches) survives from one event to the next, as a Lua function's
    /// state does in Kong. An instance is dropped after a trap, a timeout
    /// or a memory kill, after the server's maximum of calls or age, and
    /// when the hook's configuration or the guest changes.
    Reused,
}

impl HandlerConfig for LambdaConfig {
    fn fields() -> Vec<Field> {
        vec![
            Field::new(
                "functions",
                Kind::Array(Box::new(
                    Field::element(Kind::String).check(Check::LenMin(1)),
                )),
            )
            .required()
            .check(Check::LenMin(1)),
            Capabilities::schema_field(),
            Limits::schema_field(),
            Field::new("instance", Kind::String)
                .check(Check::OneOf(&["per-event", "reused"]))
                .default(json!(InstanceMode::default())),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::pinned_digest;

    #[test]
    fn a_function_pins_a_digest_with_or_without_its_prefix() {
        let hex = "ab".repeat(32);
        assert_eq!(pinned_digest(&hex), Some(hex.clone()));
        assert_eq!(pinned_digest(&format!("sha256:{hex}")), Some(hex.clone()));
        assert_eq!(pinned_digest(&hex.to_uppercase()), Some(hex));
        assert_eq!(pinned_digest("transform"), None);
        assert_eq!(pinned_digest(&"g".repeat(64)), None);
    }
}
