//! What a guest can reach, named by capability class, and the record of
//! each decision the sandbox takes on its behalf.
//!
//! At upload the guest's imports are classed ([`CapabilityClass::of_import`])
//! and stored with it; at run time every checked decision (an HTTP request
//! to a host, an address dialled, a socket address) becomes an
//! [`AuditRecord`].

use crate::UnixMillis;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// A kind of thing a guest may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapabilityClass {
    /// Outbound HTTP through `wasi:http`.
    Http,
    /// Raw sockets and name lookup (`wasi:sockets`, preview-1 `sock_*`).
    Network,
    /// Files and directories.
    Filesystem,
    /// Environment variables and arguments.
    Environment,
    /// Wall and monotonic clocks.
    Clock,
    /// Random numbers.
    Random,
    /// Standard input, output and error, and terminals.
    Stdio,
    /// What hookd itself offers (`hookd:lambda/*`: the `log` import).
    HookdHost,
}

impl CapabilityClass {
    /// Every class, in the order audits list them.
    pub const ALL: [CapabilityClass; 8] = [
        CapabilityClass::Http,
        CapabilityClass::Network,
        CapabilityClass::Filesystem,
        CapabilityClass::Environment,
        CapabilityClass::Clock,
        CapabilityClass::Random,
        CapabilityClass::Stdio,
        CapabilityClass::HookdHost,
    ];

    /// Its name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            CapabilityClass::Http => "http",
            CapabilityClass::Network => "network",
            CapabilityClass::Filesystem => "filesystem",
            CapabilityClass::Environment => "environment",
            CapabilityClass::Clock => "clock",
            CapabilityClass::Random => "random",
            CapabilityClass::Stdio => "stdio",
            CapabilityClass::HookdHost => "hookd-host",
        }
    }

    /// The class of one import: a component interface
    /// (`wasi:http/outgoing-handler@0.2.12`) or a preview-1 function
    /// (`wasi_snapshot_preview1::fd_read`).
    ///
    /// `None` for imports that reach nothing by themselves and for names
    /// that are not known: `wasi:io/*` streams and polls only carry what
    /// another interface opened, `wasi:cli/exit` and `proc_exit` end the
    /// guest, `sched_yield` yields. Preview-1 `fd_read`, `fd_write`,
    /// `fd_close`, `fd_seek` and `fd_fdstat_get` count as stdio: a file
    /// descriptor beyond stdio comes only from `path_open` on a preopen,
    /// which counts as filesystem.
    pub fn of_import(name: &str) -> Option<CapabilityClass> {
        if let Some(func) = name.strip_prefix("wasi_snapshot_preview1::") {
            return of_preview1(func);
        }
        let name = name.split('@').next().unwrap_or(name);
        let (package, interface) = name.split_once('/').unwrap_or((name, ""));
        match package {
            "wasi:http" => Some(CapabilityClass::Http),
            "wasi:sockets" => Some(CapabilityClass::Network),
            "wasi:filesystem" => Some(CapabilityClass::Filesystem),
            "wasi:clocks" => Some(CapabilityClass::Clock),
            "wasi:random" => Some(CapabilityClass::Random),
            "hookd:lambda" => Some(CapabilityClass::HookdHost),
            "wasi:cli" => match interface {
                "environment" => Some(CapabilityClass::Environment),
                "stdin" | "stdout" | "stderr" => Some(CapabilityClass::Stdio),
                i if i.starts_with("terminal-") => Some(CapabilityClass::Stdio),
                _ => None,
            },
            _ => None,
        }
    }
}

fn of_preview1(func: &str) -> Option<CapabilityClass> {
    match func {
        "fd_read" | "fd_write" | "fd_close" | "fd_seek" | "fd_fdstat_get" => {
            Some(CapabilityClass::Stdio)
        }
        "environ_get" | "environ_sizes_get" | "args_get" | "args_sizes_get" => {
            Some(CapabilityClass::Environment)
        }
        // poll_oneoff is how a preview-1 guest sleeps: on a clock.
        "clock_time_get" | "clock_res_get" | "poll_oneoff" => Some(CapabilityClass::Clock),
        "random_get" => Some(CapabilityClass::Random),
        f if f.starts_with("sock_") => Some(CapabilityClass::Network),
        f if f.starts_with("path_") || f.starts_with("fd_") => Some(CapabilityClass::Filesystem),
        _ => None,
    }
}

impl fmt::Display for CapabilityClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which guest a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestRef {
    /// The name it was uploaded under.
    pub name: String,
    /// sha256 of its bytes, hex.
    pub digest: String,
}

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The guest got it.
    Allowed,
    /// The guest was refused (it saw an error it can handle).
    Denied,
}

