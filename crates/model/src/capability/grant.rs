//! What one guest of a hook actually gets, decided once for every kind:
//! the effective grant, and the refusals that both its withheld list and
//! the save-time check ([`check_lambda`](super::check_lambda)) are made of.

use super::KINDS;
use super::{Capabilities, GrantedItems, Limits, SandboxCeiling, UntrustedWasm};
use crate::audit::CapabilityClass;
use crate::violation::PathSeg;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use super::ResolvedLimits;

pub(crate) const DISABLED: &str = "lambda hooks are disabled (untrusted_wasm = off)";

const NO_SOCKETS: &str = "raw sockets and name lookup are never granted: use wasi:http";

/// What one guest of a hook actually gets: mode ∩ ceiling ∩ request ∩ the
/// guest's imports. It is what `GET /event-hooks/{id}/capabilities` shows,
/// and what the sandbox enforces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveGrant {
    /// The server's mode when it was computed.
    pub mode: UntrustedWasm,
    /// The items of each kind the guest gets: `http`, `env`, `dirs`.
    #[serde(flatten)]
    pub items: GrantedItems,
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
    /// Directories are judged on their paths as written; the sandbox
    /// checks their real paths when it opens them.
    pub fn new(
        mode: UntrustedWasm,
        ceiling: &SandboxCeiling,
        caps: &Capabilities,
        limits: &Limits,
        imports: &[CapabilityClass],
    ) -> Self {
        let ask = Ask {
            mode,
            ceiling,
            caps,
            imports: Some(imports),
            resolve: &Path::to_path_buf,
            any_item: false,
        };
        Decision::new(&ask, limits).grant
    }

    /// What a guest importing `imports` would get for a hook that asked
    /// for everything it may: in `sandbox` mode every item of the ceiling;
    /// in `on` mode, which has no ceiling, any item of every kind, so that
    /// each class the guest imports is usable (raw sockets aside). The
    /// static audit of a guest is this grant.
    pub fn widest(
        mode: UntrustedWasm,
        ceiling: &SandboxCeiling,
        imports: &[CapabilityClass],
    ) -> Self {
        let any_item = mode == UntrustedWasm::On;
        let mut caps = Capabilities::default();
        if !any_item {
            for kind in KINDS {
                kind.ask_for_ceiling(ceiling, &mut caps);
            }
        }
        let ask = Ask {
            mode,
            ceiling,
            caps: &caps,
            imports: Some(imports),
            resolve: &Path::to_path_buf,
            any_item,
        };
        Decision::new(&ask, &Limits::default()).grant
    }
}

/// What is decided about: a hook's request under a mode and a ceiling.
pub(crate) struct Ask<'a> {
    pub mode: UntrustedWasm,
    pub ceiling: &'a SandboxCeiling,
    pub caps: &'a Capabilities,
    /// The guest's imported classes; `None` at save, where the guests are
    /// not known yet (a chain has several, and they can be replaced), so
    /// that no item is moot.
    pub imports: Option<&'a [CapabilityClass]>,
    /// The real path of a requested directory.
    pub resolve: &'a dyn Fn(&Path) -> PathBuf,
    /// Whether the request stands for any item of every kind (the audit of
    /// `on` mode), rather than for its items alone.
    pub any_item: bool,
}

/// Why a requested item is withheld.
pub(crate) enum Reason {
    /// Mode `off`.
    Disabled,
    /// The item cannot be read; the whole message.
    Malformed(String),
    /// It would expose hookd's own; the whole message.
    Secret(String),
    /// The ceiling does not admit it: its configuration key, and how the
    /// save-time check says so.
    Beyond {
        ceiling_key: &'static str,
        refusal: String,
    },
    /// The guest does not import what would use it.
    Moot { import: &'static str },
    /// It could not be used anyway; the whole message.
    Unusable(String),
}

/// One requested item that is withheld, and where it was asked for.
pub(crate) struct Refusal {
    pub class: CapabilityClass,
    /// Its kind's member of `config.capabilities`.
    pub key: &'static str,
    /// What its kind calls an item.
    pub noun: &'static str,
    /// Its place in the request.
    pub index: usize,
    /// The item as written.
    pub item: String,
    pub reason: Reason,
}

impl Refusal {
    fn withheld(&self) -> Withheld {
        let reason = match &self.reason {
            Reason::Disabled => DISABLED.to_string(),
            Reason::Malformed(message) | Reason::Secret(message) | Reason::Unusable(message) => {
                message.clone()
            }
            Reason::Beyond { ceiling_key, .. } => {
                format!("not within the sandbox ceiling ({ceiling_key})")
            }
            Reason::Moot { import } => format!("moot: the guest does not import {import}"),
        };
        Withheld {
            capability: self.class,
            item: Some(self.item.clone()),
            reason,
        }
    }

