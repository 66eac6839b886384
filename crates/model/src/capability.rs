//! What a lambda hook asks its guests to be allowed, the limits of one
//! invocation, and how both are checked against the server's
//! `untrusted_wasm` mode and the operator's [`SandboxCeiling`].
//!
//! Permissions are parsed, typed values with a `parse` and an `allows`
//! (after spin's `AllowedHostConfig`). A hook that asks for more than the
//! ceiling is refused at create ([`check_lambda`]); at run time the
//! [`EffectiveGrant`] is recomputed as an intersection, so a ceiling that
//! shrank later takes effect without touching stored hooks.

use crate::audit::CapabilityClass;
use crate::host_port::split_host_port;
use crate::violation::{PathSeg, Violations};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// The capabilities a lambda hook requests for its guests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Host patterns the guest may call over HTTP ([`AllowedHost`]).
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

/// The limits one invocation runs with, every value decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedLimits {
    /// Largest linear memory, in bytes.
    pub memory: u64,
    /// Wall time of one guest call, in milliseconds.
    pub timeout_ms: u64,
    /// Fuel for one guest call; `None` runs unmetered.
    pub fuel: Option<u64>,
}

/// Linear memory of a guest whose hook sets no limit: 64 MiB.
pub const DEFAULT_MEMORY: u64 = 64 << 20;
/// Largest linear memory a hook may ask for: 512 MiB.
pub const MAX_MEMORY: u64 = 512 << 20;
/// Wall time of a guest call whose hook sets no limit: 5 s.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Longest wall time a hook may ask for: 60 s.
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Fuel of a guest call whose hook sets none: unmetered (the wall-time
/// deadline still ends it).
pub const DEFAULT_FUEL: Option<u64> = None;
/// Most fuel a hook may ask for: no maximum.
pub const MAX_FUEL: Option<u64> = None;

/// The server's `untrusted_wasm` setting, after Kong's `untrusted_lua`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UntrustedWasm {
    /// Lambda hooks are refused at create and never run.
    Off,
    /// Guests get what their hook is granted within the [`SandboxCeiling`].
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

/// A host a guest may call over HTTP, written `host[:port]`.
///
/// - host: a DNS name (`api.example.com`); `*.` and a name for every
///   subdomain at any depth (`*.slack.com` admits `hooks.slack.com` and
///   `a.b.slack.com`, not `slack.com`); an IP address (`127.0.0.1`,
///   `[::1]`, or `::1` without a port); or `*` for any host.
/// - port: a number, `*` for any port, or absent for the web ports 80 and
///   443.
/// - no scheme: a pattern admits http and https alike. What is guarded is
///   where a request goes; the outbound address policy then checks where
///   the name resolves. `https://x`, paths and user info are refused.
///
/// Names compare case-insensitively, a trailing dot ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AllowedHost {
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostPattern {
    Any,
    Name(String),
    /// The parent name, without `*.`.
    Subdomains(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PortPattern {
    /// 80 and 443.
    Web,
    Exact(u16),
    Any,
}

/// A host pattern that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host pattern '{pattern}': {reason}")]
pub struct InvalidHostPattern {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl AllowedHost {
    /// Parses `host[:port]` (see the type's documentation).
    pub fn parse(pattern: &str) -> Result<Self, InvalidHostPattern> {
        let invalid = |reason| InvalidHostPattern {
            pattern: pattern.to_string(),
            reason,
        };
        if pattern.is_empty() {
            return Err(invalid("empty"));
        }
        if pattern.contains("://") {
            return Err(invalid(
                "write host[:port] without a scheme: a pattern admits http and https alike",
            ));
        }
        if pattern.contains(['/', '?', '#', '@']) || pattern.chars().any(char::is_whitespace) {
            return Err(invalid(
                "only host[:port] is allowed: no path, query or user info",
            ));
        }
        let (host, port) = split_host_port(pattern).map_err(invalid)?;
        let port = match port {
            None => PortPattern::Web,
            Some("*") => PortPattern::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => PortPattern::Exact(n),
                _ => return Err(invalid("the port must be 1-65535 or *")),
            },
        };
        let host = parse_host_pattern(host).map_err(invalid)?;
        Ok(AllowedHost { host, port })
    }

    /// Whether a request to `host` (a name or an IP literal, IPv6 with or
    /// without brackets) on `port` is admitted.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let port_ok = match self.port {
            PortPattern::Web => port == 80 || port == 443,
            PortPattern::Exact(p) => port == p,
            PortPattern::Any => true,
        };
        port_ok && self.host.allows(&normalise(host))
    }

    /// Whether everything this pattern admits, `ceiling` admits too.
    pub fn within(&self, ceiling: &AllowedHost) -> bool {
        let port_ok = match (self.port, ceiling.port) {
            (_, PortPattern::Any) => true,
            (PortPattern::Any, _) => false,
            (PortPattern::Web, PortPattern::Web) => true,
            (PortPattern::Exact(p), PortPattern::Web) => p == 80 || p == 443,
            (PortPattern::Exact(p), PortPattern::Exact(q)) => p == q,
            (PortPattern::Web, PortPattern::Exact(_)) => false,
        };
        let host_ok = match (&self.host, &ceiling.host) {
            (_, HostPattern::Any) => true,
            (HostPattern::Any, _) => false,
            (HostPattern::Name(n), HostPattern::Name(m)) => n == m,
            (HostPattern::Name(n), HostPattern::Subdomains(s)) => is_subdomain(n, s),
            (HostPattern::Subdomains(a), HostPattern::Subdomains(s)) => {
                a == s || is_subdomain(a, s)
            }
            (HostPattern::Ip(a), HostPattern::Ip(b)) => a == b,
            _ => false,
        };
        port_ok && host_ok
    }
}

impl HostPattern {
    fn allows(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Name(n) => n == host,
            HostPattern::Subdomains(s) => is_subdomain(host, s),
            HostPattern::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
        }
    }
}

