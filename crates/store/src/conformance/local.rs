//! Local writes, sequences, names and reopening.

use super::*;

pub fn a_local_write_is_queued_once_and_readable(backend: &dyn Backend) {
    let db = backend.satellite("s");
    db.write_local(1, "items", "a", put(None, json!({"n": 1})), 2, 10, true)
        .unwrap();
    db.write_local(1, "items", "a", put(None, json!({"m": 2})), 2, 11, true)
        .unwrap();
    let record = db.record(1, "items", "a").unwrap().unwrap();
    assert_eq!(record.state.values(), fields(json!({"n": 1, "m": 2})));
    assert_eq!(db.outbox_len().unwrap(), 2);
    let outbox = db.outbox(10).unwrap();
    assert!(outbox[0].seq < outbox[1].seq);
}

pub fn writes_survive_reopening_and_the_clock_keeps_rising(backend: &dyn Backend) {
    let first = {
        let db = backend.satellite("s");
        db.write_local(1, "items", "a", put(None, json!({"n": 1})), 2, 5_000, true)
            .unwrap()
            .state
    };
    let db = backend.satellite("s");
    // The wall clock has gone backwards since; the new write must still sort later.
    let second = db
        .write_local(1, "items", "a", put(None, json!({"n": 2})), 2, 1_000, true)
        .unwrap()
        .state;
    assert!(second.fields["n"].stamp > first.fields["n"].stamp);
    assert_eq!(
        db.record(1, "items", "a").unwrap().unwrap().state.fields["n"].value,
        json!(2)
    );
}

pub fn a_record_cannot_move_to_another_store(backend: &dyn Backend) {
    let db = backend.satellite("s");
    db.write_local(1, "stock", "a", put(Some(1), json!({"n": 1})), 2, 1, true)
        .unwrap();
    let err = db
        .write_local(1, "stock", "a", put(Some(2), json!({"n": 2})), 2, 2, true)
        .unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)), "{err}");
    assert_eq!(
        db.outbox_len().unwrap(),
        1,
        "a refused write queues nothing"
    );
}

pub fn bad_names_are_refused_and_change_nothing(backend: &dyn Backend) {
    let db = backend.satellite("s");
    for (collection, id) in [("", "a"), ("ok", ""), ("a/b", "a"), ("ok", "a\u{1}b")] {
        let err = db
            .write_local(1, collection, id, put(None, json!({"n": 1})), 2, 1, true)
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    }
    assert_eq!(db.outbox_len().unwrap(), 0);
}

pub fn two_connections_to_one_file_never_reuse_a_sequence(backend: &dyn Backend) {
    let a = backend.satellite("s");
    let b = backend.satellite("s");
    let mut seqs = BTreeSet::new();
    for i in 0..20 {
        let db = if i % 2 == 0 { &a } else { &b };
        let record = db
            .write_local(
                1,
                "items",
                &format!("r{i}"),
                put(None, json!({"i": i})),
                2,
                i,
                true,
            )
            .unwrap();
        assert!(
            seqs.insert(record.seq),
            "sequence {} handed out twice",
            record.seq
        );
    }
    let outbox = a.outbox(100).unwrap();
    assert_eq!(outbox.len(), 20);
}

pub fn the_head_counts_every_change_applied(backend: &dyn Backend) {
    let (db, org, s1, _) = primary(backend);
    assert_eq!(db.head().unwrap(), 0);
    db.write_local(org, "items", "a", put(None, json!({"n": 1})), 1, 5, false)
        .unwrap();
    db.write_local(org, "items", "a", put(None, json!({"n": 2})), 1, 6, false)
        .unwrap();
    assert_eq!(db.head().unwrap(), 2);
    let batch = vec![change(1, "b", Some(s1), json!({"qty": 1}), 2, 10)];
    db.apply_push(org, 2, &batch, 100).unwrap();
    assert_eq!(db.head().unwrap(), 3);
    db.apply_push(org, 2, &batch, 101).unwrap();
    assert_eq!(
        db.head().unwrap(),
        3,
        "a change applied again is not numbered again"
    );
}

