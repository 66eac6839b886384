//! The save-time check of a lambda hook: the refusals of the one decision
//! that also makes the effective grant, and the limits.

use super::grant::{Ask, DISABLED, Decision};
use super::{Capabilities, Limits, SandboxCeiling, UntrustedWasm};
use crate::violation::Violations;
use std::path::{Path, PathBuf};

/// Checks a lambda hook's request against the mode and the ceiling, naming
/// each capability that does not fit under `config`, e.g.
/// `config.capabilities.http.1: host 'evil.com' is not within the sandbox
/// ceiling (sandbox_allowed_hosts)`. Mode `off` refuses every lambda hook
/// at `handler`; mode `on` has no ceiling, but malformed requests, limits
/// above the maxima and hookd's own secrets
/// ([`ServerSecrets`](super::ServerSecrets)) are refused in every mode.
/// `resolve` gives the real path of a requested directory (symlinks
/// followed; this crate does no I/O), so that a link cannot lead to the
/// secrets.
///
/// What is refused here is what the [`EffectiveGrant`](super::EffectiveGrant)
/// of the same request withholds, bar what a guest's imports make moot:
/// one decision, so that the two cannot disagree.
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
    let ask = Ask {
        mode,
        ceiling,
        caps,
        imports: None,
        resolve: &resolve,
        any_item: false,
    };
    let mut v = Violations::new();
    for refusal in Decision::new(&ask, limits).refused {
        if let Some((path, message)) = refusal.violation() {
            v.push(path, message);
        }
    }
    limits.check(ceiling, &mut v);
    v.into_result(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::CapabilityClass;
    use crate::capability::testing::{as_written, ceiling, dir};
    use crate::capability::{
        CeilingItems, EffectiveGrant, MAX_MEMORY, MAX_TIMEOUT_MS, ResolvedLimits, ServerSecrets,
    };
    use serde_json::json;

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
            items: CeilingItems {
                env: names.to_vec(),
                dirs: vec![dir("/", true)],
                ..ceiling().items
            },
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
            assert_eq!(grant.items.env, ["HOOKDX"]);
            let granted: Vec<&str> = grant.items.dirs.iter().map(|d| d.host.as_str()).collect();
            // The link is followed by the sandbox when it opens it.
            assert_eq!(
                granted,
                ["/etc/hookd/guests", "/var/lib/hookd-other", "/srv/link"]
            );
        }
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
}
