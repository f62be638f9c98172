//! Group commit of pushed batches on the primary.
//!
//! Each push handler hands its batch to one committer task and waits for the answer.
//! The committer takes every batch that has arrived, applies them all in one
//! transaction and one durable commit, and answers each handler. Under load, many
//! satellites' pushes share one fsync; alone, a push is committed at once.

use crate::error::NodeError;
use crate::node::{PushJob, Shared, blocking, now_ms};
use sitesync_core::OrgId;
use sitesync_service::{ServiceError, Site};
use sitesync_store::{PreparedPush, PushBatch, StoreError};
use tokio::sync::mpsc;

/// Most changes one group commit takes (bounds how long one transaction runs).
const MAX_GROUP_CHANGES: usize = 50_000;

/// Commits pushed batches in groups until every sender is gone.
pub async fn run(node: Shared, mut jobs: mpsc::Receiver<PushJob>) {
    while let Some(first) = jobs.recv().await {
        let mut size = first.changes.len();
        let mut group = vec![first];
        while size < MAX_GROUP_CHANGES {
            match jobs.try_recv() {
                Ok(job) => {
                    size += job.changes.len();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        let (inputs, replies): (Vec<_>, Vec<_>) = group
            .into_iter()
            .map(|j| ((j.org, j.site, j.changes), j.reply))
            .unzip();
        let result = blocking(&node, move |node| {
            let mut inputs = inputs;
            for (org, _, changes) in &mut inputs {
                define(&node.site, *org, changes)?;
            }
            let batches: Vec<PushBatch> = inputs
                .iter()
                .map(|(org, site, changes)| PushBatch {
                    org: *org,
                    site: *site,
                    changes,
                })
                .collect();
            Ok(node.site.primary()?.apply_pushes(&batches, now_ms())?)
        })
        .await;
        match result {
            Ok(outcomes) => {
                if outcomes
                    .iter()
                    .any(|o| o.as_ref().is_ok_and(|o| o.applied > 0))
                {
                    node.notify_changed();
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome.map_err(NodeError::from));
                }
            }
            Err(error) => {
                tracing::error!(%error, "a group of pushes failed to commit; nothing of it was applied");
                for reply in replies {
                    let _ = reply.send(Err(for_each_waiter(&error)));
                }
            }
        }
    }
}

/// Gives each change of a collection that has a definition the definition the primary
/// holds, so it is checked once merged. One indexed read per batch; none per change.
fn define(site: &Site, org: OrgId, changes: &mut [PreparedPush]) -> Result<(), NodeError> {
    let definitions = site.definitions(org)?;
    for change in changes {
        if let Some(definition) = definitions.get(&change.change.collection) {
            change.define(definition.clone());
        }
    }
    Ok(())
}

/// The error of a failed group, for each push that waited on it. A full disk or a
/// read-only folder is passed on as such, so each satellite hears what to wait for;
/// other errors (which cannot be copied) as their text.
fn for_each_waiter(error: &NodeError) -> NodeError {
    match error {
        NodeError::Service(ServiceError::Store(StoreError::DiskFull(folder))) => {
            StoreError::DiskFull(folder.clone()).into()
        }
        NodeError::Service(ServiceError::Store(StoreError::ReadOnly(folder))) => {
            StoreError::ReadOnly(folder.clone()).into()
        }
        _ => NodeError::Internal(error.to_string()),
    }
}
