//! Licences: every organisation has one, it is kept as written, and enrolment keeps
//! its site limit.

use super::{Backend, primary};
use crate::StoreError;
use sitesync_core::{Assignment, Day, Licence, Module, SiteId};
use std::collections::BTreeMap;

pub fn a_new_organisation_has_a_licence_with_every_module_off_and_keeps_what_is_set(
    backend: &dyn Backend,
) {
    let (db, org, _, _) = primary(backend);
    let other = db.create_org("Other", 1).unwrap().id;
    assert_eq!(db.licence(org).unwrap(), Licence::default());
    let licence = Licence {
        modules: BTreeMap::from([
            (Module::Files, Some(Day(20_800))),
            (Module::ExchangeLinks, None),
        ]),
        sites: Some(3),
        expires: Some(Day(21_000)),
    };
    db.set_licence(org, &licence).unwrap();
    let reopened = backend.primary("p");
    assert_eq!(reopened.licence(org).unwrap(), licence);
    assert_eq!(
        reopened.licence(other).unwrap(),
        Licence::default(),
        "only its own"
    );
    let fewer = Licence {
        modules: BTreeMap::from([(Module::ExchangeLinks, Some(Day(20_900)))]),
        ..Licence::default()
    };
    reopened.set_licence(org, &fewer).unwrap();
    assert_eq!(db.licence(org).unwrap(), fewer, "a module left out is off");
    assert!(matches!(db.licence(999), Err(StoreError::NotFound(_))));
    assert!(matches!(
        db.set_licence(999, &fewer),
        Err(StoreError::NotFound(_))
    ));
}

pub fn enrolment_keeps_the_site_limit_without_counting_revoked_sites(backend: &dyn Backend) {
    let (db, org, _, _) = primary(backend);
    let enrol = |name: &str| {
        db.create_site(
            org,
            None,
            Some(name),
            &|_| "hash".into(),
            &Assignment::default(),
            2,
        )
    };
    let limited = |sites| Licence {
        sites,
        ..Licence::default()
    };
    db.set_licence(org, &limited(Some(2))).unwrap();
    assert_eq!(enrol("second").unwrap(), 3);
    assert!(matches!(
        enrol("third"),
        Err(StoreError::SiteLimit { limit: 2 })
    ));
    let names = |db: &dyn crate::PrimaryStorage| -> Vec<(SiteId, bool)> {
        db.sites()
            .unwrap()
            .into_iter()
            .map(|s| (s.id, s.revoked))
            .collect()
    };
    assert_eq!(
        names(db.as_ref()),
        vec![(2, false), (3, false)],
        "nothing left of the refused one"
    );

    db.revoke_site(2).unwrap();
    assert_eq!(
        enrol("third").unwrap(),
        4,
        "a revoked site leaves its place"
    );

    db.set_licence(org, &limited(Some(0))).unwrap();
    assert!(matches!(
        enrol("fourth"),
        Err(StoreError::SiteLimit { limit: 0 })
    ));
    assert_eq!(
        names(db.as_ref()),
        vec![(2, true), (3, false), (4, false)],
        "lowering the limit leaves enrolled sites as they are"
    );
    let other = db.create_org("Other", 1).unwrap().id;
    db.create_site(
        other,
        None,
        None,
        &|_| "hash".into(),
        &Assignment::default(),
        2,
    )
    .unwrap();
    db.set_licence(org, &limited(None)).unwrap();
    assert_eq!(enrol("fourth").unwrap(), 6);
}
