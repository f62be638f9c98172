//! The invariant a run ends with, checked rather than assumed, on any replica that can
//! list its records ([`Replica`]); shared by the simulator, the e2e fault tests and
//! `bench load`:
//!
//! 1. every write acknowledged to a writer is on every site it routes to, with exactly
//!    the fields of the writer's last write (or deleted, after an acknowledged delete);
//! 2. nothing appears that nobody wrote and nothing is where it is not routed: each
//!    site holds exactly the live records routed to it (exact counts);
//! 3. replicas are identical: each store's digest on a satellite is the primary's.
//!
//! A run notes each write in a [`Ledger`] when the writer has been told it succeeded.
//! A record has one writer ([`Ledger::put`]), so its expected end state is that
//! writer's last write whatever the clocks say; or, for records every writer edits at
//! once, each writer owns a field of its own ([`Ledger::put_field`]) whose last
//! acknowledged value must be everywhere (the fields they share are settled by the
//! merge rule, and not checked here).
//!
//! Stores are named by `S`: a store id (`Option<StoreId>`, `None` for the
//! organisation-wide records) where the checker reads databases, or whatever the
//! caller sees (the e2e tests see store names through the CLI).

use serde_json::{Map, Value};
use sitesync_core::{Assignment, OrgId, StoreId};
use sitesync_store::{ListQuery, SiteStorage, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// A live record as a replica holds it: its store and its fields' values.
#[derive(Debug, Clone, PartialEq)]
pub struct Held<S = Option<StoreId>> {
    /// Its store.
    pub store: S,
    /// Its fields, by name.
    pub fields: Map<String, Value>,
}

/// A site's replica, as the checker sees it.
pub trait Replica<S = Option<StoreId>> {
    /// The site's name, for messages.
    fn name(&self) -> String;
    /// Whether records of `store` are routed to this site.
    fn routes(&self, store: &S) -> bool;
    /// The live records of a collection, by id.
    fn records(&self, collection: &str) -> Result<BTreeMap<String, Held<S>>, String>;
}

/// What the ledger expects of one record.
#[derive(Debug, Clone, PartialEq)]
enum Expected {
    /// The last write of its one writer: every field (`None`: deleted).
    Whole {
        writer: String,
        fields: Option<Map<String, Value>>,
    },
    /// Fields each written by one writer only, in a record they all edit: by field, the
    /// writer and the last value it was acknowledged.
    Owned(BTreeMap<String, (String, Value)>),
}

/// The last acknowledged state of one record.
#[derive(Debug, Clone, PartialEq)]
struct Last<S> {
    store: S,
    expected: Expected,
}

/// Every acknowledged write of a run, by record.
#[derive(Debug, Clone)]
pub struct Ledger<S = Option<StoreId>> {
    records: BTreeMap<(String, String), Last<S>>,
    /// Records whose fate is unknown (their writer was revoked with changes perhaps
    /// unpushed): not checked for presence.
    unknown: BTreeSet<(String, String)>,
    /// Records written whole by two writers: the run broke the one-writer rule the
    /// checks rest on.
    shared: BTreeSet<(String, String)>,
    acks: u64,
}

impl<S> Default for Ledger<S> {
    fn default() -> Ledger<S> {
        Ledger {
            records: BTreeMap::new(),
            unknown: BTreeSet::new(),
            shared: BTreeSet::new(),
            acks: 0,
        }
    }
}

impl<S: Clone + PartialEq + Debug> Ledger<S> {
    /// Notes an acknowledged put of `fields`, the record's whole field set.
    pub fn put(
        &mut self,
        writer: &str,
        collection: &str,
        id: &str,
        store: S,
        fields: Map<String, Value>,
    ) {
        self.note(writer, collection, id, store, Some(fields));
    }

    /// Notes an acknowledged delete of a record the same writer put before.
    pub fn delete(&mut self, writer: &str, collection: &str, id: &str) {
        if let Some(store) = self.store_of(collection, id) {
            self.note(writer, collection, id, store, None);
        }
    }

    /// Notes an acknowledged edit of `field`, which only `writer` writes, of a record
    /// that other writers edit at the same time (each its own field).
    pub fn put_field(
        &mut self,
        writer: &str,
        collection: &str,
        id: &str,
        store: S,
        field: &str,
        value: Value,
    ) {
        let key = (collection.to_string(), id.to_string());
        let last = self.records.entry(key).or_insert_with(|| Last {
            store: store.clone(),
            expected: Expected::Owned(BTreeMap::new()),
        });
        last.store = store;
        match &mut last.expected {
            Expected::Owned(fields) => {
                fields.insert(field.to_string(), (writer.to_string(), value));
            }
            whole => {
                *whole = Expected::Owned([(field.to_string(), (writer.to_string(), value))].into());
            }
        }
        self.acks += 1;
    }

    /// Forgets what `writer` wrote: it was revoked, and its last changes may never have
    /// reached the primary.
    pub fn forget_writer(&mut self, writer: &str) {
        for (key, last) in &mut self.records {
            match &mut last.expected {
                Expected::Whole { writer: w, .. } if w == writer => {
                    self.unknown.insert(key.clone());
                }
                Expected::Owned(fields) => fields.retain(|_, (w, _)| w != writer),
                Expected::Whole { .. } => {}
            }
        }
    }

    /// Stops expecting anything of one record: it may have been lost for good (a
    /// primary restored from a backup that lacks it, held by no site to give it back).
    /// A whole write of it afterwards is expected again.
    pub fn forget_record(&mut self, collection: &str, id: &str) {
        self.unknown
            .insert((collection.to_string(), id.to_string()));
    }

    /// The records written, by collection and id.
    pub fn keys(&self) -> Vec<(String, String)> {
        self.records.keys().cloned().collect()
    }

    /// How many writes were acknowledged.
    pub fn acks(&self) -> u64 {
        self.acks
    }

    /// The store of a record, when it was written.
    pub fn store_of(&self, collection: &str, id: &str) -> Option<S> {
        self.records
            .get(&(collection.to_string(), id.to_string()))
            .map(|l| l.store.clone())
    }

    fn note(
        &mut self,
        writer: &str,
        collection: &str,
        id: &str,
        store: S,
        fields: Option<Map<String, Value>>,
    ) {
        let key = (collection.to_string(), id.to_string());
        if let Some(Last {
            expected: Expected::Whole { writer: before, .. },
            ..
        }) = self.records.get(&key)
            && before != writer
        {
            self.shared.insert(key.clone());
        }
        let expected = Expected::Whole {
            writer: writer.to_string(),
            fields,
        };
        self.unknown.remove(&key);
        self.records.insert(key, Last { store, expected });
        self.acks += 1;
    }

    fn collections(&self) -> BTreeSet<String> {
        self.records.keys().map(|(c, _)| c.clone()).collect()
    }

    /// Invariants 1 and 2 at one site: `Err` names the site, record and what is wrong.
    /// Returns how many records routed there were found as acknowledged.
    pub fn check(&self, site: &dyn Replica<S>) -> Result<u64, String> {
        if let Some((collection, id)) = self.shared.first() {
            return Err(format!(
                "{collection}/{id} was written by two writers; the checks need one writer a record"
            ));
        }
        let name = site.name();
        let mut verified = 0;
        for collection in self.collections() {
            let held = site.records(&collection)?;
            let mut live = 0;
            for ((c, id), last) in &self.records {
                if *c != collection || !site.routes(&last.store) {
                    continue;
                }
                if self.unknown.contains(&(c.clone(), id.clone())) {
                    live += usize::from(held.contains_key(id));
                    continue;
                }
                check_one(&name, &collection, id, last, held.get(id))?;
                let alive = !matches!(last.expected, Expected::Whole { fields: None, .. });
                live += usize::from(alive);
            }
            if held.len() != live {
                let strays: Vec<&String> = held
                    .keys()
                    .filter(|id| {
                        let key = (collection.clone(), (*id).clone());
                        self.records
                            .get(&key)
                            .is_none_or(|l| !site.routes(&l.store))
                    })
                    .take(10)
                    .collect();
                return Err(format!(
                    "site {name}: {collection} holds {} live records, {live} expected; not written or not routed here: {strays:?}",
                    held.len()
                ));
            }
            verified += live as u64;
        }
        Ok(verified)
    }
}

fn check_one<S: PartialEq + Debug>(
    name: &str,
    collection: &str,
    id: &str,
    last: &Last<S>,
    held: Option<&Held<S>>,
) -> Result<(), String> {
    let store = &last.store;
    match (&last.expected, held) {
        (Expected::Whole { fields: None, .. }, None) => Ok(()),
        (
            Expected::Whole {
                writer,
                fields: None,
            },
            Some(held),
        ) => Err(format!(
            "site {name}: {collection}/{id} was deleted by {writer} (acknowledged) but holds {:?}",
            held.fields
        )),
        (Expected::Whole { writer, .. }, None) => Err(format!(
            "site {name}: acknowledged write of {collection}/{id} (store {store:?}, by {writer}) is missing"
        )),
        (Expected::Owned(_), None) => Err(format!(
            "site {name}: {collection}/{id} (store {store:?}), edited by every writer, is missing"
        )),
        (
            Expected::Whole {
                writer,
                fields: Some(fields),
            },
            Some(held),
        ) if &held.fields != fields || held.store != *store => Err(format!(
            "site {name}: {collection}/{id} holds {:?} in store {:?}, not {writer}'s last acknowledged write {fields:?} in store {store:?}",
            held.fields, held.store
        )),
        (Expected::Owned(fields), Some(held)) => {
            for (field, (writer, value)) in fields {
                let have = held.fields.get(field);
                if have != Some(value) || held.store != *store {
                    return Err(format!(
                        "site {name}: {collection}/{id}: {field} is {have:?} in store {:?}, but {writer} was acknowledged {value} last, in store {store:?}",
                        held.store
                    ));
                }
            }
            Ok(())
        }
        (Expected::Whole { .. }, Some(_)) => Ok(()),
    }
}

/// One digest line per store (`None`: organisation-wide): record count and digest.
pub type Digests = BTreeMap<Option<StoreId>, (u64, String)>;

/// Invariant 3 for one satellite: its digests are the primary's, for the stores routed
/// to it, and it holds no other store.
pub fn same_digests(
    primary: &Digests,
    site: &Digests,
    name: &str,
    routes: impl Fn(Option<StoreId>) -> bool,
) -> Result<(), String> {
    let want: Digests = primary
        .iter()
        .filter(|(s, _)| routes(**s))
        .map(|(s, d)| (*s, d.clone()))
        .collect();
    if &want == site {
        return Ok(());
    }
    let stores: BTreeSet<&Option<StoreId>> = want.keys().chain(site.keys()).collect();
    let diffs: Vec<String> = stores
        .into_iter()
        .filter(|s| want.get(*s) != site.get(*s))
        .map(|s| {
            format!(
                "store {s:?}: primary {:?}, {name} {:?}",
                want.get(s),
                site.get(s)
            )
        })
        .collect();
    Err(format!(
        "site {name} differs from the primary: {}",
        diffs.join("; ")
    ))
}

/// A site's database (any backend) as a replica: its organisation and what is routed
/// to it.
pub struct Database<'a> {
    /// The site's name, for messages.
    pub name: String,
    /// Its storage.
    pub storage: &'a dyn SiteStorage,
    /// The organisation checked.
    pub org: OrgId,
    /// The stores routed to it (the primary: every store).
    pub routes: Assignment,
}

