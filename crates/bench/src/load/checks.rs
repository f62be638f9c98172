//! After the window: waiting for the replicas to converge, then the checks, each
//! failing the scenario with the site, store and record it found wrong. The record
//! checks and the digest comparison are the simulator's ([`sitesync_sim::invariants`]),
//! shared with the e2e fault tests; the counts of applied and rejected changes are this
//! scenario's own.

use super::CONVERGE_LIMIT;
use crate::BenchError;
use sitesync_core::{Assignment, OrgId, StoreId};
use sitesync_sim::invariants::{Database, Ledger, digests, same_digests};
use sitesync_sqlite::SqliteStore;
use sitesync_store::{SatelliteStorage, SiteStorage};
use std::path::Path;
use std::time::{Duration, Instant};

/// A site whose replica is checked: the primary (holding every store) or a satellite.
pub(crate) struct Replica {
    pub(crate) name: String,
    /// The store it holds besides the organisation-wide records; `None`: every store.
    pub(crate) store: Option<StoreId>,
    pub(crate) db: SqliteStore,
}

impl Replica {
    /// The database at `path`, opened beside the process using it.
    pub(crate) fn open(
        name: String,
        store: Option<StoreId>,
        path: &Path,
    ) -> Result<Replica, BenchError> {
        let db = SqliteStore::open(path)?;
        Ok(Replica { name, store, db })
    }

    /// The stores routed to it.
    fn routes(&self) -> Assignment {
        Assignment {
            all_stores: self.store.is_none(),
            stores: self.store.into_iter().collect(),
        }
    }

    /// As the shared checker reads it.
    fn database(&self, org: OrgId) -> Database<'_> {
        Database {
            name: self.name.clone(),
            storage: &self.db,
            org,
            routes: self.routes(),
        }
    }
}

