//! The satellite session driven by hand: no storage, no network, time as numbers.

use super::*;
use crate::session::{MAX_BACKOFF_MS, PUSH_BATCH};
use crate::{PushResponse, PushedChange, StoreRef};
use sitesync_core::RecordState;

/// Every action the session has to give now.
fn drain(s: &mut Satellite) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn change(seq: u64) -> PushedChange {
    PushedChange {
        seq,
        collection: "c".into(),
        id: format!("r{seq}"),
        change: RecordState::default(),
    }
}

fn config(version: u64, stores: &[u64]) -> SiteConfig {
    SiteConfig {
        assignment_version: version,
        all_stores: false,
        stores: stores
            .iter()
            .map(|&id| StoreRef {
                id,
                name: format!("s{id}"),
            })
            .collect(),
        restricted: Vec::new(),
    }
}

fn page(records: usize, cursor: u64, more: bool, config: SiteConfig) -> PageInfo {
    PageInfo {
        records,
        cursor,
        more,
        remaining: 0,
        config,
        incarnation: 0,
        head: 0,
    }
}

fn pull_cursor(action: &Action) -> u64 {
    match action {
        Action::Send(Request::Pull(q)) => q.cursor,
        other => panic!("expected a pull, got {other:?}"),
    }
}

/// A round started on `durable`, past its (empty) first push.
fn round_at_pull(durable: Durable, ahead: usize) -> Satellite {
    let mut s = Satellite::new(Mode::Round { ahead }, 50_000);
    assert!(matches!(drain(&mut s)[..], [Action::Load]));
    s.handle_loaded(durable, 0);
    assert!(matches!(drain(&mut s)[..], [Action::ReadOutbox { .. }]));
    s.handle_outbox(Vec::new(), 0);
    s
}

#[test]
fn a_round_pushes_pulls_asks_once_more_and_pushes_again() {
    let mut s = Satellite::new(Mode::Round { ahead: 1 }, 50_000);
    assert!(matches!(drain(&mut s)[..], [Action::Load]));
    s.handle_loaded(Durable::default(), 0);
    assert!(matches!(
        drain(&mut s)[..],
        [Action::ReadOutbox { limit: PUSH_BATCH }]
    ));
    s.handle_outbox(vec![change(1), change(2)], 1);
    assert!(matches!(&drain(&mut s)[..], [Action::Send(Request::Push(r))] if r.changes.len() == 2));
    s.handle_push_answer(
        PushResponse {
            acked_through: 2,
            rejected: vec![],
        },
        2,
    );
    assert!(matches!(&drain(&mut s)[..], [Action::AckPush(a)] if a.acked_through == 2));
    s.handle_stored(3);
    assert!(matches!(drain(&mut s)[..], [Action::ReadOutbox { .. }]));
    s.handle_outbox(Vec::new(), 4);
    let sent = drain(&mut s);
    assert_eq!(sent.len(), 1);
    assert!(matches!(&sent[0], Action::Send(Request::Pull(q)) if q.count && q.cursor == 0));
    let mut first = page(3, 10, false, SiteConfig::default());
    first.remaining = 0;
    s.handle_page(first, 5);
    assert!(matches!(
        drain(&mut s)[..],
        [Action::ApplyPages {
            pages: 1,
            target: Target::Pull,
            cursor: 10
        }]
    ));
    s.handle_stored(6);
    // Asks once more, from the new cursor, without counting.
    let once = drain(&mut s);
    assert!(matches!(&once[..], [Action::Send(Request::Pull(q))] if q.cursor == 10 && !q.count));
    s.handle_page(page(0, 10, false, SiteConfig::default()), 7);
    assert!(matches!(
        drain(&mut s)[..],
        [Action::ApplyPages { pages: 1, .. }]
    ));
    s.handle_stored(8);
    assert!(matches!(drain(&mut s)[..], [Action::ReadOutbox { .. }]));
    s.handle_outbox(Vec::new(), 9);
    assert!(matches!(
        drain(&mut s)[..],
        [Action::NoteSynced, Action::Finished { ok: true }]
    ));
    assert!(s.is_finished());
    let report = s.report();
    assert_eq!((report.pushed, report.pulled, report.total), (2, 3, 3));
}

