//! Retry delays after a failed exchange.

/// Retry delays: 100 ms doubling up to 5 s. A site that cannot reach its primary keeps
/// trying, but a primary that comes back is not met by every site at once in a tight loop.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    failures: u32,
}

/// The longest pause between two attempts.
pub const MAX_BACKOFF_MS: u64 = 5_000;

impl Backoff {
    /// Notes a failure and returns how long to wait before the next attempt, in ms.
    pub fn next_delay(&mut self) -> u64 {
        self.failures = self.failures.saturating_add(1);
        100u64
            .saturating_mul(1 << self.failures.min(6))
            .min(MAX_BACKOFF_MS)
    }

    /// Notes a success: the next failure waits the shortest delay again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_limit_and_reset() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|_| backoff.next_delay()).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), 200);
    }
}
