//! The storage contract, as tests every backend passes: a backend's own test file
//! implements [`Backend`] and calls [`conformance_suite!`](crate::conformance_suite),
//! which makes one `#[test]` of each function here.
//!
//! The tests panic on failure, as tests do; this module is compiled only with the
//! `conformance` feature, which only backends' tests turn on.
#![allow(clippy::unwrap_used, clippy::panic)]

use crate::{
    Backfill, Contact, Cursor, ListQuery, LocalWrite, Prepared, PrimaryStorage, SatelliteStorage,
    StoreError, SyncNotes, SyncState,
};
use serde_json::{Map, Value, json};
use sitesync_core::{Assignment, Clock, RecordState};
use sitesync_protocol::{PushedChange, SiteConfig, StoreRef};
use std::collections::BTreeSet;

/// Storage of one backend, for one test. Opening a name the first time makes empty
/// storage; opening it again gives a second handle on the same data, as a restarted
/// process (or a second one beside the first) has.
pub trait Backend {
    /// The primary's storage named `name`.
    fn primary(&self, name: &str) -> Box<dyn PrimaryStorage>;
    /// A satellite's storage named `name`.
    fn satellite(&self, name: &str) -> Box<dyn SatelliteStorage>;
}

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

fn put(store: Option<u64>, value: Value) -> LocalWrite {
    LocalWrite::Put {
        store,
        fields: fields(value),
    }
}

/// A primary with one organisation, two stores and a satellite (site 2) holding the first.
fn primary(backend: &dyn Backend) -> (Box<dyn PrimaryStorage>, u64, u64, u64) {
    let db = backend.primary("p");
    let org = db.create_org("Acme", 1).unwrap().id;
    let s1 = db.create_store(org, "North").unwrap().id;
    let s2 = db.create_store(org, "South").unwrap().id;
    let assignment = Assignment {
        all_stores: false,
        stores: BTreeSet::from([s1]),
    };
    assert_eq!(
        db.create_site(org, None, "till", &|_| "hash".into(), &assignment, 1)
            .unwrap(),
        2
    );
    (db, org, s1, s2)
}

/// A change as satellite `site` would make it.
fn change(
    seq: u64,
    id: &str,
    store: Option<u64>,
    value: Value,
    site: u32,
    wall: u64,
) -> PushedChange {
    let state =
        RecordState::default().write(store, fields(value), &mut Clock::default(), wall, site);
    PushedChange {
        seq,
        collection: "stock".into(),
        id: id.into(),
        change: state,
    }
}

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
    let (records, _, more) = db
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
    assert_eq!(records.len(), 2);
    assert!(!more);
    assert_eq!(
        records[0].seq, 1,
        "a duplicate merge must not bump the sequence"
    );
}