#[test]
fn headers_let_pages_be_asked_for_ahead_and_written_together() {
    let mut s = round_at_pull(Durable::default(), 3);
    let first = drain(&mut s);
    assert_eq!(first.len(), 1);
    assert_eq!(pull_cursor(&first[0]), 0);
    s.handle_pull_started(5, true, 1);
    let second = drain(&mut s);
    assert_eq!(pull_cursor(&second[0]), 5);
    s.handle_pull_started(9, true, 2);
    assert_eq!(pull_cursor(&drain(&mut s)[0]), 9);
    s.handle_pull_started(12, true, 3);
    // Three pages unwritten: no fourth question until one is written.
    assert!(drain(&mut s).is_empty());
    s.handle_page(page(5, 5, true, SiteConfig::default()), 4);
    s.handle_page(page(4, 9, true, SiteConfig::default()), 4);
    // Both are written together, and pages handed to a write no longer hold back the
    // next question: the primary reads it while they are written.
    let actions = drain(&mut s);
    assert!(matches!(
        actions[..],
        [
            Action::ApplyPages {
                pages: 2,
                target: Target::Pull,
                cursor: 9
            },
            Action::Send(Request::Pull(PullQuery { cursor: 12, .. }))
        ]
    ));
    s.handle_stored(5);
    assert_eq!(s.durable().pull_cursor, 9);
}

#[test]
fn writes_take_pages_up_to_the_limit_of_records() {
    let mut s = Satellite::new(Mode::Round { ahead: 4 }, 10);
    drain(&mut s);
    s.handle_loaded(Durable::default(), 0);
    drain(&mut s);
    s.handle_outbox(Vec::new(), 0);
    drain(&mut s);
    s.handle_pull_started(1, true, 0);
    drain(&mut s);
    s.handle_pull_started(2, false, 0);
    s.handle_page(page(6, 1, true, SiteConfig::default()), 0);
    s.handle_page(page(6, 2, false, SiteConfig::default()), 0);
    // 6 records are fewer than 10: the second page joins; 12 then reach the limit.
    assert!(matches!(
        drain(&mut s)[..],
        [Action::ApplyPages {
            pages: 2,
            cursor: 2,
            ..
        }]
    ));
}

#[test]
fn a_short_acknowledgement_fails_the_round_with_its_reason() {
    let mut s = Satellite::new(Mode::Round { ahead: 1 }, 10);
    drain(&mut s);
    s.handle_loaded(Durable::default(), 0);
    drain(&mut s);
    s.handle_outbox(vec![change(1), change(2)], 0);
    drain(&mut s);
    s.handle_push_answer(
        PushResponse {
            acked_through: 1,
            rejected: vec![],
        },
        0,
    );
    let actions = drain(&mut s);
    assert!(
        matches!(&actions[..], [Action::NoteError(e), Action::Finished { ok: false }] if e.contains("up to 1 of 2"))
    );
    assert!(s.error().is_some_and(|e| e.contains("will retry")));
}

