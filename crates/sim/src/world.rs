//! One schedule: a primary and its satellites on real SQLite files, driven step by step
//! by one seeded generator. Time is a number: the true time advances by the steps, and
//! each satellite's wall clock is the true time plus its skew.

use crate::bugs::Bugs;
use crate::net::{Message, Parked};
use crate::rng::Rng;
use crate::site::Sat;
use serde_json::{Map, Value, json};
use sitesync_core::{Assignment, OrgId, StoreId};
use sitesync_sqlite::SqliteStore;
use sitesync_store::{LocalWrite, PrimaryStorage, SiteStorage};
use std::collections::BTreeSet;
use std::path::Path;

/// The collection of ordinary records (one writer each).
pub(crate) const OWN: &str = "own";
/// The collection of records two sites write at once.
pub(crate) const HOT: &str = "hot";
/// How long a satellite waits for an answer beyond the long poll's wait.
pub(crate) const TIMEOUT_MS: u64 = 15_000;

/// A failure of the simulator itself (not of an invariant).
pub(crate) type SimResult<T> = Result<T, String>;

pub(crate) fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Every write to a hot record: its site, the stamp and base of the field written.
#[derive(Debug, Clone)]
pub(crate) struct HotWrite {
    pub(crate) site: usize,
    pub(crate) value: String,
    pub(crate) stamp: sitesync_core::Stamp,
    pub(crate) base: Option<sitesync_core::Stamp>,
}

pub(crate) struct World {
    pub(crate) rng: Rng,
    pub(crate) bugs: Bugs,
    pub(crate) now: u64,
    pub(crate) primary: SqliteStore,
    pub(crate) org: OrgId,
    pub(crate) stores: Vec<StoreId>,
    pub(crate) sats: Vec<Sat>,
    pub(crate) net: Vec<Message>,
    pub(crate) parked: Vec<Parked>,
    pub(crate) requests: u64,
    pub(crate) ledger: crate::invariants::Ledger,
    /// Writes of each hot record, by id.
    pub(crate) hot: std::collections::BTreeMap<String, Vec<HotWrite>>,
    /// Whether faults happen (off while healing).
    pub(crate) faults: bool,
    /// The primary's database file, opened again when the primary crashes.
    pub(crate) primary_path: std::path::PathBuf,
    /// Decides when the primary crashes, in the schedules that crash it: a generator of
    /// its own, so the schedules that do not (the kept regression seeds among them)
    /// replay exactly as they did before primary crashes existed.
    primary_crashes: Option<Rng>,
    /// Decides when the primary is backed up and restored, in the schedules that do so
    /// (a generator of its own, as for crashes).
    pub(crate) restores: Option<Rng>,
    /// The latest backup of the primary, and how many restores there were.
    pub(crate) backup: Option<std::path::PathBuf>,
    pub(crate) restored: u32,
    pub(crate) dir: std::path::PathBuf,
    /// Decides when satellites add to counters, in the schedules that have them (a
    /// generator of its own, as for crashes).
    pub(crate) counts: Option<Rng>,
    /// The sum each satellite (by index) added to each counter record, by id.
    pub(crate) counted: std::collections::BTreeMap<String, std::collections::BTreeMap<usize, i64>>,
}

impl World {
    /// A primary with `stores` stores and `sites` satellites, each at home in one store.
    pub(crate) fn new(
        dir: &Path,
        rng: Rng,
        bugs: Bugs,
        (sites, stores): (usize, usize),
        (primary_crashes, restores): (Option<Rng>, Option<Rng>),
    ) -> SimResult<World> {
        let now = 1_800_000_000_000;
        let primary_path = dir.join("primary.db");
        let primary = SqliteStore::open_primary(&primary_path).map_err(err)?;
        let org = primary.create_org("sim", now).map_err(err)?.id;
        let ids: Vec<StoreId> = (0..stores)
            .map(|i| {
                primary
                    .create_store(org, &format!("store{i}"))
                    .map(|s| s.id)
            })
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let mut sats = Vec::new();
        for i in 0..sites {
            let home = ids[i % ids.len()];
            let assignment = Assignment {
                all_stores: false,
                stores: [home].into(),
            };
            let id = primary
                .create_site(
                    org,
                    None,
                    Some(&format!("site{}", i + 2)),
                    &|_| String::new(),
                    &assignment,
                    now,
                )
                .map_err(err)?;
            let row = primary.site_by_id(id).map_err(err)?;
            let config = primary.site_config(&row).map_err(err)?;
            let incarnation = primary.incarnation().map_err(err)?;
            let path = dir.join(format!("site{id}.db"));
            sats.push(Sat::new(id, path, home, (org, &config, incarnation)).map_err(err)?);
        }
        Ok(World {
            rng,
            bugs,
            now,
            primary,
            org,
            stores: ids,
            sats,
            net: Vec::new(),
            parked: Vec::new(),
            requests: 0,
            ledger: Default::default(),
            hot: Default::default(),
            faults: true,
            primary_path,
            primary_crashes,
            restores,
            backup: None,
            restored: 0,
            dir: dir.to_path_buf(),
            counts: None,
            counted: Default::default(),
        })
    }

