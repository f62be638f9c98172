//! Every schedule the simulator ever failed on a real bug, replayed.

use sitesync_sim::{Bugs, run_schedule};

/// Seed 6 (and 19, 24, 37, 45 of the first 50): a satellite wrote a page pulled under a
/// new assignment that added a store, then crashed before saving that assignment; a
/// later assignment took the store away, but the purge only looked at the stores of the
/// configuration last saved, so the store's records stayed on the site for good. Fixed
/// by purging every store the site holds records of and is not assigned.
#[test]
fn stores_written_before_a_crash_kept_their_assignment_are_purged() {
    for seed in [6, 19, 24, 37, 45] {
        if let Err(e) = run_schedule(seed, Bugs::NONE) {
            panic!("seed {seed}: {e}");
        }
    }
}

/// Seeds 221, 256 and 1795: a satellite wrote a page pulled under a new assignment that
/// took a store away, then crashed before saving that assignment; a later assignment
/// gave the store back. Going from the saved assignment to the latest the store was
/// never taken away, so nothing fetched the store's records the page's cursor had moved
/// past. Fixed in the session: a page routed under an assignment the site has not
/// followed is written without moving the cursor, and the pull starts again from it
/// once the assignment is followed.
#[test]
fn a_store_taken_away_and_given_back_across_a_crash_is_backfilled() {
    for seed in [221, 256, 1795] {
        if let Err(e) = run_schedule(seed, Bugs::NONE) {
            panic!("seed {seed}: {e}");
        }
    }
}

/// Seed 1218: a store was taken away from a satellite and given back while its backfill
/// was in flight. The primary answered the backfill under the assignment without the
/// store (no record of it, "no more"), the site took the backfill as done, and going
/// from the assignment it had followed to the latest the store was never taken away:
/// its records stayed missing. Fixed in the session: a backfill page routed under an
/// assignment the site has not followed completes nothing; the site follows that
/// assignment, then backfills again what the latest one gives it.
#[test]
fn a_store_taken_away_and_given_back_during_its_backfill_is_backfilled_again() {
    if let Err(e) = run_schedule(1218, Bugs::NONE) {
        panic!("seed 1218: {e}");
    }
}

/// Seeds 2900 and 3540: the primary was restored from an older backup, its assignment
/// versions went back with it, and a new assignment took one of a satellite's stores
/// away under the very version the site had applied before. The site gave back what it
/// held and pulled from the start, took the page's configuration for the assignment it
/// had already followed (same version, only saved) and never purged the store: it kept
/// records the primary no longer routed to it. Fixed in the session and the satellite's
/// storage: giving back forgets the assignment applied (0), so the first assignment of
/// the primary that went back is followed whole, the stores held and not assigned
/// purged.
#[test]
fn an_assignment_version_that_came_back_after_a_restore_is_followed() {
    for seed in [2900, 3540] {
        if let Err(e) = run_schedule(seed, Bugs::NONE) {
            panic!("seed {seed}: {e}");
        }
    }
}
