//! What every kind of capability a hook asks for item by item has in
//! common: the trait a kind implements, the macro that gives every kind
//! its member in the request, the grant, the ceiling and the
//! configuration, and the one decision about an item that every kind
//! shares.

use super::grant::{Ask, Reason, Refusal};
use super::{
    Capabilities, CeilingItems, EffectiveGrant, GrantedItems, SandboxCeiling, SecretCheck,
    ServerSecrets, UntrustedWasm,
};
use crate::audit::CapabilityClass;
use crate::schema::{Field, Kind};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::Debug;
use std::hash::Hash;
use std::path::{Path, PathBuf};

/// One kind of capability a lambda hook asks for item by item (HTTP hosts,
/// environment variables, directories), after spin's factors: the kind
/// says how an item is read, what of hookd's own it would expose, whether
/// the operator's ceiling admits it, how it reaches a guest and, through
/// its [`Written`] requests, its schema. What is done with the answers
/// (the save-time check, the effective grant, the static audit, applying a
/// grant) is written once for every kind.
///
/// Adding a kind is a module implementing this trait and its line in
/// `capability_kinds!` (`capability/mod.rs`), which names it (its key,
/// audit class and the words its refusals use) and gives it its member
/// of [`Capabilities`], [`EffectiveGrant`] and [`SandboxCeiling`], its
/// ceiling's configuration key and its place in every loop over kinds.
pub trait CapabilityKind: Sync + 'static {
    /// An item as the hook (or the ceiling's configuration) writes it.
    type Request: Written + Clone + Debug + PartialEq + Eq + Hash + Serialize + DeserializeOwned;
    /// An item read: what is granted, bounded and applied.
    type Item: Clone + Debug + PartialEq + Eq + Serialize + DeserializeOwned;

    /// Reads an item; the error is the whole message.
    fn parse(request: &Self::Request) -> Result<Self::Item, String>;
    /// An item written back, as a request for it would be.
    fn request(item: &Self::Item) -> Self::Request;
    /// What of hookd's own the item would expose (a refusal in every mode).
    fn secret(_item: &Self::Item, _own: &SecretCheck<'_>) -> Option<String> {
        None
    }
    /// Why a granted item could not be used anyway, whatever the mode:
    /// e.g. a host whose address the outbound policy refuses. Withheld
    /// from the grant, but no fault of the hook's (the operator's policy
    /// may change), so not refused at save.
    fn unusable(_item: &Self::Item, _ceiling: &SandboxCeiling) -> Option<String> {
        None
    }
    /// Whether the ceiling's items admit the item.
    fn within(item: &Self::Item, ceiling: &[Self::Item]) -> bool;
    /// How an item the ceiling does not admit is refused at save, after
    /// its noun and the item; `ceiling_key` names the ceiling's setting.
    fn beyond(_item: &Self::Item, _ceiling: &[Self::Item], ceiling_key: &str) -> String {
        format!("is not within the sandbox ceiling ({ceiling_key})")
    }
    /// Gives a granted item to the guest being set up. The grant was
    /// decided on items as written; this is where what only I/O can tell
    /// (a directory's real path, a variable's value now) is checked once
    /// more, against `bounds`, the ceiling's items, in `sandbox` mode. The
    /// error says why the item is withheld after all (an audited denial).
    fn apply(
        item: &Self::Item,
        bounds: Option<&[Self::Item]>,
        to: &mut dyn GuestSetup,
    ) -> Result<(), String>;
}

/// An item as a hook writes it: its schema, and how it is named in the
/// withheld list, in refusals and in audit records.
pub trait Written {
    /// The schema of one item.
    fn element() -> Field;
    /// How the item is named.
    fn written(&self) -> &str;
}

/// A name or a pattern, named as written.
impl Written for String {
    fn element() -> Field {
        Field::element(Kind::String)
    }

    fn written(&self) -> &str {
        self
    }
}

