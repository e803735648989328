//! Sends one [`Message`] to its provider over the shared HTTP client, and reads the answer:
//! Resend's `POST /emails` (bearer key, `Idempotency-Key`) and a Slack incoming webhook.
//!
//! Nothing here logs, and nothing it returns can hold a credential or a personal value:
//! reqwest's errors name the URL (for Slack, the URL *is* the credential), so only their kind
//! is kept; of a refusal's body only a short machine code (`validation_error`,
//! `channel_not_found`), never Resend's message, which may quote the address.

use std::time::Duration;

use serde_json::Value;

use super::action::Message;
use super::answer::{classify, Answer};
use super::config::{Delivery, NotifyConfig};
use super::spec::Target;
use crate::http_client::{self, HttpClientError};

/// Per request, connection included: well inside the claim's lease.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Resend refuses requests without a `User-Agent`.
const USER_AGENT: &str = concat!("clerk-webhooks-notify/", env!("CARGO_PKG_VERSION"));

/// What one request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub answer: Answer,
    /// The HTTP status; `None` when no answer came (timeout, connection refused).
    pub status: Option<u16>,
    /// A short code from the answer's body, or what went wrong on the way.
    pub code: Option<String>,
}

/// The target of `message` under `config`; `None` when its action is previewed, not sent.
pub(crate) fn target<'a>(message: &Message, config: &'a NotifyConfig) -> Option<Target<'a>> {
    let Delivery::Send(credential) = message.action.delivery(config)? else {
        return None;
    };
    message.action.spec().target(config, credential)
}

#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    timeout: Duration,
}

impl Sender {
    pub fn new() -> Result<Self, HttpClientError> {
        Self::with_timeout(REQUEST_TIMEOUT)
    }

    pub fn with_timeout(timeout: Duration) -> Result<Self, HttpClientError> {
        Ok(Self {
            client: http_client::client(CONNECT_TIMEOUT.min(timeout), USER_AGENT)?,
            timeout,
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) async fn send(&self, message: &Message, target: &Target<'_>) -> Reply {
        let mut request = self.client.post(target.url.expose());
        if let Some(key) = target.bearer {
            request = request.bearer_auth(key.expose());
        }
        if let Some(idempotency_key) = &message.idempotency_key {
            request = request.header("Idempotency-Key", idempotency_key);
        }
        let sent = request
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(message.body.to_string())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                return Reply {
                    answer: Answer::RetryLater { after: None },
                    status: None,
                    code: Some(transport_error(&error).to_owned()),
                }
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // The body matters only for its code; a body that does not arrive in time is no code.
        let body = tokio::time::timeout(self.timeout, response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        Reply {
            answer: classify(status, retry_after.as_deref()),
            status: Some(status),
            code: provider_code(&body),
        }
    }
}

/// What went wrong before an answer, by kind only (never reqwest's text: it names the URL).
fn transport_error(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    }
}

/// Resend's error `name` (`{"statusCode", "name", "message"}`) or Slack's plain-text code
/// (`channel_not_found`), when it is a short lower-case code and nothing else.
fn provider_code(body: &[u8]) -> Option<String> {
    let is_code = |text: &str| {
        (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    };
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) {
        return object
            .get("name")
            .and_then(Value::as_str)
            .filter(|name| is_code(name))
            .map(str::to_owned);
    }
    let text = std::str::from_utf8(body).ok()?.trim();
    is_code(text).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_codes_are_kept_from_a_body() {
        let resend = br#"{"statusCode":422,"name":"validation_error","message":"Invalid `to` field: ada@example.org"}"#;
        assert_eq!(provider_code(resend).as_deref(), Some("validation_error"));
        assert_eq!(
            provider_code(b"channel_not_found").as_deref(),
            Some("channel_not_found")
        );
        assert_eq!(provider_code(b"ok").as_deref(), Some("ok"));
        // Anything that could carry a value: nothing.
        assert_eq!(provider_code(b"invalid address ada@example.org"), None);
        assert_eq!(provider_code(br#"{"message":"Ada"}"#), None);
        assert_eq!(provider_code(b""), None);
    }
}
