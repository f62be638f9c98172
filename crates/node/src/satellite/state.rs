//! The satellite's durable sync state, as the session sees it ([`Durable`]), read from
//! and written to its storage ([`SatelliteStorage`]), which keeps each step in the same
//! transaction as the work it stands for.

use sitesync_core::OrgId;
use sitesync_protocol::SiteConfig;
use sitesync_protocol::session::{Durable, Target};
use sitesync_store::{Cursor, Prepared, SatelliteStorage, StoreError};

/// Reads the durable state; `config` is the site configuration last saved.
pub fn load(store: &dyn SatelliteStorage, config: SiteConfig) -> Result<Durable, StoreError> {
    let state = store.sync_state()?;
    let backfill = state.backfill.unwrap_or_default();
    Ok(Durable {
        pull_cursor: state.pull_cursor,
        assignment_applied: state.assignment_applied,
        config,
        backfill: backfill.stores,
        backfill_cursor: backfill.cursor,
        incarnation: state.incarnation,
    })
}

/// Writes pulled records with the cursor of `target` in one transaction; a backfill's
/// last page then ends the backfill (harmless to repeat: the page is asked again).
pub fn apply_pages(
    store: &dyn SatelliteStorage,
    org: OrgId,
    records: &[Prepared],
    target: Target,
    cursor: u64,
    now_ms: u64,
) -> Result<(), StoreError> {
    let moved = match target {
        Target::Pull => Cursor::Pull,
        Target::Backfill { .. } => Cursor::Backfill,
    };
    store.apply_pull(org, records, moved, cursor, now_ms)?;
    if target == (Target::Backfill { last: true }) {
        store.finish_backfill()?;
    }
    Ok(())
}