    /// Where in a hook the item is, and why it is refused at save; `None`
    /// when it is no fault of the hook's (the guest does not use it), or
    /// when the whole hook is refused (mode `off`).
    pub fn violation(&self) -> Option<(Vec<PathSeg>, String)> {
        let message = match &self.reason {
            Reason::Disabled | Reason::Moot { .. } | Reason::Unusable(_) => return None,
            Reason::Malformed(message) | Reason::Secret(message) => message.clone(),
            Reason::Beyond { refusal, .. } => format!("{} '{}' {refusal}", self.noun, self.item),
        };
        let path = ["config", "capabilities", self.key]
            .map(|k| PathSeg::Key(k.to_string()))
            .into_iter()
            .chain([PathSeg::Index(self.index)])
            .collect();
        Some((path, message))
    }
}

/// The grant and the refusals it was made with.
pub(crate) struct Decision {
    pub grant: EffectiveGrant,
    pub refused: Vec<Refusal>,
}

impl Decision {
    pub fn new(ask: &Ask<'_>, limits: &Limits) -> Self {
        let mut grant = EffectiveGrant {
            mode: ask.mode,
            items: GrantedItems::default(),
            limits: ask.ceiling.resolve_limits(limits),
            usable: Vec::new(),
            withheld: Vec::new(),
        };
        let mut refused = Vec::new();
        for kind in KINDS {
            kind.decide(ask, &mut grant.items, &mut refused);
        }
        grant.withheld = refused.iter().map(Refusal::withheld).collect();
        let mut classes = ask.imports.unwrap_or_default().to_vec();
        classes.sort();
        classes.dedup();
        for class in classes {
            let unusable = match class {
                _ if ask.mode == UntrustedWasm::Off => Some(DISABLED),
                CapabilityClass::Network => Some(NO_SOCKETS),
                _ if ask.any_item => None,
                _ => KINDS
                    .iter()
                    .filter(|kind| kind.class() == class)
                    .find_map(|kind| kind.none_granted(&grant.items)),
            };
            match unusable {
                Some(reason) => grant.withheld.push(Withheld {
                    capability: class,
                    item: None,
                    reason: reason.to_string(),
                }),
                None => grant.usable.push(class),
            }
        }
        Decision { grant, refused }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::testing::{ceiling, dir, host};

    #[test]
    fn the_default_ceiling_grants_only_what_is_always_there() {
        let c = SandboxCeiling::default();
        let everything = CapabilityClass::ALL;
        let g = EffectiveGrant::new(
            UntrustedWasm::Sandbox,
            &c,
            &Capabilities::default(),
            &Limits::default(),
            &everything,
        );
        assert_eq!(g.items, GrantedItems::default());
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
        assert!(g.items.http.is_empty());
        assert_eq!(g.items.env, ["REGION"]);
        assert!(g.items.dirs.is_empty());
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
        assert_eq!(on.items.http, [host("hooks.slack.com"), host("evil.com")]);
        let off = EffectiveGrant::new(
            UntrustedWasm::Off,
            &ceiling(),
            &caps,
            &Limits::default(),
            &with_http,
        );
        assert!(off.items.http.is_empty() && off.usable.is_empty());
        assert!(off.withheld.iter().all(|w| w.reason == DISABLED));
    }

    #[test]
    fn a_host_the_outbound_policy_refuses_is_withheld_but_not_refused_at_save() {
        let caps = Capabilities {
            http: vec!["127.0.0.1:8080".into(), "api.example.com".into()],
            ..Capabilities::default()
        };
        let imports = [CapabilityClass::Http];
        let grant = |ceiling: &SandboxCeiling| {
            EffectiveGrant::new(
                UntrustedWasm::On,
                ceiling,
                &caps,
                &Limits::default(),
                &imports,
            )
        };
        let refusing = SandboxCeiling::default();
        let g = grant(&refusing);
        assert_eq!(g.items.http, [host("api.example.com")]);
        assert_eq!(
            g.withheld,
            [Withheld {
                capability: CapabilityClass::Http,
                item: Some("127.0.0.1:8080".into()),
                reason: "127.0.0.1 is a loopback address, which the outbound address policy \
                         refuses (outbound_allow_cidrs admits it)"
                    .into(),
            }]
        );
        let check = super::super::check_lambda(
            UntrustedWasm::On,
            &refusing,
            &caps,
            &Limits::default(),
            crate::capability::testing::as_written,
        );
        assert!(check.is_ok(), "{check:?}");
        let admitting = SandboxCeiling {
            outbound: crate::outbound::OutboundPolicy::allowing(vec![
                "127.0.0.0/8".parse().unwrap(),
            ]),
            ..SandboxCeiling::default()
        };
        assert_eq!(grant(&admitting).items.http.len(), 2);
    }

    #[test]
    fn the_widest_grant_is_the_ceiling_or_in_on_mode_anything() {
        let imports = [
            CapabilityClass::Environment,
            CapabilityClass::Filesystem,
            CapabilityClass::Http,
            CapabilityClass::Network,
        ];
        let sandboxed = EffectiveGrant::widest(UntrustedWasm::Sandbox, &ceiling(), &imports);
        assert_eq!(sandboxed.items.http, ceiling().items.allowed_hosts);
        assert_eq!(sandboxed.items.env, ceiling().items.env);
        assert_eq!(sandboxed.items.dirs, ceiling().items.dirs);
        let empty = SandboxCeiling::default();
        let nothing = EffectiveGrant::widest(UntrustedWasm::Sandbox, &empty, &imports);
        assert_eq!(nothing.usable, []);
        // `on` has no ceiling: an empty one takes nothing away.
        let on = EffectiveGrant::widest(UntrustedWasm::On, &empty, &imports);
        assert_eq!(
            on.usable,
            [
                CapabilityClass::Http,
                CapabilityClass::Filesystem,
                CapabilityClass::Environment,
            ]
        );
        assert_eq!(
            on.withheld,
            [Withheld {
                capability: CapabilityClass::Network,
                item: None,
                reason: NO_SOCKETS.into(),
            }]
        );
    }
}