fn is_subdomain(name: &str, parent: &str) -> bool {
    name.strip_suffix(parent)
        .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
}

fn normalise(host: &str) -> String {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

fn parse_host_pattern(host: &str) -> Result<HostPattern, &'static str> {
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(HostPattern::Ip(ip));
    }
    if host.contains(':') {
        return Err("not an IPv6 address");
    }
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    if name.contains('*') {
        return Err("a wildcard may only be the whole first label (*.example.com)");
    }
    let name = normalise(name);
    if name.is_empty() || name.len() > 253 {
        return Err("not a valid host name");
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err("not a valid host name");
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("not a valid IP address or host name");
    }
    Ok(if wildcard {
        HostPattern::Subdomains(name)
    } else {
        HostPattern::Name(name)
    })
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Name(n) => f.write_str(n)?,
            HostPattern::Subdomains(s) => write!(f, "*.{s}")?,
            HostPattern::Ip(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
        }
        match self.port {
            PortPattern::Web => Ok(()),
            PortPattern::Exact(p) => write!(f, ":{p}"),
            PortPattern::Any => f.write_str(":*"),
        }
    }
}

impl TryFrom<String> for AllowedHost {
    type Error = InvalidHostPattern;
    fn try_from(s: String) -> Result<Self, InvalidHostPattern> {
        AllowedHost::parse(&s)
    }
}

impl From<AllowedHost> for String {
    fn from(h: AllowedHost) -> String {
        h.to_string()
    }
}

/// Why a requested directory is unusable, if it is.
fn dir_error(dir: &DirGrant) -> Option<&'static str> {
    fn clean_absolute(p: &str) -> bool {
        let path = Path::new(p);
        path.is_absolute() && !path.components().any(|c| c == Component::ParentDir)
    }
    if !clean_absolute(&dir.host) {
        Some("the host path must be absolute, without '..'")
    } else if !clean_absolute(&dir.guest) {
        Some("the guest path must be absolute, without '..'")
    } else {
        None
    }
}

/// Why an environment variable name is unusable, if it is.
fn env_error(name: &str) -> Option<&'static str> {
    (name.is_empty() || name.contains(['=', '\0']))
        .then_some("an environment variable name must be non-empty, without '=' or NUL")
}

/// Environment variables that start with this (ASCII case ignored) are
/// hookd's own: its configuration (`HOOKD_ADMIN_TOKEN`, ...) and the CLI's.
pub const SECRET_ENV_PREFIX: &str = "HOOKD_";

/// What is hookd's own and never a guest's, in any mode (`untrusted_wasm =
/// on` included): its `HOOKD_*` environment variables, its data directory
/// (the store, precompiled guests) and its configuration file.
///
/// Paths are compared component by component, both sides resolved
/// (symlinks followed; see [`check_lambda`]'s `resolve`). A granted
/// directory exposes the data directory when it is that directory, lies
/// inside it or contains it; it exposes the configuration file when it
/// contains the file at any depth (the file's own directory or any above
/// it). A directory beside them, or below the configuration file's
/// directory without containing the file, exposes neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSecrets {
    /// The data directory, resolved.
    pub data_dir: Option<PathBuf>,
    /// The configuration file, resolved.
    pub config_file: Option<PathBuf>,
}

impl ServerSecrets {
    /// Whether an environment variable is hookd's own.
    pub fn is_secret_env(name: &str) -> bool {
        name.get(..SECRET_ENV_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(SECRET_ENV_PREFIX))
    }

    /// What of hookd's the host directory `dir` (resolved) would expose to
    /// a guest granted it, if anything.
    pub fn exposed_by(&self, dir: &Path) -> Option<String> {
        if let Some(data) = &self.data_dir
            && (dir.starts_with(data) || data.starts_with(dir))
        {
            return Some(format!("hookd's data directory {}", data.display()));
        }
        if let Some(file) = &self.config_file
            && file.starts_with(dir)
        {
            return Some(format!("hookd's configuration file {}", file.display()));
        }
        None
    }
}

fn secret_env_error(name: &str) -> String {
    format!(
        "environment variable '{name}' is hookd's own ({SECRET_ENV_PREFIX}*) and is never granted to a guest"
    )
}

fn secret_dir_error(dir: &str, exposed: &str) -> String {
    format!("directory '{dir}' would expose {exposed}, which is never granted to a guest")
}

/// Whether the directory `dir` fits in `ceiling`: at or below its host
/// path, and written only where the ceiling allows writing. The paths are
/// compared as written (no I/O here); the sandbox checks the resolved
/// paths again before it opens them.
pub fn dir_within(dir: &DirGrant, ceiling: &DirGrant) -> bool {
    Path::new(&dir.host).starts_with(&ceiling.host) && (ceiling.write || !dir.write)
}

