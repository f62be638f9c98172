//! Pulls, and a satellite's side: applying pages, purges, rejections taken back, its sync state.

use super::*;

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
        let page = db.pull(org, &site, None, cursor, 3).unwrap();
        seen.extend(page.records.into_iter().map(|r| r.id));
        cursor = page.next;
        if !page.more {
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
        .records;
    assert_eq!(
        backfill.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r1", "r4", "r7"]
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
    let newer = RecordState::default()
        .write(
            Some(1),
            fields(json!({"note": "recount"})),
            &mut Clock::default(),
            200,
            3,
        )
        .unwrap();
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
    assert_eq!(db.rejection_count(1, 0).unwrap(), 1);
}

pub fn rejections_keep_what_was_written_and_are_acknowledged_up_to_a_mark(backend: &dyn Backend) {
    let db = backend.satellite("s");
    let reject = |id: &str, record: Option<RecordState>| {
        let change = db
            .outbox(10)
            .unwrap()
            .into_iter()
            .find(|c| c.id == id)
            .unwrap();
        let answer = sitesync_protocol::PushResponse {
            acked_through: change.seq,
            rejected: vec![sitesync_protocol::RejectedChange {
                seq: change.seq,
                collection: "stock".into(),
                id: id.into(),
                reason: format!("no {id}"),
                record,
            }],
        };
        db.ack_push(1, 2, &answer, 300).unwrap();
    };
    assert_eq!(db.rejections_acknowledged().unwrap(), 0);
    assert_eq!(
        db.acknowledge_rejections(None).unwrap(),
        0,
        "nothing to acknowledge"
    );
    for id in ["kept", "gone"] {
        db.write_local(
            1,
            "stock",
            id,
            put(Some(1), json!({"qty": 5})),
            2,
            100,
            true,
        )
        .unwrap();
    }
    // One taken back to the primary's (empty) copy, one removed: the site may not hold it.
    let empty = RecordState {
        store: Some(1),
        ..Default::default()
    };
    reject("kept", Some(empty));
    reject("gone", None);
    let rows = db.rejections(1, 10).unwrap();
    assert_eq!(rows.len(), 2);
    let (gone, kept) = (&rows[0], &rows[1]);
    assert!(gone.id > kept.id, "newest first, with rising ids");
    assert_eq!(
        gone.fields,
        Some(fields(json!({"qty": 5}))),
        "what it wrote is kept"
    );
    assert_eq!(
        (gone.record_id.as_str(), gone.reason.as_str()),
        ("gone", "no gone")
    );

    // The record's state tells of its rejection until something changes it.
    for (id, row) in [("kept", kept), ("gone", gone)] {
        let found = db.record_rejection(1, "stock", id).unwrap().expect(id);
        assert_eq!(found.id, row.id);
    }
    assert!(db.record_rejection(1, "stock", "other").unwrap().is_none());
    db.write_local(
        1,
        "stock",
        "kept",
        put(Some(1), json!({"qty": 6})),
        2,
        400,
        true,
    )
    .unwrap();
    assert!(
        db.record_rejection(1, "stock", "kept").unwrap().is_none(),
        "written again since"
    );

    // Acknowledged up to a mark that never goes back, nor past the newest, and holds
    // across a reopening.
    assert_eq!(db.acknowledge_rejections(Some(kept.id)).unwrap(), kept.id);
    assert_eq!(
        db.acknowledge_rejections(Some(0)).unwrap(),
        kept.id,
        "never back"
    );
    assert_eq!(db.acknowledge_rejections(Some(u64::MAX)).unwrap(), gone.id);
    let again = backend.satellite("s");
    assert_eq!(again.rejections_acknowledged().unwrap(), gone.id);
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
    assert_eq!(sat.saved_site_config().unwrap(), None);
    sat.save_site_config(&config(1, &[5]), Some(1)).unwrap();
    assert_eq!(sat.sync_state().unwrap().assignment_applied, 1);
    assert_eq!(sat.sync_state().unwrap().backfill, None);
    sat.apply_pull(7, &[], Cursor::Pull, 40, 1).unwrap();
    sat.start_backfill(&[6]).unwrap();
    sat.save_site_config(&config(2, &[5, 6]), Some(2)).unwrap();
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
    // A backfill started again begins from the beginning.
    sat.start_backfill(&[6, 8]).unwrap();
    assert_eq!(
        sat.sync_state().unwrap().backfill,
        Some(Backfill {
            stores: vec![6, 8],
            cursor: 0
        })
    );
    sat.finish_backfill().unwrap();
    assert_eq!(sat.sync_state().unwrap().backfill, None);
    // A configuration saved without its version applied leaves the version as it was.
    let renamed = SiteConfig {
        restricted: Vec::new(),
        ..config(3, &[6, 8])
    };
    sat.save_site_config(&renamed, None).unwrap();
    assert_eq!(sat.saved_site_config().unwrap(), Some(renamed));
    assert_eq!(sat.sync_state().unwrap().assignment_applied, 2);
}

pub fn the_stores_held_are_those_with_records(backend: &dyn Backend) {
    let (db, org, s1, s2) = primary(backend);
    for (id, store) in [("a", s1), ("b", s2), ("c", s2)] {
        db.write_local(
            org,
            "stock",
            id,
            put(Some(store), json!({"n": 1})),
            1,
            10,
            false,
        )
        .unwrap();
    }
    let every = Assignment {
        all_stores: true,
        stores: BTreeSet::new(),
    };
    let page = db.pull(org, &every, None, 0, 100).unwrap();
    let cursor = page.next;
    let pulled: Vec<Prepared> = page
        .records
        .into_iter()
        .map(|r| Prepared::new(r).unwrap())
        .collect();
    let sat = backend.satellite("s");
    assert!(sat.held_stores(org).unwrap().is_empty());
    sat.apply_pull(org, &pulled, Cursor::Pull, cursor, 1)
        .unwrap();
    assert_eq!(sat.held_stores(org).unwrap(), vec![s1, s2]);
    sat.purge_store(org, s2).unwrap();
    assert_eq!(sat.held_stores(org).unwrap(), vec![s1]);
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
