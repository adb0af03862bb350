//! Retries with exponential backoff and jitter.

use std::time::Duration;

/// How often and how patiently to retry a request.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// The first backoff; it doubles on every retry.
    pub base_delay: Duration,
    /// The longest backoff.
    pub max_delay: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (0-based `attempt` just failed):
    /// `min(max, base·2^attempt)`, scaled by a random factor in [0.5, 1] so
    /// that many clients that failed together do not retry together. A
    /// server's `Retry-After` is honoured when it asks for longer.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let jittered = exp.mul_f64(rand::random_range(0.5..=1.0));
        match retry_after {
            Some(asked) if asked > jittered => asked.min(self.max_delay),
            _ => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for attempt in 0..8 {
            let full = (100u64 << attempt).min(1000);
            let d = policy.delay(attempt, None).as_millis() as u64;
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d} ms");
        }
        let asked = policy.delay(0, Some(Duration::from_millis(700)));
        assert_eq!(asked, Duration::from_millis(700));
        let capped = policy.delay(0, Some(Duration::from_secs(60)));
        assert_eq!(capped, Duration::from_millis(1000));
    }
}
