//! The satellite's durable sync state, as the session sees it ([`Durable`]), kept in
//! the database's `meta` table. Every read and write of those keys is here:
//!
//! | key | meaning |
//! |---|---|
//! | `pull_cursor` | every routed record up to this primary sequence is applied |
//! | `assignment_applied` | the assignment version whose purge is done (its backfill may still be pending) |
//! | `backfill_stores`, `backfill_cursor` | a backfill of newly assigned stores in progress |
//! | `last_sync`, `last_error`, `last_error_at` | for `status` |
//!
//! The site configuration itself is saved by the caller (the node's `Site` caches it).

use sitesync_core::{OrgId, StoreId};
use sitesync_protocol::SiteConfig;
use sitesync_protocol::session::{Durable, Target};
use sitesync_store::{Prepared, Store, StoreError};

/// The meta key of the main pull cursor.
pub const PULL_CURSOR: &str = "pull_cursor";
const APPLIED: &str = "assignment_applied";
const BACKFILL_STORES: &str = "backfill_stores";
const BACKFILL_CURSOR: &str = "backfill_cursor";

/// Reads the durable state; `config` is the site configuration last saved.
pub fn load(store: &Store, config: SiteConfig) -> Result<Durable, StoreError> {
    let backfill = store
        .meta(BACKFILL_STORES)?
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.parse::<StoreId>().ok())
        .collect();
    Ok(Durable {
        pull_cursor: store.meta_u64(PULL_CURSOR)?,
        assignment_applied: store.meta_u64(APPLIED)?,
        config,
        backfill,
        backfill_cursor: store.meta_u64(BACKFILL_CURSOR)?,
    })
}

/// Writes pulled records with the cursor of `target` in one transaction; a backfill's
/// last page then clears the backfill (harmless to repeat: the page is asked again).
pub fn apply_pages(
    store: &Store,
    org: OrgId,
    records: &[Prepared],
    target: Target,
    cursor: u64,
    now_ms: u64,
) -> Result<(), StoreError> {
    let key = match target {
        Target::Pull => PULL_CURSOR,
        Target::Backfill { .. } => BACKFILL_CURSOR,
    };
    store.apply_pull(org, records, key, cursor, now_ms)?;
    if target == (Target::Backfill { last: true }) {
        store.set_meta(BACKFILL_STORES, "")?;
    }
    Ok(())
}

/// Saves the stores of a backfill to start, from the beginning.
pub fn start_backfill(store: &Store, stores: &[StoreId]) -> Result<(), StoreError> {
    let list: Vec<String> = stores.iter().map(u64::to_string).collect();
    store.set_meta(BACKFILL_STORES, &list.join(","))?;
    store.set_meta(BACKFILL_CURSOR, "0")
}

/// Saves that an assignment version is applied (after its configuration is saved).
pub fn set_applied(store: &Store, version: u64) -> Result<(), StoreError> {
    store.set_meta(APPLIED, &version.to_string())
}

/// Notes a successful sync, for `status`.
pub fn note_synced(store: &Store, now_ms: u64) -> Result<(), StoreError> {
    store.note_meta(&[("last_sync", &now_ms.to_string())])
}

/// Notes why syncing failed, for `status`.
pub fn note_error(store: &Store, error: &str, now_ms: u64) -> Result<(), StoreError> {
    store.note_meta(&[
        ("last_error", error),
        ("last_error_at", &now_ms.to_string()),
    ])
}

/// The stores this site holds records of.
pub fn held_stores(store: &Store, org: OrgId) -> Result<Vec<StoreId>, StoreError> {
    Ok(store
        .digest(org)?
        .into_iter()
        .filter_map(|d| d.store)
        .collect())
}
