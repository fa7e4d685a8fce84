//! When and how long to wait before trying a registry request again: capped exponential
//! backoff with jitter, and the registry's own `Retry-After` when it gives one.
//!
//! Which requests are retried is the caller's business (only those that can be sent again:
//! reads, upload sessions, manifests and blobs from bytes held or a file); which answers are
//! worth another try is decided here ([`transient_status`], [`transient_error`]).

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;

/// How many times to try, and how long to wait between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all (1: no retries).
    pub attempts: u32,
    /// The first backoff; each later one doubles, up to `cap`.
    pub base: Duration,
    /// The longest backoff.
    pub cap: Duration,
    /// The longest `Retry-After` honoured; a registry asking for more fails the request.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 5, base: Duration::from_millis(250), cap: Duration::from_secs(8), max_retry_after: Duration::from_secs(60) }
    }
}

impl RetryPolicy {
    /// The wait after failed try number `attempt` (1-based): the registry's `Retry-After` when
    /// it gave one, else "equal jitter" backoff: half of `min(cap, base * 2^(attempt-1))` plus
    /// a random part of the other half, so many clients failing together do not retry together.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_retry_after);
        }
        let exp = self.base.saturating_mul(1 << attempt.saturating_sub(1).min(20)).min(self.cap);
        let half = exp / 2;
        let random = RandomState::new().hash_one(attempt);
        half + Duration::from_nanos(random % u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1))
    }
}

/// Answers worth another try: timeouts, rate limits and server-side failures.
pub fn transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 425 | 429 | 500 | 502 | 503 | 504)
}

/// Transport failures worth another try: could not connect, timed out, the connection broke
/// or the body stopped short. Not: invalid URLs, TLS certificate failures, redirects.
pub fn transient_error(e: &reqwest::Error) -> bool {
    if e.is_builder() || e.is_redirect() || e.is_status() {
        return false;
    }
    if e.is_connect() && crate::store::registry::error_chain(e).contains("certificate") {
        return false;
    }
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode()
}

/// `Retry-After`: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap() {
        let p = RetryPolicy { attempts: 10, base: Duration::from_millis(100), cap: Duration::from_secs(1), max_retry_after: Duration::from_secs(5) };
        for attempt in 1..=10 {
            let full = (Duration::from_millis(100) * (1 << (attempt - 1))).min(Duration::from_secs(1));
            let d = p.delay(attempt, None);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?} not in [{:?}, {full:?}]", full / 2);
        }
        assert_eq!(p.delay(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(p.delay(1, Some(Duration::from_secs(300))), Duration::from_secs(5), "Retry-After is capped");
        let samples: std::collections::HashSet<Duration> = (0..20).map(|_| p.delay(5, None)).collect();
        assert!(samples.len() > 1, "jitter varies the wait");
    }

    #[test]
    fn parses_retry_after_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), Some(Duration::ZERO), "a date in the past: now");
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn classifies_statuses() {
        for s in [429, 500, 502, 503, 504, 408] {
            assert!(transient_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 201, 400, 401, 403, 404, 405, 413] {
            assert!(!transient_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
