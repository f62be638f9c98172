//! `sitesync status` and `/api/v1/status`: this site's part comes from the service
//! (`Site::status`); a satellite adds what its primary says is waiting there.

use crate::error::NodeError;
use crate::node::{Shared, blocking};
use crate::running::running_address;
use crate::satellite::Agent;
use sitesync_protocol::session::PageInfo;
use sitesync_protocol::{PullQuery, PullResponse};
use sitesync_service::Actor;
pub use sitesync_service::Status;
use std::time::Duration;

/// Builds the status report for `actor`. With `ask_primary`, a satellite asks its
/// primary how many changes wait for it (a short request; an unreachable primary is
/// reported, not fatal).
pub async fn report(node: &Shared, actor: Actor, ask_primary: bool) -> Result<Status, NodeError> {
    let serving = running_address(&node.site.dir);
    let mut status = blocking(node, move |node| Ok(node.site.status(actor, serving)?)).await?;
    let to_pull = match !node.site.is_primary() && ask_primary {
        true => Some(behind(node).await.map_err(|e| (e.to_string(), e.kind()))),
        false => None,
    };
    status.settle(to_pull);
    Ok(status)
}

async fn behind(node: &Shared) -> Result<u64, NodeError> {
    let agent = Agent::new(node.clone())?;
    let state = blocking(node, |node| Ok(node.site.sync_state()?)).await?;
    let (cursor, applied) = (state.pull_cursor, state.assignment_applied);
    let query = PullQuery {
        cursor,
        limit: Some(0),
        count: true,
        assignment_version: Some(applied),
        ..PullQuery::default()
    };
    let answer = ask(&agent, &query).await?;
    if PageInfo::of(&answer).went_back(state.incarnation) {
        // The primary went back (restored): the next sync gives back what is here and
        // pulls everything routed here again.
        let everything = PullQuery { cursor: 0, ..query };
        return Ok(ask(&agent, &everything).await?.remaining.max(1));
    }
    Ok(answer.remaining)
}

/// Asks the primary, at each of its addresses in turn until one answers.
async fn ask(agent: &Agent, query: &PullQuery) -> Result<PullResponse, NodeError> {
    let client = agent.client();
    let mut failed = None;
    for _ in 0..client.addresses() {
        let error = match tokio::time::timeout(Duration::from_secs(3), client.pull(query)).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) => e,
            Err(_) => {
                let timed_out = format!("cannot reach primary at {}: timed out", client.base());
                client.next_address();
                NodeError::Remote(timed_out)
            }
        };
        failed = Some(error);
    }
    Err(failed.unwrap_or_else(|| NodeError::Remote("the primary has no address".into())))
}
