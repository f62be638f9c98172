//! The audit log: appended, paged newest first by id, and kept apart by organisation.

use super::*;
use crate::{Audit, AuditAction, Role};

fn entry(org: Option<u64>, account: Option<u64>, action: AuditAction, detail: &str) -> Audit {
    Audit {
        org,
        at: 1_000,
        actor: "ann@example.org".into(),
        account,
        from: Some("192.0.2.7".into()),
        action,
        detail: detail.into(),
    }
}

fn details(entries: &[crate::AuditEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.audit.detail.as_str()).collect()
}

pub fn the_audit_log_pages_newest_first_and_keeps_organisations_apart(backend: &dyn Backend) {
    let db = backend.primary("p");
    let acme = db.create_org("Acme", 1).unwrap().id;
    let other = db.create_org("Other", 1).unwrap().id;
    let ann = db
        .create_account("ann@example.org", "h", true, 1)
        .unwrap()
        .id;
    let zed = db
        .create_account("zed@example.org", "h", true, 1)
        .unwrap()
        .id;
    db.set_member(acme, ann, Role::Admin).unwrap();
    db.set_member(other, ann, Role::Owner).unwrap();
    db.set_member(other, zed, Role::Owner).unwrap();

    let appended = [
        entry(Some(acme), Some(ann), AuditAction::KeyRotated, "a1"),
        entry(None, Some(ann), AuditAction::Login, "ann signs in"),
        entry(
            Some(other),
            Some(ann),
            AuditAction::StoreCreated,
            "ann in other",
        ),
        entry(None, Some(zed), AuditAction::LoginFailed, "zed fails"),
        entry(None, None, AuditAction::SettingChanged, "listen"),
        entry(Some(acme), None, AuditAction::StoreCreated, "a2"),
        entry(Some(acme), None, AuditAction::RoleChanged, "a3"),
    ];
    let ids: Vec<u64> = appended
        .iter()
        .map(|a| db.append_audit(a).unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids rise: {ids:?}");

    // Acme's log: its own entries and its member's sign-in, never what the member did
    // in another organisation, nor another account's sign-in.
    let first = db.audit(Some(acme), None, 2).unwrap();
    assert_eq!(details(&first), ["a3", "a2"]);
    let next = db.audit(Some(acme), Some(first[1].id), 2).unwrap();
    assert_eq!(details(&next), ["ann signs in", "a1"]);
    assert!(
        db.audit(Some(acme), Some(next[1].id), 2)
            .unwrap()
            .is_empty()
    );
    assert_eq!(next[1].audit, appended[0], "kept as appended");

    let others = db.audit(Some(other), None, 10).unwrap();
    assert_eq!(
        details(&others),
        ["zed fails", "ann in other", "ann signs in"]
    );
    // Without an organisation: every entry (the operator's view).
    let all = db.audit(None, None, 100).unwrap();
    assert_eq!(all.len(), appended.len());
    assert_eq!(all[2].audit.action, AuditAction::SettingChanged);
    assert_eq!(
        (all[2].audit.org, all[2].audit.account, all[2].id),
        (None, None, ids[4])
    );
    assert_eq!(
        backend.primary("p").audit(None, None, 100).unwrap(),
        all,
        "kept on reopening"
    );
}
