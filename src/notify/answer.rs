//! What a provider's HTTP answer (Resend's, Slack's) means for the stream record that asked
//! for it. Pure, so every branch is unit-tested.
//!
//! A retryable answer reports the record as a batch item failure, so Lambda retries it (and
//! the records after it, which their claims make safe); a refusal is permanent: retrying the
//! same request cannot fix a bad key, an unverified sender domain or an unknown channel, and
//! one bad record must never block its shard.

use std::time::Duration;

use crate::http_client;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: done; the claim is marked done.
    Sent,
    /// 429, 408 or 5xx: ask again, after `after` when the provider said how long.
    RetryLater { after: Option<Duration> },
    /// Any other status: permanent; the claim is marked failed.
    Refused { status: u16 },
}

pub fn classify(status: u16, retry_after: Option<&str>) -> Answer {
    match status {
        200..=299 => Answer::Sent,
        408 | 429 | 500..=599 => Answer::RetryLater {
            after: retry_after.and_then(http_client::retry_after),
        },
        _ => Answer::Refused { status },
    }
}

impl Answer {
    /// Whether to wait for `Retry-After` and ask again within this invocation: only when the
    /// wait fits in what remains of it (`remaining`, less a margin to finish the batch).
    pub fn wait_within(self, remaining: Duration, margin: Duration) -> Option<Duration> {
        match self {
            Self::RetryLater { after: Some(wait) } if wait + margin <= remaining => Some(wait),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_retry_and_refusal() {
        assert_eq!(classify(200, None), Answer::Sent);
        assert_eq!(classify(202, None), Answer::Sent);
        assert_eq!(
            classify(429, Some("2")),
            Answer::RetryLater {
                after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(classify(503, None), Answer::RetryLater { after: None });
        assert_eq!(classify(408, None), Answer::RetryLater { after: None });
        // Resend's 422 (unverified domain, bad address), 401/403 (bad key); Slack's 404
        // (no such webhook), 410 (channel archived).
        for status in [400, 401, 403, 404, 410, 422] {
            assert_eq!(classify(status, None), Answer::Refused { status });
        }
        // A redirect is not a success: nothing follows redirects.
        assert_eq!(classify(302, None), Answer::Refused { status: 302 });
    }

    #[test]
    fn retry_after_is_honoured_only_within_the_time_left() {
        let margin = Duration::from_secs(5);
        let limited = classify(429, Some("10"));
        assert_eq!(
            limited.wait_within(Duration::from_secs(60), margin),
            Some(Duration::from_secs(10))
        );
        assert_eq!(limited.wait_within(Duration::from_secs(12), margin), None);
        assert_eq!(
            classify(429, None).wait_within(Duration::from_secs(60), margin),
            None
        );
        assert_eq!(
            Answer::Sent.wait_within(Duration::from_secs(60), margin),
            None
        );
    }
}