/// The operator's ceiling for lambda hooks in `sandbox` mode, and the
/// limits of every invocation.
///
/// # Sandbox defaults
///
/// With nothing configured ([`SandboxCeiling::default`]) a guest gets:
/// - no environment variables (`env` is empty);
/// - no directories (`dirs` is empty);
/// - no network: no HTTP host (`allowed_hosts` is empty); raw sockets and
///   name lookup are never granted, in any mode;
/// - linear memory [`DEFAULT_MEMORY`] (64 MiB), at most [`MAX_MEMORY`]
///   (512 MiB) when its hook asks;
/// - wall time [`DEFAULT_TIMEOUT_MS`] (5 s) per call, at most
///   [`MAX_TIMEOUT_MS`] (60 s);
/// - fuel [`DEFAULT_FUEL`] (unmetered), at most [`MAX_FUEL`] (no maximum);
///   fuel is not counted at all unless the operator turns `fuel_metering`
///   on, and until then no hook may set one.
///
/// Log, clocks, random and captured stdio are always there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxCeiling {
    /// Hosts any hook may be granted (`sandbox_allowed_hosts`).
    pub allowed_hosts: Vec<AllowedHost>,
    /// Environment variables any hook may be granted (`sandbox_env`).
    pub env: Vec<String>,
    /// Directories (and below) any hook may be granted (`sandbox_dirs`).
    pub dirs: Vec<DirGrant>,
    /// Limits of a hook that sets none.
    pub default_limits: ResolvedLimits,
    /// Limits no hook may exceed, in every mode: the engine's memory pool
    /// is sized by them.
    pub max_limits: ResolvedLimits,
    /// Whether guest code counts fuel (`sandbox_fuel_metering`). Counting
    /// is compiled into every guest and slows them all (measured: a JSON
    /// transform runs ~1.4x faster without it), so it is off unless asked
    /// for; off, no hook may set `limits.fuel`.
    #[serde(default)]
    pub fuel_metering: bool,
    /// hookd's own environment and files, refused to every hook in every
    /// mode. Not serialised: where the data and configuration live is not
    /// a guest author's business.
    #[serde(skip)]
    pub secrets: ServerSecrets,
}

impl Default for SandboxCeiling {
    fn default() -> Self {
        SandboxCeiling {
            allowed_hosts: Vec::new(),
            env: Vec::new(),
            dirs: Vec::new(),
            default_limits: ResolvedLimits {
                memory: DEFAULT_MEMORY,
                timeout_ms: DEFAULT_TIMEOUT_MS,
                fuel: DEFAULT_FUEL,
            },
            max_limits: ResolvedLimits {
                memory: MAX_MEMORY,
                timeout_ms: MAX_TIMEOUT_MS,
                fuel: MAX_FUEL,
            },
            fuel_metering: false,
            secrets: ServerSecrets::default(),
        }
    }
}

impl SandboxCeiling {
    /// The limits an invocation runs with: what the hook set, else the
    /// default, never above the maximum (a value above it is refused at
    /// create; clamping covers a maximum lowered afterwards). With a fuel
    /// maximum, an unset fuel becomes that maximum. Without fuel metering
    /// there is no fuel: a hook stored while metering was on runs
    /// unmetered, bounded by its wall time, and its capabilities say so.
    pub fn resolve_limits(&self, requested: &Limits) -> ResolvedLimits {
        let (d, max) = (&self.default_limits, &self.max_limits);
        let fuel = requested.fuel.or(d.fuel);
        ResolvedLimits {
            memory: requested.memory.unwrap_or(d.memory).min(max.memory),
            timeout_ms: requested
                .timeout_ms
                .unwrap_or(d.timeout_ms)
                .min(max.timeout_ms),
            fuel: match (fuel, max.fuel) {
                _ if !self.fuel_metering => None,
                (Some(f), Some(m)) => Some(f.min(m)),
                (f, m) => f.or(m),
            },
        }
    }

    fn admits_host(&self, host: &AllowedHost) -> bool {
        self.allowed_hosts.iter().any(|c| host.within(c))
    }

    fn admits_env(&self, name: &str) -> bool {
        self.env.iter().any(|c| c == name)
    }

    fn admits_dir(&self, dir: &DirGrant) -> bool {
        self.dirs.iter().any(|c| dir_within(dir, c))
    }
}

const DISABLED: &str = "lambda hooks are disabled (untrusted_wasm = off)";

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

fn under(path: &[&str], index: Option<usize>) -> Vec<PathSeg> {
    let mut p: Vec<PathSeg> = path.iter().map(|k| key(k)).collect();
    p.extend(index.map(PathSeg::Index));
    p
}