#[test]
fn a_new_assignment_pushes_first_purges_backfills_and_then_saves() {
    let durable = Durable {
        pull_cursor: 7,
        assignment_applied: 1,
        config: config(1, &[1, 2]),
        ..Durable::default()
    };
    let mut s = round_at_pull(durable, 1);
    drain(&mut s);
    s.handle_page(page(0, 7, false, config(2, &[2, 3])), 0);
    drain(&mut s);
    s.handle_stored(0);
    assert!(matches!(drain(&mut s)[..], [Action::ReadHeldStores]));
    s.handle_held_stores(vec![1, 2], 0);
    // Store 1 leaves: the outbox is pushed first.
    assert!(matches!(drain(&mut s)[..], [Action::ReadOutbox { .. }]));
    s.handle_outbox(Vec::new(), 0);
    let mut steps = Vec::new();
    while let Some(step) = s.poll_action() {
        assert!(s.poll_action().is_none(), "one step at a time");
        steps.push(step);
        s.handle_stored(0);
        if matches!(steps.last(), Some(Action::SaveConfig { .. })) {
            break;
        }
    }
    assert!(matches!(&steps[..], [
        Action::Purge(1),
        Action::StartBackfill(stores),
        Action::SaveConfig { applied: Some(2), .. },
    ] if stores == &vec![3]));
    let backfill = drain(&mut s);
    assert!(matches!(&backfill[..], [Action::Send(Request::Pull(q))]
        if q.stores.as_deref() == Some("3") && q.cursor == 0 && q.assignment_version.is_none()));
    s.handle_page(page(2, 4, false, config(2, &[2, 3])), 0);
    assert!(matches!(
        drain(&mut s)[..],
        [Action::ApplyPages {
            target: Target::Backfill { last: true },
            cursor: 4,
            ..
        }]
    ));
    s.handle_stored(0);
    assert!(s.durable().backfill.is_empty());
    assert_eq!(s.durable().assignment_applied, 2);
    // Then the round's last question, with the new version.
    assert!(
        matches!(&drain(&mut s)[..], [Action::Send(Request::Pull(q))] if q.assignment_version == Some(2))
    );
}

#[test]
fn a_backfill_cut_short_is_resumed_with_the_stores_still_held() {
    let durable = Durable {
        pull_cursor: 7,
        assignment_applied: 2,
        config: config(2, &[2, 3]),
        backfill: vec![3],
        backfill_cursor: 40,
        incarnation: 0,
    };
    let mut s = round_at_pull(durable, 1);
    drain(&mut s);
    s.handle_page(page(0, 7, false, config(3, &[2, 4])), 0);
    drain(&mut s);
    s.handle_stored(0);
    assert!(matches!(drain(&mut s)[..], [Action::ReadHeldStores]));
    // Store 9's records are here though no saved configuration had it (a page of an
    // assignment whose configuration a crash kept from being saved): purged too.
    s.handle_held_stores(vec![2, 9], 0);
    // Store 3 was taken away: push first, purge it; the backfill keeps only store 4.
    drain(&mut s);
    s.handle_outbox(Vec::new(), 0);
    assert!(matches!(s.poll_action(), Some(Action::Purge(3))));
    s.handle_stored(0);
    assert!(matches!(s.poll_action(), Some(Action::Purge(9))));
    s.handle_stored(0);
    assert!(matches!(s.poll_action(), Some(Action::StartBackfill(ref v)) if v == &vec![4]));
}

#[test]
fn a_backfill_routed_under_another_assignment_completes_nothing_and_is_followed() {
    // Simulator seed 1218: store 3 was taken away and given back while its backfill was
    // in flight; the primary answered under the assignment without it (no store-3
    // record, "no more"), and the site, taking that as done, never asked again.
    let durable = Durable {
        pull_cursor: 4,
        assignment_applied: 2,
        config: config(2, &[1, 3]),
        backfill: vec![3],
        backfill_cursor: 0,
        incarnation: 0,
    };
    let mut s = Satellite::new(Mode::LivePull, 10);
    drain(&mut s);
    s.handle_loaded(durable, 0);
    drain(&mut s);
    s.handle_page(page(0, 4, false, config(2, &[1, 3])), 0);
    drain(&mut s);
    s.handle_stored(0);
    let backfill = drain(&mut s);
    assert!(
        matches!(&backfill[..], [Action::Send(Request::Pull(q))] if q.stores.as_deref() == Some("3"))
    );
    s.handle_page(page(0, 10, false, config(3, &[1])), 0);
    assert!(matches!(
        drain(&mut s)[..],
        [Action::ApplyPages {
            target: Target::Backfill { last: false },
            cursor: 0,
            ..
        }]
    ));
    s.handle_stored(0);
    assert_eq!(s.durable().backfill, vec![3], "the backfill is not over");
    // The site follows the assignment the page was routed under: store 3 goes.
    assert!(matches!(drain(&mut s)[..], [Action::ReadHeldStores]));
    s.handle_held_stores(vec![1, 3], 0);
    drain(&mut s);
    s.handle_outbox(Vec::new(), 0);
    assert!(matches!(s.poll_action(), Some(Action::Purge(3))));
    s.handle_stored(0);
    assert!(matches!(
        s.poll_action(),
        Some(Action::SaveConfig {
            applied: Some(3),
            ..
        })
    ));
}

