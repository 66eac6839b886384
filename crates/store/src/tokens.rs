//! Admin API tokens, kept only as hashes: a token is shown once when made,
//! and a request's token is found by its hash.
//!
//! A token belongs to one admin for that admin's lifetime: the transaction
//! that deletes the admin forgets its token, and so does the one that
//! creates an admin, so that an id or username used again (a `POST` or a
//! `PUT` after a delete, or a token left by a store from before this rule)
//! never brings an old token back. Updates (`PUT` over an existing admin,
//! `PATCH`) keep it: `rbac_token_enabled = false` suspends the token and
//! `true` resumes it, as in Kong.

use crate::Result;
use async_trait::async_trait;
use uuid::Uuid;

/// The entity tokens belong to.
pub(crate) const ADMINS: &str = "admins";

/// The admin tokens of a store.
#[async_trait]
pub trait AdminTokens: Send + Sync {
    /// Makes `hash` the admin's token hash, replacing any earlier one,
    /// durably. [`crate::Error::NotFound`] if the admin does not exist
    /// (any more): checked in the same transaction, so a token is never
    /// left to an admin deleted meanwhile.
    async fn set_admin_token(&self, admin: Uuid, hash: [u8; 32]) -> Result<()>;

    /// The admin whose token has this hash.
    async fn admin_by_token(&self, hash: &[u8; 32]) -> Result<Option<Uuid>>;
}