/// Checks a lambda hook's request against the mode and the ceiling, naming
/// each capability that does not fit under `config`, e.g.
/// `config.capabilities.http.1: host 'evil.com' is not within the sandbox
/// ceiling (sandbox_allowed_hosts)`. Mode `off` refuses every lambda hook
/// at `handler`; mode `on` has no ceiling, but malformed requests, limits
/// above the maxima and hookd's own secrets ([`ServerSecrets`]) are
/// refused in every mode. `resolve` gives the real path of a requested
/// directory (symlinks followed; this crate does no I/O), so that a link
/// cannot lead to the secrets.
pub fn check_lambda(
    mode: UntrustedWasm,
    ceiling: &SandboxCeiling,
    caps: &Capabilities,
    limits: &Limits,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<(), Violations> {
    if mode == UntrustedWasm::Off {
        return Err(Violations::field("handler", DISABLED));
    }
    let sandboxed = mode == UntrustedWasm::Sandbox;
    let mut v = Violations::new();
    let caps_path = ["config", "capabilities"];
    for (i, pattern) in caps.http.iter().enumerate() {
        let path = under(&[caps_path[0], caps_path[1], "http"], Some(i));
        match AllowedHost::parse(pattern) {
            Err(e) => v.push(path, e.to_string()),
            Ok(h) if sandboxed && !ceiling.admits_host(&h) => v.push(
                path,
                format!(
                    "host '{pattern}' is not within the sandbox ceiling (sandbox_allowed_hosts)"
                ),
            ),
            Ok(_) => {}
        }
    }
    for (i, name) in caps.env.iter().enumerate() {
        let path = under(&[caps_path[0], caps_path[1], "env"], Some(i));
        if let Some(e) = env_error(name) {
            v.push(path, e);
        } else if ServerSecrets::is_secret_env(name) {
            v.push(path, secret_env_error(name));
        } else if sandboxed && !ceiling.admits_env(name) {
            v.push(
                path,
                format!(
                    "environment variable '{name}' is not within the sandbox ceiling (sandbox_env)"
                ),
            );
        }
    }
    for (i, dir) in caps.dirs.iter().enumerate() {
        let path = under(&[caps_path[0], caps_path[1], "dirs"], Some(i));
        if let Some(e) = dir_error(dir) {
            v.push(path, e);
        } else if let Some(exposed) = ceiling.secrets.exposed_by(&resolve(Path::new(&dir.host))) {
            v.push(path, secret_dir_error(&dir.host, &exposed));
        } else if sandboxed && !ceiling.admits_dir(dir) {
            let what = if dir.write
                && ceiling.admits_dir(&DirGrant {
                    write: false,
                    ..dir.clone()
                }) {
                "may not be written: the sandbox ceiling grants it read-only (sandbox_dirs)"
            } else {
                "is not within the sandbox ceiling (sandbox_dirs)"
            };
            v.push(path, format!("directory '{}' {what}", dir.host));
        }
    }
    if limits.fuel.is_some() && !ceiling.fuel_metering {
        v.push(
            under(&["config", "limits", "fuel"], None),
            "fuel is not counted on this server (sandbox_fuel_metering = false)",
        );
    }
    let max = &ceiling.max_limits;
    let over = [
        ("memory", limits.memory, Some(max.memory)),
        ("timeout_ms", limits.timeout_ms, Some(max.timeout_ms)),
        ("fuel", limits.fuel, max.fuel),
    ];
    for (name, asked, max) in over {
        if let (Some(asked), Some(max)) = (asked, max)
            && asked > max
        {
            v.push(
                under(&["config", "limits", name], None),
                format!("{asked} exceeds the server maximum {max}"),
            );
        }
    }
    v.into_result(())
}

/// What one guest of a hook actually gets: mode ∩ ceiling ∩ request ∩ the
/// guest's imports. It is what `GET /event-hooks/{id}/capabilities` shows,
/// and what the sandbox enforces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveGrant {
    /// The server's mode when it was computed.
    pub mode: UntrustedWasm,
    /// Hosts the guest may call over HTTP.
    pub http: Vec<AllowedHost>,
    /// Environment variables the guest may read.
    pub env: Vec<String>,
    /// Directories preopened for the guest.
    pub dirs: Vec<DirGrant>,
    /// The limits of each call.
    pub limits: ResolvedLimits,
    /// Capability classes the guest imports and can use, sorted.
    pub usable: Vec<CapabilityClass>,
    /// What was asked for or imported but is not in effect, and why.
    pub withheld: Vec<Withheld>,
}

/// One requested or imported capability that is not in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withheld {
    /// Its class.
    pub capability: CapabilityClass,
    /// The requested item (host pattern, variable, directory), or `None`
    /// for the class as a whole.
    pub item: Option<String>,
    /// Why it is not in effect.
    pub reason: String,
}