#[test]
fn the_live_lane_long_polls_once_caught_up_and_backs_off_on_failure() {
    let mut s = Satellite::new(Mode::LivePull, 10);
    drain(&mut s);
    s.handle_loaded(Durable::default(), 0);
    let first = drain(&mut s);
    assert!(matches!(&first[..], [Action::Send(Request::Pull(q))] if q.wait_ms == Some(0)));
    // The headers say more wait, but a live pull asks nothing more while it writes:
    // its pull ends with the write, and a question in flight would be answered to the
    // next one (the e2e crash test lost a page that way).
    s.handle_pull_started(3, true, 10);
    s.handle_page(page(1, 3, false, SiteConfig::default()), 10);
    assert!(matches!(
        drain(&mut s)[..],
        [Action::ApplyPages { cursor: 3, .. }]
    ));
    s.handle_stored(11);
    let next = drain(&mut s);
    assert!(
        matches!(&next[..], [Action::NoteSynced, Action::Send(Request::Pull(q))]
        if q.wait_ms == Some(LIVE_WAIT_MS) && q.cursor == 3)
    );
    s.handle_failure("cannot reach primary".into(), 100);
    let actions = drain(&mut s);
    assert!(matches!(
        &actions[..],
        [Action::NoteError(_), Action::WaitUntil(300)]
    ));
    s.handle_timeout(300);
    assert!(matches!(drain(&mut s)[..], [Action::Load]));
    s.handle_loaded(
        Durable {
            pull_cursor: 3,
            ..Durable::default()
        },
        301,
    );
    assert!(matches!(&drain(&mut s)[..], [Action::Send(Request::Pull(q))] if q.wait_ms == Some(0)));
    // Failures in a row wait longer, up to the limit.
    let mut last = 0;
    for i in 0..10 {
        s.handle_failure("down".into(), 1_000 * i);
        let Some(Action::WaitUntil(at)) = drain(&mut s).pop() else {
            panic!()
        };
        last = at - 1_000 * i;
        s.handle_timeout(at);
        drain(&mut s);
        s.handle_loaded(Durable::default(), at);
        drain(&mut s);
    }
    assert_eq!(last, MAX_BACKOFF_MS);
}

#[test]
fn the_push_lane_rests_until_woken() {
    let mut s = Satellite::new(Mode::LivePush, 10);
    drain(&mut s);
    s.handle_loaded(Durable::default(), 0);
    drain(&mut s);
    s.handle_outbox(Vec::new(), 50);
    assert!(matches!(drain(&mut s)[..], [Action::WaitUntil(t)] if t == 50 + PUSH_REST_MS));
    s.handle_wake(60);
    assert!(matches!(drain(&mut s)[..], [Action::ReadOutbox { .. }]));
}

#[test]
fn answers_nobody_asked_for_fail_instead_of_being_applied() {
    let mut s = round_at_pull(Durable::default(), 1);
    drain(&mut s);
    s.handle_page(page(1, 3, false, SiteConfig::default()), 0);
    s.handle_page(page(1, 4, false, SiteConfig::default()), 0);
    let actions = drain(&mut s);
    assert!(
        matches!(&actions[..], [Action::NoteError(e), Action::Finished { ok: false }] if e.contains("not asked for"))
    );
}

