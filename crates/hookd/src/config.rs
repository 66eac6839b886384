//! Configuration: defaults that work with no file, a TOML file, then
//! `HOOKD_<KEY>` environment variables (as Kong's `KONG_*`), then flags.

use hookd_delivery::handler::KongSignature;
use hookd_model::capability::{
    self, CeilingConfig, ResolvedLimits, SandboxCeiling, ServerSecrets, UntrustedWasm,
};
use hookd_model::{Catalogue, EventInfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every setting of the server. Each key can be set in the TOML file or
/// by the environment variable `HOOKD_<KEY>` (upper case), which wins.
/// A key it does not know is refused ([`Config::load`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address of the Admin API.
    pub listen: SocketAddr,
    /// Where everything is kept: `sled`, embedded in `data_dir`, or
    /// `postgres`, the database at `postgres_url`.
    pub storage: Storage,
    /// Where sled keeps everything, and a node on PostgreSQL its compiled
    /// guests.
    pub data_dir: PathBuf,
    /// The database of `storage = "postgres"`:
    /// `postgres://user:password@host:5432/database`.
    pub postgres_url: String,
    /// Connections to PostgreSQL a node keeps open, at most.
    pub postgres_max_connections: u32,
    /// Longest a statement may run on PostgreSQL before it is cancelled.
    pub postgres_statement_timeout: Dur,
    /// How long a node's claim on its shards of the hooks lasts unless it
    /// renews it: how long the shards of a node that died wait for the
    /// others.
    pub cluster_lease: Dur,
    /// `pretty` or `json`.
    pub log_format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `hookd=debug,info`; `RUST_LOG` wins.
    pub log_level: String,
    /// Largest Admin API request body, in bytes.
    pub body_limit: usize,
    /// Most levels of objects and arrays an Admin API request body may
    /// nest (JSON, form or multipart); at most what stored records can
    /// hold and read back.
    pub body_max_depth: usize,
    /// Time a client has to send a request's headers, from connecting or
    /// from the first byte of its next request.
    pub header_read_timeout: Dur,
    /// Time a kept-alive connection may rest between requests.
    pub idle_timeout: Dur,
    /// Time a client has to send a request's body once its headers are in.
    pub request_body_timeout: Dur,
    /// Admin API connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// Time allowed for one webhook request.
    pub webhook_timeout: Dur,
    /// Delay before each retry of a failed delivery; the last repeats.
    pub retry_schedule: Vec<Dur>,
    /// Attempts per delivery, the first included, before it is dead.
    pub retry_max_attempts: u32,
    /// Fraction by which retry delays vary either way.
    pub retry_jitter: f64,
    /// Longest `Retry-After` honoured.
    pub retry_after_max: Dur,
    /// Delivery attempts running at once.
    pub delivery_workers: usize,
    /// Deliveries kept in memory only until their first attempt ends, at
    /// most; beyond, new deliveries are written to the queue first.
    pub delivery_memory: usize,
    /// Memory of the store's page cache, bytes.
    pub store_cache_capacity: u64,
    /// Attempts of one hook at once, for hooks that set no `concurrency`.
    pub hook_concurrency: u32,
    /// The most `concurrency` a hook may set.
    pub hook_max_concurrency: u32,
    /// Failed attempts in a row after which a hook pauses (0: never).
    pub hook_pause_after_failures: u32,
    /// A hook failing this long without a success is disabled (0: never).
    pub hook_disable_after: Dur,
    /// Finished deliveries kept, at most.
    pub delivery_retention_count: usize,
    /// Finished deliveries kept no longer than this.
    pub delivery_retention_age: Dur,
    /// Networks outbound requests may reach although private or loopback
    /// (CIDRs, e.g. `10.0.0.0/8`); everything public is allowed.
    pub outbound_allow_cidrs: Vec<ipnet::IpNet>,
    /// HMAC of Kong's `X-Kong-Signature`: `sha1` (Kong up to 3.13) or `sha256`.
    pub kong_signature: KongSignature,
    /// How long a webhook hook's replaced secret still signs beside the
    /// new one (its `previous_secret`).
    pub secret_overlap: Dur,
    /// Sources beyond Kong's: source → event → `{fields, unique, description}`.
    pub custom_sources: BTreeMap<String, BTreeMap<String, EventInfo>>,
    /// What lambda guests may do, as Kong's `untrusted_lua`: `off` (lambda
    /// hooks refused and never run), `sandbox` (within the ceiling below),
    /// `on` (whatever a hook asks for).
    pub untrusted_wasm: UntrustedWasm,
    /// What a lambda hook may be granted in `sandbox` mode, one key per
    /// capability kind: `sandbox_allowed_hosts` (`api.example.com`,
    /// `*.slack.com:443`, `127.0.0.1:8080`), `sandbox_env` (variable
    /// names), `sandbox_dirs` (`[{host = "/srv/data", guest = "/data",
    /// write = false}]`, and below).
    #[serde(flatten)]
    pub sandbox_ceiling: CeilingConfig,
    /// Linear memory of a guest whose hook sets none, bytes.
    pub sandbox_default_memory: u64,
    /// Largest linear memory any hook may ask for, bytes.
    pub sandbox_max_memory: u64,
    /// Wall time of one guest call when its hook sets none.
    pub sandbox_default_timeout: Dur,
    /// Longest wall time any hook may ask for.
    pub sandbox_max_timeout: Dur,
    /// Whether guest code counts fuel, so that hooks may limit it. Counting
    /// slows every guest (a JSON transform ~1.4x), so it is off by default.
    pub sandbox_fuel_metering: bool,
    /// Fuel of one guest call when its hook sets none; 0 is unmetered.
    pub sandbox_default_fuel: u64,
    /// Most fuel any hook may ask for; 0 is no maximum.
    pub sandbox_max_fuel: u64,
    /// Largest guest upload, bytes.
    pub guest_size_limit: usize,
    /// Wall time of one webhook-custom render (all templates of one
    /// attempt or `/test`); the worker is killed past it.
    pub template_timeout: Dur,
    /// Memory of one template worker process, bytes.
    pub template_memory: u64,
    /// Template worker processes, so renders at once.
    pub template_workers: usize,
    /// How long a render waits for a free worker before it fails.
    pub template_queue_timeout: Dur,
    /// Instructions one template may execute.
    pub template_fuel: u64,
    /// Longest text one template may render to (and longest string a
    /// filter may make), bytes.
    pub template_output_limit: usize,
    /// Allowed audit decisions kept, at most.
    pub audit_retention_count: usize,
    /// Allowed audit decisions kept no longer than this.
    pub audit_retention_age: Dur,
    /// Denied audit decisions kept, at most.
    pub audit_denied_retention_count: usize,
    /// Denied audit decisions kept no longer than this.
    pub audit_denied_retention_age: Dur,
    /// Distinct audit records one guest call may make; repeats of a
    /// decision are counted in its record, and decisions past this in one
    /// record per capability and verdict.
    pub sandbox_audit_records_per_call: usize,
    /// Lines one guest call may put in the server log from each of its
    /// `log` calls, its stdout and its stderr; one more line says how many
    /// were dropped.
    pub sandbox_log_lines_per_call: usize,
    /// Longest guest line logged, bytes; the rest of a line is dropped.
    pub sandbox_log_line_bytes: usize,
    /// Bytes of `log` messages one guest call may write; the rest is
    /// counted and dropped.
    pub sandbox_log_bytes_per_call: usize,
    /// Bytes kept of each of a guest call's stdout and stderr.
    pub sandbox_stdio_bytes_per_call: usize,
    /// Largest result one guest call may return, bytes; a larger one fails
    /// the call.
    pub sandbox_max_output: usize,
    /// Calls one kept instance (a hook with `instance = "reused"`) serves
    /// before it is dropped.
    pub sandbox_instance_max_calls: u64,
    /// Age past which a kept instance is dropped rather than called again.
    pub sandbox_instance_max_age: Dur,
    /// Kept instances idle at once, across every hook; each holds its
    /// memory.
    pub sandbox_idle_instances: usize,
    /// Linear memory the idle kept instances may hold together, bytes.
    pub sandbox_idle_instances_memory: u64,
    /// Whether the Admin API listener serves the console at `/console`.
    pub console: bool,
    /// A console session unused this long is signed out.
    pub console_session_idle: Dur,
    /// Console sessions kept at most; past it, the longest unused goes.
    pub console_sessions_max: usize,
    /// Whether every Admin API request needs a token (`Kong-Admin-Token`
    /// or `Authorization: Bearer`), as Kong's `enforce_rbac`.
    pub enforce_rbac: bool,
    /// A super-admin token for bootstrapping, e.g. to create the first
    /// admins; empty for none.
    pub admin_token: String,
    /// The file this was read from, if any: not a key, but one of hookd's
    /// secrets that no guest may be granted.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// A duration written as humans write them: `500ms`, `5s`, `2m`, `1h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// In the largest unit that divides it exactly: `90d`, `1h`, `500ms`.
impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        let units = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1000, "s"),
        ];
        match units
            .iter()
            .find(|(size, _)| ms > 0 && ms.is_multiple_of(*size))
        {
            Some((size, unit)) => write!(f, "{}{unit}", ms / size),
            None if ms == 0 => f.write_str("0s"),
            None => write!(f, "{ms}ms"),
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(Dur)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration '{text}': {e}")))
    }
}

