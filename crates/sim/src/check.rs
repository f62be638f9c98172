//! The end of a schedule: heal the network, let every site sync until quiet, then check
//! the invariants.

use crate::invariants::{self, Database, Digests, same_digests};
use crate::world::{HOT, SimResult, World, err};
use sitesync_core::{Assignment, OrgId};
use sitesync_sqlite::SqliteStore;
use sitesync_store::{PrimaryStorage, SatelliteStorage, SiteStorage};
use std::collections::{BTreeMap, BTreeSet};

/// Most rounds of healing before the sites are declared stuck.
const HEAL_ROUNDS: usize = 400;

fn digests(store: &SqliteStore, org: OrgId) -> SimResult<Digests> {
    invariants::digests(store, org).map_err(err)
}

impl World {
    /// Heals: no more faults, every satellite up, every message delivered, until every
    /// site has pushed everything, applied its assignment and holds the primary's replica.
    pub(crate) fn heal(&mut self) -> SimResult<()> {
        self.faults = false;
        for sat in &mut self.sats {
            if sat.store.is_none() {
                sat.restart().map_err(err)?;
            }
        }
        for _ in 0..HEAL_ROUNDS {
            for s in 0..self.sats.len() {
                for l in 0..2 {
                    let mut n = 0;
                    while n < 100 && self.drive_lane(s, l)? {
                        n += 1;
                    }
                }
            }
            while !self.net.is_empty() {
                self.deliver_one()?;
            }
            if self.quiet()?.is_none() {
                return Ok(());
            }
            self.now += 1_000;
            self.step_timers()?;
        }
        let why = self.quiet()?.unwrap_or_default();
        Err(format!(
            "the sites did not converge after the network healed: {why}"
        ))
    }

    fn step_timers(&mut self) -> SimResult<()> {
        // A quiet step: only time, timers and held pulls move.
        let faults = std::mem::replace(&mut self.faults, false);
        let result = self.tick();
        self.faults = faults;
        result
    }

    /// Whether every live satellite has pushed everything and holds the primary's replica.
    /// `None` when quiet, else what is still moving.
    fn quiet(&self) -> SimResult<Option<String>> {
        let primary = digests(&self.primary, self.org)?;
        let incarnation = self.primary.incarnation().map_err(err)?;
        for sat in self.sats.iter().filter(|s| !s.revoked) {
            let Some(store) = &sat.store else {
                return Ok(Some(format!("{} is down", sat.name)));
            };
            let row = self.primary.site_by_id(sat.id).map_err(err)?;
            let durable = crate::site::load(store).map_err(err)?;
            let outbox = store.outbox_len().map_err(err)?;
            let same = same_digests(&primary, &digests(store, self.org)?, &sat.name, |s| {
                row.assignment.routes(s)
            });
            if outbox > 0
                || !sat.uncommitted.is_empty()
                || !durable.backfill.is_empty()
                || durable.assignment_applied != row.assignment_version
                || durable.incarnation != incarnation
                || same.is_err()
            {
                let lanes: Vec<String> = sat
                    .lanes
                    .iter()
                    .map(|l| format!("{:?} {:?}", l.waiting, l.session))
                    .collect();
                return Ok(Some(format!(
                    "{}: outbox {outbox}, backfill {:?}, applied {} of {}, {:?}; lanes {lanes:?}",
                    sat.name,
                    durable.backfill,
                    durable.assignment_applied,
                    row.assignment_version,
                    same.err()
                )));
            }
        }
        Ok(None)
    }