/// Simulator seeds 221, 256, 1795: the cursor must not move past records routed under
/// an assignment not yet followed, or a crash before following it loses the records a
/// store taken away and given back missed meanwhile.
#[test]
fn a_page_of_an_assignment_not_followed_keeps_the_cursor_until_it_is() {
    let durable = Durable {
        pull_cursor: 7,
        assignment_applied: 1,
        config: config(1, &[1, 2]),
        ..Durable::default()
    };
    let mut s = round_at_pull(durable, 1);
    assert_eq!(pull_cursor(&drain(&mut s)[0]), 7);
    s.handle_page(page(3, 30, false, config(2, &[2])), 0);
    assert!(matches!(
        drain(&mut s)[..],
        [Action::ApplyPages {
            target: Target::Pull,
            cursor: 7,
            ..
        }]
    ));
    s.handle_stored(0);
    assert_eq!(s.durable().pull_cursor, 7, "the cursor stays where it was");
    assert!(matches!(drain(&mut s)[..], [Action::ReadHeldStores]));
    s.handle_held_stores(vec![1, 2], 0);
    assert!(matches!(drain(&mut s)[..], [Action::ReadOutbox { .. }]));
    s.handle_outbox(Vec::new(), 0);
    while let Some(step) = s.poll_action() {
        let saved = matches!(step, Action::SaveConfig { .. });
        s.handle_stored(0);
        if saved {
            break;
        }
    }
    assert_eq!(s.durable().assignment_applied, 2);
    // Pulled again from the cursor kept, now as the site holds its stores.
    let again = drain(&mut s);
    assert!(
        matches!(&again[..], [Action::Send(Request::Pull(q))] if q.cursor == 7 && q.assignment_version == Some(2)),
        "{again:?}"
    );
    s.handle_page(page(2, 30, false, config(2, &[2])), 0);
    assert!(matches!(
        drain(&mut s)[..],
        [Action::ApplyPages {
            target: Target::Pull,
            cursor: 30,
            ..
        }]
    ));
}

/// A page from a primary of `incarnation` whose head is `head`.
fn page_of(incarnation: u64, head: u64, cursor: u64) -> PageInfo {
    PageInfo {
        incarnation,
        head,
        ..page(1, cursor, false, SiteConfig::default())
    }
}

#[test]
fn a_primary_that_went_back_gets_what_the_site_holds_and_is_pulled_from_the_start() {
    let durable = Durable {
        pull_cursor: 40,
        incarnation: 5,
        backfill: vec![3],
        backfill_cursor: 9,
        ..Durable::default()
    };
    // The same incarnation, its head at or past the cursor: nothing went back.
    let mut s = round_at_pull(durable.clone(), 1);
    drain(&mut s);
    s.handle_page(page_of(5, 50, 50), 0);
    assert!(matches!(
        drain(&mut s)[..],
        [Action::ApplyPages { cursor: 50, .. }]
    ));

    // Another incarnation, or a head behind the cursor asked from (a database put back
    // over the same file): the page is dropped and the site gives back what it holds.
    for went_back in [page_of(6, 50, 50), page_of(5, 30, 40)] {
        let incarnation = went_back.incarnation;
        let mut s = round_at_pull(durable.clone(), 1);
        drain(&mut s);
        s.handle_page(went_back, 0);
        let actions = drain(&mut s);
        assert!(
            matches!(&actions[..], [Action::GiveBack { incarnation: i }] if *i == incarnation),
            "{actions:?}"
        );
        s.handle_stored(1);
        let d = s.durable();
        assert_eq!(
            (d.pull_cursor, d.backfill_cursor, d.incarnation),
            (0, 0, incarnation)
        );
        assert!(d.backfill.is_empty());
        // What was queued is pushed, then the pull starts from the beginning.
        assert!(matches!(drain(&mut s)[..], [Action::ReadOutbox { .. }]));
        s.handle_outbox(Vec::new(), 2);
        assert_eq!(pull_cursor(&drain(&mut s)[0]), 0);
    }

    // The live pull lane pulls again at once, without waiting.
    let mut s = Satellite::new(Mode::LivePull, 50_000);
    drain(&mut s);
    s.handle_loaded(durable, 0);
    drain(&mut s);
    s.handle_page(page_of(7, 50, 50), 0);
    assert!(matches!(
        drain(&mut s)[..],
        [Action::GiveBack { incarnation: 7 }]
    ));
    s.handle_stored(1);
    assert!(
        matches!(&drain(&mut s)[..], [Action::Send(Request::Pull(q))] if q.cursor == 0 && q.wait_ms == Some(0))
    );

    // A primary that says no incarnation is not checked.
    let mut s = round_at_pull(
        Durable {
            pull_cursor: 40,
            incarnation: 5,
            ..Durable::default()
        },
        1,
    );
    drain(&mut s);
    s.handle_page(page_of(0, 0, 40), 0);
    assert!(matches!(drain(&mut s)[..], [Action::ApplyPages { .. }]));
}

