//! The invariant every fault scenario ends with, checked rather than assumed:
//!
//! 1. every change acknowledged to a writer is present on every site it routes to (the
//!    primary; each satellite holding the record's store; every satellite for an
//!    organisation-wide record), with exactly the fields of the writer's last write;
//! 2. no change is applied twice and nothing appears that nobody wrote: each site holds
//!    exactly the records routed to it (every write names a record of its own, so a
//!    duplicate or a stray shows up in the count);
//! 3. the replicas are identical: `sitesync digest` of each satellite matches the
//!    primary's for every store it holds and for the organisation-wide records.
//!
//! A scenario notes each write in a [`Ledger`] when the writer has been told it
//! succeeded (a `record put` that exited 0, a local API answer 200, a committed bulk
//! write), then calls [`converged`] once the faults are over.

use crate::harness::{Node, WAIT, eventually};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

/// What a site holds: every store (the primary, `--all-stores`) or some, by name.
#[derive(Debug, Clone)]
pub enum Holds {
    All,
    Stores(Vec<String>),
}

/// One site taking part in a scenario.
pub struct Site<'a> {
    pub node: &'a Node,
    pub holds: Holds,
}

impl<'a> Site<'a> {
    pub fn new(node: &'a Node, holds: Holds) -> Site<'a> {
        Site { node, holds }
    }

    fn routes(&self, store: Option<&str>) -> bool {
        match (&self.holds, store) {
            (_, None) | (Holds::All, _) => true,
            (Holds::Stores(held), Some(store)) => held.iter().any(|s| s == store),
        }
    }
}

/// The last acknowledged write of one record.
#[derive(Debug, Clone, PartialEq)]
struct Last {
    writer: String,
    store: Option<String>,
    /// The fields written; `None` after a delete.
    fields: Option<Value>,
}

/// Every acknowledged write of a scenario, by record. Each record is written by one
/// site only, so its expected end state is that site's last write whatever the clocks
/// say; writer threads share the ledger.
#[derive(Default)]
pub struct Ledger {
    records: Mutex<BTreeMap<(String, String), Last>>,
    acks: Mutex<u64>,
}

impl Ledger {
    /// Notes an acknowledged put of `fields` (the record's whole field set: scenarios
    /// write every field each time, so the expected record is exactly the last write).
    pub fn put(
        &self,
        writer: &str,
        collection: &str,
        id: &str,
        store: Option<&str>,
        fields: Value,
    ) {
        self.note(writer, collection, id, store, Some(fields));
    }

    /// Notes an acknowledged delete of a record the same writer put before.
    pub fn delete(&self, writer: &str, collection: &str, id: &str) {
        let store = self.store_of(collection, id);
        self.note(writer, collection, id, store.as_deref(), None);
    }

    /// How many writes were acknowledged.
    pub fn acks(&self) -> u64 {
        *self.acks.lock().unwrap()
    }

    fn store_of(&self, collection: &str, id: &str) -> Option<String> {
        let records = self.records.lock().unwrap();
        let last = records
            .get(&(collection.to_string(), id.to_string()))
            .unwrap_or_else(|| panic!("ledger: {collection}/{id} deleted before it was put"));
        last.store.clone()
    }

    fn note(
        &self,
        writer: &str,
        collection: &str,
        id: &str,
        store: Option<&str>,
        fields: Option<Value>,
    ) {
        let mut records = self.records.lock().unwrap();
        let key = (collection.to_string(), id.to_string());
        if let Some(before) = records.get(&key) {
            assert_eq!(
                before.writer, writer,
                "ledger: {collection}/{id} is written by two sites; scenarios give each record one writer"
            );
        }
        records.insert(
            key,
            Last {
                writer: writer.to_string(),
                store: store.map(str::to_string),
                fields,
            },
        );
        *self.acks.lock().unwrap() += 1;
    }