fn secs(s: u64) -> Dur {
    Dur(Duration::from_secs(s))
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

/// Where a server keeps its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// Embedded, in the data directory: one process.
    Sled,
    /// A PostgreSQL database, shared by the nodes that name it.
    Postgres,
}

/// Each part's defaults are its own (`Default` next to the code it
/// configures); the configuration only names them.
impl Default for Config {
    fn default() -> Self {
        let templates = hookd_template::Limits::default();
        let retry = hookd_delivery::retry::RetryPolicy::default();
        let retention = hookd_delivery::Retention::default();
        let webhooks = hookd_delivery::handler::HttpSettings::default();
        let concurrency = hookd_delivery::HookConcurrency::default();
        let breaker = hookd_delivery::BreakerPolicy::default();
        let console = hookd_console::Settings::default();
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8001)),
            storage: Storage::Sled,
            data_dir: default_data_dir(),
            postgres_url: String::new(),
            postgres_max_connections: 16,
            postgres_statement_timeout: secs(30),
            cluster_lease: secs(10),
            log_format: LogFormat::Pretty,
            log_level: "info".into(),
            body_limit: 1024 * 1024,
            body_max_depth: 32,
            header_read_timeout: secs(10),
            idle_timeout: secs(60),
            request_body_timeout: secs(60),
            max_connections: 512,
            webhook_timeout: Dur(webhooks.timeout),
            retry_schedule: retry.schedule.into_iter().map(Dur).collect(),
            retry_max_attempts: retry.max_attempts,
            retry_jitter: retry.jitter,
            retry_after_max: Dur(retry.retry_after_max),
            delivery_workers: 128,
            delivery_memory: hookd_delivery::Settings::IN_MEMORY,
            store_cache_capacity: hookd_store::DEFAULT_CACHE_CAPACITY,
            hook_concurrency: concurrency.default,
            hook_max_concurrency: concurrency.max,
            hook_pause_after_failures: breaker.pause_after,
            hook_disable_after: Dur(breaker.disable_after),
            delivery_retention_count: retention.count,
            delivery_retention_age: Dur(retention.age),
            outbound_allow_cidrs: Vec::new(),
            kong_signature: KongSignature::Sha1,
            // As Svix, whose rotation keeps the old secret for 24 hours.
            secret_overlap: secs(24 * 3600),
            custom_sources: BTreeMap::new(),
            untrusted_wasm: UntrustedWasm::Sandbox,
            sandbox_ceiling: CeilingConfig::default(),
            sandbox_default_memory: capability::DEFAULT_MEMORY,
            sandbox_max_memory: capability::MAX_MEMORY,
            sandbox_default_timeout: Dur(Duration::from_millis(capability::DEFAULT_TIMEOUT_MS)),
            sandbox_max_timeout: Dur(Duration::from_millis(capability::MAX_TIMEOUT_MS)),
            sandbox_fuel_metering: false,
            sandbox_default_fuel: capability::DEFAULT_FUEL.unwrap_or(0),
            sandbox_max_fuel: capability::MAX_FUEL.unwrap_or(0),
            guest_size_limit: hookd_sandbox::MAX_GUEST_BYTES,
            template_timeout: Dur(templates.timeout),
            template_memory: templates.memory,
            template_workers: templates.workers,
            template_queue_timeout: Dur(templates.queue_timeout),
            template_fuel: templates.engine.fuel,
            template_output_limit: templates.engine.output,
            audit_retention_count: 100_000,
            audit_retention_age: secs(7 * 24 * 3600),
            audit_denied_retention_count: 100_000,
            audit_denied_retention_age: secs(90 * 24 * 3600),
            sandbox_audit_records_per_call: hookd_sandbox::MAX_AUDIT_RECORDS,
            sandbox_log_lines_per_call: hookd_sandbox::MAX_LOG_LINES,
            sandbox_log_line_bytes: hookd_sandbox::MAX_LINE_BYTES,
            sandbox_log_bytes_per_call: hookd_sandbox::MAX_LOG_BYTES,
            sandbox_stdio_bytes_per_call: hookd_sandbox::MAX_STDIO_BYTES,
            sandbox_max_output: hookd_sandbox::MAX_OUTPUT_BYTES,
            sandbox_instance_max_calls: hookd_sandbox::MAX_INSTANCE_CALLS,
            sandbox_instance_max_age: Dur(hookd_sandbox::MAX_INSTANCE_AGE),
            sandbox_idle_instances: hookd_sandbox::MAX_IDLE_INSTANCES,
            sandbox_idle_instances_memory: hookd_sandbox::MAX_IDLE_MEMORY,
            enforce_rbac: false,
            admin_token: String::new(),
            console: true,
            console_session_idle: Dur(console.session_idle),
            console_sessions_max: console.max_sessions,
            file: None,
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

