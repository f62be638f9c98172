//! The primary backed up while it serves, and restored from its latest backup: its
//! state goes back, and the satellites must notice and give back what it lost.

use crate::world::{SimResult, World, err};
use sitesync_core::{RecordState, merge};
use sitesync_sqlite::SqliteStore;
use sitesync_store::{PrimaryStorage, SiteStorage};

impl World {
    /// Now and then, backs the primary up (replacing the last backup) or restores it.
    pub(crate) fn back_up_or_restore(&mut self) -> SimResult<()> {
        let Some(rng) = &mut self.restores else {
            return Ok(());
        };
        if rng.chance(2) {
            self.back_up()
        } else if self.backup.is_some() && rng.chance(1) {
            self.restore()
        } else {
            Ok(())
        }
    }

    fn back_up(&mut self) -> SimResult<()> {
        trace(self.now, "backup");
        let path = self.dir.join("primary-backup.db");
        let _ = std::fs::remove_file(&path);
        self.primary.back_up(&path).map_err(err)?;
        self.backup = Some(path);
        Ok(())
    }

    /// The primary is stopped, its database put back from the backup (under a new file:
    /// the old one's connections are still open here), and started again. Connections
    /// break: every message in flight is lost. The operator makes again the revocations
    /// made since the backup, as the README asks.
    fn restore(&mut self) -> SimResult<()> {
        let Some(backup) = self.backup.clone() else {
            return Ok(());
        };
        trace(self.now, "restore");
        self.restored += 1;
        let path = self.dir.join(format!("primary-{}.db", self.restored));
        let restored = SqliteStore::restore_primary(&backup, &path, self.now).map_err(err)?;
        self.forget_lost(&restored)?;
        self.primary = restored;
        self.primary_path = path;
        self.net.clear();
        self.parked.clear();
        for sat in self.sats.iter().filter(|s| s.revoked) {
            self.primary.revoke_site(sat.id).map_err(err)?;
        }
        Ok(())
    }

    /// Acknowledged writes the restore may lose for good: those the backup lacks (or
    /// holds older) and no satellite that may give them back holds. The ledger stops
    /// expecting them (until their writer writes them again).
    fn forget_lost(&mut self, restored: &SqliteStore) -> SimResult<()> {
        for (collection, id) in self.ledger.keys() {
            let now = record(&self.primary, self, &collection, &id)?;
            let then = record(restored, self, &collection, &id)?;
            if now == then || self.held_elsewhere(restored, &collection, &id, &now)? {
                continue;
            }
            self.ledger.forget_record(&collection, &id);
        }
        Ok(())
    }

    /// Whether a satellite up now, which the restored primary lets write the record's
    /// store, holds all of `state`.
    fn held_elsewhere(
        &self,
        restored: &SqliteStore,
        collection: &str,
        id: &str,
        state: &RecordState,
    ) -> SimResult<bool> {
        for sat in self.sats.iter().filter(|s| !s.revoked) {
            let Some(store) = &sat.store else { continue };
            let row = restored.site_by_id(sat.id).map_err(err)?;
            if !row.assignment.routes(state.store) {
                continue;
            }
            let Some(held) = store.record(self.org, collection, id).map_err(err)? else {
                continue;
            };
            let mut merged = held.state;
            if merge(&mut merged, state).is_ok_and(|r| !r.changed) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A record's state in `store` (empty when it holds none).
fn record(
    store: &SqliteStore,
    world: &World,
    collection: &str,
    id: &str,
) -> SimResult<RecordState> {
    Ok(store
        .record(world.org, collection, id)
        .map_err(err)?
        .map(|r| r.state)
        .unwrap_or_default())
}

fn trace(now: u64, what: &str) {
    if std::env::var("SIM_TRACE").is_ok_and(|v| v == "primary") {
        eprintln!("{now} primary {what}");
    }
}
