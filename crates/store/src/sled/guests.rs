//! Guests in sled: a tree for the records by name, one from ids to
//! names, one for what each digest is and one for the bytes.

use super::{Sled, tx_error};
use crate::codec::{decode, encode};
use crate::guests::{GuestVersion, Upload, guest_record, report_digest, version_with};
use crate::{Error, Result};
use serde_json::Value;
use sled::Transactional;
use uuid::Uuid;

/// The trees of guests.
pub(crate) struct GuestTrees {
    /// name → the guest record (current digest and its report).
    pub by_name: sled::Tree,
    /// id → name.
    pub names: sled::Tree,
    /// digest → the report of those bytes and the names that use them.
    pub versions: sled::Tree,
    /// digest → bytes.
    pub blobs: sled::Tree,
}

impl GuestTrees {
    pub(crate) fn open(db: &sled::Db) -> Result<Self> {
        Ok(GuestTrees {
            by_name: db.open_tree("guests")?,
            names: db.open_tree("guest_ids")?,
            versions: db.open_tree("guest_versions")?,
            blobs: db.open_tree("guest_blobs")?,
        })
    }
}

impl Sled {
    /// [`crate::Guests::put_guest`].
    pub async fn put_guest(&self, guest: GuestVersion<'_>, now_s: i64) -> Result<(Value, Upload)> {
        let GuestVersion {
            name,
            bytes,
            report,
        } = guest;
        let digest = report_digest(report)?.to_string();
        let g = &self.inner.guests;
        let outcome = (&g.by_name, &g.names, &g.versions, &g.blobs)
            .transaction(|(by_name, names, versions, blobs)| {
                let existing = match by_name.get(name)? {
                    Some(bytes) => Some(
                        decode::<Value>(&bytes)
                            .map_err(sled::transaction::ConflictableTransactionError::Abort)?,
                    ),
                    None => None,
                };
                let (id, record, upload) = guest_record(name, report, existing.as_ref(), now_s);
                if blobs.get(&digest)?.is_none() {
                    blobs.insert(digest.as_bytes(), bytes)?;
                }
                let stored = match versions.get(&digest)? {
                    Some(bytes) => Some(
                        decode(&bytes)
                            .map_err(sled::transaction::ConflictableTransactionError::Abort)?,
                    ),
                    None => None,
                };
                let version = version_with(stored, name, report, now_s);
                let abort = sled::transaction::ConflictableTransactionError::Abort;
                versions.insert(digest.as_bytes(), encode(&version).map_err(abort)?)?;
                by_name.insert(name, encode(&record).map_err(abort)?)?;
                names.insert(id.as_bytes(), name.as_bytes())?;
                Ok((record, upload))
            })
            .map_err(tx_error)?;
        self.durable().await?;
        Ok(outcome)
    }

    /// The guest with this name, or this id.
    pub fn guest(&self, name_or_id: &str) -> Result<Option<Value>> {
        let g = &self.inner.guests;
        let name = match Uuid::try_parse(name_or_id) {
            Ok(id) => match g.names.get(id.as_bytes())? {
                Some(name) => name.to_vec(),
                None => name_or_id.as_bytes().to_vec(),
            },
            Err(_) => name_or_id.as_bytes().to_vec(),
        };
        g.by_name.get(name)?.map(|b| decode(&b)).transpose()
    }

    /// Every guest, by name.
    pub fn guests(&self) -> Result<Vec<Value>> {
        self.inner
            .guests
            .by_name
            .iter()
            .values()
            .map(|v| decode(&v?))
            .collect()
    }

    /// What the bytes of a digest are, and the `names` that use them.
    pub fn guest_version(&self, digest: &str) -> Result<Option<Value>> {
        self.inner
            .guests
            .versions
            .get(digest)?
            .map(|b| decode(&b))
            .transpose()
    }

    /// The digests ever uploaded under a name that are still kept.
    pub fn guest_digests(&self, name: &str) -> Result<Vec<String>> {
        let mut digests = Vec::new();
        for item in self.inner.guests.versions.iter() {
            let (digest, version) = item?;
            if uses(&decode(&version)?, name) {
                digests.push(String::from_utf8_lossy(&digest).into_owned());
            }
        }
        Ok(digests)
    }

    /// A guest's bytes.
    pub fn guest_bytes(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.guests.blobs.get(digest)?.map(|b| b.to_vec()))
    }

    /// Removes a guest and every version uploaded under its name; bytes
    /// another name also uses stay. Returns the record and the digests
    /// whose bytes are gone.
    pub async fn delete_guest(&self, name: &str) -> Result<(Value, Vec<String>)> {
        let g = &self.inner.guests;
        let versions = self.guest_digests(name)?;
        let outcome = (&g.by_name, &g.names, &g.versions, &g.blobs)
            .transaction(|(by_name, names, versions_t, blobs)| {
                let Some(record) = by_name.remove(name)? else {
                    return Err(sled::transaction::ConflictableTransactionError::Abort(
                        Error::NotFound,
                    ));
                };
                let record: Value = decode(&record)
                    .map_err(sled::transaction::ConflictableTransactionError::Abort)?;
                if let Some(id) = record["id"].as_str().and_then(|s| Uuid::try_parse(s).ok()) {
                    names.remove(id.as_bytes())?;
                }
                let mut gone = Vec::new();
                for digest in &versions {
                    let Some(bytes) = versions_t.get(digest.as_bytes())? else {
                        continue;
                    };
                    let mut version: Value = decode(&bytes)
                        .map_err(sled::transaction::ConflictableTransactionError::Abort)?;
                    if let Some(names) = version["names"].as_array_mut() {
                        names.retain(|n| n != name);
                        if !names.is_empty() {
                            let version = encode(&version)
                                .map_err(sled::transaction::ConflictableTransactionError::Abort)?;
                            versions_t.insert(digest.as_bytes(), version)?;
                            continue;
                        }
                    }
                    versions_t.remove(digest.as_bytes())?;
                    blobs.remove(digest.as_bytes())?;
                    gone.push(digest.clone());
                }
                Ok((record, gone))
            })
            .map_err(tx_error)?;
        self.durable().await?;
        Ok(outcome)
    }
}

fn uses(version: &Value, name: &str) -> bool {
    version["names"]
        .as_array()
        .is_some_and(|names| names.iter().any(|n| n == name))
}
