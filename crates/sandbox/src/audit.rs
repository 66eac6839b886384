//! The audit records of one guest call, bounded whatever the guest does.
//!
//! A guest that tries the same thing 200,000 times in a call makes one
//! record with a count of 200,000, not 200,000 records: decisions with the
//! same capability, target and verdict (the hook and guest are the call's)
//! are aggregated. Past `max_records` distinct decisions, the rest are
//! counted in one record per capability and verdict, with target `*`. The
//! server log gets a line for each distinct denial and, at the end, one
//! line saying how many decisions were aggregated.

use crate::{AuditRecord, CapabilityClass, GuestRef, Verdict};
use hookd_model::clock::Clock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The target of the record that counts the decisions past the limit.
pub(crate) const PAST_LIMIT_TARGET: &str = "*";

/// The audit records of one call; shared with the HTTP client tasks.
#[derive(Clone)]
pub(crate) struct Auditor(Arc<AuditInner>);

struct AuditInner {
    hook_id: Uuid,
    guest: GuestRef,
    clock: Arc<dyn Clock>,
    max_records: usize,
    log: Mutex<Decisions>,
}

#[derive(Default)]
struct Decisions {
    /// Distinct decisions, in the order first met.
    records: Vec<AuditRecord>,
    /// Where each distinct decision is in `records`.
    index: HashMap<(CapabilityClass, String, Verdict), usize>,
    /// Decisions past the limit: one record per capability and verdict.
    past_limit: Vec<AuditRecord>,
    /// Decisions folded into an earlier record.
    repeated: u64,
    /// Decisions counted in `past_limit`.
    dropped: u64,
}

impl Auditor {
    pub fn new(hook_id: Uuid, guest: GuestRef, clock: Arc<dyn Clock>, max_records: usize) -> Self {
        Auditor(Arc::new(AuditInner {
            hook_id,
            guest,
            clock,
            max_records,
            log: Mutex::new(Decisions::default()),
        }))
    }

    pub fn record(
        &self,
        capability: CapabilityClass,
        target: String,
        verdict: Verdict,
        reason: Option<String>,
    ) {
        let a = &self.0;
        let mut d = a.log.lock().unwrap_or_else(|e| e.into_inner());
        let key = (capability, target, verdict);
        if let Some(&i) = d.index.get(&key) {
            d.records[i].count += 1;
            d.repeated += 1;
            return;
        }
        let (capability, target, verdict) = key;
        if d.records.len() >= a.max_records {
            d.dropped += 1;
            let max = a.max_records;
            match d
                .past_limit
                .iter_mut()
                .find(|r| r.capability == capability && r.verdict == verdict)
            {
                Some(r) => r.count += 1,
                None => {
                    let reason = format!(
                        "decisions past the first {max} distinct ones of the call \
                         (sandbox_audit_records_per_call), counted together"
                    );
                    let record = self.new_record(
                        capability,
                        PAST_LIMIT_TARGET.into(),
                        verdict,
                        Some(reason),
                    );
                    d.past_limit.push(record);
                }
            }
            return;
        }
        let record = self.new_record(capability, target, verdict, reason);
        if verdict == Verdict::Denied {
            tracing::info!(target: "hookd::audit", hook = %a.hook_id, guest = %a.guest.name,
                capability = %record.capability, target = %record.target, reason = ?record.reason, "denied");
        }
        let position = d.records.len();
        d.index
            .insert((capability, record.target.clone(), verdict), position);
        d.records.push(record);
    }

    fn new_record(
        &self,
        capability: CapabilityClass,
        target: String,
        verdict: Verdict,
        reason: Option<String>,
    ) -> AuditRecord {
        let a = &self.0;
        AuditRecord {
            at_ms: a.clock.now_ms(),
            hook_id: a.hook_id,
            guest: a.guest.clone(),
            capability,
            target,
            verdict,
            reason,
            count: 1,
        }
    }

    /// The call's records (distinct decisions first, then those past the
    /// limit), leaving none; says in the server log how many decisions
    /// were aggregated, if any were.
    pub fn take(&self) -> Vec<AuditRecord> {
        let a = &self.0;
        let d = std::mem::take(&mut *a.log.lock().unwrap_or_else(|e| e.into_inner()));
        if d.repeated > 0 || d.dropped > 0 {
            tracing::info!(target: "hookd::audit", hook = %a.hook_id, guest = %a.guest.name,
                repeated = d.repeated, past_limit = d.dropped, max_records = a.max_records,
                "guest decisions aggregated into counted records");
        }
        let mut records = d.records;
        records.extend(d.past_limit);
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_model::clock::ManualClock;

    fn auditor(max_records: usize) -> Auditor {
        let guest = GuestRef {
            name: "g".into(),
            digest: "d".into(),
        };
        Auditor::new(
            Uuid::nil(),
            guest,
            Arc::new(ManualClock::at(7)),
            max_records,
        )
    }

    fn summary(records: &[AuditRecord]) -> Vec<(CapabilityClass, &str, Verdict, u64)> {
        records
            .iter()
            .map(|r| (r.capability, r.target.as_str(), r.verdict, r.count))
            .collect()
    }

    #[test]
    fn repeated_decisions_make_one_counted_record() {
        let a = auditor(10);
        for _ in 0..200_000 {
            a.record(
                CapabilityClass::Http,
                "evil.com:443".into(),
                Verdict::Denied,
                None,
            );
        }
        a.record(
            CapabilityClass::Http,
            "evil.com:443".into(),
            Verdict::Allowed,
            None,
        );
        a.record(
            CapabilityClass::Network,
            "evil.com:443".into(),
            Verdict::Denied,
            None,
        );
        use CapabilityClass::*;
        use Verdict::*;
        assert_eq!(
            summary(&a.take()),
            [
                (Http, "evil.com:443", Denied, 200_000),
                (Http, "evil.com:443", Allowed, 1),
                (Network, "evil.com:443", Denied, 1),
            ]
        );
        assert!(a.take().is_empty());
    }

    #[test]
    fn distinct_decisions_past_the_limit_are_counted_together() {
        let a = auditor(2);
        for i in 0..1000 {
            a.record(
                CapabilityClass::Http,
                format!("h{i}.evil.com:80"),
                Verdict::Denied,
                None,
            );
        }
        a.record(
            CapabilityClass::Network,
            "10.0.0.1:80".into(),
            Verdict::Denied,
            None,
        );
        a.record(
            CapabilityClass::Http,
            "h0.evil.com:80".into(),
            Verdict::Denied,
            None,
        );
        use CapabilityClass::*;
        use Verdict::*;
        let records = a.take();
        assert_eq!(
            summary(&records),
            [
                (Http, "h0.evil.com:80", Denied, 2),
                (Http, "h1.evil.com:80", Denied, 1),
                (Http, "*", Denied, 998),
                (Network, "*", Denied, 1),
            ]
        );
        assert!(
            records[2]
                .reason
                .as_deref()
                .unwrap()
                .contains("past the first 2 distinct")
        );
    }
}