/// Waits until every satellite has pushed everything and holds, of each store routed to
/// it, the same digest as the primary (`replicas[0]`); returns how many digests were
/// compared.
pub(crate) async fn converge(org: OrgId, replicas: &[Replica]) -> Result<u64, BenchError> {
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

/// How many digests match the primary's, or the first way a satellite's replica differs.
pub(crate) fn difference(
    org: OrgId,
    replicas: &[Replica],
) -> Result<Result<u64, String>, BenchError> {
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
    let expected = digests(&primary.db, org)?;
    let mut compared = 0;
    for sat in sats {
        let routes = sat.routes();
        let held = digests(&sat.db, org)?;
        if let Err(e) = same_digests(&expected, &held, &sat.name, |s| routes.routes(s)) {
            return Ok(Err(e));
        }
        compared += held.len() as u64;
    }
    Ok(Ok(compared))
}

/// The checks after convergence, `replicas[0]` being the primary's; returns how many
/// records they verified.
pub(crate) fn check(org: OrgId, replicas: &[Replica], ledger: &Ledger) -> Result<u64, BenchError> {
    let Some(primary) = replicas.first() else {
        return Ok(0);
    };
    // Each change here changes its record, and the primary numbers each change that
    // changes a record: one number per acknowledged change, no more, no fewer.
    let (numbered, changes) = (primary.db.head()?, ledger.acks());
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
        let rejected = replica.db.rejection_count(org, 0)?;
        if rejected > 0 {
            let first = replica.db.rejections(org, 1)?;
            return Err(BenchError::Failed(format!(
                "{} rejected {rejected} changes, the first: {first:?}",
                replica.name
            )));
        }
    }
    let mut verified = 0;
    for replica in replicas {
        verified += ledger
            .check(&replica.database(org))
            .map_err(BenchError::Failed)?;
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    //! The checks can fail: each is shown a replica that breaks it.

    use super::super::writes::Write;
    use super::*;
    use sitesync_core::PRIMARY_SITE;
    use sitesync_sim::Rng;
    use sitesync_store::{LocalWrite, PrimaryStorage};

    /// A site's database holding the records `ids` (all in one store), and that store.
    fn replica(dir: &tempfile::TempDir, name: &str, ids: &[&str]) -> (Replica, OrgId, StoreId) {
        let db = SqliteStore::open(&dir.path().join(format!("{name}.db"))).unwrap();
        let org = db.create_org("Bench", 1).unwrap().id;
        let store = db.create_store(org, "store-000").unwrap().id;
        let writes = ids
            .iter()
            .map(|id| {
                let write = made(id, Some(store));
                let put = LocalWrite::Put {
                    store: write.store,
                    fields: write.fields,
                };
                (write.collection.to_string(), id.to_string(), put)
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

    /// The new record `WRITER-N`, the same each time.
    fn made(id: &str, store: Option<StoreId>) -> Write {
        let (writer, n) = id.rsplit_once('-').unwrap();
        Write::new_record(&mut Rng::new(1), writer, n.parse().unwrap(), store)
    }

    fn ledger(created: &[&str], store: Option<StoreId>) -> Ledger {
        let mut ledger = Ledger::default();
        for id in created {
            let (writer, n) = id.rsplit_once('-').unwrap();
            made(id, store).note(&mut ledger, writer, n.parse().unwrap());
        }
        ledger
    }

    fn message(result: Result<u64, BenchError>) -> String {
        result.expect_err("the check must fail").to_string()
    }

    #[test]
    fn a_replica_holding_every_acknowledged_record_passes() {
        let dir = tempfile::tempdir().unwrap();
        let (site, org, store) = replica(&dir, "p", &["c0-1", "c0-2"]);
        let ledger = ledger(&["c0-1", "c0-2"], Some(store));
        assert_eq!(check(org, &[site], &ledger).unwrap(), 2);
    }

    #[test]
    fn a_missing_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (site, org, store) = replica(&dir, "p", &["c0-1", "c0-2"]);
        let ledger = ledger(&["c0-1", "c0-2", "c0-3"], Some(store));
        // The count of applied changes misses it first...
        let error = message(check(org, std::slice::from_ref(&site), &ledger));
        assert!(error.contains("applied 2 changes, but 3"), "{error}");
        // ...and the record check names it.
        let error = ledger.check(&site.database(org)).unwrap_err();
        assert!(
            error.contains("load/c0-3") && error.contains(&format!("store Some({store})")),
            "{error}"
        );
        assert!(error.contains("is missing"), "{error}");
    }

    #[test]
    fn a_record_no_writer_was_acknowledged_or_in_the_wrong_place_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (site, org, store) = replica(&dir, "p", &["c0-1", "c0-2"]);
        let error = ledger(&["c0-1"], Some(store))
            .check(&site.database(org))
            .unwrap_err();
        assert!(
            error.contains("load holds 2 live records, 1 expected") && error.contains("c0-2"),
            "{error}"
        );
        let mut wrong = ledger(&["c0-1"], Some(store));
        made("c0-2", None).note(&mut wrong, "c0", 2);
        let error = wrong.check(&site.database(org)).unwrap_err();
        assert!(
            error.contains("load/c0-2 holds")
                && error.contains(&format!("in store Some({store}), not c0's"))
                && error.contains("in store None"),
            "{error}"
        );
    }

    #[test]
    fn an_applied_change_too_many_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (site, org, store) = replica(&dir, "p", &["c0-1", "c0-2", "c0-3"]);
        let ledger = ledger(&["c0-1", "c0-2"], Some(store));
        let error = message(check(org, &[site], &ledger));
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
            .write_local(
                org,
                write.collection,
                &write.id,
                put,
                PRIMARY_SITE,
                2_000,
                false,
            )
            .unwrap();
        let mut ledger = Ledger::default();
        write.note(&mut ledger, "c1", 7);
        assert_eq!(ledger.check(&site.database(org)), Ok(1));
        write.note(&mut ledger, "c1", 8);
        let error = ledger.check(&site.database(org)).unwrap_err();
        assert!(error.contains(&format!("hot/{}", write.id)), "{error}");
        assert!(
            error.contains("w_c1 is Some(Number(7))")
                && error.contains("c1 was acknowledged 8 last"),
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
            error.contains(&format!("store Some({store}): primary Some((2,")),
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
        assert!(error.contains("primary None, sat3 Some((1,"), "{error}");
    }
}