impl EffectiveGrant {
    /// Intersects mode, ceiling, request and the guest's imported classes.
    /// Never fails: whatever does not fit is listed in `withheld`.
    pub fn new(
        mode: UntrustedWasm,
        ceiling: &SandboxCeiling,
        caps: &Capabilities,
        limits: &Limits,
        imports: &[CapabilityClass],
    ) -> Self {
        let mut g = EffectiveGrant {
            mode,
            http: Vec::new(),
            env: Vec::new(),
            dirs: Vec::new(),
            limits: ceiling.resolve_limits(limits),
            usable: Vec::new(),
            withheld: Vec::new(),
        };
        let imports_class = |c| imports.contains(&c);
        let mut withhold = |capability, item: Option<&str>, reason: &str| {
            g.withheld.push(Withheld {
                capability,
                item: item.map(str::to_string),
                reason: reason.to_string(),
            })
        };
        let sandboxed = mode == UntrustedWasm::Sandbox;
        let mut http = Vec::new();
        let mut env = Vec::new();
        let mut dirs = Vec::new();
        for pattern in &caps.http {
            let item = Some(pattern.as_str());
            match AllowedHost::parse(pattern) {
                _ if mode == UntrustedWasm::Off => withhold(CapabilityClass::Http, item, DISABLED),
                Err(e) => withhold(CapabilityClass::Http, item, &e.to_string()),
                Ok(h) if sandboxed && !ceiling.admits_host(&h) => withhold(
                    CapabilityClass::Http,
                    item,
                    "not within the sandbox ceiling (sandbox_allowed_hosts)",
                ),
                Ok(_) if !imports_class(CapabilityClass::Http) => withhold(
                    CapabilityClass::Http,
                    item,
                    "moot: the guest does not import wasi:http",
                ),
                Ok(h) => http.push(h),
            }
        }
        for name in &caps.env {
            let item = Some(name.as_str());
            if mode == UntrustedWasm::Off {
                withhold(CapabilityClass::Environment, item, DISABLED);
            } else if let Some(e) = env_error(name) {
                withhold(CapabilityClass::Environment, item, e);
            } else if ServerSecrets::is_secret_env(name) {
                withhold(CapabilityClass::Environment, item, &secret_env_error(name));
            } else if sandboxed && !ceiling.admits_env(name) {
                withhold(
                    CapabilityClass::Environment,
                    item,
                    "not within the sandbox ceiling (sandbox_env)",
                );
            } else if !imports_class(CapabilityClass::Environment) {
                withhold(
                    CapabilityClass::Environment,
                    item,
                    "moot: the guest does not import an environment interface",
                );
            } else {
                env.push(name.clone());
            }
        }
        for dir in &caps.dirs {
            let item = Some(dir.host.as_str());
            if mode == UntrustedWasm::Off {
                withhold(CapabilityClass::Filesystem, item, DISABLED);
            } else if let Some(e) = dir_error(dir) {
                withhold(CapabilityClass::Filesystem, item, e);
            } else if let Some(exposed) = ceiling.secrets.exposed_by(Path::new(&dir.host)) {
                withhold(
                    CapabilityClass::Filesystem,
                    item,
                    &secret_dir_error(&dir.host, &exposed),
                );
            } else if sandboxed && !ceiling.admits_dir(dir) {
                withhold(
                    CapabilityClass::Filesystem,
                    item,
                    "not within the sandbox ceiling (sandbox_dirs)",
                );
            } else if !imports_class(CapabilityClass::Filesystem) {
                withhold(
                    CapabilityClass::Filesystem,
                    item,
                    "moot: the guest does not import a filesystem interface",
                );
            } else {
                dirs.push(dir.clone());
            }
        }
        let mut classes = imports.to_vec();
        classes.sort();
        classes.dedup();
        let mut usable = Vec::new();
        for class in classes {
            let unusable = match class {
                _ if mode == UntrustedWasm::Off => Some(DISABLED),
                CapabilityClass::Network => {
                    Some("raw sockets and name lookup are never granted: use wasi:http")
                }
                CapabilityClass::Http if http.is_empty() => {
                    Some("no host is granted (config.capabilities.http)")
                }
                CapabilityClass::Environment if env.is_empty() => {
                    Some("no variable is granted (config.capabilities.env)")
                }
                CapabilityClass::Filesystem if dirs.is_empty() => {
                    Some("no directory is granted (config.capabilities.dirs)")
                }
                _ => None,
            };
            match unusable {
                Some(reason) => withhold(class, None, reason),
                None => usable.push(class),
            }
        }
        g.http = http;
        g.env = env;
        g.dirs = dirs;
        g.usable = usable;
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host(p: &str) -> AllowedHost {
        AllowedHost::parse(p).unwrap()
    }

    /// Paths resolve to themselves: no I/O in these tests.
    fn as_written(p: &Path) -> PathBuf {
        p.to_path_buf()
    }

    fn reason(p: &str) -> &'static str {
        AllowedHost::parse(p).unwrap_err().reason
    }

    #[test]
    fn exact_name_admits_only_itself_on_web_ports() {
        let h = host("api.example.com");
        assert!(h.allows("api.example.com", 443));
        assert!(h.allows("API.Example.com.", 80));
        assert!(!h.allows("api.example.com", 8080));
        assert!(!h.allows("x.api.example.com", 443));
        assert!(!h.allows("example.com", 443));
    }

    #[test]
    fn wildcard_admits_subdomains_at_any_depth_but_not_the_parent() {
        let h = host("*.slack.com");
        assert!(h.allows("hooks.slack.com", 443));
        assert!(h.allows("a.b.slack.com", 443));
        assert!(!h.allows("slack.com", 443));
        assert!(!h.allows("evilslack.com", 443));
    }

    #[test]
    fn ports_exact_any_and_default() {
        assert!(host("host:443").allows("host", 443));
        assert!(!host("host:443").allows("host", 80));
        assert!(host("*.x.com:8080").allows("a.x.com", 8080));
        assert!(!host("*.x.com:8080").allows("a.x.com", 443));
        assert!(host("host:*").allows("host", 1));
        assert!(host("*").allows("anything.example", 443));
        assert!(!host("*").allows("anything.example", 22));
    }

    #[test]
    fn ip_patterns_compare_addresses() {
        assert!(host("127.0.0.1:9000").allows("127.0.0.1", 9000));
        assert!(!host("127.0.0.1:9000").allows("localhost", 9000));
        assert!(host("[::1]:8080").allows("[::1]", 8080));
        assert!(host("[::1]:8080").allows("0:0::1", 8080));
        assert!(host("::1").allows("::1", 443));
        assert!(!host("10.0.0.1").allows("10.0.0.2", 443));
    }

