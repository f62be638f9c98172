//! The cloud account's storage: accounts, tokens and memberships.

use super::*;
use crate::{Purpose, Role, Token};

fn token(hash: &str, account: u64, purpose: Purpose, expires_at: u64) -> Token {
    Token {
        hash: hash.into(),
        account,
        purpose,
        created_at: 10,
        seen_at: 10,
        expires_at,
    }
}

pub fn accounts_are_unique_by_address_and_their_tokens_are_single_use(backend: &dyn Backend) {
    let db = backend.primary("p");
    let ann = db
        .create_account("Ann@Example.org", "hash-1", false, 5)
        .unwrap();
    assert_eq!(
        (ann.email.as_str(), ann.confirmed, ann.org_limit),
        ("Ann@Example.org", false, 1)
    );
    let taken = db.create_account("ann@example.ORG", "hash-2", true, 6);
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let (found, hash) = db.account_by_email("ANN@example.org").unwrap().unwrap();
    assert_eq!((found.id, hash.as_str()), (ann.id, "hash-1"));
    assert!(db.account_by_email("bob@example.org").unwrap().is_none());

    db.confirm_account(ann.id).unwrap();
    db.set_password(ann.id, "hash-3").unwrap();
    db.set_org_limit(ann.id, 3).unwrap();
    let (ann, hash) = db.account_by_email("ann@example.org").unwrap().unwrap();
    assert_eq!(
        (ann.confirmed, hash.as_str(), ann.org_limit),
        (true, "hash-3", 3)
    );
    assert!(matches!(
        db.confirm_account(99),
        Err(StoreError::NotFound(_))
    ));

    // A single-use link works once, and not after it expires.
    db.put_token(&token("reset-1", ann.id, Purpose::Reset, 100))
        .unwrap();
    db.put_token(&token("reset-2", ann.id, Purpose::Reset, 100))
        .unwrap();
    assert!(
        db.take_token("reset-1", Purpose::Confirm, 50)
            .unwrap()
            .is_none(),
        "purpose kept apart"
    );
    assert_eq!(
        db.take_token("reset-1", Purpose::Reset, 50)
            .unwrap()
            .unwrap()
            .account,
        ann.id
    );
    assert!(
        db.take_token("reset-1", Purpose::Reset, 50)
            .unwrap()
            .is_none(),
        "spent"
    );
    assert!(
        db.take_token("reset-2", Purpose::Reset, 100)
            .unwrap()
            .is_none(),
        "expired"
    );

    // Sessions: looked up while they last, touched, and ended but one.
    for hash in ["s1", "s2", "s3"] {
        db.put_token(&token(hash, ann.id, Purpose::Session, 1_000))
            .unwrap();
    }
    assert_eq!(
        db.token("s1", Purpose::Session, 999)
            .unwrap()
            .unwrap()
            .seen_at,
        10
    );
    assert!(db.token("s1", Purpose::Session, 1_000).unwrap().is_none());
    db.touch_token("s1", 400).unwrap();
    assert_eq!(
        db.token("s1", Purpose::Session, 500)
            .unwrap()
            .unwrap()
            .seen_at,
        400
    );
    assert_eq!(db.tokens(ann.id, Purpose::Session, 500).unwrap().len(), 3);
    assert_eq!(
        db.drop_tokens(ann.id, Purpose::Session, Some("s2"))
            .unwrap(),
        2
    );
    let left: Vec<String> = db
        .tokens(ann.id, Purpose::Session, 500)
        .unwrap()
        .into_iter()
        .map(|t| t.hash)
        .collect();
    assert_eq!(left, ["s2"]);
    // Disabling ends every session.
    db.set_disabled(ann.id, true).unwrap();
    assert!(db.account(ann.id).unwrap().disabled);
    assert!(db.tokens(ann.id, Purpose::Session, 500).unwrap().is_empty());

    // Memberships.
    let org = db.create_org("Acme", 1).unwrap().id;
    let other = db.create_org("Other", 1).unwrap().id;
    let bob = db.create_account("bob@example.org", "h", true, 7).unwrap();
    db.set_member(org, ann.id, Role::Owner).unwrap();
    db.set_member(org, bob.id, Role::Viewer).unwrap();
    db.set_member(other, bob.id, Role::Admin).unwrap();
    db.set_member(org, bob.id, Role::Manager).unwrap();
    assert_eq!(
        db.memberships(bob.id).unwrap(),
        [(org, Role::Manager), (other, Role::Admin)]
    );
    let members: Vec<(String, Role)> = db
        .members(org)
        .unwrap()
        .into_iter()
        .map(|(a, r)| (a.email, r))
        .collect();
    assert_eq!(
        members,
        [
            ("Ann@Example.org".to_string(), Role::Owner),
            ("bob@example.org".to_string(), Role::Manager)
        ]
    );
    assert!(
        db.set_member(org, 99, Role::Viewer).is_err(),
        "no such account"
    );
    db.remove_member(org, bob.id).unwrap();
    assert_eq!(db.memberships(bob.id).unwrap(), [(other, Role::Admin)]);

    // Invitations: seen while they last, spent once.
    let invitation = crate::Invitation {
        hash: "inv-1".into(),
        org,
        email: "Cat@example.org".into(),
        role: Role::Manager,
        invited_by: ann.id,
        expires_at: 100,
    };
    db.put_invitation(&invitation).unwrap();
    assert_eq!(
        db.invitation("inv-1", 50).unwrap(),
        Some(invitation.clone())
    );
    assert!(db.invitation("inv-1", 100).unwrap().is_none(), "expired");
    assert_eq!(db.take_invitation("inv-1", 60).unwrap(), Some(invitation));
    assert!(db.take_invitation("inv-1", 60).unwrap().is_none(), "spent");
    assert_eq!(
        backend.primary("p").accounts().unwrap().len(),
        2,
        "kept on reopening"
    );
}

