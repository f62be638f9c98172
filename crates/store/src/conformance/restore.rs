//! A primary that went back (restored from a backup): its incarnation and head, and a
//! satellite giving back what it holds.

use super::*;

/// The primary of [`primary`], named `name`, with "prices" restricted.
fn primary_named(backend: &dyn Backend, name: &str) -> (Box<dyn PrimaryStorage>, u64, u64) {
    let db = backend.primary(name);
    let org = db.create_org("Acme", 1).unwrap().id;
    let s1 = db.create_store(org, "North").unwrap().id;
    db.create_store(org, "South").unwrap();
    let assignment = Assignment {
        all_stores: false,
        stores: BTreeSet::from([s1]),
    };
    db.create_site(org, None, Some("till"), &|_| "hash".into(), &assignment, 1)
        .unwrap();
    db.restrict(org, "prices").unwrap();
    (db, org, s1)
}

pub fn a_satellite_gives_back_what_it_holds_to_a_primary_that_went_back(backend: &dyn Backend) {
    let (db, org, s1) = primary_named(backend, "p");
    let first = db.incarnation().unwrap();
    assert_ne!(first, 0, "a primary always has an incarnation");
    assert_eq!(
        backend.primary("p").incarnation().unwrap(),
        first,
        "kept on reopening"
    );
    // A price (restricted: only the primary writes it), a North record from the
    // primary, and one from the satellite.
    let price = put(None, json!({"price": 3}));
    db.write_local(org, "prices", "p", price, 1, 20, false)
        .unwrap();
    let north = put(Some(s1), json!({"qty": 1}));
    db.write_local(org, "stock", "n", north, 1, 21, false)
        .unwrap();
    let mine = change(1, "mine", Some(s1), json!({"qty": 2}), 2, 22);
    db.apply_push(org, 2, &[mine], 30).unwrap();
    let routed = Assignment {
        all_stores: false,
        stores: BTreeSet::from([s1]),
    };
    let page = db.pull(org, &routed, None, 0, 100).unwrap();
    assert_eq!(page.records.len(), 3);
    assert_eq!((page.head, page.incarnation), (page.next, first));

    let sat = backend.satellite("s");
    assert_eq!(
        sat.give_back(org, first).unwrap(),
        0,
        "a new site holds nothing"
    );
    let pulled: Vec<Prepared> = page
        .records
        .into_iter()
        .map(|r| Prepared::new(r).unwrap())
        .collect();
    sat.apply_pull(org, &pulled, Cursor::Pull, page.next, 40)
        .unwrap();
    assert_eq!(sat.sync_state().unwrap().incarnation, first);

    // A primary that lost every record (as one restored from an old backup).
    let (back, _, _) = primary_named(backend, "p-restored");
    let second = back.incarnation().unwrap();
    assert_ne!(second, first);
    sat.start_backfill(&[s1]).unwrap();
    let applied = SiteConfig {
        assignment_version: 4,
        ..SiteConfig::default()
    };
    sat.save_site_config(&applied, Some(4)).unwrap();
    assert_eq!(sat.give_back(org, second).unwrap(), 3);
    let state = sat.sync_state().unwrap();
    assert_eq!(
        state,
        SyncState {
            pull_cursor: 0,
            assignment_applied: 0,
            backfill: None,
            incarnation: second,
        },
        "the assignment applied is forgotten: the primary numbers its assignments again"
    );
    let given = sat.outbox(100).unwrap();
    assert_eq!(given.len(), 3);
    // What the site may write comes back whole; the price is still refused.
    let outcome = back.apply_push(org, 2, &given, 50).unwrap();
    let refused: Vec<&str> = outcome
        .response
        .rejected
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!((outcome.applied, refused), (2, vec!["p"]));
    for id in ["n", "mine"] {
        let there = back.record(org, "stock", id).unwrap().unwrap();
        let here = sat.record(org, "stock", id).unwrap().unwrap();
        assert_eq!(
            there.state, here.state,
            "{id} came back as the site held it"
        );
    }

    // Given back to a primary that holds it all, it is a no-op, the restricted price
    // included: nothing is rejected and no sequence moves.
    let head = db.head().unwrap();
    let again: Vec<PushedChange> = given
        .into_iter()
        .map(|c| PushedChange {
            seq: c.seq + 10,
            ..c
        })
        .collect();
    let outcome = db.apply_push(org, 2, &again, 60).unwrap();
    assert!(
        outcome.response.rejected.is_empty(),
        "{:?}",
        outcome.response.rejected
    );
    assert_eq!(db.head().unwrap(), head);

    let next = db.new_incarnation(1).unwrap();
    assert!(
        next > first,
        "always above the last, whatever the clock says"
    );
    assert_eq!(db.incarnation().unwrap(), next);
}
