//! Checkpoints on a thread of their own.
//!
//! In WAL mode every commit appends pages to the write-ahead log, and a *checkpoint*
//! copies them into the database file and syncs it. SQLite runs checkpoints inside the
//! commit that crosses a size limit, so one writer in a few stalls for the copy and the
//! sync: a fifth of a million-record catch-up, and a pause of every push waiting on that
//! group commit. Here the writer only wakes a checkpointer thread with its own
//! connection, which copies while the writer goes on (WAL lets a checkpoint run beside
//! a writer). A checkpoint that runs beside a writer cannot empty the log, so when the
//! log reaches `MAX_LOG` the writer checkpoints the remainder itself, between two
//! transactions, which lets the next one start the log again from the beginning.

use crate::{Error, connect};
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, mpsc};

/// Log size (in bytes) from which each commit wakes the checkpointer.
const WAKE_AT: i64 = 32 << 20;
/// Log size (in bytes) at which the writer checkpoints itself.
const MAX_LOG: i64 = 256 << 20;

/// The writer's side of the checkpointer: what the log held after its last commit.
pub(crate) struct Checkpoints {
    log_pages: Arc<AtomicI64>,
    max_log: i64,
    /// The checkpointer, joined on drop (after the writer's connection, whose end of
    /// the wake-up channel ends it), so its connection is closed before the process
    /// exits and the last one to close cleans up the log.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Checkpoints {
    /// Starts the checkpointer of the database at `path` and hands the writer's
    /// checkpoints to it (if no thread can start, SQLite's own checkpoints stay on).
    /// The thread ends when the writer's connection closes.
    pub(crate) fn start(writer: &mut Connection, path: &Path) -> Result<Checkpoints, Error> {
        let page_size: i64 = writer.pragma_query_value(None, "page_size", |row| row.get(0))?;
        let (wake_at, max_log) = (WAKE_AT / page_size.max(512), MAX_LOG / page_size.max(512));
        let log_pages = Arc::new(AtomicI64::new(0));
        let mut checkpoints = Checkpoints {
            log_pages: log_pages.clone(),
            max_log,
            thread: None,
        };
        let checkpointer = connect(path)?;
        // One pending wake-up is enough: the checkpoint it starts copies everything
        // committed by then.
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let started = std::thread::Builder::new()
            .name("sitesync-checkpoint".into())
            .spawn(move || run(&checkpointer, &woken));
        match started {
            Ok(thread) => checkpoints.thread = Some(thread),
            Err(error) => {
                // SQLite's own checkpoints, inside commits, stay on.
                tracing::warn!(%error, "cannot start the checkpoint thread");
                return Ok(checkpoints);
            }
        }
        writer.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            let pages = i64::from(pages);
            log_pages.store(pages, Ordering::Relaxed);
            if pages >= wake_at {
                let _ = wake.try_send(());
            }
            Ok(())
        }))?;
        Ok(checkpoints)
    }

    /// Called by the writer after each commit: when the log has grown to `MAX_LOG`,
    /// copies what the checkpointer has not, so the log starts again. A checkpoint that
    /// fails (a full disk) does not fail the write that committed before it; the log
    /// keeps everything, and the next commit tries again.
    pub(crate) fn after_commit(&self, writer: &Connection) {
        if self.log_pages.load(Ordering::Relaxed) < self.max_log {
            return;
        }
        match writer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => self.log_pages.store(0, Ordering::Relaxed),
            Err(error) => tracing::warn!(%error, "a checkpoint failed"),
        }
    }
}

/// Checkpoints each time it is woken, until the writer is gone.
fn run(checkpointer: &Connection, woken: &mpsc::Receiver<()>) {
    while woken.recv().is_ok() {
        let result = checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        if let Err(error) = result {
            // The writer checkpoints itself when the log grows too long; nothing is lost.
            tracing::warn!(%error, "a background checkpoint failed");
        }
    }
}
