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
