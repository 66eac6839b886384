//! Guests: names, versions, bytes.

use crate::testing::guest_report;
use crate::{Error, Store, Upload};
use serde_json::json;

pub(super) async fn a_name_points_at_its_latest_bytes_and_keeps_its_id(store: Store) {
    let (first, upload) = store
        .put_guest("t", b"one", &guest_report("d1"), 10)
        .await
        .unwrap();
    assert_eq!(upload, Upload::Created);
    let (second, upload) = store
        .put_guest("t", b"two", &guest_report("d2"), 20)
        .await
        .unwrap();
    assert_eq!(upload, Upload::Replaced);
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["created_at"], 10);
    assert_eq!(second["digest"], "d2");
    assert_eq!(store.guest("t").await.unwrap().unwrap(), second);
    assert_eq!(
        store
            .guest(second["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap(),
        second
    );
    // The older bytes stay for hooks that pin them.
    assert_eq!(
        store.guest_bytes("d1").await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    assert_eq!(
        store.guest_version("d1").await.unwrap().unwrap()["names"],
        json!(["t"])
    );
    let mut digests = store.guest_digests("t").await.unwrap();
    digests.sort();
    assert_eq!(digests, ["d1", "d2"]);
}

pub(super) async fn a_guest_without_a_digest_is_refused_as_such(store: Store) {
    let mut no_digest = guest_report("d");
    no_digest.remove("digest");
    let err = store
        .put_guest("t", b"one", &no_digest, 0)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "the guest has no digest");
    assert!(store.guest("t").await.unwrap().is_none());
}

pub(super) async fn delete_keeps_bytes_another_name_uses(store: Store) {
    store
        .put_guest("a", b"same", &guest_report("d"), 0)
        .await
        .unwrap();
    store
        .put_guest("b", b"same", &guest_report("d"), 0)
        .await
        .unwrap();
    store
        .put_guest("a", b"other", &guest_report("e"), 0)
        .await
        .unwrap();
    let (_, gone) = store.delete_guest("a").await.unwrap();
    assert_eq!(gone, ["e"]);
    assert!(store.guest("a").await.unwrap().is_none());
    assert!(store.guest_bytes("d").await.unwrap().is_some());
    assert!(store.guest_bytes("e").await.unwrap().is_none());
    assert!(matches!(
        store.delete_guest("a").await,
        Err(Error::NotFound)
    ));
    let (_, gone) = store.delete_guest("b").await.unwrap();
    assert_eq!(gone, ["d"], "the last user takes the shared bytes with it");
}
