//! Slowing down guessing. Failed credential checks are counted per client address and
//! per claimed site over a sliding minute:
//!
//! - an address with more than [`ADDRESS_LIMIT`] failures is refused at once (429)
//!   until its minute has passed, whatever it presents;
//! - failures for one site beyond [`SITE_LIMIT`] are answered only after a pause, so
//!   guessing a site's secret from many addresses stays slow, while the real site,
//!   whose credentials are right, is never held up.
//!
//! Nothing here sees a secret: only addresses and claimed site ids are kept and logged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures from one address within [`WINDOW`] before it is refused.
pub const ADDRESS_LIMIT: u32 = 20;
/// Failures for one site within [`WINDOW`] before each further one is delayed.
pub const SITE_LIMIT: u32 = 5;
/// How long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(60);
/// The pause before answering a failure beyond [`SITE_LIMIT`].
pub const PAUSE: Duration = Duration::from_secs(1);
/// Most entries kept; past it, expired entries are dropped first.
const MAX_ENTRIES: usize = 100_000;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A client address.
    Address(IpAddr),
    /// A site id that a request claimed.
    Site(u32),
}

/// Failed attempts, by subject.
#[derive(Default)]
pub struct Attempts {
    failures: Mutex<HashMap<Subject, (u32, Instant)>>,
}

impl Attempts {
    /// How many seconds `address` must wait before it may try again, if it must.
    pub fn refused(&self, address: IpAddr, now: Instant) -> Option<u64> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match failures.get(&Subject::Address(address)) {
            Some((count, since)) if *count > ADDRESS_LIMIT && now < *since + WINDOW => {
                Some((*since + WINDOW - now).as_secs().max(1))
            }
            _ => None,
        }
    }

    /// Notes a failed attempt; returns how long to pause before answering it.
    pub fn failed(&self, subjects: &[Subject], now: Instant) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_ENTRIES {
            failures.retain(|_, (_, since)| now < *since + WINDOW);
        }
        let mut pause = Duration::ZERO;
        for subject in subjects {
            let entry = failures.entry(*subject).or_insert((0, now));
            if now >= entry.1 + WINDOW {
                *entry = (0, now);
            }
            entry.0 = entry.0.saturating_add(1);
            if matches!(subject, Subject::Site(_)) && entry.0 > SITE_LIMIT {
                pause = PAUSE;
            }
        }
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_limit_until_the_window_passes() {
        let attempts = Attempts::default();
        let ip: IpAddr = [10, 0, 0, 9].into();
        let t0 = Instant::now();
        for _ in 0..ADDRESS_LIMIT {
            attempts.failed(&[Subject::Address(ip)], t0);
        }
        assert_eq!(attempts.refused(ip, t0), None);
        attempts.failed(&[Subject::Address(ip)], t0);
        assert!(attempts.refused(ip, t0).is_some());
        assert!(
            attempts.refused([10, 0, 0, 8].into(), t0).is_none(),
            "another address is not"
        );
        assert_eq!(attempts.refused(ip, t0 + WINDOW), None);
    }

    #[test]
    fn failures_for_a_site_beyond_its_limit_are_paused() {
        let attempts = Attempts::default();
        let t0 = Instant::now();
        let pauses: Vec<Duration> = (0..SITE_LIMIT + 2)
            .map(|i| {
                attempts.failed(
                    &[
                        Subject::Address([10, 0, 0, i as u8].into()),
                        Subject::Site(7),
                    ],
                    t0,
                )
            })
            .collect();
        assert!(pauses[..SITE_LIMIT as usize].iter().all(|p| p.is_zero()));
        assert_eq!(pauses[SITE_LIMIT as usize], PAUSE);
    }
}
