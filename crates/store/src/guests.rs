//! Uploaded guests: their bytes by digest (content-addressed), what each
//! digest is (the sandbox's report, kept as JSON so the store needs no
//! wasmtime), and the name each guest answers to, pointing at its current
//! digest. Older digests stay while their name exists, so a hook may pin
//! one.

use crate::{Error, Result};
use async_trait::async_trait;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Whether a guest was new under its name or replaced an older version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// The name was not taken.
    Created,
    /// The name now points at these bytes instead of older ones.
    Replaced,
}

/// One upload of a guest: its bytes under a name, with the report the
/// sandbox made of them (which names their `digest`).
#[derive(Debug, Clone, Copy)]
pub struct GuestVersion<'a> {
    /// The name the guest answers to.
    pub name: &'a str,
    /// Its WebAssembly.
    pub bytes: &'a [u8],
    /// What the sandbox found in them.
    pub report: &'a Map<String, Value>,
}

/// The digest a guest's report names: the key its bytes are kept under.
pub(crate) fn report_digest(report: &Map<String, Value>) -> Result<&str> {
    report
        .get("digest")
        .and_then(Value::as_str)
        .ok_or(Error::GuestWithoutDigest)
}

/// The record of a guest uploaded under `name` with this report: the
/// report plus `id`, `name`, `created_at` and `updated_at`, keeping the
/// id and creation time of the record it replaces, if any. Returns the
/// id with it.
pub(crate) fn guest_record(
    name: &str,
    report: &Map<String, Value>,
    existing: Option<&Value>,
    now_s: i64,
) -> (Uuid, Value, Upload) {
    let (id, created_at, upload) = match existing {
        Some(old) => (
            old["id"]
                .as_str()
                .and_then(|s| Uuid::try_parse(s).ok())
                .unwrap_or_else(Uuid::new_v4),
            old["created_at"].clone(),
            Upload::Replaced,
        ),
        None => (Uuid::new_v4(), Value::from(now_s), Upload::Created),
    };
    let mut record = report.clone();
    record.insert("id".into(), Value::from(id.to_string()));
    record.insert("name".into(), Value::from(name));
    record.insert("created_at".into(), created_at);
    record.insert("updated_at".into(), Value::from(now_s));
    (id, Value::Object(record), upload)
}

/// What the bytes of a digest are once `name` has uploaded them: the
/// version stored before (none for new bytes: the report, with
/// `uploaded_at`), with `name` among its `names`.
pub(crate) fn version_with(
    stored: Option<Value>,
    name: &str,
    report: &Map<String, Value>,
    now_s: i64,
) -> Value {
    let mut version = stored.unwrap_or_else(|| {
        let mut v = report.clone();
        v.insert("uploaded_at".into(), Value::from(now_s));
        v.insert("names".into(), Value::Array(Vec::new()));
        Value::Object(v)
    });
    if let Some(names) = version["names"].as_array_mut()
        && !names.iter().any(|n| n == name)
    {
        names.push(Value::from(name));
    }
    version
}

/// The guests of a store.
#[async_trait]
pub trait Guests: Send + Sync {
    /// Stores a guest: its bytes under their digest, the report
    /// describing them, and the name pointing at them, keeping the guest's
    /// id if the name existed. Durable when it returns. The record is the
    /// report plus `id`, `name`, `created_at` and `updated_at` (unix
    /// seconds).
    async fn put_guest(&self, guest: GuestVersion<'_>, now_s: i64) -> Result<(Value, Upload)>;

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
