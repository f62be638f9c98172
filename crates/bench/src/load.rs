//! `load`: S satellites write concurrently through the primary for T seconds; then every
//! invariant is checked, not assumed.
//!
//! The sites: a primary (a real `sitesync serve` process); up to [`PROCESSES`] satellites
//! as real `sitesync serve` processes, in pairs holding the same store, writing through
//! their local API; the other satellites are real protocol clients in this process, each
//! with its own enrolled credentials, pushing batches and long-polling pulls as the
//! satellite agent does. Every writer makes, each with its own counter N:
//!
//! - new records `load/WRITER-N` holding `writer` and `n`, most in its store and some
//!   organisation-wide, so a lost, extra or misrouted record shows by its id;
//! - edits of a few hot records of its store and organisation-wide (`hot/…`), which
//!   every writer of that store edits at the same time: its own field `w_WRITER` (the
//!   last value it was acknowledged must be the value on every site) and the shared
//!   field `last` (a real conflict, settled by the merge rule).
//!
//! The writers keep a steady pace ([`PUSH_EVERY`], [`API_EVERY`]), offering a known
//! rate; the figures say how much of it was held.
//!
//! Propagation under that load: a thread of its own writes a new record at one process's
//! local API and times until the other process of its pair can read it, in turn,
//! throughout the window.
//!
//! After the window, once every replica has converged (or [`CONVERGE_LIMIT`] passed),
//! the checks, each failing the scenario with the site, store and record it found wrong:
//! every acknowledged change is on every site it routes to (the primary, and each
//! process holding its store) and no record is where it is not routed; the primary
//! numbered exactly one change per acknowledged change (every change here changes its
//! record, so a change applied twice shows as one too many, a lost one as one too few);
//! no site rejected anything; each process's outbox is empty; each store's digest is
//! the same on every site holding it.

use crate::harness::{
    Cluster, Process, Seed, business_record, enrol, put_record, quantile_ms, round, store_ids,
    wait_readable,
};
use crate::{BenchError, Figures, Options};
use serde_json::{Map, Value, json};
use sitesync_core::{Clock, OrgId, RecordState, SiteId, StoreId, merge};
use sitesync_node::DataDir;
use sitesync_node::client::Client;
use sitesync_node::now_ms;
use sitesync_protocol::{PullQuery, PushRequest, PushedChange};
use sitesync_sim::Rng;
use sitesync_sqlite::SqliteStore;
use sitesync_store::{ListQuery, PrimaryStorage, SatelliteStorage, SiteStorage};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Satellites by default.
pub const DEFAULT_SATELLITES: u64 = 20;
/// Seconds of writing by default.
pub const DEFAULT_SECONDS: f64 = 20.0;
/// Satellites that are real processes, at most (in pairs); the others are protocol
/// clients. More processes would mostly measure the machine's cores.
pub const PROCESSES: u64 = 4;
/// The organisation's stores; the process pairs hold the first ones.
const STORES: usize = 4;
/// Changes per push of a protocol client.
const BATCH: u64 = 100;
/// How often a protocol client pushes a batch: 500 changes/s each, a busy site. A steady
/// pace rather than as fast as the primary answers, so that propagation is measured
/// under load and not behind a queue that grows for the whole window; a client that
/// falls behind pushes again at once, so a primary that cannot keep up shows as a rate
/// below `offered_per_s`.
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
    // Half the satellites are processes when few (so a small run has clients too), in
    // whole pairs, at most PROCESSES.
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
    // The processes stay here, so they stop when this returns, however it returns.
    let (sats, _processes) = start_satellites(&cluster, options, &stores, processes)?;
    let mut clients = Vec::new();
    for i in 0..(satellites - processes) as usize {
        let (store, name) = &stores[i % stores.len()];
        let (site, client) = enrol(&cluster, &format!("client-{i}"), Some(name)).await?;
        clients.push((site, client, *store));
    }
    let window = write_for(Duration::from_secs_f64(seconds), &sats, clients).await?;
    let (ledgers, mut latencies) = (window.ledgers, window.latencies);
    let changes: u64 = ledgers.iter().map(|l| l.changes).sum();

    let replicas = open_replicas(&cluster, &sats)?;
    let org = replicas[0].db.org(cluster.org())?.id;
    let converging = Instant::now();
    let compared = converge(org, &replicas).await?;
    let converge_ms = converging.elapsed().as_secs_f64() * 1000.0;
    let verified = check(org, &replicas, &ledgers, changes)?;
    let conflicts = replicas[0].db.conflicts(org, u32::MAX)?.len();

    latencies.sort();
    let elapsed = window.elapsed.as_secs_f64();
    let figures = json!({
        "satellites": satellites,
        "processes": processes,
        "stores": STORES,
        "seconds": round(elapsed, 2),
        "changes": changes,
        "offered_per_s": round(window.offered, 0),
        "changes_per_s": round(changes as f64 / elapsed, 0),
        "slowest_second": slowest_second(&window.acks, Duration::from_secs_f64(seconds)),
        "samples": latencies.len(),
        "propagation_p50_ms": round(quantile_ms(&latencies, 0.5), 2),
        "propagation_p99_ms": round(quantile_ms(&latencies, 0.99), 2),
        "propagation_max_ms": round(quantile_ms(&latencies, 1.0), 2),
        "pulled": window.pulls.records.load(Ordering::Relaxed),
        "failed_pulls": window.pulls.failed.load(Ordering::Relaxed),
        "conflicts": conflicts,
        "converge_ms": round(converge_ms, 0),
        "records_verified": verified,
        "replicas_compared": compared,
    });
    Ok(figures.as_object().cloned().unwrap_or_default())
}

