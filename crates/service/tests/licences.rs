//! Licences: the site limit at enrolment, the modules the features ask for, their
//! expiry, and who sees and changes a licence.

mod common;

use serde_json::json;
use sitesync_core::{Clock, RecordState};
use sitesync_protocol::{EnrolRequest, PushedChange};
use sitesync_service::{Actor, ErrorKind, LicenceChange, Module, ModuleState, ServiceError, Site};

/// 2027-01-15 00:00 UTC.
const NOW: u64 = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000;
const DAY: u64 = 86_400_000;

fn enrol(site: &Site, key: &str, name: &str) -> Result<u32, ServiceError> {
    let request = EnrolRequest {
        sync_key: key.to_string(),
        site_id: None,
        name: Some(name.into()),
        stores: Vec::new(),
        all_stores: true,
    };
    site.enrol(&request, NOW).map(|answer| answer.site_id)
}

fn change(site: &Site, sites: Option<&str>, modules: &[&str], expires: Option<&str>) {
    let modules: Vec<String> = modules.iter().map(|m| m.to_string()).collect();
    let change = LicenceChange::parse(sites, &modules, expires).unwrap();
    site.change_licence(Actor::Operator, "Acme", &change, NOW)
        .unwrap();
}

/// Asserts that an error's words include `words`.
fn says(error: &ServiceError, words: &str) {
    let said = error.to_string();
    assert!(said.contains(words), "{said:?} does not say {words:?}");
}

/// A primary with organisation "Acme"; its sync key.
fn acme() -> (common::Fixture, String) {
    let f = common::primary();
    let key = f
        .site
        .create_org(Actor::Operator, "Acme", NOW)
        .unwrap()
        .sync_key;
    (f, key)
}

/// Whether `site` may still push and pull: a push of one record (the site's change
/// `seq`) is applied, and a pull brings it back.
fn syncs(f: &common::Fixture, site: u32, seq: u64) -> bool {
    let state = RecordState::default()
        .write(
            None,
            json!({"qty": 1}).as_object().unwrap().clone(),
            &mut Clock::default(),
            NOW,
            site,
        )
        .unwrap();
    let pushed = PushedChange {
        seq,
        collection: "stock".into(),
        id: format!("r{seq}"),
        change: state,
    };
    let store = f.site.primary().unwrap();
    let row = store.site_by_id(site).unwrap();
    let applied = store
        .apply_push(row.org, site, &[pushed], NOW)
        .unwrap()
        .applied;
    let page = store.pull(row.org, &row.assignment, None, 0, 100).unwrap();
    !row.revoked && applied == 1 && page.records.iter().any(|r| r.id == format!("r{seq}"))
}

