//! An upstream's `healthchecks.active`, read into what the probes follow.
//!
//! Upstreams written through the Admin API carry every field with Kong's
//! defaults; anything missing or null still gets the same default here, so
//! an upstream stored some other way is checked the way Kong would.

use crate::Error;
use crate::counter::{Health, Thresholds};
use serde_json::Value;
use std::time::Duration;

/// Kong's `healthchecks.active.timeout` default, in seconds.
const DEFAULT_TIMEOUT_S: f64 = 1.0;
/// Kong's `healthchecks.active.concurrency` default.
const DEFAULT_CONCURRENCY: u64 = 10;
/// Kong's `healthchecks.active.healthy.http_statuses` default.
const DEFAULT_HEALTHY_STATUSES: &[u32] = &[200, 302];
/// Kong's `healthchecks.active.unhealthy.http_statuses` default.
const DEFAULT_UNHEALTHY_STATUSES: &[u32] = &[429, 404, 500, 501, 502, 503, 504, 505];

/// What a probe does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    /// Connect, then close.
    Tcp,
    /// `GET http_path` in plain text.
    Http,
    /// `GET http_path` over TLS.
    Https,
}

/// The active checks of one upstream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActiveChecks {
    /// `type`.
    pub(crate) kind: ProbeKind,
    /// `timeout`: the bound on each step of a probe.
    pub(crate) timeout: Duration,
    /// `concurrency`: probes of this upstream in flight at once.
    pub(crate) concurrency: usize,
    /// `http_path`.
    pub(crate) http_path: String,
    /// `https_sni`: the name sent and verified instead of the target's host.
    pub(crate) https_sni: Option<String>,
    /// `https_verify_certificate`.
    pub(crate) verify_certificate: bool,
    /// `headers`, one entry per value, sorted by name.
    pub(crate) headers: Vec<(String, String)>,
    /// The upstream's `host_header`: the `Host` sent instead of the target's host.
    pub(crate) host_header: Option<String>,
    /// `healthy.interval`; none when 0.
    pub(crate) healthy_interval: Option<Duration>,
    /// `unhealthy.interval`; none when 0.
    pub(crate) unhealthy_interval: Option<Duration>,
    /// `healthy.http_statuses`.
    pub(crate) healthy_statuses: Vec<u32>,
    /// `unhealthy.http_statuses`.
    pub(crate) unhealthy_statuses: Vec<u32>,
    /// `healthy.successes` and the `unhealthy` failure counts.
    pub(crate) thresholds: Thresholds,
}

impl ActiveChecks {
    /// The active checks of an upstream entity: none when both intervals
    /// are 0 (Kong's "active checks off"), an error when they are on but
    /// cannot be followed.
    pub(crate) fn of_upstream(upstream: &Value) -> Result<Option<Self>, Error> {
        let active = Fields(
            upstream
                .get("healthchecks")
                .and_then(|h| h.get("active"))
                .unwrap_or(&Value::Null),
        );
        let healthy_interval = active.interval("healthy", "healthy.interval")?;
        let unhealthy_interval = active.interval("unhealthy", "unhealthy.interval")?;
        if healthy_interval.is_none() && unhealthy_interval.is_none() {
            return Ok(None);
        }
        let kind = match active.string(&["type"], "type")?.unwrap_or("http") {
            "tcp" => ProbeKind::Tcp,
            "http" => ProbeKind::Http,
            "https" => ProbeKind::Https,
            // lua-resty-healthcheck accepts only the three above.
            kind @ ("grpc" | "grpcs") => {
                return Err(Error::UnsupportedProbe {
                    kind: kind.to_string(),
                });
            }
            other => return Err(invalid("type", format!("unknown type '{other}'"))),
        };
        let timeout_s = active
            .number(&["timeout"], "timeout")?
            .unwrap_or(DEFAULT_TIMEOUT_S);
        let timeout = Duration::try_from_secs_f64(timeout_s)
            .map_err(|_| invalid("timeout", format!("{timeout_s} is not a duration")))?;
        let concurrency = active
            .integer(&["concurrency"], "concurrency")?
            .unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            return Err(invalid("concurrency", "must be at least 1".into()));
        }
        let http_path = active
            .string(&["http_path"], "http_path")?
            .unwrap_or("/")
            .to_string();
        if !http_path.starts_with('/') || !http_path.bytes().all(|b| b.is_ascii_graphic()) {
            // It goes verbatim into the request line.
            return Err(invalid(
                "http_path",
                "must start with / and hold no spaces or control characters".into(),
            ));
        }
        Ok(Some(ActiveChecks {
            kind,
            timeout,
            concurrency: usize::try_from(concurrency)
                .unwrap_or(usize::MAX)
                .min(tokio::sync::Semaphore::MAX_PERMITS),
            http_path,
            https_sni: active
                .string(&["https_sni"], "https_sni")?
                .map(str::to_string),
            verify_certificate: active
                .boolean(&["https_verify_certificate"], "https_verify_certificate")?
                .unwrap_or(true),
            headers: active.headers()?,
            host_header: upstream
                .get("host_header")
                .and_then(Value::as_str)
                .map(str::to_string),
            healthy_interval,
            unhealthy_interval,
            healthy_statuses: active
                .statuses(&["healthy", "http_statuses"], "healthy.http_statuses")?
                .unwrap_or_else(|| DEFAULT_HEALTHY_STATUSES.to_vec()),
            unhealthy_statuses: active
                .statuses(&["unhealthy", "http_statuses"], "unhealthy.http_statuses")?
                .unwrap_or_else(|| DEFAULT_UNHEALTHY_STATUSES.to_vec()),
            thresholds: Thresholds {
                successes: active.count(&["healthy", "successes"], "healthy.successes")?,
                http_failures: active
                    .count(&["unhealthy", "http_failures"], "unhealthy.http_failures")?,
                tcp_failures: active
                    .count(&["unhealthy", "tcp_failures"], "unhealthy.tcp_failures")?,
                timeouts: active.count(&["unhealthy", "timeouts"], "unhealthy.timeouts")?,
            },
        }))
    }

    /// How long after a probe an address of this health is probed again;
    /// none when it is not.
    pub(crate) fn interval(&self, health: Health) -> Option<Duration> {
        match health {
            Health::Healthy => self.healthy_interval,
            Health::Unhealthy => self.unhealthy_interval,
        }
    }
}