pub fn site_ids_follow_the_rules(backend: &dyn Backend) {
    let (db, org, _, _) = primary(backend);
    let none = Assignment::default();
    for bad in [1, 0, -4] {
        assert!(matches!(
            db.create_site(org, Some(bad), Some("x"), &|_| "h".into(), &none, 1),
            Err(StoreError::Refused(_))
        ));
    }
    assert!(matches!(
        db.create_site(org, Some(2), Some("x"), &|_| "h".into(), &none, 1),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        db.create_site(org, Some(10), Some("z"), &|_| "h".into(), &none, 1)
            .unwrap(),
        10
    );
    assert_eq!(
        db.create_site(org, None, Some("y"), &|_| "h".into(), &none, 1)
            .unwrap(),
        11
    );
}

pub fn an_organisation_keeps_its_time_zone(backend: &dyn Backend) {
    let (db, org, _, _) = primary(backend);
    assert_eq!(
        db.org_by_id(org).unwrap().time_zone,
        "UTC",
        "UTC unless set"
    );
    let set = db.set_time_zone(org, "Europe/Moscow").unwrap();
    assert_eq!((set.id, set.time_zone.as_str()), (org, "Europe/Moscow"));
    assert_eq!(db.org("Acme").unwrap().time_zone, "Europe/Moscow");
    assert_eq!(db.orgs().unwrap()[0].time_zone, "Europe/Moscow");
    assert!(matches!(
        db.set_time_zone(org + 100, "UTC"),
        Err(StoreError::NotFound(_))
    ));
}

pub fn a_deleted_organisation_is_gone_but_its_site_ids_are_not_given_again(backend: &dyn Backend) {
    let (db, org, _, _) = primary(backend);
    let other = db.create_org("Other", 1).unwrap().id;
    let none = Assignment::default();
    let theirs = db
        .create_site(other, None, Some("kept"), &|_| "h".into(), &none, 1)
        .unwrap();
    let refused = db.delete_org(org, 5);
    assert!(
        matches!(&refused, Err(StoreError::Conflict(why)) if why.contains("revoke")),
        "{refused:?}"
    );
    assert_eq!(db.org("Acme").unwrap().id, org, "nothing changed");
    db.revoke_site(2).unwrap();
    db.delete_org(org, 5).unwrap();
    assert!(matches!(db.org("Acme"), Err(StoreError::NotFound(_))));
    assert!(matches!(db.org_by_id(org), Err(StoreError::NotFound(_))));
    assert!(matches!(db.site("2"), Err(StoreError::NotFound(_))));
    assert_eq!(db.orgs().unwrap().len(), 1);
    let sites: Vec<u32> = db.sites().unwrap().iter().map(|s| s.id).collect();
    assert_eq!(sites, vec![theirs], "the other organisation's site stays");
    assert!(matches!(
        db.delete_org(org, 6),
        Err(StoreError::NotFound(_))
    ));
    // The name is free again, and a new site never takes the deleted one's id.
    let again = db.create_org("Acme", 7).unwrap().id;
    let new = db
        .create_site(again, None, None, &|_| "h".into(), &none, 7)
        .unwrap();
    assert!(new > theirs && new != 2, "{new}");
}

pub fn names_are_unique_without_regard_to_case(backend: &dyn Backend) {
    let (db, org, s1, _) = primary(backend);
    let taken = |r: Result<_, StoreError>| matches!(r, Err(StoreError::Conflict(_)));
    assert!(taken(db.create_org("ACME", 2).map(|_| ())));
    assert!(taken(db.create_store(org, "north").map(|_| ())));
    assert_eq!(db.store(org, "NORTH").unwrap().id, s1);
    assert_eq!(db.org("acme").unwrap().id, org);
    let none = Assignment::default();
    // The site made by `primary` is "till", site 2; one enrolled without a name gets
    // a name of its own.
    let third = db
        .create_site(org, None, None, &|_| "h".into(), &none, 1)
        .unwrap();
    let fourth = db
        .create_site(org, None, None, &|_| "h".into(), &none, 1)
        .unwrap();
    assert_eq!(
        db.site_by_id(third).unwrap().name,
        format!("satellite-{third}")
    );
    assert_ne!(
        db.site_by_id(third).unwrap().name,
        db.site_by_id(fourth).unwrap().name
    );
    assert!(taken(
        db.create_site(org, None, Some("TILL"), &|_| "h".into(), &none, 1)
            .map(|_| ())
    ));
    assert_eq!(db.site("Till").unwrap().id, 2);
    assert!(taken(db.rename_site(third, "till").map(|_| ())));
    assert_eq!(
        db.rename_site(third, "Back office").unwrap().name,
        "Back office"
    );
    assert_eq!(db.site("back OFFICE").unwrap().id, third);
    assert_eq!(
        db.rename_site(2, "TILL").unwrap().name,
        "TILL",
        "a site may change the case of its own name"
    );
    assert!(taken(db.rename_store(org, s1, "South").map(|_| ())));
    assert_eq!(
        db.rename_store(org, s1, "North Street").unwrap().name,
        "North Street"
    );
    assert_eq!(db.store(org, "north street").unwrap().id, s1);
    assert!(matches!(
        db.store(org, "North"),
        Err(StoreError::NotFound(_))
    ));
}

pub fn sites_and_stores_are_removed_only_when_nothing_is_lost(backend: &dyn Backend) {
    let (db, org, s1, s2) = primary(backend);
    let refused = |r: Result<u64, StoreError>| matches!(r, Err(StoreError::Refused(_)));
    assert!(
        refused(db.delete_store(org, s1, true)),
        "site 2 holds store 1"
    );
    db.write_local(
        org,
        "stock",
        "a",
        put(Some(s2), json!({"qty": 1})),
        1,
        5,
        false,
    )
    .unwrap();
    assert!(
        refused(db.delete_store(org, s2, false)),
        "store 2 holds a record"
    );
    assert_eq!(db.delete_store(org, s2, true).unwrap(), 1);
    assert!(db.record(org, "stock", "a").unwrap().is_none());
    assert!(matches!(
        db.store(org, &s2.to_string()),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(db.remove_site(2), Err(StoreError::Refused(_))));
    db.revoke_site(2).unwrap();
    db.remove_site(2).unwrap();
    assert!(matches!(db.site_by_id(2), Err(StoreError::NotFound(_))));
    assert_eq!(
        db.delete_store(org, s1, false).unwrap(),
        0,
        "no site holds it now"
    );
}

pub fn collections_are_listed_and_restrictions_lifted(backend: &dyn Backend) {
    let (db, org, s1, _) = primary(backend);
    for (collection, id) in [("stock", "a"), ("stock", "b"), ("items", "x")] {
        db.write_local(
            org,
            collection,
            id,
            put(Some(s1), json!({"n": 1})),
            1,
            5,
            false,
        )
        .unwrap();
    }
    db.write_local(org, "stock", "b", LocalWrite::Delete, 1, 6, false)
        .unwrap();
    assert_eq!(
        db.collections(org).unwrap(),
        vec![("items".to_string(), 1), ("stock".to_string(), 1)]
    );
    db.restrict(org, "items").unwrap();
    assert_eq!(db.restricted(org).unwrap(), vec!["items".to_string()]);
    db.unrestrict(org, "items").unwrap();
    assert!(db.restricted(org).unwrap().is_empty());
    assert!(matches!(
        db.unrestrict(org, "items"),
        Err(StoreError::NotFound(_))
    ));
}

pub fn records_naming_files_are_found_and_no_other(backend: &dyn Backend) {
    let db = backend.satellite("s");
    let hash = format!("blake3:{}", "ab".repeat(32));
    let file = json!({"name": "cv.pdf", "size": 3, "media_type": "application/pdf", "hash": hash});
    db.write_local(
        1,
        "contacts",
        "a",
        put(None, json!({"cv": file})),
        2,
        1,
        true,
    )
    .unwrap();
    db.write_local(
        1,
        "contacts",
        "b",
        put(None, json!({"cv": "none"})),
        2,
        2,
        true,
    )
    .unwrap();
    db.write_local(
        1,
        "contacts",
        "c",
        put(None, json!({"cv": file})),
        2,
        3,
        true,
    )
    .unwrap();
    db.write_local(1, "contacts", "c", LocalWrite::Delete, 2, 4, true)
        .unwrap();
    db.write_local(
        2,
        "contacts",
        "d",
        put(None, json!({"cv": file})),
        2,
        5,
        true,
    )
    .unwrap();
    let found: Vec<String> = db
        .records_naming_files(1)
        .unwrap()
        .into_iter()
        .map(|r| format!("{}/{}", r.collection, r.id))
        .collect();
    assert_eq!(
        found,
        vec!["contacts/a"],
        "not b (no file), c (deleted) nor d (another organisation)"
    );
}
