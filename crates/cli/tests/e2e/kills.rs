//! SIGKILL at random moments: each round writes a batch (at a satellite, to be pushed;
//! at the primary, to be pulled; or a fresh satellite's first sync of everything), starts
//! the sync, and kills the satellite or the primary after a delay drawn from a seed; then
//! restarts what it killed and syncs to the end. A round of site A's writes puts a file
//! too, whose upload the kill may cut short. The replica of the round's satellite is
//! compared with the primary's after every round, and the whole invariant
//! (`invariants`, files included) after the last.
//!
//! 20 rounds by default; `SITESYNC_SOAK=1` runs 500. The seed is printed, and
//! `SITESYNC_FAULT_SEED=N` replays a run's rounds (what a kill interrupts still depends
//! on the machine's timing).
//!
//! A satellite killed mid-enrolment is `crash.rs`'s; kills aimed at a given point of a
//! transfer (by watching the cursor) are there too.

use crate::harness::{Cluster, Guard, Node, fill_with, spawn};
use crate::invariants::{Holds, Ledger, Site, converged, fault_seed, same_replica};
use serde_json::{Map, Value, json};
use sitesync_sim::Rng;
use std::time::{Duration, Instant};

const CI_ROUNDS: u64 = 20;
const SOAK_ROUNDS: u64 = 500;
/// Records the primary holds before the first round, for fresh satellites to pull.
const INITIAL: u64 = 3_000;

fn rounds() -> u64 {
    if std::env::var("SITESYNC_SOAK").is_ok_and(|v| v == "1") {
        SOAK_ROUNDS
    } else {
        CI_ROUNDS
    }
}

/// The fields of record `n` as written in round `round` (rewrites bump the round, so
/// an older write winning would show).
fn fields(round: u64) -> impl Fn(u64) -> Map<String, Value> {
    move |n| match json!({"n": n, "round": round, "pad": "x".repeat(48)}) {
        Value::Object(map) => map,
        _ => unreachable!("an object"),
    }
}

/// Site A puts a file of 0.5 to 3 MiB into record `a-files/f{round}` (store S1): its
/// upload is what the round's kill may cut short.
fn put_file(cluster: &Cluster, site: &Node, round: u64, rng: &mut Rng, ledger: &Ledger) {
    let size = (512 << 10) + rng.below(5 << 19) as usize;
    let bytes: Vec<u8> = (0..size.div_ceil(8))
        .flat_map(|_| rng.next_u64().to_le_bytes())
        .take(size)
        .collect();
    let path = cluster.path(&format!("file-{round}.bin"));
    std::fs::write(&path, bytes).expect("write the file to put");
    let id = format!("f{round}");
    let path = path.to_string_lossy().into_owned();
    let put = ["--json", "file", "put", "a-files", &id, "doc", &path];
    let record = site.cli(&put).json()["record"]["fields"].clone();
    ledger.put(&site.name, "a-files", &id, Some("S1"), record);
}

/// Where a round's writes go and who writes them.
struct Writes<'a> {
    node: &'a Node,
    collection: &'static str,
    /// Store name and id, or organisation-wide.
    store: Option<(&'static str, u64)>,
    /// Records written so far (ids `0..next`).
    next: u64,
}

impl Writes<'_> {
    /// Writes `count` records in one transaction (new ones, or a rewrite of earlier
    /// ones), and notes them in the ledger once committed.
    fn write(&mut self, rng: &mut Rng, org: u64, round: u64, count: u64, ledger: &Ledger) {
        let start = if self.next > count && rng.below(3) == 0 {
            rng.below(self.next - count)
        } else {
            self.next
        };
        let range = start..start + count;
        let satellite = self.node.site_id != 1;
        let store = self.store.map(|(_, id)| id);
        fill_with(
            self.node,
            org,
            self.collection,
            store,
            range.clone(),
            satellite,
            fields(round),
        );
        for n in range {
            let fields = Value::Object(fields(round)(n));
            let id = format!("r{n:06}");
            ledger.put(
                &self.node.name,
                self.collection,
                &id,
                self.store.map(|(s, _)| s),
                fields,
            );
        }
        self.next = self.next.max(start + count);
    }
}

/// What a round runs and kills.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Push,
    Pull,
    Initial,
}

/// Runs `sync` (or `serve`) on `site` and SIGKILLs it, or the primary, after `delay`;
/// restarts the primary if it was killed. Returns whether the kill landed while the
/// sync was still running.
fn sync_and_kill(
    site: &mut Node,
    primary: &mut Node,
    kill_primary: bool,
    serve: bool,
    delay: Duration,
) -> bool {
    let mut sync: Option<Guard> = (!serve).then(|| spawn(site, &["sync"]));
    if serve {
        site.serve();
    }
    std::thread::sleep(delay);
    let running = match &mut sync {
        Some(guard) => guard.running(),
        None => true,
    };
    if kill_primary {
        primary.kill();
        if let Some(guard) = &mut sync {
            // Without its primary the sync fails by itself; a serve keeps retrying.
            guard.wait(Duration::from_secs(30));
        }
        site.kill();
        primary.serve();
    } else {
        if let Some(guard) = &mut sync {
            guard.kill();
        }
        site.kill();
    }
    running
}