/// A guest's WASI context as the kinds see it while it is set up: the few
/// operations they need, with the I/O on the implementor's side
/// (hookd-sandbox implements it over wasmtime-wasi's `WasiCtxBuilder`;
/// this crate does no I/O).
pub trait GuestSetup {
    /// The real location of `path`: absolute, symlinks followed.
    fn real_path(&self, path: &Path) -> std::io::Result<PathBuf>;
    /// The server's own value of an environment variable, now.
    fn server_env(&self, name: &str) -> Option<String>;
    /// Sets an environment variable of the guest.
    fn set_env(&mut self, name: &str, value: &str);
    /// Preopens the host directory `real` at `guest`, writable or not.
    fn preopen(&mut self, real: &Path, guest: &str, write: bool) -> Result<(), String>;
    /// Lets the guest's outgoing HTTP requests go to `host`.
    fn allow_http(&mut self, host: &super::AllowedHost);
}

/// What a kind is called and where its items are kept in the request,
/// the grant and the ceiling. Written by `capability_kinds!` from the
/// kind's line, never by hand, so that a kind cannot be listed in one
/// place and missing from another, and its names stand together.
pub trait KindMember: CapabilityKind {
    /// Its member of `config.capabilities` (and of the grant).
    const KEY: &'static str;
    /// The audit class of its items, and of the imports that use them.
    const CLASS: CapabilityClass;
    /// What an item is called in a refusal at save: `host`, `directory`.
    const NOUN: &'static str;
    /// The import a guest needs for an item to matter.
    const IMPORT: &'static str;
    /// Why the class is unusable when no item is granted.
    const NONE_GRANTED: &'static str;
    /// The configuration key of its part of the ceiling.
    const CEILING_KEY: &'static str;
    /// The items a hook asks for.
    fn requested(caps: &Capabilities) -> &Vec<Self::Request>;
    /// The same, to fill in.
    fn requested_mut(caps: &mut Capabilities) -> &mut Vec<Self::Request>;
    /// The items a grant holds.
    fn granted(grant: &GrantedItems) -> &Vec<Self::Item>;
    /// The same, to fill in.
    fn granted_mut(grant: &mut GrantedItems) -> &mut Vec<Self::Item>;
    /// The ceiling's items.
    fn bounds(ceiling: &CeilingItems) -> &Vec<Self::Item>;
}

