//! The store's handle and the vocabulary every part of it shares: the client with our
//! limits, the errors, and the key helpers.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use crate::table::{attr, Key};

/// Why DynamoDB did not apply a request. Nothing was applied in either case.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, a 5xx, a timeout, a lost connection: a retry can succeed.
    #[error("DynamoDB {operation} failed: {detail}")]
    Call {
        operation: &'static str,
        detail: String,
    },
    #[error("transaction cancelled: {0}")]
    Cancelled(String),
    #[error("invalid item: {0}")]
    Item(String),
    /// DynamoDB refused the request itself (`ValidationException`, or a transaction cancelled
    /// for `ValidationError`): the same request will be refused every time. After the item
    /// encoding this means a bug of ours, not a busy table.
    #[error("DynamoDB refused {operation} as invalid: {detail}")]
    Refused {
        operation: &'static str,
        detail: String,
    },
}

impl StoreError {
    /// Whether no retry of the same request can succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }

    pub(crate) fn call<E: ProvideErrorMetadata, R>(
        operation: &'static str,
        err: &SdkError<E, R>,
    ) -> Self {
        if let SdkError::ServiceError(e) = err {
            if e.err().code() == Some("ValidationException") {
                // DynamoDB's message names the rule (`Item size has exceeded…`), not the data.
                let detail = e
                    .err()
                    .message()
                    .unwrap_or("ValidationException")
                    .to_owned();
                return Self::Refused { operation, detail };
            }
        }
        Self::Call {
            operation,
            detail: describe(err, "DynamoDB"),
        }
    }
}

/// An AWS SDK error, any service's (the SDKs share the type): its kind and the service's code
/// and message, never the request's data.
pub(crate) fn describe<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>, service: &str) -> String {
    match err {
        SdkError::ServiceError(e) => format!(
            "{}: {}",
            e.err().code().unwrap_or("unknown"),
            e.err().message().unwrap_or("")
        ),
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(_) => format!("could not reach {service}"),
        SdkError::ResponseError(_) => "unreadable response".into(),
        SdkError::ConstructionFailure(_) => "could not build the request".into(),
        _ => "unknown error".into(),
    }
}

/// Per-attempt and per-call limits. Svix gives up after 15 s; with these a hung DynamoDB
/// turns into a 503 within about 6 s, well before that and before the Lambda timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_000);
const OPERATION_TIMEOUT: Duration = Duration::from_millis(6_000);

/// A DynamoDB client from the standard AWS environment (region, credentials, and
/// `AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local), with our limits. Built once at init.
pub async fn client_from_env() -> Client {
    client_from(&shared_config().await)
}

/// The standard AWS environment, read once for every client a function builds.
pub async fn shared_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// A DynamoDB client on `shared`, with our limits.
pub fn client_from(shared: &aws_config::SdkConfig) -> Client {
    Client::from_conf(with_limits(aws_sdk_dynamodb::config::Builder::from(shared)).build())
}

/// Applies our timeouts and retry policy to any client configuration.
pub fn with_limits(config: aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    // Standard mode retries throttling and transient errors with back-off, 3 attempts in all.
    config
        .timeout_config(timeouts)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
}

#[derive(Clone, Debug)]
pub struct Store {
    pub(super) client: Client,
    pub(super) table: String,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn key_of(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (attr::PK.to_owned(), s(&key.pk)),
        (attr::SK.to_owned(), s(&key.sk)),
    ])
}

pub(super) fn key_only(item: &HashMap<String, AttributeValue>) -> HashMap<String, AttributeValue> {
    item.iter()
        .filter(|(name, _)| *name == attr::PK || *name == attr::SK)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
