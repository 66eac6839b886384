//! Admin tokens on PostgreSQL: `admin_tokens`, one row per admin, found by
//! hash.

use super::Postgres;
use super::retrying;
use crate::tokens::ADMINS;
use crate::{AdminTokens, Error, Result};
use async_trait::async_trait;
use sqlx::PgConnection;
use uuid::Uuid;

/// Forgets the admin's token, if it has one: in the transaction that
/// creates or deletes the admin.
pub(super) async fn revoke_admin_token(conn: &mut PgConnection, admin: Uuid) -> Result<()> {
    sqlx::query("DELETE FROM admin_tokens WHERE admin = $1")
        .bind(admin)
        .execute(conn)
        .await?;
    Ok(())
}

impl Postgres {
    async fn try_set_admin_token(&self, admin: Uuid, hash: &[u8; 32]) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        // Locked against a delete of the admin, and against another token
        // set at the same time (whose row would clash with this one's).
        let exists: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM entities WHERE kind = $1 AND id = $2 FOR NO KEY UPDATE",
        )
        .bind(ADMINS)
        .bind(admin)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Err(Error::NotFound);
        }
        revoke_admin_token(&mut tx, admin).await?;
        // A hash another admin holds is taken over, as in the sled backend;
        // hashes of random tokens do not collide.
        sqlx::query(
            "INSERT INTO admin_tokens (hash, admin) VALUES ($1, $2) \
             ON CONFLICT (hash) DO UPDATE SET admin = EXCLUDED.admin",
        )
        .bind(hash.as_slice())
        .bind(admin)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl AdminTokens for Postgres {
    async fn set_admin_token(&self, admin: Uuid, hash: [u8; 32]) -> Result<()> {
        retrying(|| self.try_set_admin_token(admin, &hash)).await
    }

    async fn admin_by_token(&self, hash: &[u8; 32]) -> Result<Option<Uuid>> {
        Ok(
            sqlx::query_scalar("SELECT admin FROM admin_tokens WHERE hash = $1")
                .bind(hash.as_slice())
                .fetch_optional(self.pool())
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{TestDatabase, admin};
    use crate::tokens::ADMINS;
    use uuid::Uuid;

    #[tokio::test]
    async fn creating_an_admin_forgets_a_token_left_under_its_id() {
        let Some((db, store)) = TestDatabase::with_store().await else {
            return;
        };
        let id = Uuid::new_v4();
        let pool = crate::postgres::pool(&db.connection).await.unwrap();
        sqlx::query("INSERT INTO admin_tokens (hash, admin) VALUES ($1, $2)")
            .bind([1_u8; 32].as_slice())
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        store.insert(ADMINS, admin(id, "a"), 1).await.unwrap();
        assert_eq!(store.admin_by_token(&[1; 32]).await.unwrap(), None);
    }

    #[tokio::test]
    async fn concurrent_tokens_for_one_admin_leave_one() {
        let Some((_db, store)) = TestDatabase::with_store().await else {
            return;
        };
        let id = Uuid::new_v4();
        store.insert(ADMINS, admin(id, "a"), 1).await.unwrap();
        let tasks: Vec<_> = (1..=8_u8)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move { store.set_admin_token(id, [n; 32]).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let mut holding = 0;
        for n in 1..=8_u8 {
            if store.admin_by_token(&[n; 32]).await.unwrap() == Some(id) {
                holding += 1;
            }
        }
        assert_eq!(holding, 1);
    }
}