fn invalid(field: &'static str, reason: String) -> Error {
    Error::InvalidChecks { field, reason }
}

/// Typed reads below `healthchecks.active`; missing and null read as none.
struct Fields<'a>(&'a Value);

impl<'a> Fields<'a> {
    fn get(&self, path: &[&str]) -> Option<&'a Value> {
        let mut v = self.0;
        for key in path {
            v = v.get(key)?;
        }
        (!v.is_null()).then_some(v)
    }

    /// The value at `path` read by `read`, none when missing; a value
    /// `read` refuses is `expected` (e.g. "a boolean") in the error.
    fn typed<T>(
        &self,
        path: &[&str],
        field: &'static str,
        expected: &str,
        read: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        let Some(v) = self.get(path) else {
            return Ok(None);
        };
        read(v)
            .map(Some)
            .ok_or_else(|| invalid(field, format!("expected {expected}, got {v}")))
    }

    fn number(&self, path: &[&str], field: &'static str) -> Result<Option<f64>, Error> {
        self.typed(path, field, "a number >= 0", |v| {
            v.as_f64().filter(|n| n.is_finite() && *n >= 0.0)
        })
    }

    fn integer(&self, path: &[&str], field: &'static str) -> Result<Option<u64>, Error> {
        self.typed(path, field, "an integer >= 0", Value::as_u64)
    }

    fn count(&self, path: &[&str], field: &'static str) -> Result<u32, Error> {
        let n = self.integer(path, field)?.unwrap_or(0);
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn string(&self, path: &[&str], field: &'static str) -> Result<Option<&'a str>, Error> {
        self.typed(path, field, "a string", Value::as_str)
    }

    fn boolean(&self, path: &[&str], field: &'static str) -> Result<Option<bool>, Error> {
        self.typed(path, field, "a boolean", Value::as_bool)
    }

    fn interval(&self, state: &str, field: &'static str) -> Result<Option<Duration>, Error> {
        let Some(seconds) = self.number(&[state, "interval"], field)? else {
            return Ok(None);
        };
        if seconds == 0.0 {
            return Ok(None);
        }
        Duration::try_from_secs_f64(seconds)
            .map(Some)
            .map_err(|_| invalid(field, format!("{seconds} is not a duration")))
    }

    fn statuses(&self, path: &[&str], field: &'static str) -> Result<Option<Vec<u32>>, Error> {
        let Some(v) = self.get(path) else {
            return Ok(None);
        };
        let items = v
            .as_array()
            .ok_or_else(|| invalid(field, format!("expected an array, got {v}")))?;
        items
            .iter()
            .map(|s| {
                s.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| invalid(field, format!("expected a status code, got {s}")))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Kong's `{"name": ["value", ...]}`; a bare string stands for one value.
    fn headers(&self) -> Result<Vec<(String, String)>, Error> {
        let Some(v) = self.get(&["headers"]) else {
            return Ok(Vec::new());
        };
        let map = v
            .as_object()
            .ok_or_else(|| invalid("headers", format!("expected an object, got {v}")))?;
        let mut headers = Vec::new();
        for (name, values) in map {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(invalid("headers", format!("invalid header name '{name}'")));
            }
            let values: Vec<&Value> = match values {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for value in values {
                let value = value.as_str().ok_or_else(|| {
                    invalid("headers", format!("header '{name}': expected strings"))
                })?;
                // Both go verbatim into the request head.
                if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                    return Err(invalid(
                        "headers",
                        format!("header '{name}': line breaks are not allowed"),
                    ));
                }
                headers.push((name.clone(), value.to_string()));
            }
        }
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(headers)
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn checks(active: Value) -> Result<Option<ActiveChecks>, Error> {
        ActiveChecks::of_upstream(&json!({"name": "up", "healthchecks": {"active": active}}))
    }

    #[test]
    fn off_unless_an_interval_is_set() {
        assert!(matches!(
            ActiveChecks::of_upstream(&json!({"name": "up"})),
            Ok(None)
        ));
        assert!(matches!(
            checks(json!({"healthy": {"interval": 0}, "unhealthy": {"interval": 0}})),
            Ok(None)
        ));
        // Off whatever the type: an unsupported type is no reason to warn then.
        assert!(matches!(checks(json!({"type": "grpc"})), Ok(None)));
    }

    #[test]
    fn kongs_defaults_fill_what_is_missing() {
        let c = checks(json!({"healthy": {"interval": 5}}))
            .unwrap()
            .unwrap();
        assert_eq!(c.kind, ProbeKind::Http);
        assert_eq!(c.timeout, Duration::from_secs(1));
        assert_eq!(c.concurrency, 10);
        assert_eq!(c.http_path, "/");
        assert!(c.verify_certificate);
        assert_eq!(c.healthy_statuses, [200, 302]);
        assert_eq!(
            c.unhealthy_statuses,
            [429, 404, 500, 501, 502, 503, 504, 505]
        );
        assert_eq!(c.thresholds, Thresholds::default());
        assert_eq!(c.interval(Health::Healthy), Some(Duration::from_secs(5)));
        assert_eq!(c.interval(Health::Unhealthy), None);
    }

    #[test]
    fn reads_every_field() {
        let upstream = json!({
            "name": "up",
            "host_header": "api.internal",
            "healthchecks": {"active": {
                "type": "https", "timeout": 0.5, "concurrency": 2,
                "http_path": "/status", "https_sni": "sni.example",
                "https_verify_certificate": false,
                "headers": {"X-B": ["2", "3"], "X-A": "1"},
                "healthy": {"interval": 0.25, "http_statuses": [200], "successes": 2},
                "unhealthy": {"interval": 1, "http_statuses": [500], "tcp_failures": 3,
                              "timeouts": 4, "http_failures": 5}
            }}
        });
        let c = ActiveChecks::of_upstream(&upstream).unwrap().unwrap();
        assert_eq!(c.kind, ProbeKind::Https);
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.concurrency, 2);
        assert_eq!(c.http_path, "/status");
        assert_eq!(c.https_sni.as_deref(), Some("sni.example"));
        assert!(!c.verify_certificate);
        assert_eq!(
            c.headers,
            [
                ("X-A".to_string(), "1".to_string()),
                ("X-B".to_string(), "2".to_string()),
                ("X-B".to_string(), "3".to_string())
            ]
        );
        assert_eq!(c.host_header.as_deref(), Some("api.internal"));
        assert_eq!(c.healthy_interval, Some(Duration::from_millis(250)));
        assert_eq!(c.unhealthy_interval, Some(Duration::from_secs(1)));
        assert_eq!(c.healthy_statuses, [200]);
        assert_eq!(c.unhealthy_statuses, [500]);
        assert_eq!(
            c.thresholds,
            Thresholds {
                successes: 2,
                http_failures: 5,
                tcp_failures: 3,
                timeouts: 4
            }
        );
    }

    #[test]
    fn grpc_is_unsupported() {
        let err = checks(json!({"type": "grpcs", "healthy": {"interval": 1}})).unwrap_err();
        assert!(matches!(err, Error::UnsupportedProbe { kind } if kind == "grpcs"));
    }

    #[test]
    fn refuses_what_would_break_the_request_head() {
        let on = |extra: Value| {
            let mut active = json!({"healthy": {"interval": 1}});
            active
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            checks(active)
        };
        for bad in [
            json!({"http_path": "/a b"}),
            json!({"http_path": "/a\r\nX-Injected: 1"}),
            json!({"http_path": "status"}),
            json!({"headers": {"X-A": ["1\r\nX-Injected: 1"]}}),
            json!({"headers": {"Bad Name": ["1"]}}),
            json!({"headers": {"X-A": [1]}}),
            json!({"timeout": -1}),
            json!({"concurrency": 0}),
            json!({"type": "udp"}),
            json!({"healthy": {"interval": "often"}}),
            json!({"unhealthy": {"http_statuses": ["500"]}}),
        ] {
            assert!(
                matches!(on(bad.clone()), Err(Error::InvalidChecks { .. })),
                "{bad} was accepted"
            );
        }
    }
}
