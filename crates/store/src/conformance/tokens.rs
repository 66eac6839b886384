//! Admin tokens.

use crate::testing::admin;
use crate::tokens::ADMINS;
use crate::{Error, Store};
use uuid::Uuid;

pub(super) async fn a_new_token_replaces_the_old(store: Store) {
    let id = Uuid::new_v4();
    store.insert(ADMINS, admin(id, "a"), 1).await.unwrap();
    store.set_admin_token(id, [1; 32]).await.unwrap();
    assert_eq!(store.admin_by_token(&[1; 32]).await.unwrap(), Some(id));
    store.set_admin_token(id, [2; 32]).await.unwrap();
    assert_eq!(store.admin_by_token(&[1; 32]).await.unwrap(), None);
    assert_eq!(store.admin_by_token(&[2; 32]).await.unwrap(), Some(id));
    // An admin's other changes keep its token.
    store.update(ADMINS, admin(id, "b"), 2).await.unwrap();
    assert_eq!(store.admin_by_token(&[2; 32]).await.unwrap(), Some(id));
}

pub(super) async fn a_token_dies_with_its_admin_and_stays_dead(store: Store) {
    let id = Uuid::new_v4();
    store.insert(ADMINS, admin(id, "a"), 1).await.unwrap();
    store.set_admin_token(id, [1; 32]).await.unwrap();
    store.delete(ADMINS, id, 2).await.unwrap();
    assert_eq!(store.admin_by_token(&[1; 32]).await.unwrap(), None);
    store.insert(ADMINS, admin(id, "a"), 3).await.unwrap();
    store.update(ADMINS, admin(id, "a"), 4).await.unwrap();
    assert_eq!(store.admin_by_token(&[1; 32]).await.unwrap(), None);
}

pub(super) async fn no_token_for_an_admin_that_does_not_exist(store: Store) {
    let id = Uuid::new_v4();
    assert!(matches!(
        store.set_admin_token(id, [1; 32]).await,
        Err(Error::NotFound)
    ));
    assert_eq!(store.admin_by_token(&[1; 32]).await.unwrap(), None);
}
