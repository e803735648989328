//! The one HTTP client the functions and tools use for services other than AWS: Clerk's
//! Backend API (the backfill), the local sender and, next, the notifier's calls.
//!
//! reqwest with no default features, over the hyper, hyper-util and rustls the AWS SDK
//! already brings (HTTP/1.1, the SDK's aws-lc-rs provider), trusting the system's CA roots as
//! the SDK does. Timeouts are the caller's: each request sets its own.

use std::time::Duration;

use hyper_rustls::ConfigBuilderExt;

/// The TLS configuration could not be built (no usable CA roots on this machine).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS: {0}")]
pub struct HttpClientError(String);

/// A pooled client: `connect_timeout` for each new connection, `user_agent` on every request.
pub fn client(
    connect_timeout: Duration,
    user_agent: &'static str,
) -> Result<reqwest::Client, HttpClientError> {
    let tls = rustls::ClientConfig::builder()
        .with_native_roots()
        .map_err(|e| HttpClientError(e.to_string()))?
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(user_agent)
        // Nothing follows a redirect: an API answering 3xx is answering something unexpected.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| HttpClientError(e.to_string()))
}

/// A `Retry-After` given in seconds (the form Clerk, Resend and Slack send). An HTTP date is
/// not read: the caller then backs off on its own.
pub(crate) fn retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(retry_after("Wed, 21 Oct 2026 07:28:00 GMT"), None);
        assert_eq!(retry_after("-1"), None);
    }
}
