//! `load`: S satellites write concurrently through the primary for T seconds; then every
//! invariant is checked, not assumed.
//!
//! The sites: a primary (a real `sitesync serve` process); up to [`PROCESSES`] satellites
//! as real `sitesync serve` processes, in pairs holding the same store, writing through
//! their local API; the other satellites are real satellites in this process, each with
//! its own enrolled data folder and SQLite file, committing batches of writes with their
//! outbox entries and synced by the node's own agent (the sans-IO session in its live
//! push and long-poll pull lanes), as a satellite whose application writes in bulk is.
//! Every writer makes, each with its own counter N:
//!
//! - new records `load/WRITER-N` holding `writer` and `n`, most in its store and some
//!   organisation-wide, so a lost, extra or misrouted record shows by its id;
//! - edits of a few hot records of its store and organisation-wide (`hot/…`), which
//!   every writer of that store edits at the same time: its own field `w_WRITER` (the
//!   last value it was acknowledged must be the value on every site) and the shared
//!   field `last` (a real conflict, settled by the merge rule).
//!
//! The writers keep a steady pace ([`PUSH_EVERY`], [`API_EVERY`]), offering a known
//! rate; the figures say how much of it the primary took: `changes_per_s` and
//! `slowest_second` count the changes the primary numbered during the window (read from
//! its database each second), `behind` what was still on its way when the window closed.
//!
//! The in-process satellites cost this process CPU of their own (each applies what it
//! pulls to its SQLite file, as a real satellite does), so on 2 cores they write 100
//! changes a batch rather than one at a time: fewer, bigger commits, the same offered
//! rate.
//!
//! Propagation under that load: a thread of its own writes a new record at one process's
//! local API and times until the other process of its pair can read it, in turn,
//! throughout the window.
//!
//! After the window, once every replica has converged (or [`CONVERGE_LIMIT`] passed),
//! the checks (`checks`): every acknowledged change is on every site it routes to (the
//! primary and each satellite holding its store) and no record is where it is not
//! routed; the primary numbered exactly one change per acknowledged change; no site
//! rejected anything; each satellite's outbox is empty; each store's digest is the same
//! on every site holding it.
//!
//! # Layout
//!
//! `writes`: what the writers write and the ledger; `clients`: the satellites in this
//! process; `processes`: the `serve` pairs and the probes; `checks`: after the window.

mod checks;
mod clients;
mod processes;
mod writes;

use crate::harness::{Cluster, Seed, quantile_ms, round, store_ids};
use crate::{BenchError, Figures, Options};
use checks::Replica;
use clients::{Pulls, Satellite};
use processes::Served;
use serde_json::json;
use sitesync_core::StoreId;
use sitesync_sim::invariants::Ledger;
use sitesync_store::{PrimaryStorage, SiteStorage};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use writes::Notes;

/// Satellites by default.
pub const DEFAULT_SATELLITES: u64 = 20;
/// Seconds of writing by default.
pub const DEFAULT_SECONDS: f64 = 20.0;
/// Satellites that are real processes, at most (in pairs); the others run in this
/// process. More processes would mostly measure the machine's cores.
pub const PROCESSES: u64 = 4;
/// The organisation's stores; the process pairs hold the first ones.
const STORES: usize = 4;
/// Changes per committed batch of an in-process satellite.
const BATCH: u64 = 100;
/// How often an in-process satellite commits a batch: 500 changes/s each, a busy site. A
/// steady pace rather than as fast as it can, so that propagation is measured under
/// load and not behind a queue that grows for the whole window; a primary that cannot
/// keep up shows as a rate below `offered_per_s` and as `behind`.
pub const PUSH_EVERY: Duration = Duration::from_millis(200);
/// How often a satellite process writes through its local API (besides the probes).
pub const API_EVERY: Duration = Duration::from_millis(10);
/// Hot records per store, and organisation-wide.
const HOT: u64 = 8;
/// The collection of the new records.
const CREATED: &str = "load";
/// The collection of the hot records.
const HOTS: &str = "hot";
/// The pace of propagation probes.
const PACE: Duration = Duration::from_millis(5);
/// The longest one probe may take to propagate.
const PROBE_LIMIT: Duration = Duration::from_secs(30);
/// The longest the replicas may take to converge after the window.
pub const CONVERGE_LIMIT: Duration = Duration::from_secs(120);

