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