pub fn changes_outside_the_assignment_are_rejected_and_recorded(backend: &dyn Backend) {
    let (db, org, s1, s2) = primary(backend);
    db.restrict(org, "prices").unwrap();
    let mut restricted = change(3, "p", None, json!({"price": 1}), 2, 12);
    restricted.collection = "prices".into();
    let batch = vec![
        change(1, "mine", Some(s1), json!({"qty": 1}), 2, 10),
        change(2, "theirs", Some(s2), json!({"qty": 1}), 2, 11),
        restricted,
        change(4, "forged", Some(s1), json!({"qty": 1}), 3, 13),
        change(5, "ghost", Some(999), json!({"qty": 1}), 2, 14),
    ];
    let outcome = db.apply_push(org, 2, &batch, 100).unwrap();
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
    assert_eq!(db.rejection_count(org).unwrap(), 4);
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

pub fn pulls_route_by_store_and_page_with_a_cursor(backend: &dyn Backend) {
    let (db, org, s1, s2) = primary(backend);
    let other = db.create_org("Other", 1).unwrap().id;
    for i in 0..10 {
        let store = [Some(s1), Some(s2), None][i % 3];
        db.write_local(
            org,
            "stock",
            &format!("r{i}"),
            put(store, json!({"i": i})),
            1,
            i as u64,
            false,
        )
        .unwrap();
    }
    db.write_local(
        other,
        "stock",
        "secret",
        put(None, json!({"x": 1})),
        1,
        50,
        false,
    )
    .unwrap();
    let site = Assignment {
        all_stores: false,
        stores: BTreeSet::from([s1]),
    };
    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        let (records, next, more) = db.pull(org, &site, None, cursor, 3).unwrap();
        seen.extend(records.into_iter().map(|r| r.id));
        cursor = next;
        if !more {
            break;
        }
    }
    // r0,r3,r6,r9 are North; r2,r5,r8 organisation-wide; South and the other org never.
    let expected: Vec<String> = ["r0", "r2", "r3", "r5", "r6", "r8", "r9"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(db.routed_after(org, &site, 0).unwrap(), 7);
    let backfill = db
        .pull(org, &site, Some(&BTreeSet::from([s2])), 0, 100)
        .unwrap()
        .0;
    assert_eq!(
        backfill.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r1", "r4", "r7"]
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
    db.touch_sites(&[Contact {
        site: 2,
        at: 30,
        pull_cursor: None,
        applied_assignment: Some(version),
    }])
    .unwrap();
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

pub fn pulled_records_and_the_cursor_commit_together_and_purge_removes_a_store(
    backend: &dyn Backend,
) {
    let db = backend.satellite("s");
    let records: Vec<_> = (0..5)
        .map(|i| {
            let c = change(
                i,
                &format!("r{i}"),
                Some(1 + i % 2),
                json!({"i": i}),
                1,
                10 + i,
            );
            let pulled =
                sitesync_protocol::PulledRecord::new(100 + i, c.collection, c.id, &c.change)
                    .unwrap();
            Prepared::new(pulled).unwrap()
        })
        .collect();
    db.apply_pull(7, &records, Cursor::Pull, 104, 1).unwrap();
    assert_eq!(db.sync_state().unwrap().pull_cursor, 104);
    // Applying the same page again (a retry after a crash) changes nothing.
    db.apply_pull(7, &records, Cursor::Pull, 104, 2).unwrap();
    let query = ListQuery {
        collection: "stock".into(),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(db.list(7, &query).unwrap().len(), 5);
    assert_eq!(db.purge_store(7, 1).unwrap(), 3);
    assert_eq!(db.list(7, &query).unwrap().len(), 2);
}

pub fn site_ids_follow_the_rules(backend: &dyn Backend) {
    let (db, org, _, _) = primary(backend);
    let none = Assignment::default();
    for bad in [1, 0, -4] {
        assert!(matches!(
            db.create_site(org, Some(bad), "x", &|_| "h".into(), &none, 1),
            Err(StoreError::Refused(_))
        ));
    }
    assert!(matches!(
        db.create_site(org, Some(2), "x", &|_| "h".into(), &none, 1),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        db.create_site(org, Some(10), "x", &|_| "h".into(), &none, 1)
            .unwrap(),
        10
    );
    assert_eq!(
        db.create_site(org, None, "y", &|_| "h".into(), &none, 1)
            .unwrap(),
        11
    );
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
    db.touch_sites(&[Contact {
        site: 2,
        at: 30,
        pull_cursor: None,
        applied_assignment: Some(version),
    }])
    .unwrap();
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

pub fn a_rejected_change_is_taken_back_without_losing_what_arrived_since(backend: &dyn Backend) {
    let db = backend.satellite("s");
    // The satellite (site 2) writes "qty", which the primary will refuse.
    db.write_local(
        1,
        "stock",
        "a",
        put(Some(1), json!({"qty": 5})),
        2,
        100,
        true,
    )
    .unwrap();
    let refused = db.outbox(10).unwrap().remove(0);
    // Meanwhile a pull brings another site's newer "note" for the same record.
    let newer = RecordState::default().write(
        Some(1),
        fields(json!({"note": "recount"})),
        &mut Clock::default(),
        200,
        3,
    );
    let pulled =
        sitesync_protocol::PulledRecord::new(7, "stock".into(), "a".into(), &newer).unwrap();
    db.apply_pull(1, &[Prepared::new(pulled).unwrap()], Cursor::Pull, 7, 1)
        .unwrap();
    // The primary's copy at the time of the rejection holds neither.
    let answer = sitesync_protocol::PushResponse {
        acked_through: refused.seq,
        rejected: vec![sitesync_protocol::RejectedChange {
            seq: refused.seq,
            collection: "stock".into(),
            id: "a".into(),
            reason: "no".into(),
            record: Some(RecordState {
                store: Some(1),
                ..Default::default()
            }),
        }],
    };
    db.ack_push(1, 2, &answer, 300).unwrap();
    let record = db.record(1, "stock", "a").unwrap().unwrap();
    assert_eq!(
        record.state.values(),
        fields(json!({"note": "recount"})),
        "the refused field left, the pulled one stayed"
    );
    assert_eq!(db.outbox_len().unwrap(), 0);
    assert_eq!(db.rejection_count(1).unwrap(), 1);
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

/// A satellite's configuration holding `stores`, at assignment `version`.
fn config(version: u64, stores: &[u64]) -> SiteConfig {
    SiteConfig {
        assignment_version: version,
        all_stores: false,
        stores: stores
            .iter()
            .map(|&id| StoreRef {
                id,
                name: format!("store {id}"),
            })
            .collect(),
        restricted: vec!["items".into()],
    }
}

pub fn the_sync_state_follows_assignments_and_their_backfills(backend: &dyn Backend) {
    let sat = backend.satellite("s");
    assert_eq!(sat.sync_state().unwrap(), SyncState::default());
    assert_eq!(sat.site_config().unwrap(), None);
    sat.follow_assignment(&config(1, &[5]), &[]).unwrap();
    assert_eq!(sat.sync_state().unwrap().assignment_applied, 1);
    assert_eq!(sat.sync_state().unwrap().backfill, None);
    sat.apply_pull(7, &[], Cursor::Pull, 40, 1).unwrap();
    sat.follow_assignment(&config(2, &[5, 6]), &[6]).unwrap();
    let state = sat.sync_state().unwrap();
    assert_eq!(
        state.pull_cursor, 40,
        "a new assignment keeps the pull cursor"
    );
    assert_eq!(state.assignment_applied, 2);
    assert_eq!(
        state.backfill,
        Some(Backfill {
            stores: vec![6],
            cursor: 0
        })
    );
    sat.apply_pull(7, &[], Cursor::Backfill, 12, 2).unwrap();
    assert_eq!(sat.sync_state().unwrap().backfill.unwrap().cursor, 12);
    // A backfill cut short restarts from the beginning with the new store added, and
    // a store no longer assigned leaves it.
    sat.follow_assignment(&config(3, &[6, 8]), &[8]).unwrap();
    assert_eq!(
        sat.sync_state().unwrap().backfill,
        Some(Backfill {
            stores: vec![6, 8],
            cursor: 0
        })
    );
    sat.finish_backfill().unwrap();
    assert_eq!(sat.sync_state().unwrap().backfill, None);
    assert_eq!(sat.site_config().unwrap(), Some(config(3, &[6, 8])));
    let renamed = SiteConfig {
        restricted: Vec::new(),
        ..config(3, &[6, 8])
    };
    sat.save_site_config(&renamed).unwrap();
    assert_eq!(sat.site_config().unwrap(), Some(renamed));
    assert_eq!(sat.sync_state().unwrap().assignment_applied, 3);
}

pub fn sync_notes_keep_the_last_success_and_the_last_failure(backend: &dyn Backend) {
    let sat = backend.satellite("s");
    assert_eq!(sat.sync_notes().unwrap(), SyncNotes::default());
    sat.note_sync(Ok(()), 10).unwrap();
    sat.note_sync(Err("cannot reach the primary"), 20).unwrap();
    sat.note_sync(Ok(()), 30).unwrap();
    let notes = sat.sync_notes().unwrap();
    assert_eq!(notes.last_sync, 30);
    assert_eq!(
        notes.last_error,
        Some(("cannot reach the primary".to_string(), 20))
    );
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

/// Makes one `#[test]` of each conformance test, each with a fresh backend from `$make`.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        #[test]
        fn a_local_write_is_queued_once_and_readable() {
            $crate::conformance::a_local_write_is_queued_once_and_readable(&$make);
        }
        #[test]
        fn writes_survive_reopening_and_the_clock_keeps_rising() {
            $crate::conformance::writes_survive_reopening_and_the_clock_keeps_rising(&$make);
        }
        #[test]
        fn a_record_cannot_move_to_another_store() {
            $crate::conformance::a_record_cannot_move_to_another_store(&$make);
        }
        #[test]
        fn bad_names_are_refused_and_change_nothing() {
            $crate::conformance::bad_names_are_refused_and_change_nothing(&$make);
        }
        #[test]
        fn a_retried_push_is_not_applied_twice() {
            $crate::conformance::a_retried_push_is_not_applied_twice(&$make);
        }
        #[test]
        fn changes_outside_the_assignment_are_rejected_and_recorded() {
            $crate::conformance::changes_outside_the_assignment_are_rejected_and_recorded(&$make);
        }
        #[test]
        fn a_change_naming_another_store_than_the_record_is_rejected_with_the_primary_copy() {
            $crate::conformance::a_change_naming_another_store_than_the_record_is_rejected_with_the_primary_copy(&$make);
        }
        #[test]
        fn pulls_route_by_store_and_page_with_a_cursor() {
            $crate::conformance::pulls_route_by_store_and_page_with_a_cursor(&$make);
        }
        #[test]
        fn a_store_taken_away_stays_writable_until_the_site_confirms() {
            $crate::conformance::a_store_taken_away_stays_writable_until_the_site_confirms(&$make);
        }
        #[test]
        fn pulled_records_and_the_cursor_commit_together_and_purge_removes_a_store() {
            $crate::conformance::pulled_records_and_the_cursor_commit_together_and_purge_removes_a_store(&$make);
        }
        #[test]
        fn site_ids_follow_the_rules() {
            $crate::conformance::site_ids_follow_the_rules(&$make);
        }
        #[test]
        fn two_connections_to_one_file_never_reuse_a_sequence() {
            $crate::conformance::two_connections_to_one_file_never_reuse_a_sequence(&$make);
        }
        #[test]
        fn a_change_stamped_far_ahead_or_writing_nothing_is_rejected() {
            $crate::conformance::a_change_stamped_far_ahead_or_writing_nothing_is_rejected(&$make);
        }
        #[test]
        fn a_satellite_whose_clock_was_a_day_ahead_is_accepted_again_once_corrected() {
            $crate::conformance::a_satellite_whose_clock_was_a_day_ahead_is_accepted_again_once_corrected(&$make);
        }
        #[test]
        fn one_failing_batch_in_a_group_leaves_the_others_committed() {
            $crate::conformance::one_failing_batch_in_a_group_leaves_the_others_committed(&$make);
        }
        #[test]
        fn a_site_leaving_all_stores_may_still_push_for_the_stores_it_loses() {
            $crate::conformance::a_site_leaving_all_stores_may_still_push_for_the_stores_it_loses(&$make);
        }
        #[test]
        fn a_rejected_change_is_taken_back_without_losing_what_arrived_since() {
            $crate::conformance::a_rejected_change_is_taken_back_without_losing_what_arrived_since(&$make);
        }
        #[test]
        fn a_new_record_pushed_with_a_hidden_field_is_stored_without_it() {
            $crate::conformance::a_new_record_pushed_with_a_hidden_field_is_stored_without_it(&$make);
        }
        #[test]
        fn the_sync_state_follows_assignments_and_their_backfills() {
            $crate::conformance::the_sync_state_follows_assignments_and_their_backfills(&$make);
        }
        #[test]
        fn sync_notes_keep_the_last_success_and_the_last_failure() {
            $crate::conformance::sync_notes_keep_the_last_success_and_the_last_failure(&$make);
        }
        #[test]
        fn the_head_counts_every_change_applied() {
            $crate::conformance::the_head_counts_every_change_applied(&$make);
        }
    };
}
