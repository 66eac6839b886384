//! Guests: names, versions, bytes.

use crate::testing::{guest_report, upload_guest};
use crate::{Error, GuestVersion, Store, Upload};
use serde_json::json;

pub(super) async fn a_name_points_at_its_latest_bytes_and_keeps_its_id(store: Store) {
    let (first, upload) = upload_guest(&store, "t", b"one", "d1", 10).await;
    assert_eq!(upload, Upload::Created);
    let (second, upload) = upload_guest(&store, "t", b"two", "d2", 20).await;
    assert_eq!(upload, Upload::Replaced);
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["created_at"], 10);
    assert_eq!(second["updated_at"], 20);
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
    assert_eq!(store.guests().await.unwrap(), std::slice::from_ref(&second));
    // The older bytes stay for hooks that pin them.
    assert_eq!(
        store.guest_bytes("d1").await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    let version = store.guest_version("d1").await.unwrap().unwrap();
    assert_eq!(version["names"], json!(["t"]));
    assert_eq!(version["uploaded_at"], 10);
    let mut digests = store.guest_digests("t").await.unwrap();
    digests.sort();
    assert_eq!(digests, ["d1", "d2"]);
}

pub(super) async fn a_guest_without_a_digest_is_refused_as_such(store: Store) {
    let mut no_digest = guest_report("d");
    no_digest.remove("digest");
    let err = store
        .put_guest(
            GuestVersion {
                name: "t",
                bytes: b"one",
                report: &no_digest,
            },
            0,
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "the guest has no digest");
    assert!(store.guest("t").await.unwrap().is_none());
}

pub(super) async fn delete_keeps_bytes_another_name_uses(store: Store) {
    upload_guest(&store, "a", b"same", "d", 0).await;
    upload_guest(&store, "b", b"same", "d", 1).await;
    upload_guest(&store, "a", b"other", "e", 0).await;
    let version = store.guest_version("d").await.unwrap().unwrap();
    assert_eq!(version["names"], json!(["a", "b"]));
    let (record, gone) = store.delete_guest("a").await.unwrap();
    assert_eq!(record["digest"], "e");
    assert_eq!(gone, ["e"]);
    assert!(store.guest("a").await.unwrap().is_none());
    let by_id = store.guest(record["id"].as_str().unwrap()).await.unwrap();
    assert!(by_id.is_none());
    assert!(store.guest_bytes("d").await.unwrap().is_some());
    assert!(store.guest_bytes("e").await.unwrap().is_none());
    assert_eq!(
        store.guest_version("d").await.unwrap().unwrap()["names"],
        json!(["b"])
    );
    assert!(matches!(
        store.delete_guest("a").await,
        Err(Error::NotFound)
    ));
    let (_, gone) = store.delete_guest("b").await.unwrap();
    assert_eq!(gone, ["d"], "the last user takes the shared bytes with it");
    assert!(store.guests().await.unwrap().is_empty());
}
