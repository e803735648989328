//! Exponential back-off with jitter, shared by the store (transaction conflicts) and the Clerk
//! API client (5xx, timeouts).
//!
//! No random-number crate: `RandomState` is seeded randomly per thread and each new instance
//! gets a different key, so hashing nothing with it yields a fresh unpredictable `u64`. That is
//! plenty to keep concurrent retries from moving in lockstep, which is all jitter is for.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// A random number from the standard library alone (see the module documentation).
pub(crate) fn random_u64() -> u64 {
    RandomState::new().build_hasher().finish()
}

/// The wait before retry number `attempt` (1 for the first retry): the ceiling
/// `base * 2^attempt`, capped at `cap`, and a random point in its upper half, so the wait
/// still grows while concurrent clients spread out.
pub(crate) fn jittered(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let base_ms = base.as_millis().min(u128::from(u64::MAX)) as u64;
    let ceiling = base_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(cap.as_millis().min(u128::from(u64::MAX)) as u64);
    Duration::from_millis(ceiling / 2 + random_u64() % (ceiling / 2 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_stays_in_the_upper_half_and_is_capped() {
        let base = Duration::from_millis(25);
        let cap = Duration::from_millis(1_600);
        for attempt in 1..40 {
            let d = jittered(attempt, base, cap).as_millis() as u64;
            let ceiling = (25u64 << attempt.min(20)).min(1_600);
            assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d}");
        }
    }

    #[test]
    fn is_not_constant() {
        let waits: std::collections::HashSet<_> = (0..20)
            .map(|_| jittered(10, Duration::from_secs(1), Duration::from_secs(60)))
            .collect();
        assert!(waits.len() > 1, "jitter varies: {waits:?}");
    }
}
