//! Records on a primary and a satellite: put, get (and waiting for one), list, delete,
//! with this site's write permissions, and who may touch them.

mod common;

use serde_json::json;
use sitesync_service::{Actor, Changes, ErrorKind, ServiceError, StoreChoice};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOW: u64 = 1_800_000_000_000;

#[test]
fn records_are_put_read_listed_and_deleted_on_the_primary() {
    let f = common::primary();
    f.site.create_org(Actor::Operator, "Acme", NOW).unwrap();
    f.site
        .create_store(Actor::Operator, "Acme", "North")
        .unwrap();
    let org = Some("Acme");
    let put = f
        .site
        .put_record(
            Actor::Api,
            org,
            ("items", "a"),
            json!({"qty": 1}),
            StoreChoice::Store("North"),
            NOW,
        )
        .unwrap();
    assert_eq!(put.store.as_deref(), Some("North"));
    assert_eq!(put.origin_site, Some(1));
    let got = f
        .site
        .get_record(Actor::Operator, org, ("items", "a"))
        .unwrap();
    assert_eq!(got, put);
    let listed = f
        .site
        .list_records(Actor::Api, org, "items", None, (None, 10))
        .unwrap();
    assert_eq!(listed, vec![put]);
    f.site
        .delete_record(Actor::Api, org, ("items", "a"), NOW + 1)
        .unwrap();
    let gone = f
        .site
        .get_record(Actor::Api, org, ("items", "a"))
        .unwrap_err();
    assert!(matches!(gone, ServiceError::Deleted { .. }));
    let never = f
        .site
        .get_record(Actor::Api, org, ("items", "b"))
        .unwrap_err();
    assert_eq!(never.kind().http(), (404, "not_found"));
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let f = common::primary();
    f.site.create_org(Actor::Operator, "Acme", NOW).unwrap();
    let cases = [
        f.site.put_record(
            Actor::Api,
            None,
            ("items", "a"),
            json!({"x": 1}),
            StoreChoice::Unsaid,
            NOW,
        ),
        f.site.put_record(
            Actor::Api,
            Some("Acme"),
            ("items", "a"),
            json!({}),
            StoreChoice::Unsaid,
            NOW,
        ),
        f.site.put_record(
            Actor::Api,
            Some("Acme"),
            ("", "a"),
            json!({"x": 1}),
            StoreChoice::Unsaid,
            NOW,
        ),
        f.site.put_record(
            Actor::Api,
            Some("Acme"),
            ("items", "a"),
            json!({"x": 1}),
            StoreChoice::Store("Nowhere"),
            NOW,
        ),
    ];
    for case in cases {
        assert_eq!(case.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    let listed = f
        .site
        .list_records(Actor::Api, Some("Acme"), "items", None, (None, 10));
    assert!(listed.unwrap().is_empty());
}

#[test]
fn a_satellite_writes_only_what_the_primary_would_accept() {
    let f = common::satellite();
    let own = f
        .site
        .put_record(
            Actor::Operator,
            None,
            ("stock", "a"),
            json!({"qty": 1}),
            StoreChoice::Store("North"),
            NOW,
        )
        .unwrap();
    assert_eq!(own.store.as_deref(), Some("North"));
    let restricted = f
        .site
        .put_record(
            Actor::Api,
            None,
            ("prices", "a"),
            json!({"p": 1}),
            StoreChoice::Unsaid,
            NOW,
        )
        .unwrap_err();
    assert!(matches!(restricted, ServiceError::NotWritable { .. }));
    assert_eq!(restricted.kind().http(), (403, "forbidden"));
    let other_org = f
        .site
        .get_record(Actor::Api, Some("Other"), ("stock", "a"))
        .unwrap_err();
    assert_eq!(other_org.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_site_may_not_touch_another_sites_records_directly() {
    let f = common::satellite();
    let refusals = [
        f.site
            .put_record(
                Actor::Site(3),
                None,
                ("stock", "a"),
                json!({"q": 1}),
                StoreChoice::Unsaid,
                NOW,
            )
            .map(drop),
        f.site
            .get_record(Actor::Site(3), None, ("stock", "a"))
            .map(drop),
        f.site
            .list_records(Actor::Site(3), None, "stock", None, (None, 1))
            .map(drop),
        f.site
            .delete_record(Actor::Site(3), None, ("stock", "a"), NOW)
            .map(drop),
        f.site.conflicts(Actor::Site(3), None, 5).map(drop),
        f.site.digest(Actor::Site(3), None).map(drop),
    ];
    for refused in refusals {
        assert_eq!(refused.unwrap_err().kind(), ErrorKind::Forbidden);
    }
}

#[test]
fn digest_and_conflicts_read_this_sites_records() {
    let f = common::satellite();
    assert!(f.site.digest(Actor::Operator, None).unwrap().is_empty());
    f.site
        .put_record(
            Actor::Operator,
            None,
            ("items", "a"),
            json!({"q": 1}),
            StoreChoice::Unsaid,
            NOW,
        )
        .unwrap();
    let digest = f.site.digest(Actor::Api, None).unwrap();
    assert_eq!((digest.len(), digest[0].records), (1, 1));
    assert!(
        f.site
            .conflicts(Actor::Operator, None, 10)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_read_sees_a_record_the_moment_it_is_written() {
    let f = common::primary();
    f.site.create_org(Actor::Operator, "Acme", NOW).unwrap();
    let site = Arc::new(f.site);
    let (changed, watching) = tokio::sync::watch::channel(0u64);
    let writer = site.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let written = writer.put_record(
            Actor::Api,
            Some("Acme"),
            ("items", "late"),
            json!({"q": 1}),
            StoreChoice::Unsaid,
            NOW,
        );
        assert!(written.is_ok());
        changed.send_modify(|n| *n += 1);
        // Kept alive until the reader is done: a closed channel ends the wait.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let started = Instant::now();
    let changes = Changes {
        changed: watching,
        stopping: || false,
    };
    let key = ("items".to_string(), "late".to_string());
    let found = site
        .get_record_waiting(Actor::Api, Some("Acme".into()), key, Some(10_000), changes)
        .await
        .unwrap();
    assert_eq!(found.id, "late");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_read_gives_up_as_not_found_and_never_waits_on_other_errors() {
    let f = common::primary();
    f.site.create_org(Actor::Operator, "Acme", NOW).unwrap();
    let site = Arc::new(f.site);
    let (_changed, watching) = tokio::sync::watch::channel(0u64);
    let changes = Changes {
        changed: watching.clone(),
        stopping: || false,
    };
    let key = ("items".to_string(), "never".to_string());
    let missing = site
        .get_record_waiting(
            Actor::Api,
            Some("Acme".into()),
            key.clone(),
            Some(50),
            changes,
        )
        .await
        .unwrap_err();
    assert!(matches!(missing, ServiceError::NoRecord { .. }));
    let started = Instant::now();
    let changes = Changes {
        changed: watching,
        stopping: || false,
    };
    let no_org = site
        .get_record_waiting(Actor::Api, Some("Nope".into()), key, Some(10_000), changes)
        .await
        .unwrap_err();
    assert_eq!(no_org.kind(), ErrorKind::NotFound);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an unknown organisation is not waited for"
    );
}

/// Satellite 2 holding North (10) and South (11).
fn two_store_satellite() -> common::Fixture {
    let f = common::satellite();
    let mut config = f.site.site_config().unwrap();
    config.stores.push(sitesync_protocol::StoreRef {
        id: 11,
        name: "South".into(),
    });
    f.site.save_site_config(&config, Some(1)).unwrap();
    f
}

fn put(
    f: &common::Fixture,
    id: &str,
    store: StoreChoice<'_>,
) -> Result<Option<String>, ServiceError> {
    f.site
        .put_record(Actor::Api, None, ("stock", id), json!({"q": 1}), store, NOW)
        .map(|r| r.store)
}

#[test]
fn a_satellite_holding_one_store_writes_a_new_record_to_it() {
    let f = common::satellite();
    assert_eq!(
        put(&f, "a", StoreChoice::Unsaid).unwrap().as_deref(),
        Some("North")
    );
    assert_eq!(put(&f, "b", StoreChoice::OrgWide).unwrap(), None);
}

#[test]
fn a_satellite_holding_several_stores_asks_which_and_writes_nothing() {
    let f = two_store_satellite();
    let refused = put(&f, "a", StoreChoice::Unsaid).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput);
    let message = refused.to_string();
    for needle in ["\"North\"", "\"South\"", "--store", "--org-wide"] {
        assert!(message.contains(needle), "{needle} in: {message}");
    }
    let listed = f
        .site
        .list_records(Actor::Api, None, "stock", None, (None, 10))
        .unwrap();
    assert!(listed.is_empty(), "nothing was written: {listed:?}");
    assert_eq!(put(&f, "a", StoreChoice::OrgWide).unwrap(), None);
    assert_eq!(
        put(&f, "b", StoreChoice::Store("South"))
            .unwrap()
            .as_deref(),
        Some("South")
    );
}

#[test]
fn a_satellite_holding_every_store_asks_which() {
    let f = two_store_satellite();
    let mut config = f.site.site_config().unwrap();
    config.all_stores = true;
    f.site.save_site_config(&config, Some(1)).unwrap();
    let refused = put(&f, "a", StoreChoice::Unsaid).unwrap_err();
    assert!(refused.to_string().contains("every store"), "{refused}");
}

#[test]
fn a_store_said_for_an_existing_record_must_be_its_own() {
    let f = two_store_satellite();
    put(&f, "north", StoreChoice::Store("North")).unwrap();
    put(&f, "wide", StoreChoice::OrgWide).unwrap();
    for (id, store) in [
        ("north", StoreChoice::Store("South")),
        ("north", StoreChoice::OrgWide),
        ("wide", StoreChoice::Store("North")),
    ] {
        let refused = put(&f, id, store).unwrap_err();
        assert_eq!(refused.kind().http(), (409, "taken"), "{refused}");
    }
    let message = put(&f, "north", StoreChoice::Store("South"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("\"North\"") && message.contains("\"South\""),
        "{message}"
    );
    let north = f
        .site
        .get_record(Actor::Api, None, ("stock", "north"))
        .unwrap();
    assert_eq!(
        (north.store.as_deref(), north.fields.len()),
        (Some("North"), 1)
    );
    assert_eq!(
        put(&f, "north", StoreChoice::Store("North"))
            .unwrap()
            .as_deref(),
        Some("North")
    );
    assert_eq!(
        put(&f, "north", StoreChoice::Unsaid).unwrap().as_deref(),
        Some("North")
    );
    assert_eq!(put(&f, "wide", StoreChoice::OrgWide).unwrap(), None);
    assert_eq!(put(&f, "wide", StoreChoice::Unsaid).unwrap(), None);
}

#[test]
fn the_primary_writes_a_record_without_a_store_organisation_wide() {
    let f = common::primary();
    f.site.create_org(Actor::Operator, "Acme", NOW).unwrap();
    f.site
        .create_store(Actor::Operator, "Acme", "North")
        .unwrap();
    let written = f
        .site
        .put_record(
            Actor::Api,
            Some("Acme"),
            ("items", "a"),
            json!({"q": 1}),
            StoreChoice::Unsaid,
            NOW,
        )
        .unwrap();
    assert_eq!(written.store, None);
}

#[test]
fn a_store_and_org_wide_together_are_refused() {
    let both = StoreChoice::from_options(Some("North"), true).unwrap_err();
    assert_eq!(both.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        StoreChoice::from_options(None, false).unwrap(),
        StoreChoice::Unsaid
    );
}
