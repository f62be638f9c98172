//! The invariant a run ends with, checked rather than assumed, on any replica that can
//! list its records ([`Replica`]):
//!
//! 1. every write acknowledged to a writer is on every site it routes to, with exactly
//!    the fields of the writer's last write (or deleted, after an acknowledged delete);
//! 2. nothing appears that nobody wrote and nothing is where it is not routed: each
//!    site holds exactly the live records routed to it (exact counts);
//! 3. replicas are identical: each store's digest on a satellite is the primary's.
//!
//! A run notes each write in a [`Ledger`] when the writer has been told it succeeded.
//! Each record has one writer, so its expected end state is that writer's last write
//! whatever the clocks say.

use serde_json::{Map, Value};
use sitesync_core::StoreId;
use std::collections::{BTreeMap, BTreeSet};

/// A live record as a replica holds it: its store and its fields' values.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Its store (`None`: organisation-wide).
    pub store: Option<StoreId>,
    /// Its fields, by name.
    pub fields: Map<String, Value>,
}

/// A site's replica, as the checker sees it.
pub trait Replica {
    /// The site's name, for messages.
    fn name(&self) -> String;
    /// Whether records of `store` are routed to this site.
    fn routes(&self, store: Option<StoreId>) -> bool;
    /// The live records of a collection, by id.
    fn records(&self, collection: &str) -> Result<BTreeMap<String, Held>, String>;
}

/// The last acknowledged write of one record.
#[derive(Debug, Clone, PartialEq)]
struct Last {
    writer: String,
    store: Option<StoreId>,
    /// The fields written; `None` after a delete.
    fields: Option<Map<String, Value>>,
}

/// Every acknowledged write of a run, by record.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    records: BTreeMap<(String, String), Last>,
    /// Records whose fate is unknown (their writer was revoked with changes perhaps
    /// unpushed): not checked for presence.
    unknown: BTreeSet<(String, String)>,
    acks: u64,
}

impl Ledger {
    /// Notes an acknowledged put of `fields`, the record's whole field set.
    pub fn put(
        &mut self,
        writer: &str,
        collection: &str,
        id: &str,
        store: Option<StoreId>,
        fields: Map<String, Value>,
    ) {
        self.note(writer, collection, id, store, Some(fields));
    }

    /// Notes an acknowledged delete of a record the same writer put before.
    pub fn delete(&mut self, writer: &str, collection: &str, id: &str) {
        let store = self
            .records
            .get(&(collection.to_string(), id.to_string()))
            .and_then(|l| l.store);
        self.note(writer, collection, id, store, None);
    }

    /// Forgets what `writer` wrote: it was revoked, and its last changes may never have
    /// reached the primary.
    pub fn forget_writer(&mut self, writer: &str) {
        for (key, last) in &self.records {
            if last.writer == writer {
                self.unknown.insert(key.clone());
            }
        }
    }

    /// How many writes were acknowledged.
    pub fn acks(&self) -> u64 {
        self.acks
    }

    /// The store of a record, when it was written.
    pub fn store_of(&self, collection: &str, id: &str) -> Option<Option<StoreId>> {
        self.records
            .get(&(collection.to_string(), id.to_string()))
            .map(|l| l.store)
    }

    fn note(
        &mut self,
        writer: &str,
        collection: &str,
        id: &str,
        store: Option<StoreId>,
        fields: Option<Map<String, Value>>,
    ) {
        let key = (collection.to_string(), id.to_string());
        let last = Last {
            writer: writer.to_string(),
            store,
            fields,
        };
        self.records.insert(key, last);
        self.acks += 1;
    }

    fn collections(&self) -> BTreeSet<String> {
        self.records.keys().map(|(c, _)| c.clone()).collect()
    }

    /// Invariants 1 and 2 at one site: `Err` names the site, record and what is wrong.
    pub fn check(&self, site: &dyn Replica) -> Result<(), String> {
        let name = site.name();
        for collection in self.collections() {
            let held = site.records(&collection)?;
            let mut live = 0;
            for ((c, id), last) in &self.records {
                if *c != collection || !site.routes(last.store) {
                    continue;
                }
                let key = (c.clone(), id.clone());
                if self.unknown.contains(&key) {
                    live += usize::from(held.contains_key(id));
                    continue;
                }
                check_one(&name, &collection, id, last, held.get(id))?;
                live += usize::from(last.fields.is_some());
            }
            if held.len() != live {
                let strays: Vec<&String> = held
                    .keys()
                    .filter(|id| {
                        let key = (collection.clone(), (*id).clone());
                        self.records.get(&key).is_none_or(|l| !site.routes(l.store))
                    })
                    .collect();
                return Err(format!(
                    "site {name}: {collection} holds {} live records, {live} expected; not written or not routed here: {strays:?}",
                    held.len()
                ));
            }
        }
        Ok(())
    }
}

fn check_one(
    name: &str,
    collection: &str,
    id: &str,
    last: &Last,
    held: Option<&Held>,
) -> Result<(), String> {
    match (&last.fields, held) {
        (Some(_), None) => Err(format!(
            "site {name}: acknowledged write of {collection}/{id} (store {:?}, by {}) is missing",
            last.store, last.writer
        )),
        (Some(fields), Some(held)) if &held.fields != fields || held.store != last.store => {
            Err(format!(
                "site {name}: {collection}/{id} holds {:?} in store {:?}, not {}'s last acknowledged write {fields:?} in store {:?}",
                held.fields, held.store, last.writer, last.store
            ))
        }
        (None, Some(held)) => Err(format!(
            "site {name}: {collection}/{id} was deleted by {} (acknowledged) but holds {:?}",
            last.writer, held.fields
        )),
        _ => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fake(BTreeMap<String, Held>, bool);

    impl Replica for Fake {
        fn name(&self) -> String {
            "fake".into()
        }
        fn routes(&self, store: Option<StoreId>) -> bool {
            self.1 || store.is_none()
        }
        fn records(&self, _: &str) -> Result<BTreeMap<String, Held>, String> {
            Ok(self.0.clone())
        }
    }

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn missing_stray_and_wrong_records_are_named() {
        let mut ledger = Ledger::default();
        ledger.put("a", "c", "r1", Some(1), fields(json!({"n": 1})));
        ledger.put("a", "c", "r2", None, fields(json!({"n": 2})));
        ledger.delete("a", "c", "r2");
        let held = |n| Held {
            store: Some(1),
            fields: fields(json!({"n": n})),
        };
        let good = Fake([("r1".to_string(), held(1))].into(), true);
        assert_eq!(ledger.check(&good), Ok(()));
        let wrong = Fake([("r1".to_string(), held(5))].into(), true);
        assert!(
            ledger
                .check(&wrong)
                .unwrap_err()
                .contains("last acknowledged")
        );
        let missing = Fake(BTreeMap::new(), true);
        assert!(ledger.check(&missing).unwrap_err().contains("missing"));
        // A site not holding store 1 must not have r1.
        let stray = Fake([("r1".to_string(), held(1))].into(), false);
        assert!(ledger.check(&stray).unwrap_err().contains("not routed"));
    }
}
