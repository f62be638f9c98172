//! `sitesync backup` and `sitesync restore`: the primary's service use-cases, with the
//! data folder's lock held while it is restored (nothing may serve it then).

use crate::config::DataDir;
use crate::error::NodeError;
use crate::lock::ServeLock;
use crate::node::now_ms;
use sitesync_service::{Actor, Backup, Restored, Site};
use std::path::Path;

/// Backs up the primary in `dir` into `dest`, beside a running `serve` or not.
pub fn back_up(dir: &DataDir, dest: &Path) -> Result<Backup, NodeError> {
    let site = Site::open(dir.clone())?;
    Ok(site.back_up(Actor::Operator, dest)?)
}

/// Restores the primary in `dir` from the backup in `src`; refused while it serves.
pub fn restore(dir: &DataDir, src: &Path) -> Result<Restored, NodeError> {
    // A new machine's data folder may not exist yet.
    std::fs::create_dir_all(&dir.root)
        .map_err(|e| NodeError::Internal(format!("cannot make {}: {e}", dir.root.display())))?;
    let _lock = ServeLock::take(dir)?;
    Ok(sitesync_service::restore(dir, src, now_ms())?)
}
