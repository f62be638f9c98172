//! The primary applying pushed batches: retries, rights, rejections, groups.

use super::*;

pub fn a_retried_push_is_not_applied_twice(backend: &dyn Backend) {
    let (db, org, s1, _) = primary(backend);
    let batch = vec![
        change(1, "a", Some(s1), json!({"qty": 1}), 2, 10),
        change(2, "b", Some(s1), json!({"qty": 2}), 2, 11),
    ];
    let first = db.apply_push(org, 2, &batch, 100).unwrap();
    assert_eq!((first.applied, first.response.acked_through), (2, 2));
    let again = db.apply_push(org, 2, &batch, 101).unwrap();
    assert_eq!((again.applied, again.response.acked_through), (0, 2));
    let page = db
        .pull(
            org,
            &Assignment {
                all_stores: true,
                ..Default::default()
            },
            None,
            0,
            100,
        )
        .unwrap();
    let records = page.records;
    assert_eq!(records.len(), 2);
    assert!(!page.more);
    assert_eq!(
        records[0].seq, 1,
        "a duplicate merge must not bump the sequence"
    );
}

/// A time well after any test runs (ms since the epoch, in 2096).
const LATER: u64 = 4_000_000_000_000;

pub fn changes_outside_the_assignment_are_rejected_and_recorded(backend: &dyn Backend) {
    let (db, org, s1, s2) = primary(backend);
    db.restrict(org, "prices").unwrap();
    let mut restricted = change(3, "p", None, json!({"price": 1}), 2, 12);
    restricted.collection = "prices".into();
    let batch = vec![
        change(1, "mine", Some(s1), json!({"qty": 1}), 2, 10),
        change(2, "theirs", Some(s2), json!({"qty": 1}), 2, 11),
        restricted,
        // Stamped by another site now: sites give back others' stamps only from before
        // the primary's incarnation began (see the restore tests).
        change(4, "forged", Some(s1), json!({"qty": 1}), 3, LATER),
        change(5, "ghost", Some(999), json!({"qty": 1}), 2, 14),
    ];
    let outcome = db.apply_push(org, 2, &batch, LATER).unwrap();
    assert_eq!(outcome.applied, 1);
    assert_eq!(
        outcome.response.acked_through, 5,
        "rejected changes are acknowledged too"
    );
    let reasons: Vec<_> = outcome
        .response
        .rejected
        .iter()
        .map(|r| (r.id.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons[0].1.contains("not assigned store"), "{reasons:?}");
    assert!(reasons[1].1.contains("restricted"), "{reasons:?}");
    assert!(reasons[2].1.contains("stamped by site 3"), "{reasons:?}");
    assert!(reasons[3].1.contains("does not exist"), "{reasons:?}");
    assert_eq!(db.rejection_count(org, 0).unwrap(), 4);
    assert_eq!(
        db.rejections_by_site(org).unwrap(),
        vec![(2, 4, reasons[3].1.to_string())],
        "site 2 had four rejected, the newest for a store that does not exist"
    );
    assert_eq!(db.rejections_by_site(org + 1).unwrap(), vec![]);
    let rows = db.rejections(org, 10).unwrap();
    assert!(
        rows.iter().all(|r| r.fields.is_some()),
        "the primary keeps what each refused change wrote: {rows:?}"
    );
    assert!(db.record(org, "stock", "theirs").unwrap().is_none());
}

pub fn a_change_naming_another_store_than_the_record_is_rejected_with_the_primary_copy(
    backend: &dyn Backend,
) {
    let (db, org, s1, s2) = primary(backend);
    db.assign(
        2,
        &Assignment {
            all_stores: true,
            ..Default::default()
        },
    )
    .unwrap();
    db.write_local(
        org,
        "stock",
        "a",
        put(Some(s1), json!({"qty": 5})),
        1,
        10,
        false,
    )
    .unwrap();
    let outcome = db
        .apply_push(
            org,
            2,
            &[change(1, "a", Some(s2), json!({"qty": 9}), 2, 20)],
            30,
        )
        .unwrap();
    assert_eq!(outcome.applied, 0);
    let rejected = &outcome.response.rejected[0];
    assert_eq!(
        rejected.record.as_ref().unwrap().fields["qty"].value,
        json!(5)
    );
}

pub fn a_store_taken_away_stays_writable_until_the_site_confirms(backend: &dyn Backend) {
    let (db, org, s1, s2) = primary(backend);
    let version = db
        .assign(
            2,
            &Assignment {
                all_stores: false,
                stores: BTreeSet::from([s2]),
            },
        )
        .unwrap();
    let site = db.site("2").unwrap();
    assert!(!site.assignment.routes(Some(s1)), "no longer routed");
    let late = db
        .apply_push(
            org,
            2,
            &[change(1, "late", Some(s1), json!({"qty": 1}), 2, 10)],
            20,
        )
        .unwrap();
    assert_eq!(
        late.applied, 1,
        "the last changes of a store being taken away are still accepted"
    );
    confirm_assignment(db.as_ref(), 2, version);
    let after = db
        .apply_push(
            org,
            2,
            &[change(2, "later", Some(s1), json!({"qty": 1}), 2, 40)],
            50,
        )
        .unwrap();
    assert_eq!(
        after.applied, 0,
        "once the site has purged the store, writes to it are rejected"
    );
}

pub fn a_change_stamped_far_ahead_or_writing_nothing_is_rejected(backend: &dyn Backend) {
    let (db, org, s1, _) = primary(backend);
    let day = 24 * 3_600_000;
    let now = 1_000 * day;
    let ahead = change(1, "ahead", Some(s1), json!({"qty": 1}), 2, now + 2 * day);
    let hours_ahead = change(
        2,
        "skewed",
        Some(s1),
        json!({"qty": 1}),
        2,
        now + 5 * 3_600_000,
    );
    let mut empty = change(3, "empty", Some(s1), json!({"qty": 1}), 2, now);
    empty.change.fields.clear();
    let outcome = db
        .apply_push(org, 2, &[ahead, hours_ahead, empty], now)
        .unwrap();
    assert_eq!(outcome.applied, 1, "a clock hours ahead is accepted");
    let reasons: Vec<_> = outcome
        .response
        .rejected
        .iter()
        .map(|r| r.reason.clone())
        .collect();
    assert!(reasons[0].contains("48 hours ahead"), "{reasons:?}");
    assert!(reasons[1].contains("writes nothing"), "{reasons:?}");
    assert!(db.record(org, "stock", "empty").unwrap().is_none());
}

pub fn a_satellite_whose_clock_was_a_day_ahead_is_accepted_again_once_corrected(
    backend: &dyn Backend,
) {
    let (db, org, _, _) = primary(backend);
    let sat = backend.satellite("s");
    let hour = 3_600_000;
    let now = 1_000 * 24 * hour;
    // Written with the wall clock 30 hours ahead: refused.
    sat.write_local(
        org,
        "notes",
        "wrong",
        put(None, json!({"v": 1})),
        2,
        now + 30 * hour,
        true,
    )
    .unwrap();
    // The clock corrected, the next write is stamped by the wall clock again.
    let fixed = sat
        .write_local(
            org,
            "notes",
            "right",
            put(None, json!({"v": 2})),
            2,
            now,
            true,
        )
        .unwrap();
    let stamp = fixed.state.latest().unwrap();
    assert!(
        stamp.millis() < now + hour,
        "stamped {} h ahead",
        (stamp.millis() - now) / hour
    );
    let changes = sat.outbox(10).unwrap();
    let outcome = db.apply_push(org, 2, &changes, now).unwrap();
    assert_eq!(outcome.applied, 1, "{:?}", outcome.response.rejected);
    assert_eq!(outcome.response.rejected.len(), 1);
    assert_eq!(outcome.response.rejected[0].id, "wrong");
    // A clock hours (not a day) ahead is kept: it may hold stamps the site has seen.
    let later = sat
        .write_local(
            org,
            "notes",
            "ahead",
            put(None, json!({"v": 3})),
            2,
            now + 5 * hour,
            true,
        )
        .unwrap();
    let again = sat
        .write_local(
            org,
            "notes",
            "after",
            put(None, json!({"v": 4})),
            2,
            now,
            true,
        )
        .unwrap();
    assert!(again.state.latest().unwrap() > later.state.latest().unwrap());
}

pub fn one_failing_batch_in_a_group_leaves_the_others_committed(backend: &dyn Backend) {
    let (db, org, s1, _) = primary(backend);
    let good = vec![crate::PreparedPush::new(
        change(1, "a", Some(s1), json!({"qty": 1}), 2, 10),
        2,
        20,
    )];
    let ghost = vec![crate::PreparedPush::new(
        change(1, "b", Some(s1), json!({"qty": 1}), 99, 10),
        99,
        20,
    )];
    let ghost_batch = crate::PushBatch {
        org,
        site: 99,
        changes: &ghost,
    };
    let good_batch = crate::PushBatch {
        org,
        site: 2,
        changes: &good,
    };
    // The failing batch first, then last (after the good one has written).
    let outcomes = db.apply_pushes(&[ghost_batch, good_batch], 20).unwrap();
    assert!(outcomes[0].is_err(), "site 99 does not exist");
    assert_eq!(outcomes[1].as_ref().unwrap().applied, 1);
    assert!(db.record(org, "stock", "a").unwrap().is_some());
    assert!(db.record(org, "stock", "b").unwrap().is_none());
    let next = vec![crate::PreparedPush::new(
        change(2, "c", Some(s1), json!({"qty": 2}), 2, 11),
        2,
        20,
    )];
    let next_batch = crate::PushBatch {
        org,
        site: 2,
        changes: &next,
    };
    let outcomes = db.apply_pushes(&[next_batch, ghost_batch], 20).unwrap();
    assert_eq!(outcomes[0].as_ref().unwrap().applied, 1);
    assert!(outcomes[1].is_err());
    assert!(db.record(org, "stock", "c").unwrap().is_some());
    assert!(db.record(org, "stock", "b").unwrap().is_none());
}

pub fn a_site_leaving_all_stores_may_still_push_for_the_stores_it_loses(backend: &dyn Backend) {
    let (db, org, s1, s2) = primary(backend);
    db.assign(
        2,
        &Assignment {
            all_stores: true,
            ..Default::default()
        },
    )
    .unwrap();
    let version = db
        .assign(
            2,
            &Assignment {
                all_stores: false,
                stores: BTreeSet::from([s1]),
            },
        )
        .unwrap();
    let late = db
        .apply_push(
            org,
            2,
            &[change(1, "late", Some(s2), json!({"qty": 1}), 2, 10)],
            20,
        )
        .unwrap();
    assert_eq!(
        late.applied, 1,
        "the last changes for a store taken away are accepted"
    );
    confirm_assignment(db.as_ref(), 2, version);
    let after = db
        .apply_push(
            org,
            2,
            &[change(2, "later", Some(s2), json!({"qty": 1}), 2, 40)],
            50,
        )
        .unwrap();
    assert_eq!(after.applied, 0);
}

/// The write-ahead log is copied into the database by the checkpoint thread while the
/// writer goes on: after 50 MB of writes the database file holds a good part of them,
/// though the writer itself never checkpointed (it does only when the log reaches
/// 256 MiB; SQLite's own checkpoints are off).
/// A pushed change whose tombstone hides one of its own fields is stored in canonical
/// form: the hidden field is dropped.
pub fn a_new_record_pushed_with_a_hidden_field_is_stored_without_it(backend: &dyn Backend) {
    let (db, org, s1, _) = primary(backend);
    let mut pushed = change(1, "hidden", Some(s1), json!({"a": 1, "b": 2}), 2, 10);
    let a_stamp = pushed.change.fields["a"].stamp;
    pushed.change.deleted = Some(sitesync_core::Stamp {
        hlc: a_stamp.hlc + 1,
        site: 2,
    });
    pushed.change.fields.get_mut("b").unwrap().stamp = sitesync_core::Stamp {
        hlc: a_stamp.hlc + 2,
        site: 2,
    };
    let outcome = db.apply_push(org, 2, &[pushed], 20).unwrap();
    assert_eq!(outcome.applied, 1);
    let stored = db.record(org, "stock", "hidden").unwrap().unwrap();
    assert_eq!(stored.state.fields.keys().collect::<Vec<_>>(), ["b"]);
    assert!(!stored.state.is_deleted());
}

pub fn a_change_that_does_not_fit_the_definition_is_rejected_as_merged(backend: &dyn Backend) {
    let (db, org, s1, _) = primary(backend);
    let definition = sitesync_core::Definition::parse(
        "[fields.name]\ntype = \"text\"\nrequired = true\n[fields.qty]\ntype = \"integer\"\nmin = 0",
        sitesync_core::definition::Format::Toml,
    )
    .unwrap();
    let definition = std::sync::Arc::new(definition);
    let prepare = |changes: Vec<PushedChange>| -> Vec<PreparedPush> {
        changes
            .into_iter()
            .map(|c| {
                let mut p = PreparedPush::new(c, 2, 100);
                p.define(definition.clone());
                p
            })
            .collect()
    };
    let batch = prepare(vec![
        change(
            1,
            "new",
            Some(s1),
            json!({"name": "Aspirin", "qty": 3}),
            2,
            10,
        ),
        change(
            2,
            "negative",
            Some(s1),
            json!({"name": "Salt", "qty": -1}),
            2,
            11,
        ),
        change(3, "nameless", Some(s1), json!({"qty": 1}), 2, 12),
        // A partial write of a record that has its required field fits.
        change(4, "new", Some(s1), json!({"qty": 4}), 2, 13),
    ]);
    let outcome = db
        .apply_pushes(
            &[PushBatch {
                org,
                site: 2,
                changes: &batch,
            }],
            100,
        )
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(outcome.applied, 2);
    let reasons: Vec<(&str, &str)> = outcome
        .response
        .rejected
        .iter()
        .map(|r| (r.id.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, "negative");
    assert!(
        reasons[0].1.contains("\"qty\" breaks the rule min = 0"),
        "{}",
        reasons[0].1
    );
    assert_eq!(reasons[1].0, "nameless");
    assert!(
        reasons[1].1.contains("\"name\" breaks the rule required"),
        "{}",
        reasons[1].1
    );
    assert!(db.record(org, "stock", "negative").unwrap().is_none());
    assert_eq!(db.rejection_count(org, 0).unwrap(), 2);
    let kept = db.record(org, "stock", "new").unwrap().unwrap();
    assert_eq!(kept.state.values()["qty"], json!(4));
}

pub fn a_collection_version_grows_with_its_records(backend: &dyn Backend) {
    let (db, org, s1, _) = primary(backend);
    assert_eq!(db.collection_version(org, "stock").unwrap(), 0);
    db.apply_push(
        org,
        2,
        &[change(1, "a", Some(s1), json!({"qty": 1}), 2, 10)],
        100,
    )
    .unwrap();
    let first = db.collection_version(org, "stock").unwrap();
    assert!(first > 0);
    db.write_local(org, "other", "x", put(None, json!({"n": 1})), 1, 20, false)
        .unwrap();
    assert_eq!(db.collection_version(org, "stock").unwrap(), first);
    db.write_local(org, "stock", "a", LocalWrite::Delete, 1, 30, false)
        .unwrap();
    assert!(db.collection_version(org, "stock").unwrap() > first);
}
