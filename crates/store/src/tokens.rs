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

use crate::entities::{Tx, TxResult, abort, entity_key};
use crate::{Error, Result, Store, tx_error};
use sled::Transactional;
use uuid::Uuid;

/// The entity tokens belong to.
pub(crate) const ADMINS: &str = "admins";

fn by_hash(hash: &[u8]) -> Vec<u8> {
    [b"hash:".as_slice(), hash].concat()
}

fn by_admin(admin: Uuid) -> Vec<u8> {
    [b"admin:".as_slice(), admin.as_bytes()].concat()
}

impl Tx<'_> {
    /// Forgets the admin's token, if it has one.
    pub(crate) fn revoke_admin_token(&self, admin: Uuid) -> TxResult<()> {
        if let Some(hash) = self.tokens.get(by_admin(admin))? {
            self.del(self.tokens, by_hash(&hash))?;
            self.del(self.tokens, by_admin(admin))?;
        }
        Ok(())
    }
}

impl Store {
    /// Makes `hash` the admin's token hash, replacing any earlier one.
    /// [`Error::NotFound`] if the admin does not exist (any more): checked
    /// in the same transaction, so a token is never left to an admin
    /// deleted meanwhile.
    pub async fn set_admin_token(&self, admin: Uuid, hash: [u8; 32]) -> Result<()> {
        let inner = &self.inner;
        (&inner.entities, &inner.tokens)
            .transaction(|(entities, tokens)| {
                if entities.get(entity_key(ADMINS, admin))?.is_none() {
                    return abort(Error::NotFound);
                }
                if let Some(old) = tokens.get(by_admin(admin))? {
                    tokens.remove(by_hash(&old))?;
                }
                tokens.insert(by_hash(&hash), admin.as_bytes())?;
                tokens.insert(by_admin(admin), &hash)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.durable().await
    }

    /// The admin whose token has this hash.
    pub fn admin_by_token(&self, hash: &[u8; 32]) -> Result<Option<Uuid>> {
        match self.inner.tokens.get(by_hash(hash))? {
            Some(id) => Uuid::from_slice(&id)
                .map(Some)
                .map_err(|_| Error::CorruptKey),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn admin(id: Uuid, username: &str) -> Value {
        json!({"id": id.to_string(), "username": username, "rbac_token_enabled": true})
    }

    #[tokio::test]
    async fn a_new_token_replaces_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Uuid::new_v4();
        store.insert(ADMINS, admin(id, "a"), 1).await.unwrap();
        store.set_admin_token(id, [1; 32]).await.unwrap();
        assert_eq!(store.admin_by_token(&[1; 32]).unwrap(), Some(id));
        store.set_admin_token(id, [2; 32]).await.unwrap();
        assert_eq!(store.admin_by_token(&[1; 32]).unwrap(), None);
        assert_eq!(store.admin_by_token(&[2; 32]).unwrap(), Some(id));
    }

    #[tokio::test]
    async fn a_token_dies_with_its_admin_and_stays_dead() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Uuid::new_v4();
        store.insert(ADMINS, admin(id, "a"), 1).await.unwrap();
        store.set_admin_token(id, [1; 32]).await.unwrap();
        store.delete(ADMINS, id, 2).await.unwrap();
        assert_eq!(store.admin_by_token(&[1; 32]).unwrap(), None);
        store.insert(ADMINS, admin(id, "a"), 3).await.unwrap();
        store.update(ADMINS, admin(id, "a"), 4).await.unwrap();
        assert_eq!(store.admin_by_token(&[1; 32]).unwrap(), None);
    }

    #[tokio::test]
    async fn creating_an_admin_forgets_a_token_left_under_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Uuid::new_v4();
        // As a store from before tokens died with their admin left it.
        store
            .inner
            .tokens
            .insert(by_hash(&[1; 32]), id.as_bytes())
            .unwrap();
        store.inner.tokens.insert(by_admin(id), &[1; 32]).unwrap();
        store.insert(ADMINS, admin(id, "a"), 1).await.unwrap();
        assert_eq!(store.admin_by_token(&[1; 32]).unwrap(), None);
        assert!(store.inner.tokens.is_empty());
    }

    #[tokio::test]
    async fn no_token_for_an_admin_that_does_not_exist() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Uuid::new_v4();
        assert!(matches!(
            store.set_admin_token(id, [1; 32]).await,
            Err(Error::NotFound)
        ));
        assert_eq!(store.admin_by_token(&[1; 32]).unwrap(), None);
    }
}
