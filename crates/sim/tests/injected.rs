//! The simulator can fail: each known bug, injected into the simulator's own driver,
//! is caught within the schedules CI runs (seeds from 0).

use sitesync_sim::{Bugs, run_schedule};

/// The first failing seed among the first `limit`, with why.
fn first_failure(bugs: Bugs, limit: u64) -> Option<(u64, String)> {
    (0..limit).find_map(|seed| run_schedule(seed, bugs).err().map(|e| (seed, e)))
}

/// Asserts `bugs` is caught within 200 schedules (CI runs 2,000) by the invariant
/// whose message holds `invariant`, not by some other failure of the simulator.
fn caught(bugs: Bugs, invariant: &str) {
    match first_failure(bugs, 200) {
        Some((seed, why)) => {
            eprintln!("caught at seed {seed}: {why}");
            assert!(
                why.contains(invariant),
                "seed {seed} failed otherwise: {why}"
            );
        }
        None => panic!("{bugs:?} was not caught in 200 schedules"),
    }
}

#[test]
fn a_reversed_tie_break_on_one_site_is_caught() {
    caught(
        Bugs {
            reversed_merge: true,
            ..Bugs::NONE
        },
        "differs from the primary",
    );
}

#[test]
fn a_write_acknowledged_before_its_commit_is_caught() {
    caught(
        Bugs {
            ack_before_commit: true,
            ..Bugs::NONE
        },
        "acknowledged write",
    );
}

#[test]
fn a_purge_that_forgets_a_store_is_caught() {
    caught(
        Bugs {
            purge_forgets: true,
            ..Bugs::NONE
        },
        "differs from the primary",
    );
}

#[test]
fn a_duplicated_push_applied_twice_is_caught() {
    caught(
        Bugs {
            duplicate_applied_twice: true,
            ..Bugs::NONE
        },
        "differs from the primary",
    );
}

#[test]
fn a_satellite_that_does_not_give_back_to_a_restored_primary_is_caught() {
    caught(
        Bugs {
            no_give_back: true,
            ..Bugs::NONE
        },
        "differs from the primary",
    );
}
