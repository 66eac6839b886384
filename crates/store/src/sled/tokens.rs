//! Admin tokens in sled: `hash:<hash>` → admin id and `admin:<id>` → hash.

use super::Sled;
use super::entities::{Tx, TxResult, abort};
use super::tx_error;
use crate::entities::entity_key;
use crate::tokens::ADMINS;
use crate::{Error, Result};
use sled::Transactional;
use uuid::Uuid;

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

impl Sled {
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
    use crate::testing::admin;

    #[tokio::test]
    async fn creating_an_admin_forgets_a_token_left_under_its_id() {
        let (_dir, store) = Sled::temporary();
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
}
