//! Status and settings, and who may read and change them.

mod common;

use sitesync_service::{Actor, ErrorKind, ServiceError, Standing, set_setting};

#[test]
fn a_primary_reports_its_organisations_and_sites() {
    let f = common::primary();
    f.site.create_org(Actor::Operator, "Acme", 1).unwrap();
    let mut status = f.site.status(Actor::Api, None).unwrap();
    status.settle(None);
    assert_eq!(
        (status.role.as_str(), status.organisations, status.sites),
        ("primary", Some(1), Some(0))
    );
    assert_eq!(
        status.verdict,
        "not serving: start the primary with `sitesync serve`"
    );
}

#[test]
fn a_satellite_reports_what_waits_and_why_it_cannot_sync() {
    let f = common::satellite();
    let mut status = f.site.status(Actor::Operator, None).unwrap();
    assert_eq!(status.stores, vec!["North"]);
    status.settle(Some(Ok(3)));
    assert_eq!(status.verdict, "3 changes to pull");
    assert_eq!(status.standing, Standing::Behind);
    assert_eq!(status.standing.exit_code(), 13);
    let down = "cannot reach primary at x: timed out".to_string();
    status.settle(Some(Err((down.clone(), ErrorKind::Unreachable))));
    assert_eq!(status.verdict, down);
    assert_eq!(status.standing, Standing::Unreachable);
    status.settle(Some(Err(("revoked".into(), ErrorKind::Unauthorised))));
    assert_eq!(status.standing, Standing::Refused);
    assert_eq!(status.standing.exit_code(), 6);
    let refused = f.site.status(Actor::Site(2), None).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
}

#[test]
fn settings_are_shown_without_secrets() {
    let f = common::satellite();
    let rows = f.site.settings(Actor::Api).unwrap();
    let auth = rows.iter().find(|(k, _)| k == "auth-code").unwrap();
    assert_eq!(auth.1, "set (stored hashed)");
    assert!(f.site.settings(Actor::Site(2)).is_err());
}

#[test]
fn settings_change_only_with_the_authorisation_code() {
    let f = common::satellite();
    for actor in [Actor::Operator, Actor::Api] {
        let wrong = set_setting(&f.dir, actor, ("name", "till-9"), "wrong").unwrap_err();
        assert!(matches!(wrong, ServiceError::WrongAuthCode));
        assert_eq!(wrong.kind().http(), (401, "unauthorised"));
        assert_eq!(f.dir.load().unwrap().name, "test", "nothing was changed");
    }
    let site = set_setting(&f.dir, Actor::Site(2), ("name", "x"), common::CODE).unwrap_err();
    assert_eq!(site.kind(), ErrorKind::Forbidden);
    set_setting(&f.dir, Actor::Api, ("name", "till-9"), common::CODE).unwrap();
    assert_eq!(f.dir.load().unwrap().name, "till-9");
    let unknown =
        set_setting(&f.dir, Actor::Operator, ("colour", "red"), common::CODE).unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::InvalidInput);
}