/// When each write (or batch of writes) was acknowledged, since the start, and how many.
type Acks = Vec<(Duration, u64)>;

/// What the writers did in the window.
struct Window {
    /// What each writer was acknowledged.
    ledgers: Vec<Ledger>,
    acks: Acks,
    /// Propagation probes: from a write at one process until the other read it.
    latencies: Vec<Duration>,
    /// From the start until the last writer's last answer.
    elapsed: Duration,
    /// The rate the writers aim at, in changes/s (the probes aside).
    offered: f64,
    /// What the protocol clients pulled meanwhile.
    pulls: Pulls,
}

/// Every writer writes for `length` at once: each protocol client (its site, client and
/// store) pushing and pulling, each process through its local API, and the probes.
async fn write_for(
    length: Duration,
    sats: &[Satellite],
    clients: Vec<(SiteId, Client, StoreId)>,
) -> Result<Window, BenchError> {
    let started = Instant::now();
    let deadline = started + length;
    let pulls = Pulls::default();
    let mut pullers = Vec::new();
    let mut writers = Vec::new();
    let offered = clients.len() as f64 * BATCH as f64 / PUSH_EVERY.as_secs_f64()
        + sats.len() as f64 / API_EVERY.as_secs_f64();
    let spread = clients.len().max(1) as u32;
    for (i, (site, client, store)) in clients.into_iter().enumerate() {
        pullers.push(tokio::spawn(follow(client.clone(), pulls.clone())));
        let writer = format!("c{i}");
        // Spread over the period, so that the pushes do not all come at once.
        let first = started + PUSH_EVERY * i as u32 / spread;
        writers.push(tokio::spawn(push_writes(
            client, site, writer, store, first, started, deadline,
        )));
    }
    let http = reqwest::Client::new();
    for sat in sats {
        let (http, sat) = (http.clone(), sat.clone());
        writers.push(tokio::spawn(async move {
            api_writes(&http, &sat, started, deadline).await
        }));
    }
    let probes = {
        let sats = sats.to_vec();
        std::thread::spawn(move || probe(&sats, started, deadline))
    };

    let mut ledgers = Vec::new();
    let mut acks = Vec::new();
    for writer in writers {
        let (ledger, mut a) = writer.await.map_err(failed)??;
        ledgers.push(ledger);
        acks.append(&mut a);
    }
    let (mut probed, mut a, latencies) = tokio::task::spawn_blocking(move || probes.join())
        .await
        .map_err(failed)?
        .map_err(|_| BenchError::Failed("the probe thread panicked".into()))??;
    let elapsed = started.elapsed();
    for puller in &pullers {
        puller.abort();
    }
    ledgers.append(&mut probed);
    acks.append(&mut a);
    Ok(Window {
        ledgers,
        acks,
        latencies,
        elapsed,
        offered,
        pulls,
    })
}

