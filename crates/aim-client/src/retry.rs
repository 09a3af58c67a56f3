//! When to retry a request and how long to wait: exponential backoff with full jitter,
//! `Retry-After` honoured (seconds or HTTP date) and capped.

use std::time::{Duration, SystemTime};

/// Bounded retries for transient failures: 5xx, 429 and transport errors (connect, timeout,
/// broken connection). Other 4xx are never retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retries).
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry; doubles on each further retry.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
    /// Largest `Retry-After` wait honoured; longer requests are cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The backoff ceiling before retry number `retry` (0 for the first retry):
    /// `min(max_delay, base_delay × 2^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Full jitter: a delay uniformly drawn from `[0, ceiling(retry)]` using `random`
    /// (any 64 random bits).
    pub fn backoff(&self, retry: u32, random: u64) -> Duration {
        let ceiling = self.ceiling(retry).as_micros() as u64;
        if ceiling == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(random % (ceiling + 1))
    }

    /// The wait before the next attempt: the server's `Retry-After` when it sent one (capped at
    /// `max_retry_after`), otherwise the jittered backoff.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, random: u64) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.max_retry_after),
            None => self.backoff(retry, random),
        }
    }
}

/// True for the HTTP statuses worth retrying: 429 and every 5xx.
pub fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// Parses a `Retry-After` value: decimal seconds or an HTTP date (relative to `now`; a date in
/// the past means "now"). Returns `None` for anything else.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let target = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(u64::try_from(date.timestamp()).ok()?))?;
    Some(target.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let p = RetryPolicy::default();
        let got: Vec<u64> = (0..6).map(|r| p.ceiling(r).as_millis() as u64).collect();
        assert_eq!(got, [500, 1000, 2000, 4000, 8000, 8000]);
        assert_eq!(p.ceiling(200), Duration::from_secs(8));
    }

    #[test]
    fn full_jitter_stays_within_the_ceiling_and_spans_it() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0, 0), Duration::ZERO);
        assert_eq!(p.backoff(0, 500_000), Duration::from_millis(500));
        assert_eq!(p.backoff(0, 500_001), Duration::ZERO);
        for r in 0..5 {
            for random in [1u64, 77, 123_456_789, u64::MAX] {
                assert!(p.backoff(r, random) <= p.ceiling(r));
            }
        }
        // Different random inputs give different delays (it is jitter, not a constant).
        assert_ne!(p.backoff(2, 1_000), p.backoff(2, 900_000));
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3)), 0),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3600)), 0),
            Duration::from_secs(30)
        );
        assert_eq!(p.delay(1, None, 250_000), Duration::from_millis(250));
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-1", "1.5", "soon", "99999999999", "Sun, 99 Nov 1994"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn retryable_statuses() {
        for s in [429, 500, 502, 503, 504, 599] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 201, 400, 401, 403, 404, 409, 422] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }
}
