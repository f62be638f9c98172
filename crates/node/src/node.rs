//! The state a running node shares between its HTTP handlers and background tasks.

use crate::error::NodeError;
use crate::secrets::SyncKeys;
use crate::site::Site;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Notify, watch};

/// A running node.
pub struct Node {
    /// The site it runs.
    pub site: Site,
    /// Bumped after every committed change to the records here. Long-polling pulls wait
    /// on it, so a change reaches waiting satellites as soon as it is durable.
    pub changed: watch::Sender<u64>,
    /// Woken by local writes on a satellite, so its pusher sends them at once.
    pub local_write: Notify,
    /// Primary: derives and checks sync keys.
    pub sync_keys: Option<SyncKeys>,
    /// Whether the local API asks for the bearer token (bound beyond loopback).
    pub api_token_required: bool,
    /// Set when `serve` is stopping: long-polls answer at once.
    pub stopping: AtomicBool,
}

/// A node shared by handlers and tasks.
pub type Shared = Arc<Node>;

impl Node {
    /// Tells waiters that records changed here.
    pub fn notify_changed(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        self.local_write.notify_one();
    }

    /// Starts stopping: wakes every waiter so it can finish.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.notify_changed();
        self.local_write.notify_waiters();
    }

    /// Whether `serve` is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Runs blocking database work off the async threads.
pub async fn blocking<T: Send + 'static>(
    node: &Shared,
    work: impl FnOnce(&Node) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    let node = node.clone();
    tokio::task::spawn_blocking(move || work(&node))
        .await
        .map_err(|e| NodeError::Internal(format!("background task failed: {e}")))?
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
