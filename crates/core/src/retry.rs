//! Retry policies: how often a kind's task may run, and how long it waits between attempts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a kind retries an attempt that failed with a retryable error.
///
/// The delay before attempt `n + 1` is `initial_backoff × multiplier^(n − 1)`, capped at
/// `max_backoff`, of which the fraction `jitter` is random (drawn down, never up), so that tasks
/// failing together do not retry together. An error's own `retry_after` replaces the delay.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// Attempts in all, the first included: 1 never retries. A re-run after a crash counts.
    pub max_attempts: u32,
    /// The delay after the first failed attempt.
    #[serde(rename = "initial_backoff_ms", with = "crate::millis")]
    pub initial_backoff: Duration,
    /// The longest delay.
    #[serde(rename = "max_backoff_ms", with = "crate::millis")]
    pub max_backoff: Duration,
    /// How much each delay grows over the one before.
    pub multiplier: f64,
    /// The random share of each delay, from 0 (none) to 1 (anywhere from zero to the delay).
    pub jitter: f64,
}

impl RetryPolicy {
    /// No retries: the first failure is final.
    pub const NONE: Self = Self {
        max_attempts: 1,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(60),
        multiplier: 2.0,
        jitter: 0.2,
    };

    /// Up to `max_attempts` attempts in all, with the default backoff: 1 s, doubling, at most
    /// 60 s, a fifth of it random.
    pub fn attempts(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            ..Self::NONE
        }
    }

    /// Sets the first delay.
    pub fn initial_backoff(mut self, delay: Duration) -> Self {
        self.initial_backoff = delay;
        self
    }

    /// Sets the longest delay.
    pub fn max_backoff(mut self, delay: Duration) -> Self {
        self.max_backoff = delay;
        self
    }

    /// Sets how much each delay grows.
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets the random share of each delay (clamped to 0..=1).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Whether attempt `attempt` (counted from 1) may run.
    pub fn allows(&self, attempt: u32) -> bool {
        attempt <= self.max_attempts
    }

    /// The longest delay after attempt `failed` (from 1), before jitter.
    pub fn ceiling(&self, failed: u32) -> Duration {
        let growth = self
            .multiplier
            .max(1.0)
            .powi(i32::try_from(failed.saturating_sub(1)).unwrap_or(i32::MAX));
        let max = self.max_backoff.as_secs_f64();
        let delay = (self.initial_backoff.as_secs_f64() * growth).min(max);
        Duration::try_from_secs_f64(delay).unwrap_or(self.max_backoff)
    }

    /// The delay after attempt `failed`, given `random`, a number drawn uniformly from 0 to 1:
    /// between `(1 − jitter) × ceiling` and `ceiling`.
    pub fn backoff(&self, failed: u32, random: f64) -> Duration {
        let jitter = self.jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0);
        self.ceiling(failed).mul_f64(1.0 - jitter)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_jitter_only_shortens_them() {
        let policy = RetryPolicy::attempts(10)
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(1_000))
            .multiplier(3.0)
            .jitter(0.5);
        let ceilings: Vec<u128> = (1..=4).map(|n| policy.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 300, 900, 1_000]);
        assert_eq!(policy.backoff(2, 0.0), Duration::from_millis(300));
        assert_eq!(policy.backoff(2, 1.0), Duration::from_millis(150));
        assert_eq!(
            policy.backoff(2, 7.0),
            Duration::from_millis(150),
            "clamped"
        );
    }

    #[test]
    fn attempts_are_counted_from_one() {
        assert!(RetryPolicy::NONE.allows(1) && !RetryPolicy::NONE.allows(2));
        let three = RetryPolicy::attempts(3);
        assert!(three.allows(3) && !three.allows(4));
        assert_eq!(RetryPolicy::attempts(0).max_attempts, 1);
    }

    #[test]
    fn reads_its_config_shape_with_defaults() {
        let policy: RetryPolicy =
            serde_json::from_str(r#"{"max_attempts": 5, "initial_backoff_ms": 10}"#).unwrap();
        assert_eq!(policy.max_attempts, 5);
        assert_eq!(policy.initial_backoff, Duration::from_millis(10));
        assert_eq!(policy.max_backoff, RetryPolicy::NONE.max_backoff);
    }
}