/// One write: a new record, or an edit of a hot record.
struct Write {
    collection: &'static str,
    id: String,
    store: Option<StoreId>,
    fields: Map<String, Value>,
}

impl Write {
    /// The `n`-th write of `writer` of `store`: one in ten edits a hot record (of the
    /// store or organisation-wide), one in ten makes an organisation-wide record, the
    /// rest make records of the store.
    fn pick(rng: &mut Rng, writer: &str, n: u64, store: StoreId) -> Write {
        match n % 10 {
            0 => {
                let target = (rng.below(2) == 0).then_some(store);
                Write::hot(rng, writer, n, target)
            }
            1 => Write::new_record(rng, writer, n, None),
            _ => Write::new_record(rng, writer, n, Some(store)),
        }
    }

    /// A new record `WRITER-N` holding its writer and number, and a business record's
    /// fields for a realistic size.
    fn new_record(rng: &mut Rng, writer: &str, n: u64, store: Option<StoreId>) -> Write {
        let (_, mut fields) = business_record(rng);
        fields.insert("writer".into(), writer.into());
        fields.insert("n".into(), n.into());
        Write {
            collection: CREATED,
            id: format!("{writer}-{n}"),
            store,
            fields,
        }
    }

    /// An edit of one of the hot records of `store` (`None`: organisation-wide): the
    /// writer's own field, and the field every writer sets.
    fn hot(rng: &mut Rng, writer: &str, n: u64, store: Option<StoreId>) -> Write {
        let j = rng.below(HOT);
        let mut fields = Map::new();
        fields.insert(own_field(writer), n.into());
        fields.insert("last".into(), format!("{writer}-{n}").into());
        Write {
            collection: HOTS,
            id: store.map_or(format!("org-{j}"), |s| format!("store{s}-{j}")),
            store,
            fields,
        }
    }

    /// Where the record is, below a site's local API base URL.
    fn path(&self, stores: &[(StoreId, String)]) -> String {
        let store = stores
            .iter()
            .find(|(id, _)| Some(*id) == self.store)
            .map(|(_, name)| format!("?store={name}"))
            .unwrap_or_default();
        format!("/api/v1/{}/{}{store}", self.collection, self.id)
    }
}

/// A writer's own field in the hot records.
fn own_field(writer: &str) -> String {
    format!("w_{writer}")
}

/// What one writer was acknowledged: every site the writes route to must hold them.
#[derive(Debug, Default)]
struct Ledger {
    writer: String,
    /// Changes acknowledged.
    changes: u64,
    /// The records it made, with their store (`None`: organisation-wide).
    created: Vec<(String, Option<StoreId>)>,
    /// Each hot record it edited: the record's store and the last value of its own field.
    hot: HashMap<String, (Option<StoreId>, u64)>,
}

impl Ledger {
    fn new(writer: &str) -> Ledger {
        Ledger {
            writer: writer.to_string(),
            ..Ledger::default()
        }
    }

    /// Notes that the writer's `n`-th write was acknowledged.
    fn note(&mut self, write: &Write, n: u64) {
        self.changes += 1;
        if write.collection == CREATED {
            self.created.push((write.id.clone(), write.store));
        } else {
            self.hot.insert(write.id.clone(), (write.store, n));
        }
    }
}

/// A satellite as a protocol client: pushes batches of writes until `deadline`, as the
/// agent pushes its outbox (numbered in order, stamped by its own clock). It keeps its
/// own copy of each hot record it edits, so each edit names the version it replaces,
/// as a site's does.
async fn push_writes(
    client: Client,
    site: SiteId,
    writer: String,
    store: StoreId,
    first: Instant,
    started: Instant,
    deadline: Instant,
) -> Result<(Ledger, Acks), BenchError> {
    let mut pace = paced(first, PUSH_EVERY);
    let mut rng = Rng::new(u64::from(site) * 7_919);
    let mut clock = Clock::default();
    let mut copies: HashMap<String, RecordState> = HashMap::new();
    let mut ledger = Ledger::new(&writer);
    let mut acks = Acks::new();
    let mut n = 0;
    while pace.tick().await.into_std() < deadline {
        let first = n + 1;
        let writes: Vec<Write> = (first..first + BATCH)
            .map(|seq| Write::pick(&mut rng, &writer, seq, store))
            .collect();
        let mut changes = Vec::with_capacity(writes.len());
        for (write, seq) in writes.iter().zip(first..) {
            let mut fresh = RecordState::default();
            let copy = match write.collection {
                HOTS => copies.entry(write.id.clone()).or_default(),
                _ => &mut fresh,
            };
            let change = copy.write(
                write.store,
                write.fields.clone(),
                &mut clock,
                now_ms(),
                site,
            );
            merge(copy, &change).map_err(|e| BenchError::Failed(e.to_string()))?;
            changes.push(PushedChange {
                seq,
                collection: write.collection.into(),
                id: write.id.clone(),
                change,
            });
        }
        n += BATCH;
        let answer = client.push(&PushRequest { changes }).await?;
        if answer.acked_through != n || !answer.rejected.is_empty() {
            return Err(BenchError::Failed(format!(
                "satellite {writer}: the primary acknowledged through {} of {n}, rejecting {:?}",
                answer.acked_through, answer.rejected
            )));
        }
        for (write, seq) in writes.iter().zip(first..) {
            ledger.note(write, seq);
        }
        acks.push((started.elapsed(), BATCH));
    }
    Ok((ledger, acks))
}