    #[test]
    fn malformed_patterns_are_refused_with_a_reason() {
        assert_eq!(reason(""), "empty");
        assert!(reason("https://api.example.com").contains("without a scheme"));
        assert!(reason("api.example.com/path").contains("no path"));
        assert!(reason("user@host").contains("user info"));
        assert!(reason("a b").contains("no path"));
        assert_eq!(reason("host:0"), "the port must be 1-65535 or *");
        assert_eq!(reason("host:+80"), "the port must be 1-65535 or *");
        assert_eq!(reason("host:70000"), "the port must be 1-65535 or *");
        assert!(reason("a.*.com").contains("wildcard"));
        assert!(reason("*x.com").contains("wildcard"));
        assert_eq!(reason("-a.com"), "not a valid host name");
        assert_eq!(reason("a..com"), "not a valid host name");
        assert_eq!(reason("[1.2.3.4]"), "brackets must hold an IPv6 address");
        assert_eq!(reason("[::1"), "unclosed '['");
        assert_eq!(reason("999.1.1.1"), "not a valid IP address or host name");
    }

    #[test]
    fn patterns_round_trip_through_their_text() {
        for p in [
            "api.example.com",
            "*.slack.com:443",
            "127.0.0.1:8080",
            "[::1]:*",
            "*",
        ] {
            assert_eq!(host(p).to_string(), p);
        }
        assert_eq!(host("API.example.COM.").to_string(), "api.example.com");
        let json = serde_json::to_value(host("*.x.com:8080")).unwrap();
        assert_eq!(json, json!("*.x.com:8080"));
        assert!(serde_json::from_value::<AllowedHost>(json!("http://x")).is_err());
    }

    #[test]
    fn within_compares_hosts_and_ports() {
        assert!(host("hooks.slack.com").within(&host("*.slack.com")));
        assert!(host("*.a.slack.com").within(&host("*.slack.com")));
        assert!(!host("*.slack.com").within(&host("hooks.slack.com")));
        assert!(!host("slack.com").within(&host("*.slack.com")));
        assert!(host("x.com:443").within(&host("x.com")));
        assert!(!host("x.com:8443").within(&host("x.com")));
        assert!(!host("x.com").within(&host("x.com:443")));
        assert!(!host("x.com:*").within(&host("x.com")));
        assert!(host("anything.example:22").within(&host("*:*")));
        assert!(!host("*").within(&host("*.x.com")));
        assert!(host("127.0.0.1:1").within(&host("127.0.0.1:*")));
    }

    fn ceiling() -> SandboxCeiling {
        SandboxCeiling {
            allowed_hosts: vec![host("*.slack.com"), host("api.example.com")],
            env: vec!["REGION".into()],
            dirs: vec![
                DirGrant {
                    host: "/srv/hooks".into(),
                    guest: "/data".into(),
                    write: false,
                },
                DirGrant {
                    host: "/srv/scratch".into(),
                    guest: "/tmp".into(),
                    write: true,
                },
            ],
            ..SandboxCeiling::default()
        }
    }

    fn dir(host: &str, write: bool) -> DirGrant {
        DirGrant {
            host: host.into(),
            guest: "/data".into(),
            write,
        }
    }

    #[test]
    fn check_names_each_capability_beyond_the_ceiling() {
        let caps = Capabilities {
            http: vec![
                "hooks.slack.com".into(),
                "evil.com".into(),
                "https://x".into(),
            ],
            env: vec!["REGION".into(), "SECRET".into()],
            dirs: vec![
                dir("/srv/hooks/a", false),
                dir("/srv/hooks/a", true),
                dir("/srv/hooksx", false),
                dir("/srv/scratch/b", true),
                dir("relative", false),
            ],
        };
        let limits = Limits {
            memory: Some(MAX_MEMORY + 1),
            timeout_ms: Some(10),
            fuel: None,
        };
        let err = check_lambda(
            UntrustedWasm::Sandbox,
            &ceiling(),
            &caps,
            &limits,
            as_written,
        )
        .unwrap_err();
        assert_eq!(
            err.fields(),
            json!({"config": {
                "capabilities": {
                    "http": {
                        "2": "host 'evil.com' is not within the sandbox ceiling (sandbox_allowed_hosts)",
                        "3": "invalid host pattern 'https://x': write host[:port] without a scheme: a pattern admits http and https alike"
                    },
                    "env": {"2": "environment variable 'SECRET' is not within the sandbox ceiling (sandbox_env)"},
                    "dirs": {
                        "2": "directory '/srv/hooks/a' may not be written: the sandbox ceiling grants it read-only (sandbox_dirs)",
                        "3": "directory '/srv/hooksx' is not within the sandbox ceiling (sandbox_dirs)",
                        "5": "the host path must be absolute, without '..'"
                    }
                },
                "limits": {"memory": format!("{} exceeds the server maximum {MAX_MEMORY}", MAX_MEMORY + 1)}
            }})
        );
        assert!(err.message().contains(
            "config.capabilities.http.2: host 'evil.com' is not within the sandbox ceiling (sandbox_allowed_hosts)"
        ));
    }