/// One checked decision taken for a guest at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When, unix milliseconds.
    pub at_ms: UnixMillis,
    /// The hook whose chain ran the guest.
    pub hook_id: Uuid,
    /// The guest.
    pub guest: GuestRef,
    /// What it tried to use.
    pub capability: CapabilityClass,
    /// What it tried to reach: `host:port` for HTTP, `ip:port` for an
    /// address.
    pub target: String,
    /// The decision.
    pub verdict: Verdict,
    /// Why, when there is more to say than the verdict.
    pub reason: Option<String>,
    /// How many times the call met this decision: the same hook, guest,
    /// capability, target and verdict within one call make one record,
    /// stamped with the first time. Records stored before decisions were
    /// counted read as 1.
    #[serde(default = "one")]
    pub count: u64,
}

fn one() -> u64 {
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use CapabilityClass::*;

    #[test]
    fn every_class_is_listed_once_by_its_serialised_name() {
        for class in CapabilityClass::ALL {
            assert_eq!(serde_json::to_value(class).unwrap(), class.as_str());
        }
        let mut sorted = CapabilityClass::ALL.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), CapabilityClass::ALL.len());
    }

    #[test]
    fn component_interfaces_are_classed() {
        let cases = [
            ("wasi:http/outgoing-handler@0.2.12", Some(Http)),
            ("wasi:http/types@0.2.0", Some(Http)),
            ("wasi:sockets/tcp@0.2.12", Some(Network)),
            ("wasi:sockets/ip-name-lookup@0.2.12", Some(Network)),
            ("wasi:filesystem/preopens@0.2.12", Some(Filesystem)),
            ("wasi:cli/environment@0.2.12", Some(Environment)),
            ("wasi:clocks/monotonic-clock@0.2.12", Some(Clock)),
            ("wasi:random/insecure-seed@0.2.12", Some(Random)),
            ("wasi:cli/stdout@0.2.12", Some(Stdio)),
            ("wasi:cli/stdin", Some(Stdio)),
            ("wasi:cli/terminal-stderr@0.2.12", Some(Stdio)),
            ("hookd:lambda/host@0.1.0", Some(HookdHost)),
            ("wasi:io/streams@0.2.12", None),
            ("wasi:cli/exit@0.2.12", None),
            ("wasi:keyvalue/store@0.2.0", None),
        ];
        for (name, class) in cases {
            assert_eq!(CapabilityClass::of_import(name), class, "{name}");
        }
    }

    #[test]
    fn preview1_functions_are_classed() {
        let p1 = |f: &str| CapabilityClass::of_import(&format!("wasi_snapshot_preview1::{f}"));
        assert_eq!(p1("fd_write"), Some(Stdio));
        assert_eq!(p1("fd_read"), Some(Stdio));
        assert_eq!(p1("path_open"), Some(Filesystem));
        assert_eq!(p1("fd_prestat_get"), Some(Filesystem));
        assert_eq!(p1("fd_readdir"), Some(Filesystem));
        assert_eq!(p1("environ_get"), Some(Environment));
        assert_eq!(p1("args_sizes_get"), Some(Environment));
        assert_eq!(p1("clock_time_get"), Some(Clock));
        assert_eq!(p1("poll_oneoff"), Some(Clock));
        assert_eq!(p1("random_get"), Some(Random));
        assert_eq!(p1("sock_accept"), Some(Network));
        assert_eq!(p1("proc_exit"), None);
        assert_eq!(p1("sched_yield"), None);
        assert_eq!(CapabilityClass::of_import("env::fd_write"), None);
    }

    #[test]
    fn classes_and_records_serialise_as_documented() {
        assert_eq!(serde_json::to_value(HookdHost).unwrap(), "hookd-host");
        let record = AuditRecord {
            at_ms: 1,
            hook_id: Uuid::nil(),
            guest: GuestRef {
                name: "g".into(),
                digest: "ab".into(),
            },
            capability: Http,
            target: "evil.com:443".into(),
            verdict: Verdict::Denied,
            reason: Some("not granted".into()),
            count: 3,
        };
        let mut json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["capability"], "http");
        assert_eq!(json["verdict"], "denied");
        assert_eq!(json["count"], 3);
        assert_eq!(
            serde_json::from_value::<AuditRecord>(json.clone()).unwrap(),
            record
        );
        json.as_object_mut().unwrap().remove("count");
        assert_eq!(
            serde_json::from_value::<AuditRecord>(json).unwrap().count,
            1
        );
    }
}