/// Words that mark a key whose value is shown as `******`, when its last
/// word has one (`admin_token`; not `secret_overlap`, a duration).
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
    /// A key the file sets that is not a setting.
    #[error("{path}: unknown key `{key}`", path = path.display())]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A sandbox setting that does not make sense.
    #[error("{key}: {reason}")]
    Sandbox {
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// A limit out of its range.
    #[error("{key}: {reason}")]
    Limit {
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// A custom source that cannot be added to the catalogue.
    #[error("custom_sources.{source_name}: {reason}")]
    CustomSource {
        /// The source.
        source_name: String,
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
        let defaults =
            toml::Table::try_from(Config::default()).expect("the default configuration serialises");
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
            // Every key has a default, so a key without one is misspelt or
            // from another version: refused, not ignored.
            if let Some(key) = table.keys().find(|key| !defaults.contains_key(*key)) {
                return Err(ConfigError::UnknownKey {
                    path: path.into(),
                    key: key.clone(),
                });
            }
        }
        for (key, default) in &defaults {
            let var = format!("HOOKD_{}", key.to_ascii_uppercase());
            if let Some(text) = env(&var) {
                let value =
                    env_value(&text, default).map_err(|reason| ConfigError::Env { var, reason })?;
                table.insert(key.clone(), value);
            }
        }
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(ConfigError::Invalid)?;
        config.file = file.map(Path::to_path_buf);
        config.check_limits()?;
        Ok(config)
    }

    /// Refuses limits that would let the server accept what it cannot keep.
    fn check_limits(&self) -> Result<(), ConfigError> {
        let deepest = hookd_store::codec::MAX_VALUE_DEPTH;
        if !(1..=deepest).contains(&self.body_max_depth) {
            return Err(ConfigError::Limit {
                key: "body_max_depth",
                reason: format!(
                    "must be between 1 and {deepest}: records wrap a body in up to {} more levels, and stored records are read back to {} levels",
                    hookd_store::codec::ENVELOPE_DEPTH,
                    hookd_store::codec::READ_DEPTH
                ),
            });
        }
        if self.storage == Storage::Postgres {
            let url = url::Url::parse(&self.postgres_url);
            if !url.is_ok_and(|u| matches!(u.scheme(), "postgres" | "postgresql")) {
                return Err(ConfigError::Limit {
                    key: "postgres_url",
                    reason: "storage = \"postgres\" needs postgres_url, a postgres:// URL".into(),
                });
            }
            let fewest = hookd_store::Connection::MIN_CONNECTIONS;
            if self.postgres_max_connections < fewest {
                return Err(ConfigError::Limit {
                    key: "postgres_max_connections",
                    reason: format!(
                        "must be at least {fewest}: deliveries keep some connections of their own"
                    ),
                });
            }
            let lease = self.cluster_lease.0;
            if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&lease) {
                return Err(ConfigError::Limit {
                    key: "cluster_lease",
                    reason: "must be from 1s (it is renewed five times within it) to 1h (a dead \
                             node's deliveries wait that long)"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// Kong's catalogue for these crud entities, with the custom sources added.
    pub fn catalogue<'a>(
        &self,
        crud_entities: impl IntoIterator<Item = &'a str>,
    ) -> Result<Catalogue, ConfigError> {
        let mut catalogue = Catalogue::builtin(crud_entities);
        let builtin: Vec<String> = catalogue.sources().map(str::to_string).collect();
        for (source, events) in &self.custom_sources {
            let refuse = |reason: String| ConfigError::CustomSource {
                source_name: source.clone(),
                reason,
            };
            if builtin.contains(source) {
                return Err(refuse("a built-in source cannot be redefined".into()));
            }
            if events.is_empty() {
                return Err(refuse("declares no events".into()));
            }
            for (event, info) in events {
                if let Some(stray) = info
                    .unique
                    .iter()
                    .flatten()
                    .find(|u| !info.fields.contains(u))
                {
                    return Err(refuse(format!(
                        "{event}: unique field '{stray}' is not one of its fields"
                    )));
                }
                catalogue.add(source, event, info.clone());
            }
        }
        Ok(catalogue)
    }

    /// hookd's own secrets, which no guest is granted in any mode: the
    /// data directory and the configuration file, by their real paths.
    fn secrets(&self) -> ServerSecrets {
        ServerSecrets {
            data_dir: Some(hookd_sandbox::resolve_path(&self.data_dir)),
            config_file: self.file.as_deref().map(hookd_sandbox::resolve_path),
        }
    }

    /// The sandbox of lambda guests, its precompiled guests kept in
    /// `<data_dir>/compiled`.
    pub fn sandbox(&self) -> Result<hookd_sandbox::SandboxConfig, ConfigError> {
        let secrets = self.secrets();
        // Refuses a ceiling that is malformed or would hand hookd's own
        // secrets to guests, judged on real paths.
        let items = self
            .sandbox_ceiling
            .read(&secrets, &hookd_sandbox::resolve_path)
            .map_err(|e| ConfigError::Sandbox {
                key: e.key,
                reason: e.reason,
            })?;
        let fuel = |f: u64| (f > 0).then_some(f);
        let limits = |memory, timeout: Dur, fuel| ResolvedLimits {
            memory,
            timeout_ms: timeout.0.as_millis() as u64,
            fuel,
        };
        let ceiling = SandboxCeiling {
            items,
            default_limits: limits(
                self.sandbox_default_memory,
                self.sandbox_default_timeout,
                fuel(self.sandbox_default_fuel),
            ),
            max_limits: limits(
                self.sandbox_max_memory,
                self.sandbox_max_timeout,
                fuel(self.sandbox_max_fuel),
            ),
            fuel_metering: self.sandbox_fuel_metering,
            outbound: self.outbound_policy(),
            secrets,
        };
        if !self.sandbox_fuel_metering {
            for (key, value) in [
                ("sandbox_default_fuel", self.sandbox_default_fuel),
                ("sandbox_max_fuel", self.sandbox_max_fuel),
            ] {
                if value > 0 {
                    return Err(ConfigError::Sandbox {
                        key,
                        reason: "fuel is counted only with sandbox_fuel_metering = true".into(),
                    });
                }
            }
        }
        if ceiling.default_limits.memory > ceiling.max_limits.memory {
            return Err(ConfigError::Sandbox {
                key: "sandbox_default_memory",
                reason: "exceeds sandbox_max_memory".into(),
            });
        }
        if ceiling.default_limits.timeout_ms > ceiling.max_limits.timeout_ms {
            return Err(ConfigError::Sandbox {
                key: "sandbox_default_timeout",
                reason: "exceeds sandbox_max_timeout".into(),
            });
        }
        Ok(hookd_sandbox::SandboxConfig {
            mode: self.untrusted_wasm,
            ceiling,
            cache_dir: Some(self.data_dir.join("compiled")),
            max_guest_bytes: self.guest_size_limit,
            max_audit_records: self.sandbox_audit_records_per_call,
            max_log_lines: self.sandbox_log_lines_per_call,
            max_line_bytes: self.sandbox_log_line_bytes,
            max_log_bytes: self.sandbox_log_bytes_per_call,
            max_stdio_bytes: self.sandbox_stdio_bytes_per_call,
            max_output_bytes: self.sandbox_max_output,
            reuse: hookd_sandbox::ReuseLimits {
                max_calls: self.sandbox_instance_max_calls.max(1),
                max_age: self.sandbox_instance_max_age.0,
                max_idle: self.sandbox_idle_instances,
                max_idle_memory: self.sandbox_idle_instances_memory,
            },
            ..hookd_sandbox::SandboxConfig::default()
        })
    }

    /// Where webhooks, guests and health probes may connect.
    pub fn outbound_policy(&self) -> hookd_model::outbound::OutboundPolicy {
        hookd_model::outbound::OutboundPolicy::allowing(self.outbound_allow_cidrs.clone())
    }

    /// The console's settings.
    pub fn console(&self) -> hookd_console::Settings {
        hookd_console::Settings {
            session_idle: self.console_session_idle.0,
            max_sessions: self.console_sessions_max.max(1),
            upload_limit: self.guest_size_limit,
        }
    }

    /// The Admin API listener's limits.
    pub fn listener(&self) -> crate::listener::Limits {
        crate::listener::Limits {
            header_read_timeout: self.header_read_timeout.0,
            idle_timeout: self.idle_timeout.0,
            request_body_timeout: self.request_body_timeout.0,
            max_connections: self.max_connections.max(1),
        }
    }

    /// What one webhook-custom render may use.
    pub fn template_limits(&self) -> hookd_template::Limits {
        hookd_template::Limits {
            timeout: self.template_timeout.0,
            queue_timeout: self.template_queue_timeout.0,
            workers: self.template_workers.max(1),
            memory: self.template_memory,
            engine: hookd_template::EngineLimits {
                fuel: self.template_fuel,
                output: self.template_output_limit,
            },
        }
    }

    /// The delivery engine's settings; webhook-custom templates are
    /// rendered by `templates`.
    pub fn delivery(&self, templates: hookd_template::Renderer) -> hookd_delivery::Settings {
        use hookd_delivery::handler::HttpSettings;
        hookd_delivery::Settings {
            retry: hookd_delivery::retry::RetryPolicy {
                schedule: self.retry_schedule.iter().map(|d| d.0).collect(),
                max_attempts: self.retry_max_attempts.max(1),
                jitter: self.retry_jitter.clamp(0.0, 1.0),
                retry_after_max: self.retry_after_max.0,
            },
            workers: self.delivery_workers.max(1),
            http: HttpSettings {
                timeout: self.webhook_timeout.0,
                policy: self.outbound_policy(),
                kong_signature: self.kong_signature,
            },
            retention: hookd_delivery::Retention {
                count: self.delivery_retention_count,
                age: self.delivery_retention_age.0,
            },
            templates,
            concurrency: hookd_delivery::HookConcurrency {
                default: self
                    .hook_concurrency
                    .clamp(1, self.hook_max_concurrency.max(1)),
                max: self.hook_max_concurrency.max(1),
            },
            breaker: hookd_delivery::BreakerPolicy {
                pause_after: self.hook_pause_after_failures,
                disable_after: self.hook_disable_after.0,
            },
            in_memory: self.delivery_memory,
        }
    }

    /// The configuration as JSON, with secret values replaced: keys
    /// named as secrets, and the password of `postgres_url`.
    pub fn redacted(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("the configuration serialises");
        redact(&mut value);
        if let Ok(mut url) = url::Url::parse(&self.postgres_url)
            && url.password().is_some()
            && url.set_password(Some("******")).is_ok()
        {
            value["postgres_url"] = serde_json::Value::from(url.to_string());
        }
        value
    }

    /// How a node on PostgreSQL reaches its database.
    pub fn postgres(&self) -> hookd_store::Connection {
        hookd_store::Connection {
            url: self.postgres_url.clone(),
            max_connections: self.postgres_max_connections,
            statement_timeout: self.postgres_statement_timeout.0,
        }
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
            let last_word = key.rsplit('_').next().unwrap_or_default();
            let secret = SECRET_MARKERS.iter().any(|m| last_word.contains(m));
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
    fn body_max_depth_stays_within_what_records_read_back() {
        let deepest = hookd_store::codec::MAX_VALUE_DEPTH.to_string();
        let c = Config::load(None, env(&[("HOOKD_BODY_MAX_DEPTH", &deepest)])).unwrap();
        assert_eq!(c.body_max_depth, hookd_store::codec::MAX_VALUE_DEPTH);
        for refused in ["0", "125"] {
            let err = Config::load(None, env(&[("HOOKD_BODY_MAX_DEPTH", refused)])).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("body_max_depth: must be between 1 and 124"),
                "{err}"
            );
        }
    }

    #[test]
    fn postgres_needs_its_url_and_two_connections() {
        let on_postgres = |more: &[(&str, &str)]| {
            let mut vars = vec![("HOOKD_STORAGE", "postgres")];
            vars.extend_from_slice(more);
            Config::load(None, env(&vars))
        };
        let err = on_postgres(&[]).unwrap_err();
        assert!(err.to_string().starts_with("postgres_url:"), "{err}");
        let url = ("HOOKD_POSTGRES_URL", "postgres://hookd@db:5432/hookd");
        let err = on_postgres(&[url, ("HOOKD_POSTGRES_MAX_CONNECTIONS", "1")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("postgres_max_connections: must be at least 2"),
            "{err}"
        );
        let c = on_postgres(&[url, ("HOOKD_POSTGRES_MAX_CONNECTIONS", "2")]).unwrap();
        assert_eq!(c.postgres().max_connections, 2);
        for lease in ["500ms", "2h"] {
            let err = on_postgres(&[url, ("HOOKD_CLUSTER_LEASE", lease)]).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("cluster_lease: must be from 1s"),
                "{err}"
            );
        }
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
        std::fs::write(&file, "sandbox_env = [\"REGION\"]\nno_such_key = 1\n").unwrap();
        let err = Config::load(Some(&file), env(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: unknown key `no_such_key`", file.display())
        );
    }

    #[test]
    fn durations_and_lists_from_file_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hookd.toml");
        std::fs::write(
            &file,
            "retry_schedule = [\"100ms\", \"1s\"]\nwebhook_timeout = \"2s\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("HOOKD_OUTBOUND_ALLOW_CIDRS", "127.0.0.0/8, 10.0.0.0/8"),
                ("HOOKD_KONG_SIGNATURE", "sha256"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.retry_schedule,
            vec![Dur(Duration::from_millis(100)), secs(1)]
        );
        assert_eq!(c.webhook_timeout, secs(2));
        assert_eq!(c.outbound_allow_cidrs.len(), 2);
        assert_eq!(c.kong_signature, KongSignature::Sha256);
        let err = Config::load(None, env(&[("HOOKD_WEBHOOK_TIMEOUT", "soon")])).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
    }

    #[test]
    fn custom_sources_join_the_catalogue() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hookd.toml");
        std::fs::write(
            &file,
            "[custom_sources.payments.charge-failed]\nfields = [\"customer\", \"amount\"]\nunique = [\"customer\"]\ndescription = \"A charge was declined\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), env(&[])).unwrap();
        let catalogue = c.catalogue(["consumers"]).unwrap();
        let info = catalogue.event("payments", "charge-failed").unwrap();
        assert_eq!(info.unique.as_deref(), Some(&["customer".to_string()][..]));
        assert!(catalogue.event("crud", "consumers").is_some());

        std::fs::write(&file, "[custom_sources.crud.x]\nfields = []\n").unwrap();
        let c = Config::load(Some(&file), env(&[])).unwrap();
        assert!(matches!(
            c.catalogue(["consumers"]),
            Err(ConfigError::CustomSource { .. })
        ));
        std::fs::write(
            &file,
            "[custom_sources.p.e]\nfields = [\"a\"]\nunique = [\"b\"]\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), env(&[])).unwrap();
        assert_eq!(
            c.catalogue([]).unwrap_err().to_string(),
            "custom_sources.p: e: unique field 'b' is not one of its fields"
        );
    }

    #[test]
    fn fuel_limits_need_fuel_metering() {
        let c = Config::load(None, env(&[("HOOKD_SANDBOX_MAX_FUEL", "1000")])).unwrap();
        assert_eq!(
            c.sandbox().unwrap_err().to_string(),
            "sandbox_max_fuel: fuel is counted only with sandbox_fuel_metering = true"
        );
        let c = Config::load(
            None,
            env(&[
                ("HOOKD_SANDBOX_MAX_FUEL", "1000"),
                ("HOOKD_SANDBOX_FUEL_METERING", "true"),
            ]),
        )
        .unwrap();
        let ceiling = c.sandbox().unwrap().ceiling;
        assert!(ceiling.fuel_metering);
        assert_eq!(ceiling.max_limits.fuel, Some(1000));
        assert!(!Config::default().sandbox().unwrap().ceiling.fuel_metering);
    }

    #[test]
    fn each_ceiling_key_is_read_by_its_capability_kind() {
        let c = Config::load(
            None,
            env(&[
                ("HOOKD_SANDBOX_ALLOWED_HOSTS", "*.slack.com, 127.0.0.1:8080"),
                ("HOOKD_SANDBOX_ENV", "REGION"),
            ]),
        )
        .unwrap()
        .sandbox()
        .unwrap();
        let host = |p| capability::AllowedHost::parse(p).unwrap();
        assert_eq!(
            c.ceiling.items.allowed_hosts,
            [host("*.slack.com"), host("127.0.0.1:8080")]
        );
        assert_eq!(c.ceiling.items.env, ["REGION"]);
        for (var, value, refusal) in [
            (
                "HOOKD_SANDBOX_ALLOWED_HOSTS",
                "https://x",
                "sandbox_allowed_hosts: invalid host pattern 'https://x'",
            ),
            (
                "HOOKD_SANDBOX_ENV",
                "A=B",
                "sandbox_env: an environment variable name must be non-empty, without '=' or NUL",
            ),
            (
                "HOOKD_SANDBOX_DIRS",
                "[{host = \"relative\", guest = \"/d\"}]",
                "sandbox_dirs: the host path must be absolute, without '..'",
            ),
        ] {
            let err = Config::load(None, env(&[(var, value)]))
                .unwrap()
                .sandbox()
                .unwrap_err();
            assert!(err.to_string().starts_with(refusal), "{err}");
        }
    }

    #[test]
    fn the_ceiling_cannot_hold_hookds_own_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        let file = etc.join("hookd.toml");
        std::fs::write(
            &file,
            format!("data_dir = {:?}\n", data.display().to_string()),
        )
        .unwrap();
        let load = |vars: &[(&str, &str)]| Config::load(Some(&file), env(vars)).unwrap().sandbox();

        let err = load(&[("HOOKD_SANDBOX_ENV", "REGION,HOOKD_ADMIN_TOKEN")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sandbox_env: environment variable 'HOOKD_ADMIN_TOKEN' is hookd's own (HOOKD_*) and is never granted to a guest"
        );
        let real = |p: &Path| hookd_sandbox::resolve_path(p).display().to_string();
        let grant = |host: &Path| {
            format!(
                "[{{host = {:?}, guest = \"/d\"}}]",
                host.display().to_string()
            )
        };
        // The data directory (not created yet), inside it, around it.
        for host in [
            data.clone(),
            data.join("compiled"),
            dir.path().to_path_buf(),
        ] {
            let err = load(&[("HOOKD_SANDBOX_DIRS", &grant(&host))]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "sandbox_dirs: directory '{}' would expose hookd's data directory {}, which is never granted to a guest",
                    host.display(),
                    real(&data)
                )
            );
        }
        let err = load(&[("HOOKD_SANDBOX_DIRS", &grant(&etc))]).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("hookd's configuration file {}", real(&file))),
            "{err}"
        );
        // Beside them, or below the configuration's directory without the file: fine.
        let beside = dir.path().join("srv");
        let below = etc.join("guests");
        for host in [beside, below] {
            let c = load(&[("HOOKD_SANDBOX_DIRS", &grant(&host))]).unwrap();
            assert_eq!(
                c.ceiling.secrets.data_dir,
                Some(hookd_sandbox::resolve_path(&data))
            );
        }
    }

    #[test]
    fn durations_print_in_their_largest_exact_unit_and_read_back() {
        for (d, text) in [
            (secs(90 * 86_400), "90d"),
            (secs(3600), "1h"),
            (secs(90), "90s"),
            (Dur(Duration::from_millis(1500)), "1500ms"),
            (secs(0), "0s"),
        ] {
            assert_eq!(d.to_string(), text);
            assert_eq!(humantime::parse_duration(text).unwrap(), d.0);
        }
    }

    #[test]
    fn the_readme_documents_every_key() {
        let readme = include_str!("../../../README.md");
        let keys = toml::Table::try_from(Config::default()).unwrap();
        for key in keys.keys() {
            assert!(
                readme.contains(&format!("| `{key}` |")),
                "README.md does not document `{key}`"
            );
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let mut v = serde_json::json!({"admin_token": "abc", "listen": "x",
            "secret_overlap": "1d", "nested": {"secret": "s"}});
        redact(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"admin_token": "******", "listen": "x",
                "secret_overlap": "1d", "nested": {"secret": "******"}})
        );
    }
}