    #[test]
    fn mode_off_refuses_and_mode_on_has_no_ceiling() {
        let caps = Capabilities {
            http: vec!["evil.com".into()],
            env: vec!["SECRET".into()],
            dirs: vec![dir("/etc", true)],
        };
        let err = check_lambda(
            UntrustedWasm::Off,
            &ceiling(),
            &Capabilities::default(),
            &Limits::default(),
            as_written,
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "schema violation (handler: lambda hooks are disabled (untrusted_wasm = off))"
        );
        assert!(
            check_lambda(
                UntrustedWasm::On,
                &ceiling(),
                &caps,
                &Limits::default(),
                as_written
            )
            .is_ok()
        );
        let bad = Capabilities {
            http: vec!["a/b".into()],
            env: vec!["A=B".into()],
            dirs: vec![dir("/a/../b", false)],
        };
        let err = check_lambda(
            UntrustedWasm::On,
            &ceiling(),
            &bad,
            &Limits::default(),
            as_written,
        )
        .unwrap_err();
        assert_eq!(err.iter().count(), 3);
        let huge = Limits {
            timeout_ms: Some(MAX_TIMEOUT_MS + 1),
            ..Limits::default()
        };
        let err =
            check_lambda(UntrustedWasm::On, &ceiling(), &caps, &huge, as_written).unwrap_err();
        assert!(
            err.message()
                .contains("config.limits.timeout_ms: 60001 exceeds the server maximum 60000")
        );
    }

    #[test]
    fn hookds_own_secrets_are_refused_in_every_mode() {
        let secrets = ServerSecrets {
            data_dir: Some("/var/lib/hookd".into()),
            config_file: Some("/etc/hookd/hookd.toml".into()),
        };
        let names = ["HOOKD_ADMIN_TOKEN", "hookd_config", "HOOKDX"].map(String::from);
        // A ceiling that admits everything asked for, secrets included.
        let ceiling = SandboxCeiling {
            env: names.to_vec(),
            dirs: vec![dir("/", true)],
            secrets,
            ..ceiling()
        };
        let dirs = [
            "/var/lib/hookd",
            "/var/lib/hookd/compiled",
            "/var",
            "/etc/hookd",
            "/",
            "/etc/hookd/guests",
            "/var/lib/hookd-other",
            "/srv/link",
        ];
        let caps = Capabilities {
            http: Vec::new(),
            env: names.to_vec(),
            dirs: dirs.iter().map(|d| dir(d, false)).collect(),
        };
        let resolve = |p: &Path| match p.to_str() {
            Some("/srv/link") => PathBuf::from("/var/lib/hookd/compiled"),
            _ => p.to_path_buf(),
        };
        let data =
            "would expose hookd's data directory /var/lib/hookd, which is never granted to a guest";
        let config = "would expose hookd's configuration file /etc/hookd/hookd.toml, which is never granted to a guest";
        for mode in [UntrustedWasm::Sandbox, UntrustedWasm::On] {
            let err = check_lambda(mode, &ceiling, &caps, &Limits::default(), resolve).unwrap_err();
            assert_eq!(
                err.fields(),
                json!({"config": {"capabilities": {
                    "env": {
                        "1": "environment variable 'HOOKD_ADMIN_TOKEN' is hookd's own (HOOKD_*) and is never granted to a guest",
                        "2": "environment variable 'hookd_config' is hookd's own (HOOKD_*) and is never granted to a guest",
                    },
                    "dirs": {
                        "1": format!("directory '/var/lib/hookd' {data}"),
                        "2": format!("directory '/var/lib/hookd/compiled' {data}"),
                        "3": format!("directory '/var' {data}"),
                        "4": format!("directory '/etc/hookd' {config}"),
                        "5": format!("directory '/' {data}"),
                        "8": format!("directory '/srv/link' {data}"),
                    }
                }}}),
                "{mode}"
            );
            // What is not refused at create is not granted either: a hook
            // stored before the rule keeps none of it.
            let imports = [CapabilityClass::Environment, CapabilityClass::Filesystem];
            let grant = EffectiveGrant::new(mode, &ceiling, &caps, &Limits::default(), &imports);
            assert_eq!(grant.env, ["HOOKDX"]);
            let granted: Vec<&str> = grant.dirs.iter().map(|d| d.host.as_str()).collect();
            // The link is followed by the sandbox when it opens it.
            assert_eq!(
                granted,
                ["/etc/hookd/guests", "/var/lib/hookd-other", "/srv/link"]
            );
        }
    }

    #[test]
    fn limits_resolve_to_default_and_clamp_to_maximum() {
        let mut c = SandboxCeiling {
            fuel_metering: true,
            ..SandboxCeiling::default()
        };
        assert_eq!(c.resolve_limits(&Limits::default()), c.default_limits);
        let asked = Limits {
            memory: Some(1 << 20),
            timeout_ms: Some(MAX_TIMEOUT_MS * 2),
            fuel: Some(5),
        };
        assert_eq!(
            c.resolve_limits(&asked),
            ResolvedLimits {
                memory: 1 << 20,
                timeout_ms: MAX_TIMEOUT_MS,
                fuel: Some(5)
            }
        );
        c.max_limits.fuel = Some(100);
        assert_eq!(c.resolve_limits(&Limits::default()).fuel, Some(100));
        assert_eq!(
            c.resolve_limits(&Limits {
                fuel: Some(500),
                ..Limits::default()
            })
            .fuel,
            Some(100)
        );
    }

