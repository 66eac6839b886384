//! What a lambda hook asks its guests to be allowed, and the limits of one
//! invocation. How requests are checked against the server's mode and
//! ceiling lives with these types as the sandbox grows.

use serde::{Deserialize, Serialize};

/// The capabilities a lambda hook requests for its guests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Host patterns the guest may call over HTTP (`api.example.com`,
    /// `*.slack.com:443`).
    #[serde(default)]
    pub http: Vec<String>,
    /// Names of environment variables the guest may read.
    #[serde(default)]
    pub env: Vec<String>,
    /// Host directories preopened for the guest.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
}

/// One host directory as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Path on the server.
    pub host: String,
    /// Path inside the guest.
    pub guest: String,
    /// Whether the guest may write (read-only otherwise).
    #[serde(default)]
    pub write: bool,
}

/// Per-invocation limits; unset means the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest linear memory, in bytes.
    pub memory: Option<u64>,
    /// Wall time of one guest call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Fuel (roughly, wasm instructions) for one guest call.
    pub fuel: Option<u64>,
}
