//! Slowing down guessing. Failed credential checks (a sync request's signature, a
//! portal sign-in) are counted per client address, per claimed site and per account
//! over a sliding minute:
//!
//! - an address with more than [`ADDRESS_LIMIT`] failures is refused at once (429)
//!   until its minute has passed, whatever it presents;
//! - failures for one site beyond [`SITE_LIMIT`] are answered only after a pause, so
//!   guessing a site's secret from many addresses stays slow, while the real site,
//!   whose credentials are right, is never held up;
//! - an account with more than [`ACCOUNT_LIMIT`] failed sign-ins is refused (429) for
//!   the rest of its minute: guessing a password stays slow, and its owner waits a
//!   minute at most, never for good.
//!
//! Nothing here sees a secret: only addresses, claimed site ids and account addresses
//! are kept.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures from one address within [`WINDOW`] before it is refused.
pub const ADDRESS_LIMIT: u32 = 20;
/// Failures for one site within [`WINDOW`] before each further one is delayed.
pub const SITE_LIMIT: u32 = 5;
/// Failed sign-ins of one account within [`WINDOW`] before it is refused.
pub const ACCOUNT_LIMIT: u32 = 10;
/// How long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(60);
/// The pause before answering a failure beyond [`SITE_LIMIT`].
pub const PAUSE: Duration = Duration::from_secs(1);
/// Most entries kept; past it, expired entries are dropped first.
const MAX_ENTRIES: usize = 100_000;

/// What is counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A client address.
    Address(IpAddr),
    /// A site id that a request claimed.
    Site(u32),
    /// An account's address, as typed at sign-in (lower case).
    Account(String),
}

impl Subject {
    /// Failures within [`WINDOW`] before the subject is refused; `None`: never refused.
    fn limit(&self) -> Option<u32> {
        match self {
            Subject::Address(_) => Some(ADDRESS_LIMIT),
            Subject::Account(_) => Some(ACCOUNT_LIMIT),
            Subject::Site(_) => None,
        }
    }
}

/// Failed attempts, by subject.
#[derive(Default)]
pub struct Attempts {
    failures: Mutex<HashMap<Subject, (u32, Instant)>>,
}

impl Attempts {
    /// How many seconds `subject` must wait before it may try again, if it must.
    pub fn refused(&self, subject: &Subject, now: Instant) -> Option<u64> {
        let limit = subject.limit()?;
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match failures.get(subject) {
            Some((count, since)) if *count > limit && now < *since + WINDOW => {
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
            let entry = failures.entry(subject.clone()).or_insert((0, now));
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
        let at = Subject::Address(ip);
        assert_eq!(attempts.refused(&at, t0), None);
        attempts.failed(std::slice::from_ref(&at), t0);
        assert!(attempts.refused(&at, t0).is_some());
        assert!(
            attempts
                .refused(&Subject::Address([10, 0, 0, 8].into()), t0)
                .is_none(),
            "another address is not"
        );
        assert_eq!(attempts.refused(&at, t0 + WINDOW), None);
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

#[cfg(test)]
mod account_tests {
    use super::*;

    #[test]
    fn an_account_is_refused_for_the_rest_of_its_minute_only() {
        let attempts = Attempts::default();
        let ann = Subject::Account("ann@example.org".into());
        let t0 = Instant::now();
        for i in 0..=ACCOUNT_LIMIT {
            let from = Subject::Address([10, 0, 1, i as u8].into());
            attempts.failed(&[from, ann.clone()], t0);
        }
        assert!(
            attempts
                .refused(&ann, t0 + Duration::from_secs(30))
                .is_some()
        );
        assert!(
            attempts
                .refused(&Subject::Account("bob@example.org".into()), t0)
                .is_none()
        );
        assert_eq!(attempts.refused(&ann, t0 + WINDOW), None, "never for good");
        assert_eq!(
            attempts.refused(&Subject::Site(7), t0),
            None,
            "sites are paused, not refused"
        );
    }
}