#[test]
fn the_site_limit_refuses_the_enrolment_past_it_and_says_what_to_do() {
    let (f, key) = acme();
    change(&f.site, Some("2"), &[], None);
    assert_eq!(enrol(&f.site, &key, "first").unwrap(), 2);
    assert_eq!(enrol(&f.site, &key, "second").unwrap(), 3);
    let refused = enrol(&f.site, &key, "third").unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    says(&refused, "licensed for 2 enrolled sites");
    says(&refused, r#"sitesync org licence "Acme" --sites N"#);
    let view = f.site.licence(Actor::Operator, "Acme", NOW).unwrap();
    assert_eq!((view.enrolled, view.licence.sites), (2, Some(2)));
    let logged = f.site.primary().unwrap().audit(Some(view.org.id), None, 10);
    let logged = format!("{logged:?}");
    assert!(logged.contains("sites 2, expires never"), "{logged}");
}

#[test]
fn revoked_sites_do_not_count_and_a_lowered_limit_keeps_enrolled_sites_syncing() {
    let (f, key) = acme();
    change(&f.site, Some("1"), &[], None);
    let first = enrol(&f.site, &key, "first").unwrap();
    let key = f
        .site
        .revoke_site(Actor::Operator, "first")
        .unwrap()
        .sync_key;
    let second = enrol(&f.site, &key, "second").unwrap();
    assert_ne!(first, second);
    assert!(syncs(&f, second, 1));

    change(&f.site, Some("0"), &[], None);
    let refused = enrol(&f.site, &key, "third").unwrap_err();
    assert!(
        matches!(refused, ServiceError::SiteLimit { limit: 0, .. }),
        "{refused}"
    );
    assert!(
        syncs(&f, second, 2),
        "a site enrolled before the limit was lowered keeps syncing"
    );
    assert_eq!(
        f.site
            .licence(Actor::Operator, "Acme", NOW)
            .unwrap()
            .enrolled,
        1
    );

    change(&f.site, Some("unlimited"), &[], None);
    enrol(&f.site, &key, "third").unwrap();
}

#[test]
fn a_module_is_refused_until_licensed_and_again_once_its_grant_or_the_licence_ends() {
    let (f, _) = acme();
    let org = f.site.licence(Actor::Operator, "Acme", NOW).unwrap().org.id;
    let require = |module, at| f.site.require_module(org, module, at);

    let off = require(Module::Files, NOW).unwrap_err();
    assert_eq!(off.kind(), ErrorKind::Forbidden);
    says(&off, r#"sitesync org licence "Acme" --module files=on"#);

    change(&f.site, None, &["files=on"], None);
    require(Module::Files, NOW).unwrap();
    let other = require(Module::ExchangeLinks, NOW).unwrap_err();
    says(&other, "exchange-links");

    change(&f.site, None, &["files=2027-01-15"], None);
    require(Module::Files, NOW + DAY - 1).unwrap();
    let ended = require(Module::Files, NOW + DAY).unwrap_err();
    says(&ended, "licensed until 2027-01-15");
    says(&ended, "--module files=YYYY-MM-DD");

    change(&f.site, None, &["files=on"], Some("2027-01-20"));
    require(Module::Files, NOW + 5 * DAY).unwrap();
    let expired = require(Module::Files, NOW + 6 * DAY).unwrap_err();
    assert!(matches!(
        expired,
        ServiceError::Unlicensed {
            by_licence: true,
            ..
        }
    ));
    says(&expired, "--expires YYYY-MM-DD");
    says(&expired, "nothing was deleted");
}

#[test]
fn the_licence_warns_of_what_ends_within_fourteen_days() {
    let (f, _) = acme();
    change(
        &f.site,
        None,
        &["files=2027-01-25", "exchange-links=on"],
        Some("2027-03-01"),
    );
    let view = f.site.licence(Actor::Operator, "Acme", NOW).unwrap();
    let ending: Vec<_> = view
        .expiring()
        .iter()
        .map(|e| (e.module, e.last_day.to_string()))
        .collect();
    assert_eq!(
        ending,
        vec![(Some(Module::Files), "2027-01-25".to_string())]
    );
    assert_eq!(view.module(Module::ExchangeLinks), ModuleState::On(None));
}

#[test]
fn members_see_the_licence_and_only_the_operator_changes_it() {
    let (f, _) = acme();
    let viewer = f
        .site
        .create_account(Actor::Operator, "vic@example.org", NOW)
        .unwrap();
    let outsider = f
        .site
        .create_account(Actor::Operator, "out@example.org", NOW)
        .unwrap();
    f.site
        .grant(Actor::Operator, "vic@example.org", "Acme", "viewer")
        .unwrap();
    let org = f.site.licence(Actor::Operator, "Acme", NOW).unwrap().org.id;

    let (member, view) = f.site.member_licence(&viewer, org, NOW).unwrap();
    assert_eq!(
        (member.org.name.as_str(), view.licence.sites),
        ("Acme", None)
    );
    let hidden = f.site.member_licence(&outsider, org, NOW).unwrap_err();
    assert_eq!(hidden.kind(), ErrorKind::NotFound);

    let change = LicenceChange::parse(Some("5"), &[], None).unwrap();
    let refused = f
        .site
        .change_licence(Actor::Site(2), "Acme", &change, NOW)
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    assert_eq!(
        f.site
            .licence(Actor::Operator, "Acme", NOW)
            .unwrap()
            .licence
            .sites,
        None
    );
}
