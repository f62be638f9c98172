//! Refusing replayed sync requests.
//!
//! Each signed request carries the time it was made (on the primary's clock, as the
//! satellite estimates it from the primary's answers) and a random nonce. The primary
//! serves a request only when its time is within [`WINDOW_MS`] of its own clock and
//! its nonce has not been seen in that window; so a captured request can be used once,
//! by its sender, and never again. Nonces are remembered only for the window, and
//! requests made before this primary process started are refused (it cannot know
//! which nonces its previous run saw), allowing [`START_SLACK_MS`] for the satellites'
//! estimates of the primary's clock.

use sitesync_core::SiteId;
use sitesync_store::{NonceLog, StoreError};
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// How far a request's time may be from the primary's clock.
pub const WINDOW_MS: u64 = 120_000;
/// How long before this process started a request may have been made.
pub const START_SLACK_MS: u64 = 1_000;

/// The nonces of recent requests, in this process's memory (the [`NonceLog`] of a
/// primary served by one process).
pub struct Freshness {
    started_at: u64,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    nonces: HashSet<(SiteId, u64)>,
    /// The same, with the time after which each may be forgotten, oldest first (roughly:
    /// a nonce is forgotten no earlier than its own time, and later if one before it
    /// in the queue expires later).
    order: VecDeque<(u64, SiteId, u64)>,
}

impl Freshness {
    /// Fresh memory for a primary started at `now` (ms since the epoch).
    pub fn new(now: u64) -> Freshness {
        Freshness {
            started_at: now,
            seen: Mutex::default(),
        }
    }

    /// Nonces remembered now (tests check that old ones are forgotten).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .nonces
            .len()
    }
}

impl NonceLog for Freshness {
    fn admit(&self, site: SiteId, nonce: u64, time: u64, now: u64) -> Result<bool, StoreError> {
        Ok(self.remember(site, nonce, time, now))
    }
}

impl Freshness {
    /// Whether the nonce is new and its time within the window; remembers it.
    fn remember(&self, site: SiteId, nonce: u64, time: u64, now: u64) -> bool {
        let earliest = now
            .saturating_sub(WINDOW_MS)
            .max(self.started_at.saturating_sub(START_SLACK_MS));
        if time < earliest || time > now + WINDOW_MS {
            return false;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(&(forget_at, site, nonce)) = seen.order.front() {
            if forget_at >= now {
                break;
            }
            seen.order.pop_front();
            seen.nonces.remove(&(site, nonce));
        }
        if !seen.nonces.insert((site, nonce)) {
            return false;
        }
        // Once the clock passes this, the time check alone refuses the request.
        seen.order.push_back((time + WINDOW_MS, site, nonce));
        true
    }
}

/// The nonces of a primary served by several processes: this process's memory first
/// (a replay to the same process is refused without a query), then the table every
/// process shares (a blocking query: `PgStore` leaves the async runtime's duty for it,
/// so `admit` stays callable from a request's task, as the in-memory one is).
pub struct SharedNonces {
    local: Freshness,
    store: sitesync_postgres::PgStore,
}

impl SharedNonces {
    /// Nonces checked in `local`, then in `store`'s table.
    pub fn new(local: Freshness, store: sitesync_postgres::PgStore) -> SharedNonces {
        SharedNonces { local, store }
    }
}

impl NonceLog for SharedNonces {
    fn admit(&self, site: SiteId, nonce: u64, time: u64, now: u64) -> Result<bool, StoreError> {
        if !self.local.remember(site, nonce, time, now) {
            return Ok(false);
        }
        self.store.admit_nonce(site, nonce, time, now, WINDOW_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: u64 = 1_700_000_000_000;

    #[test]
    fn a_request_is_served_once() {
        let fresh = Freshness::new(START);
        assert!(fresh.remember(2, 1, START + 10, START + 20));
        assert!(!fresh.remember(2, 1, START + 10, START + 30), "replayed");
        assert!(
            fresh.remember(3, 1, START + 10, START + 30),
            "another site's nonce"
        );
        assert!(fresh.remember(2, 2, START + 11, START + 30));
    }

    #[test]
    fn old_future_and_pre_start_requests_are_refused() {
        let fresh = Freshness::new(START);
        let now = START + 10 * WINDOW_MS;
        assert!(!fresh.remember(2, 1, now - WINDOW_MS - 1, now));
        assert!(!fresh.remember(2, 2, now + WINDOW_MS + 1, now));
        assert!(fresh.remember(2, 3, now - WINDOW_MS + 1, now));
        let restarted = Freshness::new(START);
        assert!(!restarted.remember(2, 4, START - START_SLACK_MS - 1, START + 5));
        assert!(restarted.remember(2, 5, START - START_SLACK_MS + 1, START + 5));
    }

    #[test]
    fn nonces_are_forgotten_once_their_time_is_out_of_the_window() {
        let fresh = Freshness::new(START);
        for nonce in 0..1_000 {
            assert!(fresh.remember(2, nonce, START + nonce, START + nonce));
        }
        assert_eq!(fresh.remembered(), 1_000);
        let later = START + 1_000 + WINDOW_MS;
        assert!(fresh.remember(2, 5_000, later, later));
        assert_eq!(fresh.remembered(), 1);
        // Forgotten, but the time check still refuses a replay of an old one.
        assert!(!fresh.remember(2, 10, START + 10, later));
    }
}