/// Declares the capability kinds, once: each kind's names ([`KindMember`]),
/// its member of the request ([`Capabilities`]), of the grant
/// ([`GrantedItems`]), of the ceiling ([`CeilingItems`]) and of its
/// configuration ([`CeilingConfig`]), and the list every loop over kinds
/// goes through.
///
/// `key: Kind, class AuditClass, item "what an item is called", needs "the
/// import that uses items", none "why the class is unusable without
/// items", ceiling member = "configuration key";`
macro_rules! capability_kinds {
    ($(
        $(#[$doc:meta])*
        $key:ident: $kind:ident, class $class:ident, item $noun:literal, needs $import:literal,
            none $none:literal, ceiling $bound:ident = $config_key:literal;
    )+) => {
        /// The capabilities a lambda hook requests for its guests: one
        /// member per kind.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Capabilities {
            $(
                $(#[$doc])*
                #[serde(default)]
                pub $key: Vec<<$kind as CapabilityKind>::Request>,
            )+
        }

        /// The items a grant holds: one member per kind.
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct GrantedItems {
            $(
                $(#[$doc])*
                #[serde(default)]
                pub $key: Vec<<$kind as CapabilityKind>::Item>,
            )+
        }

        /// The items of the operator's ceiling, one member per kind:
        /// what any hook may be granted in `sandbox` mode.
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct CeilingItems {
            $(
                #[doc = concat!("The `", stringify!($key), "` items any hook may be granted (`", $config_key, "`).")]
                #[serde(default)]
                pub $bound: Vec<<$kind as CapabilityKind>::Item>,
            )+
        }

        /// The ceiling's items as configured (`sandbox_*` keys), before
        /// they are read ([`CeilingConfig::read`]).
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct CeilingConfig {
            $(
                #[doc = concat!("The `", stringify!($key), "` items any lambda hook may be granted in `sandbox` mode.")]
                #[serde(rename = $config_key, default)]
                pub $bound: Vec<<$kind as CapabilityKind>::Request>,
            )+
        }

        impl CeilingConfig {
            /// Reads every item, refusing one that is malformed or would
            /// expose hookd's own `secrets` (`resolve` gives a path's real
            /// location); the error names the configuration key.
            pub fn read(
                &self,
                secrets: &ServerSecrets,
                resolve: &dyn Fn(&Path) -> PathBuf,
            ) -> Result<CeilingItems, CeilingError> {
                Ok(CeilingItems {
                    $($bound: read_ceiling::<$kind>(&self.$bound, secrets, resolve)?,)+
                })
            }
        }

        $(
            impl KindMember for $kind {
                const KEY: &'static str = stringify!($key);
                const CLASS: $crate::audit::CapabilityClass = $crate::audit::CapabilityClass::$class;
                const NOUN: &'static str = $noun;
                const IMPORT: &'static str = $import;
                const NONE_GRANTED: &'static str =
                    concat!($none, " (config.capabilities.", stringify!($key), ")");
                const CEILING_KEY: &'static str = $config_key;
                fn requested(caps: &Capabilities) -> &Vec<Self::Request> {
                    &caps.$key
                }
                fn requested_mut(caps: &mut Capabilities) -> &mut Vec<Self::Request> {
                    &mut caps.$key
                }
                fn granted(grant: &GrantedItems) -> &Vec<Self::Item> {
                    &grant.$key
                }
                fn granted_mut(grant: &mut GrantedItems) -> &mut Vec<Self::Item> {
                    &mut grant.$key
                }
                fn bounds(ceiling: &CeilingItems) -> &Vec<Self::Item> {
                    &ceiling.$bound
                }
            }
        )+

        /// Every kind, in the order of `config.capabilities`.
        pub(crate) const KINDS: &[&dyn kind::AnyKind] = &[$(&$kind),+];
    };
}
pub(crate) use capability_kinds;

/// A ceiling item that cannot be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct CeilingError {
    /// The configuration key.
    pub key: &'static str,
    /// Why.
    pub reason: String,
}

pub(super) fn read_ceiling<K: KindMember>(
    requests: &[K::Request],
    secrets: &ServerSecrets,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Vec<K::Item>, CeilingError> {
    let refuse = |reason| CeilingError {
        key: K::CEILING_KEY,
        reason,
    };
    requests
        .iter()
        .map(|request| {
            let item = K::parse(request).map_err(refuse)?;
            match K::secret(&item, &SecretCheck { secrets, resolve }) {
                Some(secret) => Err(refuse(secret)),
                None => Ok(item),
            }
        })
        .collect()
}

/// Gives every item of `grant` to the guest being set up, in the order of
/// the kinds. An item that I/O shows must be withheld after all (a link
/// to hookd's own files, a directory gone) is reported to `denied` with
/// its class, the item as written and why, and the rest go on.
pub fn apply_grant(
    grant: &EffectiveGrant,
    ceiling: &SandboxCeiling,
    to: &mut dyn GuestSetup,
    denied: &mut dyn FnMut(CapabilityClass, String, String),
) {
    let mut applying = Applying {
        grant,
        ceiling,
        to,
        denied,
    };
    for kind in super::KINDS {
        kind.apply(&mut applying);
    }
}

/// A grant being given to a guest: what its items go into, and where an
/// item withheld after all is reported.
pub(crate) struct Applying<'a> {
    grant: &'a EffectiveGrant,
    ceiling: &'a SandboxCeiling,
    to: &'a mut dyn GuestSetup,
    denied: &'a mut dyn FnMut(CapabilityClass, String, String),
}

/// [`CapabilityKind`] without its types, so that one loop goes over all
/// kinds.
pub(crate) trait AnyKind: Sync {
    fn class(&self) -> CapabilityClass;
    /// Decides each requested item: granted, or refused and why.
    fn decide(&self, ask: &Ask<'_>, grant: &mut GrantedItems, refused: &mut Vec<Refusal>);
    /// Why the class is unusable under `grant`, if it is.
    fn none_granted(&self, grant: &GrantedItems) -> Option<&'static str>;
    /// Asks for everything the ceiling admits.
    fn ask_for_ceiling(&self, ceiling: &SandboxCeiling, caps: &mut Capabilities);
    /// Its field of the `capabilities` schema.
    fn schema_field(&self) -> Field;
    /// Gives its granted items to a guest being set up.
    fn apply(&self, applying: &mut Applying<'_>);
}

impl<K: KindMember> AnyKind for K {
    fn class(&self) -> CapabilityClass {
        K::CLASS
    }

    fn decide(&self, ask: &Ask<'_>, grant: &mut GrantedItems, refused: &mut Vec<Refusal>) {
        for (index, request) in K::requested(ask.caps).iter().enumerate() {
            match decide_item::<K>(ask, request) {
                Ok(item) => K::granted_mut(grant).push(item),
                Err(reason) => refused.push(Refusal {
                    class: K::CLASS,
                    key: K::KEY,
                    noun: K::NOUN,
                    index,
                    item: request.written().to_string(),
                    reason,
                }),
            }
        }
    }

    fn none_granted(&self, grant: &GrantedItems) -> Option<&'static str> {
        K::granted(grant).is_empty().then_some(K::NONE_GRANTED)
    }

    fn ask_for_ceiling(&self, ceiling: &SandboxCeiling, caps: &mut Capabilities) {
        *K::requested_mut(caps) = K::bounds(&ceiling.items).iter().map(K::request).collect();
    }

    fn schema_field(&self) -> Field {
        Field::new(K::KEY, Kind::Array(Box::new(K::Request::element()))).default(json!([]))
    }

    fn apply(&self, applying: &mut Applying<'_>) {
        let Applying {
            grant,
            ceiling,
            to,
            denied,
        } = applying;
        let bounds =
            (grant.mode == UntrustedWasm::Sandbox).then(|| K::bounds(&ceiling.items).as_slice());
        for item in K::granted(&grant.items) {
            // A grant made before hookd's own files or variables were
            // refused at save (or made any other way) still does not
            // reach them: judged again on real paths.
            let real = |path: &Path| to.real_path(path).unwrap_or_else(|_| path.to_path_buf());
            let own = SecretCheck {
                secrets: &ceiling.secrets,
                resolve: &real,
            };
            let outcome = match K::secret(item, &own) {
                Some(secret) => Err(secret),
                None => K::apply(item, bounds, &mut **to),
            };
            if let Err(reason) = outcome {
                denied(K::CLASS, K::request(item).written().to_string(), reason);
            }
        }
    }
}

/// The one decision about one requested item, in order: the mode, the
/// item itself, hookd's secrets (every mode), the ceiling (sandbox mode),
/// the guest's imports (when known), what makes it unusable anyway.
fn decide_item<K: KindMember>(ask: &Ask<'_>, request: &K::Request) -> Result<K::Item, Reason> {
    if ask.mode == UntrustedWasm::Off {
        return Err(Reason::Disabled);
    }
    let item = K::parse(request).map_err(Reason::Malformed)?;
    let own = SecretCheck {
        secrets: &ask.ceiling.secrets,
        resolve: ask.resolve,
    };
    if let Some(secret) = K::secret(&item, &own) {
        return Err(Reason::Secret(secret));
    }
    let bounds = K::bounds(&ask.ceiling.items);
    if ask.mode == UntrustedWasm::Sandbox && !K::within(&item, bounds) {
        return Err(Reason::Beyond {
            ceiling_key: K::CEILING_KEY,
            refusal: K::beyond(&item, bounds, K::CEILING_KEY),
        });
    }
    if ask
        .imports
        .is_some_and(|imports| !imports.contains(&K::CLASS))
    {
        return Err(Reason::Moot { import: K::IMPORT });
    }
    if let Some(why) = K::unusable(&item, ask.ceiling) {
        return Err(Reason::Unusable(why));
    }
    Ok(item)
}