pub fn an_address_changes_by_its_link_and_invitations_are_listed_and_withdrawn(
    backend: &dyn Backend,
) {
    let db = backend.primary("p");
    let ann = db.create_account("ann@example.org", "h", true, 5).unwrap();
    let bob = db.create_account("bob@example.org", "h", true, 5).unwrap();
    assert_eq!(ann.language, None, "the browser's language at first");
    db.set_language(ann.id, Some("ru")).unwrap();
    assert_eq!(db.account(ann.id).unwrap().language.as_deref(), Some("ru"));
    db.set_language(ann.id, None).unwrap();
    assert_eq!(db.account(ann.id).unwrap().language, None);

    // A change of address waits for its link, which works once, before it expires.
    let change = |hash: &str, email: &str| crate::EmailChange {
        hash: hash.into(),
        account: ann.id,
        email: email.into(),
        expires_at: 100,
    };
    db.put_email_change(&change("c1", "ann@new.example"))
        .unwrap();
    db.put_email_change(&change("c2", "ann@other.example"))
        .unwrap();
    db.put_email_change(&change("c3", "ann@late.example"))
        .unwrap();
    assert_eq!(db.account(ann.id).unwrap().email, "ann@example.org");
    assert!(
        db.take_email_change("c3", 100).unwrap().is_none(),
        "expired"
    );
    assert_eq!(
        db.take_email_change("c1", 50).unwrap(),
        Some(change("c1", "ann@new.example"))
    );
    assert!(db.take_email_change("c1", 50).unwrap().is_none(), "spent");
    let taken = db.set_email(ann.id, "BOB@example.org");
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    db.set_email(ann.id, "ann@new.example").unwrap();
    assert!(db.account_by_email("ann@example.org").unwrap().is_none());
    assert_eq!(
        db.account_by_email("ANN@new.example")
            .unwrap()
            .unwrap()
            .0
            .id,
        ann.id
    );
    db.set_email(ann.id, "Ann@New.example").unwrap();
    assert!(
        db.take_email_change("c2", 50).unwrap().is_none(),
        "a new address ends the other changes asked for"
    );

    // Invitations not accepted nor expired are listed, and withdrawn only in their
    // organisation.
    let acme = db.create_org("Acme", 1).unwrap().id;
    let other = db.create_org("Other", 1).unwrap().id;
    let invitation = |hash: &str, org, email: &str, expires_at| crate::Invitation {
        hash: hash.into(),
        org,
        email: email.into(),
        role: Role::Viewer,
        invited_by: bob.id,
        expires_at,
    };
    for i in [
        invitation("i1", acme, "cat@example.org", 300),
        invitation("i2", acme, "dan@example.org", 200),
        invitation("i3", acme, "eve@example.org", 50),
        invitation("i4", other, "fay@example.org", 300),
    ] {
        db.put_invitation(&i).unwrap();
    }
    let listed: Vec<String> = db
        .invitations(acme, 60)
        .unwrap()
        .into_iter()
        .map(|i| i.hash)
        .collect();
    assert_eq!(listed, ["i2", "i1"], "soonest to expire first");
    assert!(db.withdraw_invitation(acme, "i4").unwrap().is_none());
    assert!(db.invitation("i4", 60).unwrap().is_some(), "not Acme's");
    assert_eq!(
        db.withdraw_invitation(acme, "i1").unwrap(),
        Some(invitation("i1", acme, "cat@example.org", 300))
    );
    assert!(db.invitation("i1", 60).unwrap().is_none(), "withdrawn");
    assert_eq!(db.invitations(acme, 60).unwrap().len(), 1);
}
