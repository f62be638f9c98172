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
