//! One `serve` per data folder. A site whose state lives in its data folder (SQLite)
//! is served by one process: two would each run a sync agent and a group committer on
//! the same database, and the one that stopped first would delete the other's
//! `serve.json`, leaving commands unable to wake it. So `serve` holds an exclusive lock
//! on `serve.lock` while it runs; the operating system releases it when the process
//! ends, however it ends. Commands beside a running `serve` take no lock.

use crate::config::DataDir;
use crate::error::NodeError;
use crate::running::Running;
use std::fs::{File, TryLockError};

/// The lock a running `serve` holds on its data folder, released when dropped.
pub struct ServeLock {
    _file: File,
}

impl ServeLock {
    /// Takes the data folder's lock, or says which process holds it.
    pub fn take(dir: &DataDir) -> Result<ServeLock, NodeError> {
        let path = dir.root.join("serve.lock");
        let mut options = File::options();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(|e| {
            // A full disk or a read-only folder is said as such, naming the folder.
            match sitesync_sqlite::check_disk(&dir.root) {
                Err(disk) => disk.into(),
                Ok(()) => NodeError::Internal(format!("cannot open {}: {e}", path.display())),
            }
        })?;
        match file.try_lock() {
            Ok(()) => Ok(ServeLock { _file: file }),
            Err(TryLockError::WouldBlock) => {
                let holder = match Running::read(dir) {
                    Some(running) => format!("process {}, on {}", running.pid, running.addr),
                    None => "a process that is starting".to_string(),
                };
                Err(NodeError::Taken(format!(
                    "another `sitesync serve` ({holder}) is serving {}; stop it first. Commands such as `record put` and `status` work beside it without a serve of their own",
                    dir.root.display()
                )))
            }
            Err(TryLockError::Error(e)) => Err(NodeError::Internal(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }
}