#[test]
fn sites_killed_at_random_moments_lose_nothing() {
    let seed = fault_seed("kills");
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let cluster = Cluster::new();
    let mut primary = cluster.primary();
    // Restarts come back on the same address, where the satellites look for it.
    primary.set("listen", &primary.addr().to_string()).ok();
    let key = cluster.org(&primary, "Acme");
    primary.org = Some("Acme".into());
    let s1 = primary
        .cli(&["--json", "store", "create", "--org", "Acme", "S1"])
        .json()["id"]
        .as_u64()
        .expect("store id");
    let org = primary.cli(&["--json", "org", "show", "Acme"]).json()["id"]
        .as_u64()
        .expect("org id");
    let mut pusher = cluster.satellite("site-a", &primary, &key, &["--store", "S1"]);
    let mut puller = cluster.satellite("site-b", &primary, &key, &["--all-stores"]);
    let ledger = Ledger::default();

    // The primary writes in S1 and organisation-wide; site A writes in S1.
    let by_primary = [("p-store", Some(("S1", s1))), ("p-org", None)];
    let mut p_next = [0u64; 2];
    for (i, (collection, store)) in by_primary.into_iter().enumerate() {
        let mut writes = Writes {
            node: &primary,
            collection,
            store,
            next: 0,
        };
        writes.write(&mut rng, org, 0, INITIAL / 2, &ledger);
        p_next[i] = writes.next;
    }
    let mut a_next = 0;

    let mut fresh: Option<Node> = None;
    let mut landed = [0u64; 3];
    let mut primary_kills = 0;
    let total = rounds();
    for round in 1..=total {
        let phase = [Phase::Push, Phase::Pull, Phase::Initial][rng.below(3) as usize];
        let kill_primary = rng.below(100) < 40;
        let serve = rng.below(100) < 30;
        let count = 50 + rng.below(3_000);
        let delay = Duration::from_millis(rng.below(400));
        let what = match phase {
            Phase::Initial => "a fresh satellite pulls everything".to_string(),
            _ => format!("{count} records"),
        };
        eprintln!(
            "kills: round {round}: {phase:?}, {what}, kill {} after {delay:?}{}",
            if kill_primary {
                "the primary"
            } else {
                "the satellite"
            },
            if serve { " (serve)" } else { "" }
        );
        let site: &mut Node = match phase {
            Phase::Push => {
                let mut writes = Writes {
                    node: &pusher,
                    collection: "a-store",
                    store: Some(("S1", s1)),
                    next: a_next,
                };
                writes.write(&mut rng, org, round, count, &ledger);
                a_next = writes.next;
                put_file(&cluster, &pusher, round, &mut rng, &ledger);
                &mut pusher
            }
            Phase::Pull => {
                let i = rng.below(2) as usize;
                let (collection, store) = by_primary[i];
                let mut writes = Writes {
                    node: &primary,
                    collection,
                    store,
                    next: p_next[i],
                };
                writes.write(&mut rng, org, round, count, &ledger);
                p_next[i] = writes.next;
                &mut puller
            }
            Phase::Initial => {
                // A new site every time; the one before was checked in its round.
                let name = format!("fresh-{round}");
                fresh = Some(cluster.satellite(&name, &primary, &key, &["--all-stores"]));
                fresh.as_mut().expect("just made")
            }
        };
        if sync_and_kill(site, &mut primary, kill_primary, serve, delay) {
            landed[phase as usize] += 1;
        }
        primary_kills += kill_primary as u64;
        // Restarted, the site finishes the round's sync and matches the primary.
        site.sync();
        let holds = if site.name == "site-a" {
            Holds::Stores(vec!["S1".into()])
        } else {
            Holds::All
        };
        same_replica(&Site::new(&primary, Holds::All), &Site::new(site, holds));
    }
    eprintln!(
        "kills: {total} rounds ({primary_kills} killing the primary) in {:.1} s; kills that landed mid-sync: push {}, pull {}, initial {}",
        started.elapsed().as_secs_f64(),
        landed[0],
        landed[1],
        landed[2]
    );

    for site in [&pusher, &puller].into_iter().chain(fresh.as_ref()) {
        site.sync();
    }
    let mut sites = vec![
        Site::new(&pusher, Holds::Stores(vec!["S1".into()])),
        Site::new(&puller, Holds::All),
    ];
    if let Some(fresh) = &fresh {
        sites.push(Site::new(fresh, Holds::All));
    }
    converged(&Site::new(&primary, Holds::All), &sites, &ledger);
}
