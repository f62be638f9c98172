//! The primary's decisions in the sync exchange, as pure functions: how big a batch or
//! a page may be, how long a pull may wait, whether a look at the database answers now
//! or waits, and which stores a backfill may ask for. The node's HTTP handlers and the
//! simulator's in-memory primary both call these, so both decide alike.

use sitesync_core::{Assignment, StoreId};
use std::collections::BTreeSet;
use thiserror::Error;

/// Most changes in one pushed batch.
pub const MAX_BATCH: usize = 10_000;
/// Largest pull page, in records.
pub const MAX_PAGE: u32 = 5_000;
/// Page size when the satellite names none.
pub const DEFAULT_PAGE: u32 = 1_000;
/// Longest a pull may wait for a change, in ms.
pub const MAX_WAIT_MS: u64 = 55_000;

/// A request the primary refuses before touching the database.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    /// A pushed batch larger than [`MAX_BATCH`].
    #[error("the batch has {0} changes; the limit is {MAX_BATCH}")]
    BatchTooBig(usize),
    /// A backfill's store list that is not store ids separated by commas.
    #[error("stores must be store ids separated by commas, not {0:?}")]
    BadStoreList(String),
}

/// Checks a pushed batch's size.
pub fn check_batch(changes: usize) -> Result<(), Refusal> {
    if changes > MAX_BATCH {
        return Err(Refusal::BatchTooBig(changes));
    }
    Ok(())
}

/// The page size a pull gets: what it asked for, within [`MAX_PAGE`].
pub fn page_limit(asked: Option<u32>) -> usize {
    asked.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE) as usize
}

/// When a long poll that starts at `now_ms` must answer at the latest.
pub fn pull_deadline(wait_ms: Option<u64>, now_ms: u64) -> u64 {
    now_ms.saturating_add(wait_ms.unwrap_or(0).min(MAX_WAIT_MS))
}

/// What one look at the database found for a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    /// Records on the page.
    pub records: usize,
    /// Whether more records wait after the page.
    pub more: bool,
    /// The assignment version the satellite said it has applied, if it said one.
    pub applied: Option<u64>,
    /// The site's assignment version now.
    pub current: u64,
    /// The site's configuration differs from the one the satellite said it holds.
    pub config_changed: bool,
}

/// What a pull does after a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Answer with the page now.
    Now,
    /// Nothing to say yet: look again on a change, or answer empty at this time.
    WaitUntil(u64),
}

/// Decides whether a look answers now. Records answer at once; so does a new
/// assignment, so the site learns of it without waiting out a long poll; an empty look
/// waits for a change until the deadline.
pub fn decide(look: Look, now_ms: u64, deadline_ms: u64) -> Reply {
    if answers_now(look) || now_ms >= deadline_ms {
        Reply::Now
    } else {
        Reply::WaitUntil(deadline_ms)
    }
}

/// Whether a look answers at once, whatever the deadline: it found records, more
/// wait, or the site's assignment or configuration changed.
pub fn answers_now(look: Look) -> bool {
    let reassigned = look.applied.is_some_and(|v| v != look.current);
    look.records > 0 || look.more || reassigned || look.config_changed
}

/// Parses a backfill's store list, keeping only stores the site holds (a store taken
/// away meanwhile is left out rather than refused: the site will purge it).
pub fn parse_stores(list: &str, assignment: &Assignment) -> Result<BTreeSet<StoreId>, Refusal> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim()
                .parse::<StoreId>()
                .map_err(|_| Refusal::BadStoreList(s.to_string()))
        })
        .filter(|s| s.as_ref().map_or(true, |id| assignment.routes(Some(*id))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(records: usize, more: bool, applied: Option<u64>) -> Look {
        Look {
            records,
            more,
            applied,
            current: 3,
            config_changed: false,
        }
    }

    #[test]
    fn an_empty_look_waits_until_the_deadline_and_then_answers() {
        assert_eq!(
            decide(look(0, false, Some(3)), 10, 50),
            Reply::WaitUntil(50)
        );
        assert_eq!(decide(look(0, false, Some(3)), 50, 50), Reply::Now);
    }

    #[test]
    fn a_changed_configuration_answers_at_once() {
        let changed = Look {
            config_changed: true,
            ..look(0, false, Some(3))
        };
        assert_eq!(decide(changed, 10, 50), Reply::Now);
    }

    #[test]
    fn records_more_or_a_new_assignment_answer_at_once() {
        assert_eq!(decide(look(1, false, Some(3)), 0, 50), Reply::Now);
        assert_eq!(decide(look(0, true, Some(3)), 0, 50), Reply::Now);
        assert_eq!(decide(look(0, false, Some(2)), 0, 50), Reply::Now);
        assert_eq!(decide(look(0, false, None), 0, 50), Reply::WaitUntil(50));
    }

    #[test]
    fn limits_are_capped() {
        assert_eq!(page_limit(None), 1_000);
        assert_eq!(page_limit(Some(9_999)), 5_000);
        assert_eq!(pull_deadline(Some(1_000_000), 5), 5 + MAX_WAIT_MS);
        assert_eq!(check_batch(MAX_BATCH), Ok(()));
        assert_eq!(
            check_batch(MAX_BATCH + 1),
            Err(Refusal::BatchTooBig(10_001))
        );
    }

    #[test]
    fn a_backfill_keeps_only_held_stores_and_refuses_garbage() {
        let assignment = Assignment {
            all_stores: false,
            stores: [1, 2].into(),
        };
        assert_eq!(parse_stores("1,3,2,", &assignment), Ok([1, 2].into()));
        assert_eq!(
            parse_stores("1,x", &assignment),
            Err(Refusal::BadStoreList("x".into()))
        );
    }
}