pub async fn run(options: &Options) -> Result<Figures, BenchError> {
    if options.primary.is_some() {
        return Err(BenchError::Failed(
            "load checks every replica, so it starts its own primary: run it without --primary"
                .into(),
        ));
    }
    let satellites = options.satellites.unwrap_or(DEFAULT_SATELLITES);
    if satellites < 2 {
        return Err(BenchError::Failed(
            "load needs at least 2 satellites (a pair of processes that read each other's writes)"
                .into(),
        ));
    }
    // Half the satellites are processes when few (so a small run has in-process
    // satellites too), in whole pairs, at most PROCESSES.
    let processes = (satellites / 4 * 2).clamp(2, PROCESSES);
    let seconds = options.seconds.unwrap_or(DEFAULT_SECONDS);
    let cluster = Cluster::start(
        options,
        "load",
        Seed {
            stores: STORES,
            fill: &mut |_, _, _| Ok(()),
        },
    )
    .await?;
    let stores: Vec<(StoreId, String)> = store_ids(&cluster)?
        .into_iter()
        .zip(cluster.stores.iter().cloned())
        .collect();
    // The processes and satellites stay here, so they stop when this returns, however
    // it returns.
    let (sats, _processes) = processes::start(&cluster, options, &stores, processes)?;
    let pulls = Pulls::default();
    let mut clients = Vec::new();
    for i in 0..(satellites - processes) as usize {
        let (store, name) = &stores[i % stores.len()];
        let root = options.temp.join("load");
        let client = Satellite::start(
            &cluster,
            &root,
            format!("c{i}"),
            (*store, name),
            pulls.clone(),
        );
        clients.push(Arc::new(client.await?));
    }
    let primary = cluster
        .dir
        .as_ref()
        .ok_or_else(|| BenchError::Failed("no primary folder".into()))?;
    let primary = Replica::open("the primary".into(), None, &primary.db_path())?;
    let window = write_for(Duration::from_secs_f64(seconds), &primary, &sats, &clients).await?;
    let changes = window.ledger.acks();

    let replicas = replicas(primary, &sats, &clients)?;
    let org = replicas[0].db.org(cluster.org())?.id;
    let converging = Instant::now();
    let compared = checks::converge(org, &replicas).await?;
    let converge_ms = converging.elapsed().as_secs_f64() * 1000.0;
    let verified = checks::check(org, &replicas, &window.ledger)?;
    let conflicts = replicas[0].db.conflicts(org, u32::MAX)?.len();

    let mut latencies = window.latencies;
    latencies.sort();
    let elapsed = window.elapsed.as_secs_f64();
    let figures = json!({
        "satellites": satellites,
        "processes": processes,
        "stores": STORES,
        "seconds": round(elapsed, 2),
        "changes": changes,
        "offered_per_s": round(window.offered, 0),
        "changes_per_s": round(window.numbered as f64 / elapsed, 0),
        "slowest_second": window.per_second.iter().min().copied().unwrap_or(0),
        "behind": window.behind,
        "samples": latencies.len(),
        "propagation_p50_ms": round(quantile_ms(&latencies, 0.5), 2),
        "propagation_p99_ms": round(quantile_ms(&latencies, 0.99), 2),
        "propagation_max_ms": round(quantile_ms(&latencies, 1.0), 2),
        "pulled": pulls.records.load(Ordering::Relaxed),
        "failed_pulls": pulls.failed.load(Ordering::Relaxed),
        "conflicts": conflicts,
        "converge_ms": round(converge_ms, 0),
        "records_verified": verified,
        "replicas_compared": compared,
    });
    Ok(figures.as_object().cloned().unwrap_or_default())
}