/// Records listed at a time: a replica of a long run holds hundreds of thousands.
const PAGE: u32 = 10_000;

impl Replica for Database<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn routes(&self, store: &Option<StoreId>) -> bool {
        self.routes.routes(*store)
    }

    fn records(&self, collection: &str) -> Result<BTreeMap<String, Held>, String> {
        let mut held = BTreeMap::new();
        let mut query = ListQuery {
            collection: collection.to_string(),
            store: None,
            after: None,
            limit: PAGE,
        };
        loop {
            let page = self
                .storage
                .list(self.org, &query)
                .map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            query.after = Some(last.id.clone());
            for record in page {
                let fields = record
                    .state
                    .fields
                    .iter()
                    .map(|(k, f)| (k.clone(), f.value.clone()))
                    .collect();
                let store = record.state.store;
                held.insert(record.id, Held { store, fields });
            }
        }
        Ok(held)
    }
}

/// A site's digests of `org`, one line per store.
pub fn digests(storage: &dyn SiteStorage, org: OrgId) -> Result<Digests, StoreError> {
    Ok(storage
        .digest(org)?
        .into_iter()
        .map(|d| (d.store, (d.records, d.digest)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fake(BTreeMap<String, Held>, bool);

    impl Replica for Fake {
        fn name(&self) -> String {
            "fake".into()
        }
        fn routes(&self, store: &Option<StoreId>) -> bool {
            self.1 || store.is_none()
        }
        fn records(&self, _: &str) -> Result<BTreeMap<String, Held>, String> {
            Ok(self.0.clone())
        }
    }

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn held(v: Value) -> Held {
        Held {
            store: Some(1),
            fields: fields(v),
        }
    }

    #[test]
    fn missing_stray_and_wrong_records_are_named() {
        let mut ledger = Ledger::default();
        ledger.put("a", "c", "r1", Some(1), fields(json!({"n": 1})));
        ledger.put("a", "c", "r2", None, fields(json!({"n": 2})));
        ledger.delete("a", "c", "r2");
        let good = Fake([("r1".to_string(), held(json!({"n": 1})))].into(), true);
        assert_eq!(ledger.check(&good), Ok(1));
        let wrong = Fake([("r1".to_string(), held(json!({"n": 5})))].into(), true);
        assert!(
            ledger
                .check(&wrong)
                .unwrap_err()
                .contains("last acknowledged")
        );
        let missing = Fake(BTreeMap::new(), true);
        assert!(ledger.check(&missing).unwrap_err().contains("missing"));
        // A site not holding store 1 must not have r1.
        let stray = Fake([("r1".to_string(), held(json!({"n": 1})))].into(), false);
        assert!(ledger.check(&stray).unwrap_err().contains("not routed"));
    }

    #[test]
    fn an_owned_field_without_its_last_value_is_named() {
        let mut ledger = Ledger::default();
        ledger.put_field("a", "hot", "h", Some(1), "w_a", json!(2));
        ledger.put_field("b", "hot", "h", Some(1), "w_b", json!(7));
        let both = json!({"w_a": 2, "w_b": 7, "last": "b"});
        let good = Fake([("h".to_string(), held(both))].into(), true);
        assert_eq!(ledger.check(&good), Ok(1));
        let stale = Fake(
            [("h".to_string(), held(json!({"w_a": 2, "w_b": 6})))].into(),
            true,
        );
        let error = ledger.check(&stale).unwrap_err();
        assert!(
            error.contains("hot/h: w_b is Some(Number(6))")
                && error.contains("b was acknowledged 7"),
            "{error}"
        );
        let missing = Fake(BTreeMap::new(), true);
        assert!(ledger.check(&missing).unwrap_err().contains("missing"));
    }

    #[test]
    fn a_record_written_by_two_writers_is_refused() {
        let mut ledger = Ledger::default();
        ledger.put("a", "c", "r1", Some(1), fields(json!({"n": 1})));
        ledger.put("b", "c", "r1", Some(1), fields(json!({"n": 2})));
        let site = Fake([("r1".to_string(), held(json!({"n": 2})))].into(), true);
        assert!(ledger.check(&site).unwrap_err().contains("two writers"));
    }
}
