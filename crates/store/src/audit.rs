//! The audit log: every checked decision of a sandboxed guest (an HTTP
//! request to a host, an address dialled, a directory opened), newest
//! first. Allowed and denied decisions are kept apart so that retention
//! can keep denials far longer: they are what an auditor looks for.

use crate::{Listed, Page, Result};
use async_trait::async_trait;
use hookd_model::audit::{AuditRecord, CapabilityClass, Verdict};

/// How much of one verdict's decisions the audit log keeps.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Records kept, at most (the newest).
    pub keep: usize,
    /// Records from before this instant (unix milliseconds) go.
    pub before_ms: i64,
}

/// Which records a listing wants.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this hook's.
    pub hook: Option<uuid::Uuid>,
    /// Only this guest's, by name or digest.
    pub guest: Option<String>,
    /// Only allowed, or only denied.
    pub verdict: Option<Verdict>,
    /// Only decisions about this capability.
    pub capability: Option<CapabilityClass>,
}

impl AuditFilter {
    pub(crate) fn admits(&self, r: &AuditRecord) -> bool {
        self.hook.is_none_or(|h| r.hook_id == h)
            && self
                .guest
                .as_deref()
                .is_none_or(|g| r.guest.name == g || r.guest.digest == g)
            && self.verdict.is_none_or(|v| r.verdict == v)
            && self.capability.is_none_or(|c| r.capability == c)
    }
}

/// The audit log of a store.
#[async_trait]
pub trait Audit: Send + Sync {
    /// Appends decisions to the audit log (durable with the next
    /// [`crate::Backend::durable`]).
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()>;

    /// A page of the audit log, newest first. Offsets are opaque: the
    /// `next` of the page before.
    async fn audit_page(&self, filter: &AuditFilter, page: &Page) -> Result<Listed<AuditRecord>>;

    /// Forgets, oldest first, allowed decisions beyond `allowed.keep` or
    /// older than `allowed.before_ms`, and denials beyond `denied.keep` or
    /// older than `denied.before_ms`. Returns how many went.
    async fn prune_audit(&self, allowed: Retention, denied: Retention) -> Result<usize>;
}