    /// Checks every invariant; `Err` says which broke, where.
    pub(crate) fn check(&self) -> SimResult<()> {
        let all = Assignment {
            all_stores: true,
            stores: BTreeSet::new(),
        };
        let primary = Database {
            name: "primary".into(),
            storage: &self.primary,
            org: self.org,
            routes: all,
        };
        self.ledger.check(&primary)?;
        let want = digests(&self.primary, self.org)?;
        for sat in self.sats.iter().filter(|s| !s.revoked) {
            let store = sat
                .store
                .as_ref()
                .ok_or("a satellite is down after healing")?;
            let row = self.primary.site_by_id(sat.id).map_err(err)?;
            let db = Database {
                name: sat.name.clone(),
                storage: store,
                org: self.org,
                routes: row.assignment.clone(),
            };
            self.ledger.check(&db)?;
            same_digests(&want, &digests(store, self.org)?, &sat.name, |s| {
                row.assignment.routes(s)
            })?;
        }
        self.check_hot()?;
        self.check_counted()?;
        self.check_conflicts()
    }

    /// Each hot record holds, on the primary, the write with the later stamp.
    fn check_hot(&self) -> SimResult<()> {
        for (id, writes) in &self.hot {
            if writes.iter().any(|w| self.sats[w.site].revoked) {
                continue;
            }
            let Some(winner) = writes.iter().max_by_key(|w| w.stamp) else {
                continue;
            };
            let record = self.primary.record(self.org, HOT, id).map_err(err)?;
            let held = record
                .as_ref()
                .and_then(|r| r.state.fields.get("x"))
                .map(|f| f.value.clone());
            if held.as_ref().and_then(|v| v.as_str()) != Some(winner.value.as_str()) {
                return Err(format!(
                    "hot/{id} holds {held:?} on the primary, not the later write {:?}",
                    winner.value
                ));
            }
        }
        Ok(())
    }

    /// The primary's conflict log: no pair twice, each pair really concurrent, and each
    /// hot record written concurrently by two sites logged exactly once.
    ///
    /// The rule (core's `merge`, the primary's `log_conflicts`) logs a pair when the
    /// primary merges one version into the version it holds. With two versions of a
    /// field that is every concurrent pair, exactly once. With three or more concurrent
    /// versions it is not: the primary compares each arriving version only with the one
    /// it holds then, so the two losers of a three-way race are never compared. So the
    /// checker asks for exactly once on fields written by two sites (the hot records
    /// are made so), and on every field for at most once and only real conflicts.
    ///
    /// A primary restored from a backup lost the pairs logged since, and logs again the
    /// pairs it meets again as satellites give back what they hold: there the checker
    /// asks only for real conflicts.
    fn check_conflicts(&self) -> SimResult<()> {
        let once = self.restored == 0;
        let log = self.primary.conflicts(self.org, u32::MAX).map_err(err)?;
        let mut seen = BTreeSet::new();
        let mut per_record: BTreeMap<String, usize> = BTreeMap::new();
        for row in &log {
            let key = (
                row.collection.clone(),
                row.record_id.clone(),
                row.field.clone(),
                row.winner.stamp,
                row.loser.stamp,
            );
            if !seen.insert(key) && once {
                return Err(format!(
                    "the conflict of {}/{} field {} is logged twice",
                    row.collection, row.record_id, row.field
                ));
            }
            if row.winner.stamp <= row.loser.stamp || row.winner.base >= Some(row.loser.stamp) {
                return Err(format!(
                    "{}/{}: a logged conflict that is not one: {row:?}",
                    row.collection, row.record_id
                ));
            }
            if row.collection == HOT {
                *per_record.entry(row.record_id.clone()).or_default() += 1;
            }
        }
        for (id, writes) in self.hot.iter().filter(|_| once) {
            let [a, b] = &writes[..] else { continue };
            if self.sats[a.site].revoked || self.sats[b.site].revoked {
                continue;
            }
            let (winner, loser) = if a.stamp > b.stamp { (a, b) } else { (b, a) };
            let expected = usize::from(winner.base < Some(loser.stamp));
            let logged = per_record.get(id).copied().unwrap_or(0);
            if logged != expected {
                return Err(format!(
                    "hot/{id}: {logged} conflicts logged on the primary, {expected} expected (writes {writes:?})"
                ));
            }
        }
        Ok(())
    }
}