    /// One step of the schedule: the generator picks what happens.
    pub(crate) fn step(&mut self) -> SimResult<()> {
        if self.faults
            && let Some(crashes) = &mut self.primary_crashes
            && crashes.chance(1)
        {
            self.crash_primary()?;
        }
        if self.faults {
            self.back_up_or_restore()?;
        }
        self.now += self.rng.below(30);
        if self.faults && self.rng.chance(2) {
            // Long enough for long polls and lost answers to time out.
            self.now += 20_000 + self.rng.below(60_000);
        }
        let roll = self.rng.below(100);
        let s = self.rng.pick(self.sats.len());
        match roll {
            0..=19 => self.write(s)?,
            20..=49 => self.deliver_one()?,
            50..=89 => self.drive(s)?,
            _ if self.faults => self.fault(s)?,
            _ => {}
        }
        self.tick()
    }

    /// The primary's process dies and starts again: the pulls it held get no answer
    /// (their satellites time out and ask again); its database is opened again from its
    /// file, where every change it acknowledged must be.
    fn crash_primary(&mut self) -> SimResult<()> {
        if std::env::var("SIM_TRACE").is_ok_and(|v| v == "primary") {
            eprintln!("{} primary crash", self.now);
        }
        self.parked.clear();
        self.primary = SqliteStore::open_primary(&self.primary_path).map_err(err)?;
        Ok(())
    }

    /// Timers that are due fire, and held pulls look again.
    pub(crate) fn tick(&mut self) -> SimResult<()> {
        self.timers()?;
        self.look_again()
    }

    /// A fault: a crash, a restart, a skewed clock, a reassignment or a revocation.
    fn fault(&mut self, s: usize) -> SimResult<()> {
        match self.rng.below(100) {
            0..=29 => {
                if std::env::var("SIM_TRACE").is_ok_and(|v| v == self.sats[s].name) {
                    eprintln!("{} crash", self.now);
                }
                self.sats[s].crash()
            }
            30..=49 => {
                if self.sats[s].store.is_none() {
                    self.sats[s].restart().map_err(err)?;
                }
            }
            50..=64 => {
                // Hours off, either way, or jumped back.
                let hours = self.rng.below(13) as i64 - 6;
                self.sats[s].skew = hours * 3_600_000 + self.rng.below(1_000) as i64;
            }
            65..=89 => {
                if std::env::var("SIM_TRACE").is_ok_and(|v| v == self.sats[s].name) {
                    eprintln!("{} reassign", self.now);
                }
                self.reassign(s)?
            }
            90..=92 => self.revoke(s)?,
            _ => self.lose_one(),
        }
        Ok(())
    }

    /// Gives a satellite another set of stores beside its home store.
    fn reassign(&mut self, s: usize) -> SimResult<()> {
        let sat = &self.sats[s];
        let mut stores: BTreeSet<StoreId> = [sat.home].into();
        for &store in &self.stores {
            if self.rng.chance(40) {
                stores.insert(store);
            }
        }
        let all_stores = self.rng.chance(10);
        self.primary
            .assign(sat.id, &Assignment { all_stores, stores })
            .map_err(err)?;
        Ok(())
    }

    fn revoke(&mut self, s: usize) -> SimResult<()> {
        // Keep at least two satellites to compare.
        if self.sats.iter().filter(|s| !s.revoked).count() <= 2 || self.sats[s].revoked {
            return Ok(());
        }
        self.primary.revoke_site(self.sats[s].id).map_err(err)?;
        self.sats[s].revoked = true;
        let name = self.sats[s].name.clone();
        self.ledger.forget_writer(&name);
        Ok(())
    }

    /// The network loses a message, or copies one.
    fn lose_one(&mut self) {
        if self.net.is_empty() {
            return;
        }
        let i = self.rng.pick(self.net.len());
        if self.rng.chance(50) {
            self.net.swap_remove(i);
        } else {
            let mut copy = self.net[i].clone();
            copy.duplicate = true;
            self.net.push(copy);
        }
    }