/// The primary's database (first), each process's and each in-process satellite's,
/// opened beside them.
fn replicas(
    primary: Replica,
    sats: &[Served],
    clients: &[Arc<Satellite>],
) -> Result<Vec<Replica>, BenchError> {
    let mut replicas = vec![primary];
    for sat in sats {
        let name = format!("satellite {}", sat.name);
        replicas.push(Replica::open(name, Some(sat.store), &sat.dir.db_path())?);
    }
    for client in clients {
        let name = format!("satellite {}", client.name);
        replicas.push(Replica::open(name, Some(client.store), &client.db_path())?);
    }
    Ok(replicas)
}

/// What the writers did in the window.
struct Window {
    /// What every writer was acknowledged.
    ledger: Ledger,
    /// The changes the primary numbered in each whole second of the window.
    per_second: Vec<u64>,
    /// The changes the primary numbered in the window.
    numbered: u64,
    /// Changes acknowledged to the writers and not yet at the primary when it closed.
    behind: u64,
    /// Propagation probes: from a write at one process until the other read it.
    latencies: Vec<Duration>,
    /// The window's length.
    elapsed: Duration,
    /// The rate the writers aim at, in changes/s (the probes aside).
    offered: f64,
}

/// Every writer writes for `length` at once: each in-process satellite committing
/// batches (its agent pushing and pulling), each process through its local API, and
/// the probes; meanwhile the primary's count of changes is read each second.
async fn write_for(
    length: Duration,
    primary: &Replica,
    sats: &[Served],
    clients: &[Arc<Satellite>],
) -> Result<Window, BenchError> {
    let started = Instant::now();
    let deadline = started + length;
    let notes = Notes::default();
    let mut writers = Vec::new();
    let offered = clients.len() as f64 * BATCH as f64 / PUSH_EVERY.as_secs_f64()
        + sats.len() as f64 / API_EVERY.as_secs_f64();
    let spread = clients.len().max(1) as u32;
    for (i, client) in clients.iter().enumerate() {
        // Spread over the period, so that the batches do not all come at once.
        let first = started + PUSH_EVERY * i as u32 / spread;
        let (client, notes) = (client.clone(), notes.clone());
        writers.push(tokio::spawn(async move {
            client.write_until(notes, first, deadline).await
        }));
    }
    let http = reqwest::Client::new();
    for sat in sats {
        let (http, sat, notes) = (http.clone(), sat.clone(), notes.clone());
        writers.push(tokio::spawn(async move {
            processes::api_writes(&http, &sat, notes, started, deadline).await
        }));
    }
    let probes = {
        let (sats, notes) = (sats.to_vec(), notes.clone());
        std::thread::spawn(move || processes::probe(&sats, notes, started, deadline))
    };
    let (per_second, numbered) = count_each_second(primary, started, deadline).await?;
    for writer in writers {
        writer.await.map_err(failed)??;
    }
    let latencies = tokio::task::spawn_blocking(move || probes.join())
        .await
        .map_err(failed)?
        .map_err(|_| BenchError::Failed("the probe thread panicked".into()))??;
    let ledger = std::mem::take(&mut *notes.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Window {
        behind: ledger.acks().saturating_sub(numbered),
        per_second,
        numbered,
        ledger,
        latencies,
        elapsed: length,
        offered,
    })
}

/// The changes the primary numbered in each whole second from `started`, and in all
/// until `deadline`.
async fn count_each_second(
    primary: &Replica,
    started: Instant,
    deadline: Instant,
) -> Result<(Vec<u64>, u64), BenchError> {
    let first = primary.db.head()?;
    let mut heads = vec![first];
    let mut at = started + Duration::from_secs(1);
    while at <= deadline {
        tokio::time::sleep_until(at.into()).await;
        heads.push(primary.db.head()?);
        at += Duration::from_secs(1);
    }
    tokio::time::sleep_until(deadline.into()).await;
    let numbered = primary.db.head()?.saturating_sub(first);
    let per_second = heads.windows(2).map(|w| w[1].saturating_sub(w[0]));
    Ok((per_second.collect(), numbered))
}

/// Ticks every `period` from `first`; a tick missed (the writer was still waiting for
/// an answer) comes at once, and the next ones a period after it.
fn paced(first: Instant, period: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval_at(first.into(), period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

fn failed(e: impl std::fmt::Display) -> BenchError {
    BenchError::Failed(e.to_string())
}