/// What the protocol clients' pulls received.
#[derive(Clone, Default)]
struct Pulls {
    records: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

/// A protocol client's pulls, until aborted: long polls following its cursor, as the
/// agent's, so the primary serves pulls beside the pushes.
async fn follow(client: Client, pulls: Pulls) {
    let mut cursor = 0;
    loop {
        let query = PullQuery {
            cursor,
            limit: Some(500),
            wait_ms: Some(1_000),
            ..PullQuery::default()
        };
        match client.pull(&query).await {
            Ok(answer) => {
                pulls
                    .records
                    .fetch_add(answer.records.len() as u64, Ordering::Relaxed);
                cursor = answer.cursor;
            }
            // Asked again, as the agent does; counted for the figures.
            Err(_) => {
                pulls.failed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A satellite that is a real `sitesync serve` process.
#[derive(Clone)]
struct Satellite {
    /// Its name as a writer.
    name: String,
    /// The store it holds.
    store: StoreId,
    /// Its local API.
    url: String,
    /// The other process of its pair (holding the same store): its local API.
    pair: String,
    /// Every store's id and name, for the API's `?store=`.
    stores: Arc<Vec<(StoreId, String)>>,
    dir: DataDir,
}

/// Enrols and starts `n` satellite processes; pair `k` (processes `2k` and `2k+1`)
/// holds store `k`.
fn start_satellites(
    cluster: &Cluster,
    options: &Options,
    stores: &[(StoreId, String)],
    n: u64,
) -> Result<(Vec<Satellite>, Vec<Process>), BenchError> {
    let mut started: Vec<(DataDir, Process, StoreId, String)> = Vec::new();
    for i in 0..n as usize {
        let name = format!("sat{i}");
        let (store, store_name) = &stores[(i / 2) % stores.len()];
        let dir = DataDir::new(options.temp.join("load").join(&name));
        let process = cluster.satellite(&options.exe, &dir, Some(store_name))?;
        started.push((dir, process, *store, name));
    }
    let urls: Vec<String> = started
        .iter()
        .map(|(_, p, _, _)| format!("http://{}", p.addr))
        .collect();
    let stores = Arc::new(stores.to_vec());
    let mut processes = Vec::new();
    let mut sats = Vec::new();
    for (i, (dir, process, store, name)) in started.into_iter().enumerate() {
        processes.push(process);
        sats.push(Satellite {
            name,
            store,
            url: urls[i].clone(),
            pair: urls[i ^ 1].clone(),
            stores: stores.clone(),
            dir,
        });
    }
    Ok((sats, processes))
}

/// A satellite process's own writes through its local API until `deadline`, one request
/// per write as an application makes them: edits of the hot records of its store and
/// organisation-wide.
async fn api_writes(
    http: &reqwest::Client,
    sat: &Satellite,
    started: Instant,
    deadline: Instant,
) -> Result<(Ledger, Acks), BenchError> {
    let mut rng = Rng::new(sat.store * 31 + sat.name.len() as u64);
    let mut ledger = Ledger::new(&sat.name);
    let mut acks = Acks::new();
    let mut n = 0;
    let mut pace = paced(started, API_EVERY);
    while pace.tick().await.into_std() < deadline {
        n += 1;
        let target = (n % 2 == 0).then_some(sat.store);
        let write = Write::hot(&mut rng, &sat.name, n, target);
        let url = format!("{}{}", sat.url, write.path(&sat.stores));
        put_record(http, &url, &Value::Object(write.fields.clone()), &sat.name).await?;
        ledger.note(&write, n);
        acks.push((started.elapsed(), 1));
    }
    Ok((ledger, acks))
}

/// Propagation probes until `deadline`, on a thread of their own (the reader waits by
/// sleeping its thread): in turn, each process makes a new record through its local
/// API, and the time until the other process of its pair can read it is measured.
fn probe(
    sats: &[Satellite],
    started: Instant,
    deadline: Instant,
) -> Result<(Vec<Ledger>, Acks, Vec<Duration>), BenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::harness::io)?;
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .map_err(failed)?;
        let mut ledgers: Vec<Ledger> = sats.iter().map(|s| Ledger::new(&s.name)).collect();
        let (mut acks, mut latencies) = (Acks::new(), Vec::new());
        let mut rng = Rng::new(99);
        let mut pace = paced(started, PACE);
        for turn in 0.. {
            if pace.tick().await.into_std() >= deadline {
                break;
            }
            let (sat, ledger) = (&sats[turn % sats.len()], &mut ledgers[turn % sats.len()]);
            // One probe in four is organisation-wide, the others of the pair's store.
            let n = ledger.changes + 1;
            let store = (n % 4 != 0).then_some(sat.store);
            let write = Write::new_record(&mut rng, &sat.name, n, store);
            let sent = Instant::now();
            let url = format!("{}{}", sat.url, write.path(&sat.stores));
            put_record(&http, &url, &Value::Object(write.fields.clone()), &sat.name).await?;
            ledger.note(&write, n);
            acks.push((started.elapsed(), 1));
            let url = format!("{}/api/v1/{CREATED}/{}", sat.pair, write.id);
            wait_readable(&http, &url, sent, PROBE_LIMIT).await?;
            latencies.push(sent.elapsed());
        }
        Ok((ledgers, acks, latencies))
    })
}

/// Ticks every `period` from `first`; a tick missed (the writer was still waiting for
/// an answer) comes at once, and the next ones a period after it.
fn paced(first: Instant, period: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval_at(first.into(), period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

/// Changes acknowledged in the slowest whole second of the window: how well the rate
/// held, beside the mean.
fn slowest_second(acks: &[(Duration, u64)], window: Duration) -> u64 {
    let mut per_second = vec![0u64; window.as_secs() as usize];
    for (at, n) in acks {
        if let Some(second) = per_second.get_mut(at.as_secs() as usize) {
            *second += n;
        }
    }
    per_second.into_iter().min().unwrap_or(0)
}

/// A site whose replica is checked: the primary (holding every store) or a process.
struct Replica {
    name: String,
    /// The store it holds besides the organisation-wide records; `None`: every store.
    store: Option<StoreId>,
    db: SqliteStore,
}

impl Replica {
    /// Whether the records of `store` (`None`: organisation-wide) route to this site.
    fn holds(&self, store: Option<StoreId>) -> bool {
        self.store.is_none() || store.is_none() || self.store == store
    }
}

/// The databases of the primary (first) and of each process, opened beside them.
fn open_replicas(cluster: &Cluster, sats: &[Satellite]) -> Result<Vec<Replica>, BenchError> {
    let primary = cluster
        .dir
        .as_ref()
        .ok_or_else(|| BenchError::Failed("no primary folder".into()))?;
    let mut replicas = vec![Replica {
        name: "the primary".into(),
        store: None,
        db: SqliteStore::open(&primary.db_path())?,
    }];
    for sat in sats {
        replicas.push(Replica {
            name: format!("satellite {}", sat.name),
            store: Some(sat.store),
            db: SqliteStore::open(&sat.dir.db_path())?,
        });
    }
    Ok(replicas)
}

/// Waits until every process has pushed everything and holds, of each store routed to
/// it, the same digest as the primary; returns how many digests were compared.
async fn converge(org: OrgId, replicas: &[Replica]) -> Result<u64, BenchError> {
    let started = Instant::now();
    loop {
        match difference(org, replicas)? {
            Ok(compared) => return Ok(compared),
            Err(difference) if started.elapsed() > CONVERGE_LIMIT => {
                return Err(BenchError::Failed(format!(
                    "the replicas did not converge within {CONVERGE_LIMIT:?}: {difference}"
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// How many digests match the primary's, or the first way a process's replica differs.
fn difference(org: OrgId, replicas: &[Replica]) -> Result<Result<u64, String>, BenchError> {
    let Some((primary, sats)) = replicas.split_first() else {
        return Ok(Ok(0));
    };
    for sat in sats {
        let waiting = sat.db.outbox_len()?;
        if waiting > 0 {
            return Ok(Err(format!(
                "{} still has {waiting} changes the primary has not acknowledged",
                sat.name
            )));
        }
    }
    let expected = primary.db.digest(org)?;
    let mut compared = 0;
    for sat in sats {
        let held = sat.db.digest(org)?;
        for want in expected.iter().filter(|d| sat.holds(d.store)) {
            let store = describe(want.store);
            match held.iter().find(|h| h.store == want.store) {
                Some(have) if have == want => compared += 1,
                Some(have) => {
                    return Ok(Err(format!(
                        "{} holds {} records of {store} with digest {}, the primary {} with digest {}",
                        sat.name, have.records, have.digest, want.records, want.digest
                    )));
                }
                None => {
                    return Ok(Err(format!(
                        "{} holds no records of {store}, the primary {}",
                        sat.name, want.records
                    )));
                }
            }
        }
        if let Some(extra) = held.iter().find(|h| !sat.holds(h.store)) {
            return Ok(Err(format!(
                "{} holds {} records of {}, which is not routed to it",
                sat.name,
                extra.records,
                describe(extra.store)
            )));
        }
    }
    Ok(Ok(compared))
}

/// The checks after convergence; returns how many records they verified.
fn check(
    org: OrgId,
    replicas: &[Replica],
    ledgers: &[Ledger],
    changes: u64,
) -> Result<u64, BenchError> {
    let primary = &replicas[0].db;
    // Each change here changes its record, and the primary numbers each change that
    // changes a record: one number per acknowledged change, no more, no fewer.
    let numbered = primary.head()?;
    if numbered != changes {
        let why = if numbered > changes {
            "a change was applied twice, or one that was never acknowledged was applied"
        } else {
            "an acknowledged change is missing"
        };
        return Err(BenchError::Failed(format!(
            "the primary applied {numbered} changes, but {changes} were acknowledged: {why}"
        )));
    }
    for replica in replicas {
        let rejected = replica.db.rejection_count(org)?;
        if rejected > 0 {
            let first = replica.db.rejections(org, 1)?;
            return Err(BenchError::Failed(format!(
                "{} rejected {rejected} changes, the first: {first:?}",
                replica.name
            )));
        }
    }
    let created: HashMap<&str, Option<StoreId>> = ledgers
        .iter()
        .flat_map(|l| l.created.iter().map(|(id, store)| (id.as_str(), *store)))
        .collect();
    if created.len() != ledgers.iter().map(|l| l.created.len()).sum::<usize>() {
        return Err(BenchError::Failed(
            "two writes made the same record id (a bug in this scenario)".into(),
        ));
    }
    let mut verified = 0;
    for replica in replicas {
        verified += check_created(org, replica, &created)?;
        verified += check_hot(org, replica, ledgers)?;
    }
    Ok(verified)
}

/// Every record made and acknowledged that routes to `site` is there, whole, in its
/// store, and nothing else is; returns how many.
fn check_created(
    org: OrgId,
    site: &Replica,
    created: &HashMap<&str, Option<StoreId>>,
) -> Result<u64, BenchError> {
    let mut found = 0;
    let mut after = None;
    loop {
        let query = ListQuery {
            collection: CREATED.into(),
            store: None,
            after: after.take(),
            limit: 10_000,
        };
        let page = site.db.list(org, &query)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for record in &page {
            let wrong = |what: String| {
                BenchError::Failed(format!("{}: {CREATED}/{} {what}", site.name, record.id))
            };
            let Some(store) = created.get(record.id.as_str()) else {
                return Err(wrong("is held, but no writer was acknowledged it".into()));
            };
            if !site.holds(*store) || record.state.store != *store {
                return Err(wrong(format!(
                    "of {} is held here in {}",
                    describe(*store),
                    describe(record.state.store)
                )));
            }
            // Whole: it holds the writer and number its id names.
            let values = record.state.values();
            let (writer, n) = record.id.rsplit_once('-').unwrap_or_default();
            if values.get("writer") != Some(&json!(writer))
                || values.get("n").map(Value::to_string).as_deref() != Some(n)
            {
                return Err(wrong(format!("holds {values:?}")));
            }
            found += 1;
        }
    }
    let routed = created.values().filter(|s| site.holds(**s)).count() as u64;
    if found != routed {
        let missing = created
            .iter()
            .filter(|(_, store)| site.holds(**store))
            .find(|(id, _)| !matches!(site.db.record(org, CREATED, id), Ok(Some(_))));
        let (id, store) = missing.map_or(("?", None), |(id, store)| (*id, *store));
        return Err(BenchError::Failed(format!(
            "{} holds {found} of the {routed} acknowledged records routed to it; missing: {CREATED}/{id} of {}",
            site.name,
            describe(store)
        )));
    }
    Ok(found)
}

/// Each writer's own field of each hot record routed to `site` holds the last value the
/// writer was acknowledged; returns how many hot records were looked at.
fn check_hot(org: OrgId, site: &Replica, ledgers: &[Ledger]) -> Result<u64, BenchError> {
    let mut seen = HashSet::new();
    for ledger in ledgers {
        for (id, (store, n)) in &ledger.hot {
            if !site.holds(*store) {
                continue;
            }
            let wrong = |what: String| {
                BenchError::Failed(format!(
                    "{}: {HOTS}/{id} of {}: {what}",
                    site.name,
                    describe(*store)
                ))
            };
            let record = site
                .db
                .record(org, HOTS, id)?
                .ok_or_else(|| wrong("missing".into()))?;
            let field = own_field(&ledger.writer);
            let value = record.state.fields.get(&field).map(|f| &f.value);
            if record.state.store != *store || value != Some(&json!(n)) {
                return Err(wrong(format!(
                    "{field} is {value:?} in {}, but {n} was acknowledged last",
                    describe(record.state.store)
                )));
            }
            seen.insert(id);
        }
    }
    Ok(seen.len() as u64)
}

/// A store for messages.
fn describe(store: Option<StoreId>) -> String {
    store.map_or("the organisation-wide records".into(), |s| {
        format!("store {s}")
    })
}

fn failed(e: impl std::fmt::Display) -> BenchError {
    BenchError::Failed(e.to_string())
}

#[cfg(test)]
mod tests {
    //! The checks can fail: each is shown a replica that breaks it.

    use super::*;
    use sitesync_core::PRIMARY_SITE;
    use sitesync_store::LocalWrite;

    /// A site's database holding the records `ids` (all in one store), and that store.
    fn replica(dir: &tempfile::TempDir, name: &str, ids: &[&str]) -> (Replica, OrgId, StoreId) {
        let db = SqliteStore::open(&dir.path().join(format!("{name}.db"))).unwrap();
        let org = db.create_org("Bench", 1).unwrap().id;
        let store = db.create_store(org, "store-000").unwrap().id;
        let mut rng = Rng::new(1);
        let writes = ids
            .iter()
            .map(|id| {
                let (writer, n) = id.rsplit_once('-').unwrap();
                let write = Write::new_record(&mut rng, writer, n.parse().unwrap(), Some(store));
                let put = LocalWrite::Put {
                    store: write.store,
                    fields: write.fields,
                };
                (CREATED.to_string(), id.to_string(), put)
            })
            .collect();
        db.write_local_batch(org, writes, PRIMARY_SITE, 1_000, false)
            .unwrap();
        let replica = Replica {
            name: name.into(),
            store: None,
            db,
        };
        (replica, org, store)
    }

    fn ledger(writer: &str, created: &[&str], store: StoreId) -> Ledger {
        Ledger {
            changes: created.len() as u64,
            created: created
                .iter()
                .map(|id| (id.to_string(), Some(store)))
                .collect(),
            ..Ledger::new(writer)
        }
    }

    fn message(result: Result<u64, BenchError>) -> String {
        result.expect_err("the check must fail").to_string()
    }

    #[test]
    fn a_replica_holding_every_acknowledged_record_passes() {
        let dir = tempfile::tempdir().unwrap();
        let (site, org, store) = replica(&dir, "p", &["c0-1", "c0-2"]);
        let ledgers = [ledger("c0", &["c0-1", "c0-2"], store)];
        assert_eq!(check(org, &[site], &ledgers, 2).unwrap(), 2);
    }

    #[test]
    fn a_missing_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (site, org, store) = replica(&dir, "p", &["c0-1", "c0-2"]);
        let ledgers = [ledger("c0", &["c0-1", "c0-2", "c0-3"], store)];
        // The count of applied changes misses it first...
        let error = message(check(org, std::slice::from_ref(&site), &ledgers, 3));
        assert!(error.contains("applied 2 changes, but 3"), "{error}");
        // ...and the record check names it.
        let created = HashMap::from([
            ("c0-1", Some(store)),
            ("c0-2", Some(store)),
            ("c0-3", Some(store)),
        ]);
        let error = message(check_created(org, &site, &created));
        assert!(error.contains("holds 2 of the 3"), "{error}");
        assert!(
            error.contains("load/c0-3") && error.contains(&format!("store {store}")),
            "{error}"
        );
    }

    #[test]
    fn a_record_no_writer_was_acknowledged_or_in_the_wrong_place_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (site, org, store) = replica(&dir, "p", &["c0-1", "c0-2"]);
        let created = HashMap::from([("c0-1", Some(store))]);
        let error = message(check_created(org, &site, &created));
        assert!(
            error.contains("load/c0-2 is held, but no writer"),
            "{error}"
        );
        let created = HashMap::from([("c0-1", Some(store)), ("c0-2", None)]);
        let error = message(check_created(org, &site, &created));
        assert!(
            error.contains("load/c0-2 of the organisation-wide records is held here in store"),
            "{error}"
        );
    }

    #[test]
    fn an_applied_change_too_many_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (site, org, store) = replica(&dir, "p", &["c0-1", "c0-2"]);
        let ledgers = [ledger("c0", &["c0-1", "c0-2"], store)];
        let error = message(check(org, &[site], &ledgers, 1));
        assert!(error.contains("applied twice"), "{error}");
    }

    #[test]
    fn a_hot_record_without_the_last_acknowledged_value_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (site, org, store) = replica(&dir, "p", &[]);
        let write = Write::hot(&mut Rng::new(3), "c1", 7, Some(store));
        let put = LocalWrite::Put {
            store: write.store,
            fields: write.fields.clone(),
        };
        site.db
            .write_local(org, HOTS, &write.id, put, PRIMARY_SITE, 2_000, false)
            .unwrap();
        let mut ledgers = [Ledger::new("c1")];
        ledgers[0].note(&write, 7);
        assert_eq!(check_hot(org, &site, &ledgers).unwrap(), 1);
        ledgers[0].hot.insert(write.id.clone(), (Some(store), 8));
        let error = message(check_hot(org, &site, &ledgers));
        assert!(error.contains(&format!("hot/{}", write.id)), "{error}");
        assert!(
            error.contains("w_c1 is Some(Number(7))") && error.contains("8 was acknowledged last"),
            "{error}"
        );
    }

    #[test]
    fn replicas_that_differ_are_named_until_they_agree() {
        let dir = tempfile::tempdir().unwrap();
        let (primary, org, store) = replica(&dir, "primary", &["c0-1", "c0-2"]);
        let (mut sat, _, _) = replica(&dir, "sat", &["c0-1"]);
        sat.store = Some(store);
        let error = difference(org, &[primary, sat]).unwrap().unwrap_err();
        assert!(
            error.contains(&format!("sat holds 1 records of store {store}")),
            "{error}"
        );
        let (primary, _, _) = replica(&dir, "primary2", &["c0-1"]);
        let (mut sat, _, _) = replica(&dir, "sat2", &["c0-1"]);
        sat.store = Some(store);
        assert_eq!(difference(org, &[primary, sat]).unwrap(), Ok(1));
        let (primary, _, _) = replica(&dir, "primary3", &["c0-1"]);
        let (mut sat, _, _) = replica(&dir, "sat3", &["c0-1"]);
        sat.store = Some(store + 1);
        let error = difference(org, &[primary, sat]).unwrap().unwrap_err();
        assert!(error.contains("which is not routed to it"), "{error}");
    }
}
