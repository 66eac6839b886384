//! Configuration: defaults that work with no file, a TOML file, then
//! `HOOKD_<KEY>` environment variables (as Kong's `KONG_*`), then flags.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Every setting of the server. Each key can be set in the TOML file or
/// by the environment variable `HOOKD_<KEY>` (upper case), which wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the Admin API.
    pub listen: SocketAddr,
    /// Where sled keeps everything.
    pub data_dir: PathBuf,
    /// `pretty` or `json`.
    pub log_format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `hookd=debug,info`; `RUST_LOG` wins.
    pub log_level: String,
    /// Largest Admin API request body, in bytes.
    pub body_limit: usize,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    Pretty,
    /// One JSON object per line, for machines.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8001)),
            data_dir: default_data_dir(),
            log_format: LogFormat::Pretty,
            log_level: "info".into(),
            body_limit: 1024 * 1024,
        }
    }
}

/// `$XDG_DATA_HOME/hookd`, else `~/.local/share/hookd`, else `./hookd-data`.
fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("hookd");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/hookd");
    }
    PathBuf::from("hookd-data")
}

/// Words that mark a key whose value is shown as `******`.
const SECRET_MARKERS: &[&str] = &["token", "secret", "password", "key"];

/// Failures reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("parsing {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: toml::de::Error,
    },
    /// An environment variable does not hold a value of its key's type.
    #[error("environment variable {var}: {reason}")]
    Env {
        /// The variable.
        var: String,
        /// Why.
        reason: String,
    },
    /// The merged settings do not fit the configuration.
    #[error("invalid configuration")]
    Invalid(#[source] toml::de::Error),
}

impl Config {
    /// Loads the file (if any), then applies `HOOKD_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut table = toml::Table::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.into(),
                source,
            })?;
            table = text.parse().map_err(|source| ConfigError::Parse {
                path: path.into(),
                source,
            })?;
        }
        let defaults =
            toml::Table::try_from(Config::default()).expect("the default configuration serialises");
        for (key, default) in &defaults {
            let var = format!("HOOKD_{}", key.to_ascii_uppercase());
            if let Some(text) = env(&var) {
                let value =
                    env_value(&text, default).map_err(|reason| ConfigError::Env { var, reason })?;
                table.insert(key.clone(), value);
            }
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(ConfigError::Invalid)
    }

    /// The configuration as JSON, with secret values replaced.
    pub fn redacted(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("the configuration serialises");
        redact(&mut value);
        value
    }
}

/// Reads an environment variable as a value of the default's type: lists
/// are TOML arrays or comma-separated, tables inline TOML.
fn env_value(text: &str, default: &toml::Value) -> Result<toml::Value, String> {
    let parse_toml = |t: &str| -> Result<toml::Value, String> {
        let doc: toml::Table = format!("v = {t}")
            .parse()
            .map_err(|e: toml::de::Error| e.message().to_string())?;
        Ok(doc["v"].clone())
    };
    match default {
        toml::Value::String(_) => Ok(toml::Value::String(text.to_string())),
        toml::Value::Integer(_) => text
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("expected an integer, got '{text}'")),
        toml::Value::Float(_) => text
            .trim()
            .parse::<f64>()
            .map(toml::Value::Float)
            .map_err(|_| format!("expected a number, got '{text}'")),
        toml::Value::Boolean(_) => match text.trim() {
            "true" | "on" | "1" => Ok(toml::Value::Boolean(true)),
            "false" | "off" | "0" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("expected true or false, got '{text}'")),
        },
        toml::Value::Array(_) if text.trim_start().starts_with('[') => parse_toml(text),
        toml::Value::Array(_) => Ok(toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        )),
        toml::Value::Table(_) | toml::Value::Datetime(_) => parse_toml(text),
    }
}

fn redact(value: &mut serde_json::Value) {
    if let serde_json::Value::Object(obj) = value {
        for (key, v) in obj.iter_mut() {
            let secret = SECRET_MARKERS.iter().any(|m| key.contains(m));
            match v {
                serde_json::Value::String(s) if secret && !s.is_empty() => {
                    *v = serde_json::Value::from("******")
                }
                serde_json::Value::Array(items) if secret && !items.is_empty() => {
                    *v = serde_json::Value::from("******")
                }
                _ => redact(v),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8001".parse().unwrap());
        assert_eq!(c.log_format, LogFormat::Pretty);
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hookd.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nbody_limit = 10\n").unwrap();
        let c = Config::load(Some(&file), env(&[("HOOKD_BODY_LIMIT", "20")])).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.body_limit, 20);
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::load(None, env(&[("HOOKD_BODY_LIMIT", "lots")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable HOOKD_BODY_LIMIT: expected an integer, got 'lots'"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hookd.toml");
        std::fs::write(&file, "no_such_key = 1\n").unwrap();
        assert!(matches!(
            Config::load(Some(&file), env(&[])),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn secrets_are_redacted() {
        let mut v =
            serde_json::json!({"admin_token": "abc", "listen": "x", "nested": {"secret": "s"}});
        redact(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"admin_token": "******", "listen": "x", "nested": {"secret": "******"}})
        );
    }
}