    #[test]
    fn fuel_needs_metering() {
        let asks_fuel = Limits {
            fuel: Some(5),
            ..Limits::default()
        };
        let off = SandboxCeiling::default();
        for mode in [UntrustedWasm::Sandbox, UntrustedWasm::On] {
            let err = check_lambda(mode, &off, &Capabilities::default(), &asks_fuel, as_written)
                .unwrap_err();
            assert_eq!(
                err.fields(),
                json!({"config": {"limits": {
                    "fuel": "fuel is not counted on this server (sandbox_fuel_metering = false)"
                }}})
            );
        }
        // A hook stored while metering was on runs unmetered once it is off.
        let with_max = SandboxCeiling {
            max_limits: ResolvedLimits {
                fuel: Some(100),
                ..off.max_limits
            },
            ..off.clone()
        };
        assert_eq!(with_max.resolve_limits(&asks_fuel).fuel, None);
        let on = SandboxCeiling {
            fuel_metering: true,
            ..off
        };
        assert!(
            check_lambda(
                UntrustedWasm::Sandbox,
                &on,
                &Capabilities::default(),
                &asks_fuel,
                as_written
            )
            .is_ok()
        );
        assert_eq!(on.resolve_limits(&asks_fuel).fuel, Some(5));
    }

    #[test]
    fn the_sandbox_defaults() {
        let c = SandboxCeiling::default();
        assert!(c.allowed_hosts.is_empty() && c.env.is_empty() && c.dirs.is_empty());
        assert_eq!(
            c.default_limits,
            ResolvedLimits {
                memory: 64 << 20,
                timeout_ms: 5_000,
                fuel: None
            }
        );
        assert_eq!(
            c.max_limits,
            ResolvedLimits {
                memory: 512 << 20,
                timeout_ms: 60_000,
                fuel: None
            }
        );
        assert!(!c.fuel_metering);
        assert_eq!(UntrustedWasm::default(), UntrustedWasm::Sandbox);
        let everything = [
            CapabilityClass::Http,
            CapabilityClass::Network,
            CapabilityClass::Filesystem,
            CapabilityClass::Environment,
            CapabilityClass::Clock,
            CapabilityClass::Random,
            CapabilityClass::Stdio,
            CapabilityClass::HookdHost,
        ];
        let g = EffectiveGrant::new(
            UntrustedWasm::Sandbox,
            &c,
            &Capabilities::default(),
            &Limits::default(),
            &everything,
        );
        assert!(g.http.is_empty() && g.env.is_empty() && g.dirs.is_empty());
        assert_eq!(
            g.usable,
            [
                CapabilityClass::Clock,
                CapabilityClass::Random,
                CapabilityClass::Stdio,
                CapabilityClass::HookdHost
            ]
        );
    }

    #[test]
    fn mode_parses_and_serialises_lowercase() {
        assert_eq!("on".parse::<UntrustedWasm>(), Ok(UntrustedWasm::On));
        assert!("ON".parse::<UntrustedWasm>().is_err());
        assert_eq!(
            serde_json::to_value(UntrustedWasm::Off).unwrap(),
            json!("off")
        );
    }

    #[test]
    fn effective_grant_intersects_request_ceiling_and_imports() {
        let caps = Capabilities {
            http: vec!["hooks.slack.com".into(), "evil.com".into()],
            env: vec!["REGION".into()],
            dirs: vec![dir("/srv/hooks/a", false)],
        };
        let imports = [
            CapabilityClass::Environment,
            CapabilityClass::Network,
            CapabilityClass::Stdio,
        ];
        let g = EffectiveGrant::new(
            UntrustedWasm::Sandbox,
            &ceiling(),
            &caps,
            &Limits::default(),
            &imports,
        );
        assert!(g.http.is_empty());
        assert_eq!(g.env, ["REGION"]);
        assert!(g.dirs.is_empty());
        assert_eq!(
            g.usable,
            [CapabilityClass::Environment, CapabilityClass::Stdio]
        );
        let why = |item: &str| {
            g.withheld
                .iter()
                .find(|w| w.item.as_deref() == Some(item))
                .map(|w| w.reason.as_str())
        };
        assert_eq!(
            why("hooks.slack.com"),
            Some("moot: the guest does not import wasi:http")
        );
        assert_eq!(
            why("evil.com"),
            Some("not within the sandbox ceiling (sandbox_allowed_hosts)")
        );
        assert_eq!(
            why("/srv/hooks/a"),
            Some("moot: the guest does not import a filesystem interface")
        );
        assert!(
            g.withheld
                .iter()
                .any(|w| w.capability == CapabilityClass::Network && w.item.is_none())
        );

        let with_http = [CapabilityClass::Http];
        let on = EffectiveGrant::new(
            UntrustedWasm::On,
            &ceiling(),
            &caps,
            &Limits::default(),
            &with_http,
        );
        assert_eq!(on.http, [host("hooks.slack.com"), host("evil.com")]);
        let off = EffectiveGrant::new(
            UntrustedWasm::Off,
            &ceiling(),
            &caps,
            &Limits::default(),
            &with_http,
        );
        assert!(off.http.is_empty() && off.usable.is_empty());
        assert!(off.withheld.iter().all(|w| w.reason == DISABLED));
    }
}
