//! The server's `untrusted_wasm` setting.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The server's `untrusted_wasm` setting, after Kong's `untrusted_lua`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UntrustedWasm {
    /// Lambda hooks are refused at create and never run.
    Off,
    /// Guests get what their hook is granted within the
    /// [`SandboxCeiling`](super::SandboxCeiling).
    #[default]
    Sandbox,
    /// Guests get whatever their hook asks for; no ceiling (limits still
    /// have their maxima).
    On,
}

impl UntrustedWasm {
    /// `off`, `sandbox` or `on`.
    pub fn as_str(self) -> &'static str {
        match self {
            UntrustedWasm::Off => "off",
            UntrustedWasm::Sandbox => "sandbox",
            UntrustedWasm::On => "on",
        }
    }
}

impl fmt::Display for UntrustedWasm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UntrustedWasm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(UntrustedWasm::Off),
            "sandbox" => Ok(UntrustedWasm::Sandbox),
            "on" => Ok(UntrustedWasm::On),
            _ => Err(format!("expected one of: off, sandbox, on (got '{s}')")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mode_parses_and_serialises_lowercase() {
        assert_eq!("on".parse::<UntrustedWasm>(), Ok(UntrustedWasm::On));
        assert!("ON".parse::<UntrustedWasm>().is_err());
        assert_eq!(
            serde_json::to_value(UntrustedWasm::Off).unwrap(),
            json!("off")
        );
    }
}
