//! A deterministic simulator of sitesync: a primary and 2–8 satellites in one process,
//! each on a real SQLite file, driven by one seeded generator through the real sync
//! session ([`sitesync_protocol::session`]) and the primary's real handling
//! ([`sitesync_node::primary::serve_push`], [`sitesync_node::primary::serve_pull`]).
//! The schedule delays, drops, duplicates and reorders messages, crashes and restarts
//! satellites at any step, skews their clocks by hours (and back), reassigns stores,
//! revokes sites and (one schedule in eight each) crashes the primary or restores it
//! from an older backup, while the sites write, edit concurrently, delete and (one
//! schedule in two) add to counters; then it heals the network, lets every site sync until
//! quiet, and checks the invariants.
//!
//! # Layout
//!
//! - [`rng`]: the one seeded random generator (also used by e2e tests and benchmarks).
//! - [`invariants`]: the ledger of acknowledged writes and the checks every replica
//!   must pass (also used by e2e tests and benchmarks).
//! - [`Bugs`]: known bugs the simulator injects into its own driver, to prove it fails.
//! - `world`: one schedule's sites, network and steps (writes and faults); `deliver`:
//!   the network and the primary's handling; `drive`: a satellite's lanes carried out;
//!   `site`: a satellite; `net`: messages; `restore`: the primary backed up and
//!   restored; `count`: counters and their check; `check`: healing and the
//!   end-of-schedule checks.
//!
//! `SIM_TRACE=site3` prints the actions of that satellite and the faults it meets;
//! `SIM_TRACE=primary`, the primary's crashes, backups and restores.

mod bugs;
mod check;
mod count;
mod deliver;
mod drive;
pub mod invariants;
mod net;
mod restore;
pub mod rng;
mod site;
mod world;

pub use bugs::Bugs;
pub use rng::Rng;

use std::path::PathBuf;

/// What one schedule did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    /// Satellites.
    pub sites: usize,
    /// Steps before healing.
    pub steps: usize,
    /// Writes acknowledged.
    pub writes: u64,
    /// Requests sent.
    pub requests: u64,
}

/// Runs the schedule of `seed` with `bugs` injected; `Err` says which invariant broke.
pub fn run_schedule(seed: u64, bugs: Bugs) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    // Mostly small worlds (2–4 satellites), where faults meet often; one schedule in
    // eight (seeds ≡ 7 mod 8) has 6–8, so fan-out and many concurrent writers are
    // covered too. Decided by the seed alone, so the seeds kept as regressions replay
    // the worlds they failed in.
    let sites = 2 + rng.pick(3) + if seed % 8 == 7 { 4 } else { 0 };
    let stores = 2 + rng.pick(2);
    let steps = 150 + rng.pick(250);
    let dir = tempfile::Builder::new()
        .prefix("sitesync-sim-")
        .tempdir_in(scratch())
        .map_err(|e| format!("cannot make a folder for the schedule: {e}"))?;
    // One schedule in eight (seeds ≡ 1 mod 8, none of the kept regression seeds) also
    // crashes the primary now and then.
    let primary_crashes = (seed % 8 == 1).then(|| Rng::new(seed ^ 0x0070_7269_6d61_7279));
    // And one in eight (seeds ≡ 4 mod 8: of the kept regression seeds, 2900 and 3540)
    // backs the primary up now and then, and restores it from its latest backup.
    let restores = (seed % 8 == 4).then(|| Rng::new(seed ^ 0x0072_6573_746f_7265));
    let primary_faults = (primary_crashes, restores);
    let mut world = world::World::new(dir.path(), rng, bugs, (sites, stores), primary_faults)?;
    // Half the schedules (seeds ≡ 1, 2, 4, 7 mod 8: of the kept regression seeds, 1218,
    // which failed with counters, and 2900 and 3540) also add to counters.
    if matches!(seed % 8, 1 | 2 | 4 | 7) {
        world.counts = Some(Rng::new(seed ^ 0x0063_6f75_6e74_6572));
    }
    for _ in 0..steps {
        world.step()?;
    }
    world.heal()?;
    world.check()?;
    Ok(Outcome {
        sites,
        steps,
        writes: world.ledger.acks(),
        requests: world.requests,
    })
}

/// Where schedules keep their files: memory when the system has a memory file system
/// (fsync is then nearly free), else the system's temporary folder.
fn scratch() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// Runs `count` schedules from seed `first` on; returns the seeds that failed, with why.
pub fn run_many(first: u64, count: u64, bugs: Bugs) -> Vec<(u64, String)> {
    (first..first.saturating_add(count))
        .filter_map(|seed| run_schedule(seed, bugs).err().map(|e| (seed, e)))
        .collect()
}
