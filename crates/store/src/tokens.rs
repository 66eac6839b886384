//! Admin API tokens, kept only as hashes: a token is shown once when made,
//! and a request's token is found by its hash.

use crate::{Error, Result, Store, tx_error};
use uuid::Uuid;

fn by_hash(hash: &[u8; 32]) -> Vec<u8> {
    [b"hash:".as_slice(), hash].concat()
}

fn by_admin(admin: Uuid) -> Vec<u8> {
    [b"admin:".as_slice(), admin.as_bytes()].concat()
}

impl Store {
    /// Makes `hash` the admin's token hash, replacing any earlier one.
    pub async fn set_admin_token(&self, admin: Uuid, hash: [u8; 32]) -> Result<()> {
        self.inner
            .tokens
            .transaction(|t| {
                if let Some(old) = t.get(by_admin(admin))? {
                    t.remove([b"hash:".as_slice(), &old].concat())?;
                }
                t.insert(by_hash(&hash), admin.as_bytes())?;
                t.insert(by_admin(admin), &hash)?;
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

    #[tokio::test]
    async fn a_new_token_replaces_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let admin = Uuid::new_v4();
        store.set_admin_token(admin, [1; 32]).await.unwrap();
        assert_eq!(store.admin_by_token(&[1; 32]).unwrap(), Some(admin));
        store.set_admin_token(admin, [2; 32]).await.unwrap();
        assert_eq!(store.admin_by_token(&[1; 32]).unwrap(), None);
        assert_eq!(store.admin_by_token(&[2; 32]).unwrap(), Some(admin));
    }
}