/// Simulator seeds 2900, 3540: the primary, restored from a backup, numbered its
/// assignments again from the backup's, and this site's store set came back under the
/// version the site had applied before. Taken as the same assignment, it was saved
/// without a purge, and the site kept records of stores no longer its own.
#[test]
fn after_giving_back_the_next_assignment_is_followed_whole_whatever_its_version() {
    let durable = Durable {
        pull_cursor: 40,
        assignment_applied: 3,
        config: config(3, &[1, 2, 3]),
        incarnation: 5,
        ..Durable::default()
    };
    let mut s = Satellite::new(Mode::LivePull, 50_000);
    drain(&mut s);
    s.handle_loaded(durable, 0);
    drain(&mut s);
    s.handle_page(page_of(6, 50, 50), 0);
    assert!(matches!(
        drain(&mut s)[..],
        [Action::GiveBack { incarnation: 6 }]
    ));
    s.handle_stored(1);
    assert_eq!(
        s.durable().assignment_applied,
        0,
        "forgotten with the cursor"
    );
    let again = drain(&mut s);
    assert!(
        matches!(&again[..], [Action::Send(Request::Pull(q))] if q.cursor == 0 && q.assignment_version == Some(0)),
        "{again:?}"
    );
    // Version 3 again, of the primary that went back: store 2 only.
    let restored = config(3, &[2]);
    s.handle_page(
        PageInfo {
            incarnation: 6,
            head: 30,
            ..page(2, 30, false, restored.clone())
        },
        2,
    );
    assert!(matches!(
        drain(&mut s)[..],
        [Action::ApplyPages { cursor: 0, .. }]
    ));
    s.handle_stored(3);
    assert!(matches!(drain(&mut s)[..], [Action::ReadHeldStores]));
    s.handle_held_stores(vec![1, 2, 3], 3);
    assert!(matches!(drain(&mut s)[..], [Action::ReadOutbox { .. }]));
    s.handle_outbox(Vec::new(), 3);
    let mut steps = Vec::new();
    while let Some(step) = s.poll_action() {
        let saved = matches!(step, Action::SaveConfig { .. });
        steps.push(step);
        s.handle_stored(4);
        if saved {
            break;
        }
    }
    assert!(
        matches!(&steps[..], [
            Action::Purge(1),
            Action::Purge(3),
            Action::SaveConfig { config, applied: Some(3) },
        ] if config == &restored),
        "{steps:?}"
    );
    // Then pulled again from the start, as the site now holds its stores.
    assert!(
        matches!(&drain(&mut s)[..], [Action::Send(Request::Pull(q))] if q.cursor == 0 && q.assignment_version == Some(3))
    );
}
