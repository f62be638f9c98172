//! The invariant every fault scenario ends with, checked rather than assumed:
//!
//! 1. every change acknowledged to a writer is present on every site it routes to (the
//!    primary; each satellite holding the record's store; every satellite for an
//!    organisation-wide record), with exactly the fields of the writer's last write;
//! 2. no change is applied twice and nothing appears that nobody wrote: each site holds
//!    exactly the records routed to it (every write names a record of its own, so a
//!    duplicate or a stray shows up in the count);
//! 3. the replicas are identical: `sitesync digest` of each satellite matches the
//!    primary's for every store it holds and for the organisation-wide records;
//! 4. every file a record names is whole at every site holding the record: `file get`
//!    reads it, each chunk checked against its hash and the chunks against the file's
//!    hash the record holds, so the bytes are those that were put.
//!
//! A scenario notes each write in a [`Ledger`] when the writer has been told it
//! succeeded (a `record put` that exited 0, a local API answer 200, a committed bulk
//! write), then calls [`converged`] once the faults are over. The ledger and the checks
//! are the simulator's (`sitesync_sim::invariants`), shared with `bench load`; this
//! file reads the sites through the CLI and the local API for them.

use crate::harness::{Node, WAIT, eventually};
use serde_json::Value;
use sitesync_sim::invariants::{self, Digests, Held, Replica, same_digests};
use std::collections::BTreeMap;
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

    /// Whether records of `store` (by name; `None`: organisation-wide) route here.
    fn routed(&self, store: Option<&str>) -> bool {
        match (&self.holds, store) {
            (_, None) | (Holds::All, _) => true,
            (Holds::Stores(held), Some(store)) => held.iter().any(|s| s == store),
        }
    }
}

/// Every acknowledged write of a scenario, by record: the checker shared with the
/// simulator and `bench load`, with stores named as the CLI shows them. Each record is
/// written by one site only, so its expected end state is that site's last write
/// whatever the clocks say; writer threads share the ledger.
#[derive(Default)]
pub struct Ledger(
    Mutex<invariants::Ledger<Option<String>>>,
    /// The collections a write put a file into (where invariant 4 looks).
    Mutex<std::collections::BTreeSet<String>>,
);

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
        let Value::Object(fields) = fields else {
            panic!("ledger: the fields of {collection}/{id} are not an object: {fields}");
        };
        if fields.values().any(is_file) {
            self.1.lock().unwrap().insert(collection.to_string());
        }
        let store = store.map(str::to_string);
        self.lock().put(writer, collection, id, store, fields);
    }

    /// Notes an acknowledged delete of a record the same writer put before.
    pub fn delete(&self, writer: &str, collection: &str, id: &str) {
        let mut ledger = self.lock();
        assert!(
            ledger.store_of(collection, id).is_some(),
            "ledger: {collection}/{id} deleted before it was put"
        );
        ledger.delete(writer, collection, id);
    }

    /// How many writes were acknowledged.
    pub fn acks(&self) -> u64 {
        self.lock().acks()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, invariants::Ledger<Option<String>>> {
        self.0.lock().unwrap()
    }
}

impl Replica<Option<String>> for Site<'_> {
    fn name(&self) -> String {
        self.node.name.clone()
    }

    fn routes(&self, store: &Option<String>) -> bool {
        self.routed(store.as_deref())
    }

    fn records(&self, collection: &str) -> Result<BTreeMap<String, Held<Option<String>>>, String> {
        let held = self.node.list(collection).into_iter().map(|r| {
            let held = Held {
                store: r["store"].as_str().map(str::to_string),
                fields: r["fields"].as_object().cloned().unwrap_or_default(),
            };
            (r["id"].as_str().expect("id").to_string(), held)
        });
        Ok(held.collect())
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
            for site in std::iter::once(primary).chain(satellites) {
                files_whole(site, ledger)?;
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
    for site in std::iter::once(primary).chain(satellites) {
        if let Err(e) = files_whole(site, ledger) {
            panic!("{e}");
        }
    }
}

/// Whether a field's value names a file.
fn is_file(value: &Value) -> bool {
    value["hash"]
        .as_str()
        .is_some_and(|h| h.starts_with("blake3:"))
}

/// Invariant 4 at one site: every file named by a record of the ledger's collections
/// held there reads back whole (and checked).
fn files_whole(site: &Site, ledger: &Ledger) -> Result<(), String> {
    let collections = ledger.1.lock().unwrap().clone();
    for collection in collections {
        for record in site.node.list(&collection) {
            let id = record["id"].as_str().unwrap_or_default();
            let fields = record["fields"].as_object().cloned().unwrap_or_default();
            for (field, value) in fields {
                if !is_file(&value) {
                    continue;
                }
                let mut args = vec!["file", "get", collection.as_str(), id, &field, "-o"];
                let out = site.node.data.join("invariant-file");
                let out = out.to_string_lossy().into_owned();
                args.push(&out);
                let read = site.node.cli(&with_org(site.node, &args));
                if !read.success() {
                    return Err(format!(
                        "{}: the file of {collection}/{id} {field} is not whole there: {}",
                        site.node.name,
                        read.describe()
                    ));
                }
            }
        }
    }
    Ok(())
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
    if let Err(e) = ledger.lock().check(site) {
        panic!("{e}");
    }
}

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
    let ids = store_ids(primary.node);
    let routed = |store: Option<u64>| match store {
        None => true,
        Some(id) => ids
            .iter()
            .any(|(name, i)| *i == id && site.routed(Some(name))),
    };
    let (want, have) = (digests(primary.node), digests(site.node));
    same_digests(&want, &have, &site.node.name, routed)
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
