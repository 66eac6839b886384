//! The audit log: pages across verdicts, filters, retention.

use crate::{AuditFilter, Error, Page, Retention, Store};
use hookd_model::audit::{AuditRecord, CapabilityClass, GuestRef, Verdict};
use uuid::Uuid;

fn record(at_ms: i64, hook: Uuid, guest: &str, verdict: Verdict) -> AuditRecord {
    AuditRecord {
        at_ms,
        hook_id: hook,
        guest: GuestRef {
            name: guest.into(),
            digest: format!("{guest}-digest"),
        },
        capability: CapabilityClass::Http,
        target: "example.com:443".into(),
        verdict,
        reason: None,
        count: 1,
    }
}

pub(super) async fn pages_newest_first_across_verdicts_with_filters(store: Store) {
    let (h1, h2) = (Uuid::new_v4(), Uuid::new_v4());
    let records: Vec<AuditRecord> = (0..6)
        .map(|i| {
            let verdict = if i % 2 == 0 {
                Verdict::Allowed
            } else {
                Verdict::Denied
            };
            let mut r = record(
                i,
                if i < 3 { h1 } else { h2 },
                if i < 4 { "g" } else { "k" },
                verdict,
            );
            if i == 4 {
                r.capability = CapabilityClass::Network;
            }
            r
        })
        .collect();
    store.append_audit(&records).await.unwrap();
    let filters = [
        (AuditFilter::default(), &[5, 4, 3, 2, 1, 0][..]),
        (
            AuditFilter {
                verdict: Some(Verdict::Denied),
                ..Default::default()
            },
            &[5, 3, 1],
        ),
        (
            AuditFilter {
                hook: Some(h1),
                ..Default::default()
            },
            &[2, 1, 0],
        ),
        (
            AuditFilter {
                guest: Some("k-digest".into()),
                ..Default::default()
            },
            &[5, 4],
        ),
        (
            AuditFilter {
                capability: Some(CapabilityClass::Network),
                ..Default::default()
            },
            &[4],
        ),
    ];
    for (filter, want) in filters {
        let debug = format!("{filter:?}");
        assert_eq!(all(&store, filter).await, want, "{debug}");
    }
    assert!(matches!(
        store
            .audit_page(
                &AuditFilter::default(),
                &Page {
                    size: 1,
                    offset: Some("x-00".into())
                }
            )
            .await,
        Err(Error::InvalidOffset)
    ));
}

pub(super) async fn retention_keeps_denials_longer(store: Store) {
    let h = Uuid::new_v4();
    let records: Vec<AuditRecord> = (0..4)
        .flat_map(|i| {
            [
                record(i * 10, h, "g", Verdict::Allowed),
                record(i * 10, h, "g", Verdict::Denied),
            ]
        })
        .collect();
    store.append_audit(&records).await.unwrap();
    // Allowed: keep 3 and nothing before 15 → 0 and 10 go. Denied: nothing before 5 → 0 goes.
    let (keep, before_ms) = (usize::MAX, 5);
    let denied = Retention { keep, before_ms };
    let allowed = Retention {
        keep: 3,
        before_ms: 15,
    };
    assert_eq!(store.prune_audit(allowed, denied).await.unwrap(), 3);
    let left = store
        .audit_page(
            &AuditFilter::default(),
            &Page {
                size: 100,
                offset: None,
            },
        )
        .await
        .unwrap()
        .data;
    let summary: Vec<(i64, Verdict)> = left.iter().map(|r| (r.at_ms, r.verdict)).collect();
    assert_eq!(
        summary,
        [
            (30, Verdict::Denied),
            (30, Verdict::Allowed),
            (20, Verdict::Denied),
            (20, Verdict::Allowed),
            (10, Verdict::Denied)
        ]
    );
    // Denials have a count cap as well as an age: the newest stay.
    let denied = Retention {
        keep: 1,
        before_ms: 0,
    };
    assert_eq!(store.prune_audit(allowed, denied).await.unwrap(), 2);
    let denials = AuditFilter {
        verdict: Some(Verdict::Denied),
        ..Default::default()
    };
    assert_eq!(all(&store, denials).await, [30]);
}

/// Every time stamp of the audit log `filter` admits, page by page.
async fn all(store: &Store, filter: AuditFilter) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut page = Page {
        size: 2,
        offset: None,
    };
    loop {
        let listed = store.audit_page(&filter, &page).await.unwrap();
        seen.extend(listed.data.iter().map(|r| r.at_ms));
        match listed.next {
            Some(next) => page.offset = Some(next),
            None => return seen,
        }
    }
}
