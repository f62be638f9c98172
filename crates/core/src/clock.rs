//! The hybrid logical clock (HLC).
//!
//! A clock reading is a `u64`: the top 48 bits are milliseconds since the Unix epoch and
//! the low 16 bits a counter. Readings sort as plain integers (and as SQLite INTEGERs).
//! The clock never goes backwards: it is at least the wall clock, greater than anything
//! it produced before, and greater than anything it has observed from other sites. So an
//! edit made after seeing another edit always carries a later stamp, even when the
//! writer's wall clock is hours behind, which is what keeps causality under clock skew.

use crate::SiteId;
use serde::{Deserialize, Serialize};

/// Orders every change: the clock reading first, then the writing site as tie-break
/// (the higher site id wins a tie). Two changes never share a stamp because one site
/// never hands out the same reading twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "(u64, SiteId)", into = "(u64, SiteId)")]
pub struct Stamp {
    /// The hybrid logical clock reading.
    pub hlc: u64,
    /// The site that made the change.
    pub site: SiteId,
}

/// On the wire and on disk a stamp is the pair `[hlc, site]`.
impl From<(u64, SiteId)> for Stamp {
    fn from((hlc, site): (u64, SiteId)) -> Stamp {
        Stamp { hlc, site }
    }
}

impl From<Stamp> for (u64, SiteId) {
    fn from(stamp: Stamp) -> (u64, SiteId) {
        (stamp.hlc, stamp.site)
    }
}

impl Stamp {
    /// The wall-clock milliseconds part of the reading.
    pub fn millis(&self) -> u64 {
        self.hlc >> 16
    }
}

/// One site's hybrid logical clock. The caller supplies the wall clock (`now_ms`), so
/// tests can skew it, stop it or run it backwards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    /// The last reading handed out or observed. Persisting it across restarts keeps the
    /// clock monotonic even if the machine's clock jumps backwards while it is down.
    last: u64,
}

impl Clock {
    /// A clock that resumes after `last`, the highest reading it ever handed out or saw.
    pub fn resume(last: u64) -> Clock {
        Clock { last }
    }

    /// The highest reading handed out or observed so far.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// A new reading for a local change, later than every earlier one.
    pub fn tick(&mut self, now_ms: u64) -> u64 {
        let wall = now_ms.min(u64::MAX >> 16) << 16;
        self.last = wall.max(self.last.saturating_add(1));
        self.last
    }

    /// Takes note of a reading seen in a change from another site, so the next local
    /// change sorts after it.
    pub fn observe(&mut self, remote: u64) {
        self.last = self.last.max(remote);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_follows_the_wall_clock() {
        let mut clock = Clock::default();
        assert_eq!(clock.tick(1_000) >> 16, 1_000);
        assert_eq!(clock.tick(2_000) >> 16, 2_000);
    }

    #[test]
    fn tick_never_goes_backwards_when_the_wall_clock_does() {
        let mut clock = Clock::default();
        let a = clock.tick(5_000);
        let b = clock.tick(1_000);
        let c = clock.tick(1_000);
        assert!(a < b && b < c, "{a} {b} {c}");
    }

    #[test]
    fn a_change_made_after_observing_sorts_after_the_observed_one() {
        // A site whose clock is an hour behind edits after seeing a change from the future.
        let mut ahead = Clock::default();
        let seen = ahead.tick(10_000_000);
        let mut behind = Clock::default();
        behind.observe(seen);
        assert!(behind.tick(6_400_000) > seen);
    }

    #[test]
    fn equal_readings_are_ordered_by_site() {
        let a = Stamp { hlc: 7, site: 2 };
        let b = Stamp { hlc: 7, site: 3 };
        assert!(b > a);
        assert!(Stamp { hlc: 8, site: 2 } > b);
    }

    #[test]
    fn a_far_future_wall_clock_does_not_overflow() {
        let mut clock = Clock::default();
        let a = clock.tick(u64::MAX);
        let b = clock.tick(u64::MAX);
        assert!(b > a);
    }
}
