//! What every kind of capability a hook asks for item by item has in
//! common, and the one decision about an item that every kind shares.

use super::grant::{Ask, Reason, Refusal};
use super::{Capabilities, EffectiveGrant, SandboxCeiling, ServerSecrets, UntrustedWasm};
use crate::audit::CapabilityClass;
use crate::schema::{Field, Kind};
use serde_json::json;
use std::path::{Path, PathBuf};

/// One kind of capability a lambda hook asks for item by item (HTTP hosts,
/// environment variables, directories), after spin's factors: the kind
/// says how an item is read, what of hookd's own it would expose, whether
/// the operator's ceiling admits it, its audit class and its schema. What
/// is done with the answers (the save-time check, the effective grant, the
/// static audit) is written once for every kind.
///
/// Adding a kind is a module implementing this trait, its member in
/// [`Capabilities`], [`EffectiveGrant`] and [`SandboxCeiling`], and its
/// entry in [`KINDS`]; hookd-sandbox then says how it is applied to a
/// guest's WASI context.
pub trait CapabilityKind: Sync + 'static {
    /// Its member of `config.capabilities` (and of the grant).
    const KEY: &'static str;
    /// The audit class of its items, and of the imports that use them.
    const CLASS: CapabilityClass;
    /// What an item is called in a refusal at save: `host`, `directory`.
    const NOUN: &'static str;
    /// The configuration key of its part of the ceiling.
    const CEILING_KEY: &'static str;
    /// The import a guest needs for an item to matter.
    const IMPORT: &'static str;
    /// Why the class is unusable when no item is granted.
    const NONE_GRANTED: &'static str;

    /// An item as the hook writes it.
    type Request: Clone;
    /// An item as the sandbox applies it.
    type Item: Clone;

    /// The items a hook asks for.
    fn requested(caps: &Capabilities) -> &[Self::Request];
    /// The same, to fill in.
    fn requested_mut(caps: &mut Capabilities) -> &mut Vec<Self::Request>;
    /// The items a grant holds.
    fn granted(grant: &EffectiveGrant) -> &[Self::Item];
    /// The same, to fill in.
    fn granted_mut(grant: &mut EffectiveGrant) -> &mut Vec<Self::Item>;
    /// The widest request the ceiling admits: its own items.
    fn ceiling(ceiling: &SandboxCeiling) -> Vec<Self::Request>;
    /// An item as written, for the withheld list and refusals.
    fn written(request: &Self::Request) -> &str;
    /// Reads an item; the error is the whole message.
    fn parse(request: &Self::Request) -> Result<Self::Item, String>;
    /// What of hookd's own the item would expose (a refusal in every mode).
    /// `resolve` gives a path's real location.
    fn secret(
        _item: &Self::Item,
        _secrets: &ServerSecrets,
        _resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Option<String> {
        None
    }
    /// Whether the ceiling admits the item.
    fn within(item: &Self::Item, ceiling: &SandboxCeiling) -> bool;
    /// How an item the ceiling does not admit is refused at save, after
    /// its noun and the item.
    fn beyond(_item: &Self::Item, _ceiling: &SandboxCeiling) -> String {
        format!("is not within the sandbox ceiling ({})", Self::CEILING_KEY)
    }
    /// The schema of one item.
    fn element() -> Field;
}

/// Every kind, in the order of `config.capabilities`.
pub(crate) const KINDS: &[&dyn AnyKind] = &[&super::HttpHosts, &super::EnvVars, &super::Dirs];

/// The members of `config.capabilities`, one per kind, in order.
pub fn kind_keys() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|k| k.key())
}

/// [`CapabilityKind`] without its types, so that one loop goes over all
/// kinds.
pub(crate) trait AnyKind: Sync {
    fn key(&self) -> &'static str;
    fn class(&self) -> CapabilityClass;
    /// Decides each requested item: granted, or refused and why.
    fn decide(&self, ask: &Ask<'_>, grant: &mut EffectiveGrant, refused: &mut Vec<Refusal>);
    /// Why the class is unusable under `grant`, if it is.
    fn none_granted(&self, grant: &EffectiveGrant) -> Option<&'static str>;
    /// Asks for everything the ceiling admits.
    fn ask_for_ceiling(&self, ceiling: &SandboxCeiling, caps: &mut Capabilities);
    /// Its field of the `capabilities` schema.
    fn schema_field(&self) -> Field;
}

impl<K: CapabilityKind> AnyKind for K {
    fn key(&self) -> &'static str {
        K::KEY
    }

    fn class(&self) -> CapabilityClass {
        K::CLASS
    }

    fn decide(&self, ask: &Ask<'_>, grant: &mut EffectiveGrant, refused: &mut Vec<Refusal>) {
        for (index, request) in K::requested(ask.caps).iter().enumerate() {
            match decide_item::<K>(ask, request) {
                Ok(item) => K::granted_mut(grant).push(item),
                Err(reason) => refused.push(Refusal {
                    class: K::CLASS,
                    key: K::KEY,
                    noun: K::NOUN,
                    index,
                    item: K::written(request).to_string(),
                    reason,
                }),
            }
        }
    }

    fn none_granted(&self, grant: &EffectiveGrant) -> Option<&'static str> {
        K::granted(grant).is_empty().then_some(K::NONE_GRANTED)
    }

    fn ask_for_ceiling(&self, ceiling: &SandboxCeiling, caps: &mut Capabilities) {
        *K::requested_mut(caps) = K::ceiling(ceiling);
    }

    fn schema_field(&self) -> Field {
        Field::new(K::KEY, Kind::Array(Box::new(K::element()))).default(json!([]))
    }
}

/// The one decision about one requested item, in order: the mode, the
/// item itself, hookd's secrets (every mode), the ceiling (sandbox mode),
/// the guest's imports (when known).
fn decide_item<K: CapabilityKind>(ask: &Ask<'_>, request: &K::Request) -> Result<K::Item, Reason> {
    if ask.mode == UntrustedWasm::Off {
        return Err(Reason::Disabled);
    }
    let item = K::parse(request).map_err(Reason::Malformed)?;
    if let Some(secret) = K::secret(&item, &ask.ceiling.secrets, ask.resolve) {
        return Err(Reason::Secret(secret));
    }
    if ask.mode == UntrustedWasm::Sandbox && !K::within(&item, ask.ceiling) {
        return Err(Reason::Beyond {
            ceiling_key: K::CEILING_KEY,
            refusal: K::beyond(&item, ask.ceiling),
        });
    }
    if ask
        .imports
        .is_some_and(|imports| !imports.contains(&K::CLASS))
    {
        return Err(Reason::Moot { import: K::IMPORT });
    }
    Ok(item)
}