    fn collections(&self) -> BTreeSet<String> {
        self.records
            .lock()
            .unwrap()
            .keys()
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// The records `site` must hold in `collection`, by id, with their last write.
    fn expected_at(&self, site: &Site, collection: &str) -> BTreeMap<String, Last> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter(|((c, _), last)| c == collection && site.routes(last.store.as_deref()))
            .map(|((_, id), last)| (id.clone(), last.clone()))
            .collect()
    }
}

/// Waits until every satellite has pushed everything and holds the primary's replica of
/// each of its stores, then checks the whole invariant.
#[track_caller]
pub fn converged(primary: &Site, satellites: &[Site], ledger: &Ledger) {
    converged_within(primary, satellites, ledger, WAIT * 2)
}

/// [`converged`] with a given patience.
#[track_caller]
pub fn converged_within(primary: &Site, satellites: &[Site], ledger: &Ledger, timeout: Duration) {
    eventually(
        "every satellite to converge with the primary",
        timeout,
        || {
            for site in satellites {
                let status = site.node.status();
                if status["to_push"] != 0 {
                    return Err(format!("{} has changes to push: {status}", site.node.name));
                }
                digests_match(primary, site)?;
            }
            Ok(())
        },
    );
    check(primary, satellites, ledger);
}

/// Checks the invariant now, panicking with the site, store and record that break it.
#[track_caller]
pub fn check(primary: &Site, satellites: &[Site], ledger: &Ledger) {
    for site in std::iter::once(primary).chain(satellites) {
        holds_exactly_what_was_acknowledged(site, ledger);
    }
    for site in satellites {
        same_replica(primary, site);
    }
}

/// Invariant 3 for one satellite now (a cheap check between fault rounds).
#[track_caller]
pub fn same_replica(primary: &Site, site: &Site) {
    if let Err(e) = digests_match(primary, site) {
        panic!("replicas differ: {e}");
    }
}

/// Invariants 1 and 2 at one site.
#[track_caller]
fn holds_exactly_what_was_acknowledged(site: &Site, ledger: &Ledger) {
    let name = &site.node.name;
    for collection in ledger.collections() {
        let expected = ledger.expected_at(site, &collection);
        let held: BTreeMap<String, Value> = site
            .node
            .list(&collection)
            .into_iter()
            .map(|r| (r["id"].as_str().expect("id").to_string(), r))
            .collect();
        for (id, last) in &expected {
            let record = held.get(id);
            match (&last.fields, record) {
                (Some(_), None) => panic!(
                    "site {name}: acknowledged write of {collection}/{id} (store {:?}, by {}) is missing",
                    last.store, last.writer
                ),
                (Some(fields), Some(record)) => {
                    assert_eq!(
                        &record["fields"], fields,
                        "site {name}: {collection}/{id} (store {:?}) does not hold {}'s last acknowledged write",
                        last.store, last.writer
                    );
                    assert_eq!(
                        record["store"].as_str(),
                        last.store.as_deref(),
                        "site {name}: {collection}/{id} is in the wrong store"
                    );
                }
                (None, Some(record)) => panic!(
                    "site {name}: {collection}/{id} was deleted by {} (acknowledged) but is here: {record}",
                    last.writer
                ),
                (None, None) => {}
            }
        }
        let strays: Vec<&String> = held
            .keys()
            .filter(|id| !expected.contains_key(*id))
            .collect();
        assert!(
            strays.is_empty(),
            "site {name}: {collection} holds {} records nobody acknowledged or not routed here (applied twice or misrouted): {:?}",
            strays.len(),
            &strays[..strays.len().min(10)]
        );
        let live = expected.values().filter(|l| l.fields.is_some()).count();
        assert_eq!(
            held.len(),
            live,
            "site {name}: record count of {collection}"
        );
    }
}

/// One store's digest line, keyed by store id (`None`: organisation-wide).
type Digests = BTreeMap<Option<u64>, (u64, String)>;

fn digests(node: &Node) -> Digests {
    node.cli(&with_org(node, &["--json", "digest"]))
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| {
            (
                d["store"].as_u64(),
                (
                    d["records"].as_u64().expect("records"),
                    d["digest"].as_str().expect("digest").to_string(),
                ),
            )
        })
        .collect()
}

fn with_org<'a>(node: &'a Node, args: &[&'a str]) -> Vec<&'a str> {
    let mut args = args.to_vec();
    if let Some(org) = &node.org
        && node.site_id == 1
    {
        args.extend(["--org", org.as_str()]);
    }
    args
}

/// Store ids by name, from the primary.
fn store_ids(primary: &Node) -> BTreeMap<String, u64> {
    let org = primary
        .org
        .as_deref()
        .expect("the primary names its organisation");
    primary
        .cli(&["--json", "store", "list", "--org", org])
        .json()
        .as_array()
        .expect("a list of stores")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_string(),
                s["id"].as_u64().expect("id"),
            )
        })
        .collect()
}

/// Invariant 3 for one satellite: its digest of each store it holds (and of the
/// organisation-wide records) is the primary's, and it holds no other store.
fn digests_match(primary: &Site, site: &Site) -> Result<(), String> {
    let theirs = digests(primary.node);
    let ids = store_ids(primary.node);
    let routed = |store: &Option<u64>| match store {
        None => true,
        Some(id) => ids
            .iter()
            .any(|(name, i)| i == id && site.routes(Some(name))),
    };
    let want: Digests = theirs.into_iter().filter(|(s, _)| routed(s)).collect();
    let have = digests(site.node);
    if have == want {
        return Ok(());
    }
    let name = |store: &Option<u64>| match store {
        None => "organisation-wide records".to_string(),
        Some(id) => format!(
            "store {}",
            ids.iter()
                .find(|(_, i)| *i == id)
                .map_or(id.to_string(), |(n, _)| n.clone())
        ),
    };
    let stores: BTreeSet<&Option<u64>> = want.keys().chain(have.keys()).collect();
    let diffs: Vec<String> = stores
        .into_iter()
        .filter(|s| want.get(*s) != have.get(*s))
        .map(|s| {
            format!(
                "{}: primary {:?}, {} {:?}",
                name(s),
                want.get(s),
                site.node.name,
                have.get(s)
            )
        })
        .collect();
    Err(format!(
        "site {} differs from the primary: {}",
        site.node.name,
        diffs.join("; ")
    ))
}

/// A small deterministic generator (xorshift64*), so a failing run replays from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The seed of a fault scenario: `SITESYNC_FAULT_SEED` to replay one, else a new one.
/// Printed either way, so a failure can be replayed.
pub fn fault_seed(scenario: &str) -> u64 {
    let seed = std::env::var("SITESYNC_FAULT_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                ^ u64::from(std::process::id())
        });
    eprintln!("{scenario}: fault seed: {seed} (replay with SITESYNC_FAULT_SEED={seed})");
    seed
}