    /// A satellite writes: a new record, an edit or a delete of its own, or a hot record.
    pub(crate) fn write(&mut self, s: usize) -> SimResult<()> {
        if self.sats[s].store.is_none() || self.sats[s].revoked || self.maybe_count(s)? {
            return Ok(());
        }
        match self.rng.below(10) {
            0..=3 => self.create(s),
            4..=6 => self.edit(s),
            7 => self.delete(s),
            _ => self.hot_write(s),
        }
    }

    fn create(&mut self, s: usize) -> SimResult<()> {
        let sat = &mut self.sats[s];
        sat.written += 1;
        let id = format!("{}-{}", sat.name, sat.written);
        let store = if self.rng.chance(70) {
            Some(sat.home)
        } else {
            None
        };
        sat.own.push((id.clone(), false));
        let fields = self.fields();
        self.put(s, &id, store, fields)
    }

    fn edit(&mut self, s: usize) -> SimResult<()> {
        let live: Vec<String> = self.sats[s]
            .own
            .iter()
            .filter(|(_, d)| !d)
            .map(|(id, _)| id.clone())
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let id = live[self.rng.pick(live.len())].clone();
        let store = self.ledger.store_of(OWN, &id).flatten();
        let fields = self.fields();
        self.put(s, &id, store, fields)
    }

    fn fields(&mut self) -> Map<String, Value> {
        let v = json!({"n": self.rng.below(1_000), "v": format!("x{}", self.rng.below(100))});
        v.as_object().cloned().unwrap_or_default()
    }

    fn put(
        &mut self,
        s: usize,
        id: &str,
        store: Option<StoreId>,
        fields: Map<String, Value>,
    ) -> SimResult<()> {
        let write = LocalWrite::Put {
            store,
            fields: fields.clone(),
        };
        self.local(s, OWN, id, write)?;
        let name = self.sats[s].name.clone();
        self.ledger.put(&name, OWN, id, store, fields);
        Ok(())
    }

    fn delete(&mut self, s: usize) -> SimResult<()> {
        let sat = &mut self.sats[s];
        let live: Vec<usize> = (0..sat.own.len()).filter(|&i| !sat.own[i].1).collect();
        if live.is_empty() {
            return Ok(());
        }
        let i = live[self.rng.pick(live.len())];
        self.sats[s].own[i].1 = true;
        let id = self.sats[s].own[i].0.clone();
        self.local(s, OWN, &id, LocalWrite::Delete)?;
        let name = self.sats[s].name.clone();
        self.ledger.delete(&name, OWN, &id);
        Ok(())
    }

    /// Writes field `x` of a hot record that at most one other site has written, so
    /// each hot record is written once by each of two sites.
    fn hot_write(&mut self, s: usize) -> SimResult<()> {
        let open: Vec<String> = self
            .hot
            .iter()
            .filter(|(_, w)| w.len() < 2 && w.iter().all(|w| w.site != s))
            .map(|(id, _)| id.clone())
            .collect();
        let id = if open.is_empty() || self.rng.chance(30) {
            format!("h{}", self.hot.len())
        } else {
            open[self.rng.pick(open.len())].clone()
        };
        if self.sats[s].uncommitted.iter().any(|(_, i, _)| *i == id) {
            return Ok(());
        }
        let value = self.sats[s].name.clone();
        let fields = json!({"x": value}).as_object().cloned().unwrap_or_default();
        let Some(record) = self.local(
            s,
            HOT,
            &id,
            LocalWrite::Put {
                store: None,
                fields,
            },
        )?
        else {
            return Ok(());
        };
        let Some(field) = record.state.fields.get("x") else {
            return Err(format!("hot record {id} written without its field"));
        };
        let write = HotWrite {
            site: s,
            value,
            stamp: field.stamp,
            base: field.base,
        };
        self.hot.entry(id).or_default().push(write);
        Ok(())
    }

    /// Makes a local write durable (or, with the bug, only acknowledges it).
    pub(crate) fn local(
        &mut self,
        s: usize,
        collection: &str,
        id: &str,
        write: LocalWrite,
    ) -> SimResult<Option<sitesync_store::StoredRecord>> {
        let (org, now) = (self.org, self.now);
        let sat = &mut self.sats[s];
        if self.bugs.ack_before_commit && collection == OWN {
            sat.uncommitted
                .push((collection.to_string(), id.to_string(), write));
            return Ok(None);
        }
        sat.commit_late(org, now).map_err(err)?;
        let Some(store) = &sat.store else {
            return Ok(None);
        };
        let record = store
            .write_local(org, collection, id, write, sat.id, sat.clock(now), true)
            .map_err(err)?;
        sat.wake_push(now);
        Ok(Some(record))
    }
}
