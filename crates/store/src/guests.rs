//! Uploaded guests: their bytes by digest (content-addressed), what each
//! digest is (the sandbox's report, kept as JSON so the store needs no
//! wasmtime), and the name each guest answers to, pointing at its current
//! digest. Older digests stay while their name exists, so a hook may pin
//! one.

use crate::Result;
use async_trait::async_trait;
use serde_json::{Map, Value};

/// Whether a guest was new under its name or replaced an older version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// The name was not taken.
    Created,
    /// The name now points at these bytes instead of older ones.
    Replaced,
}

/// The guests of a store.
#[async_trait]
pub trait Guests: Send + Sync {
    /// Stores a guest under `name`: its bytes under their digest, the
    /// report describing them (with a `digest` member), and the name
    /// pointing at them, keeping the guest's id if the name existed.
    /// Durable when it returns. The record is the report plus `id`, `name`,
    /// `created_at` and `updated_at` (unix seconds).
    async fn put_guest(
        &self,
        name: &str,
        bytes: &[u8],
        report: &Map<String, Value>,
        now_s: i64,
    ) -> Result<(Value, Upload)>;

    /// The guest with this name, or this id.
    async fn guest(&self, name_or_id: &str) -> Result<Option<Value>>;

    /// Every guest, by name.
    async fn guests(&self) -> Result<Vec<Value>>;

    /// What the bytes of a digest are, and the `names` that use them.
    async fn guest_version(&self, digest: &str) -> Result<Option<Value>>;

    /// The digests ever uploaded under a name that are still kept.
    async fn guest_digests(&self, name: &str) -> Result<Vec<String>>;

    /// A guest's bytes.
    async fn guest_bytes(&self, digest: &str) -> Result<Option<Vec<u8>>>;

    /// Removes a guest and every version uploaded under its name; bytes
    /// another name also uses stay. Durable when it returns. Returns the
    /// record and the digests whose bytes are gone.
    async fn delete_guest(&self, name: &str) -> Result<(Value, Vec<String>)>;
}
