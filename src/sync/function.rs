//! `clerk-webhooks-sync`, the Lambda apps invoke with the AWS SDK: the request and answer
//! shapes, the configuration, and one invocation. `src/bin/sync.rs` only wires.
//!
//! Request: `{"user_id": "user_…"}`, `{"organization_id": "org_…"}`, or both (the user's
//! membership of the organization); `"refresh": true` asks Clerk even when the table has it.
//! Answer: `{"status": "found" | "synced" | "not_found" | "deleted", "item": {…} | null}`.
//! A bad request or a failure is a function error whose `errorType` says which (the SDKs
//! raise it), never an answer that looks like a miss.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Answer, Object, SyncError, Syncer, Target, DEFAULT_BUDGET};
use crate::clerk_api::{self, ApiBase, ApiError, SecretKey};
use crate::env::{ConfigError, Env, TABLE_VAR};

/// `SYNC_BUDGET_MS`: how long one invocation may spend, Backend API waits included.
pub const BUDGET_VAR: &str = "SYNC_BUDGET_MS";

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub user_id: Option<String>,
    pub organization_id: Option<String>,
    #[serde(default)]
    pub refresh: bool,
}

impl Request {
    /// What the request asks for.
    pub fn target(&self) -> Result<Target, Failure> {
        let target = match (&self.user_id, &self.organization_id) {
            (Some(user), None) => Target::User(user.clone()),
            (None, Some(org)) => Target::Organization(org.clone()),
            (Some(user), Some(org)) => Target::Membership {
                org_id: org.clone(),
                user_id: user.clone(),
            },
            (None, None) => {
                return Err(Failure::BadRequest(
                    "name a user_id, an organization_id, or both".into(),
                ))
            }
        };
        target
            .check()
            .map_err(|e| Failure::BadRequest(e.to_string()))?;
        Ok(target)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Response {
    pub status: &'static str,
    pub item: Option<Object>,
}

impl From<Answer<Object>> for Response {
    fn from(answer: Answer<Object>) -> Self {
        Self {
            status: answer.status(),
            item: answer.object(),
        }
    }
}

/// Why an invocation has no answer: its `errorType` is the variant's name.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Clerk asked to wait longer than the budget leaves; try again after `retry_after_ms`.
    #[error("rate-limited by Clerk's Backend API; retry after {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    #[error("{0}")]
    Unavailable(Arc<SyncError>),
}

impl Failure {
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BadRequest",
            Self::RateLimited { .. } => "RateLimited",
            Self::Unavailable(_) => "Unavailable",
        }
    }
}

impl From<Arc<SyncError>> for Failure {
    fn from(error: Arc<SyncError>) -> Self {
        match &*error {
            SyncError::BadId => Self::BadRequest(error.to_string()),
            SyncError::Api(ApiError::OutOfTime {
                retry_after: Some(wait),
                ..
            }) => Self::RateLimited {
                retry_after_ms: wait.as_millis() as u64,
            },
            _ => Self::Unavailable(error),
        }
    }
}

impl From<Failure> for lambda_http::lambda_runtime::Diagnostic {
    fn from(failure: Failure) -> Self {
        Self {
            error_type: failure.error_type().to_owned(),
            error_message: failure.to_string(),
        }
    }
}

/// One invocation: the payload as the runtime delivers it.
pub async fn invoke(syncer: &Syncer, payload: serde_json::Value) -> Result<Response, Failure> {
    let request: Request = serde_json::from_value(payload).map_err(|e| {
        Failure::BadRequest(format!(
            "expected {{user_id, organization_id, refresh}}: {e}"
        ))
    })?;
    let target = request.target()?;
    let result = syncer.resolve(&target, request.refresh).await;
    let kind = match target {
        Target::User(_) => "user",
        Target::Organization(_) => "organization",
        Target::Membership { .. } => "membership",
    };
    match result {
        Ok(answer) => {
            tracing::info!(
                kind,
                status = answer.status(),
                refresh = request.refresh,
                "answered"
            );
            Ok(Response::from(answer))
        }
        Err(error) => {
            let failure = Failure::from(error);
            tracing::warn!(kind, error_type = failure.error_type(), error = %failure, "failed");
            Err(failure)
        }
    }
}

/// The sync function's environment: the table, the Backend API and its key, the budget.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub table_name: String,
    pub base: ApiBase,
    pub key: SecretKey,
    pub budget: Duration,
}

impl SyncConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let (base, key) = clerk_api::settings(&env)?;
        let budget_ms = env.number(
            BUDGET_VAR,
            100..=14_000,
            DEFAULT_BUDGET.as_millis() as u64,
            "milliseconds",
        )?;
        Ok(Self {
            table_name: env.require(TABLE_VAR)?,
            base,
            key,
            budget: Duration::from_millis(budget_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(value: serde_json::Value) -> Result<Target, Failure> {
        serde_json::from_value::<Request>(value)
            .map_err(|e| Failure::BadRequest(e.to_string()))?
            .target()
    }

    #[test]
    fn a_request_names_a_user_an_organization_or_both() {
        assert_eq!(
            request(json!({"user_id": "user_1"})).unwrap(),
            Target::User("user_1".into())
        );
        assert_eq!(
            request(json!({"organization_id": "org_1", "refresh": true})).unwrap(),
            Target::Organization("org_1".into())
        );
        assert_eq!(
            request(json!({"organization_id": "org_1", "user_id": "user_1"})).unwrap(),
            Target::Membership {
                org_id: "org_1".into(),
                user_id: "user_1".into()
            }
        );
        for bad in [
            json!({}),
            json!({"user_id": "a@b.c"}),
            json!({"user_id": "user_1/../x"}),
            json!({"userId": "user_1"}),
            json!({"user_id": 7}),
        ] {
            let failure = request(bad.clone()).unwrap_err();
            assert_eq!(failure.error_type(), "BadRequest", "{bad}");
            assert!(!failure.to_string().contains("a@b.c"), "{failure}");
        }
    }

    #[test]
    fn a_rate_limit_past_the_budget_says_how_long_to_wait() {
        let error = Arc::new(SyncError::Api(ApiError::OutOfTime {
            path: "/v1/users/user_1".into(),
            retry_after: Some(Duration::from_secs(3)),
        }));
        let failure = Failure::from(error);
        assert_eq!(failure.error_type(), "RateLimited");
        assert!(failure.to_string().contains("3000 ms"), "{failure}");
        let diagnostic: lambda_http::lambda_runtime::Diagnostic = failure.into();
        assert_eq!(diagnostic.error_type, "RateLimited");
    }

    #[test]
    fn the_configuration_needs_a_key_and_a_table_and_bounds_the_budget() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let config = SyncConfig::from_lookup(vars(&[
            ("CLERK_SECRET_KEY", "sk_test_0123456789"),
            ("TABLE_NAME", "t"),
        ]))
        .unwrap();
        assert_eq!(config.budget, DEFAULT_BUDGET);
        assert_eq!(config.base, ApiBase::default());
        let err = SyncConfig::from_lookup(vars(&[("TABLE_NAME", "t")])).unwrap_err();
        assert!(err.to_string().contains("CLERK_SECRET_KEY"), "{err}");
        let err = SyncConfig::from_lookup(vars(&[
            ("CLERK_SECRET_KEY", "sk_test_0123456789"),
            ("TABLE_NAME", "t"),
            ("SYNC_BUDGET_MS", "60000"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("SYNC_BUDGET_MS"), "{err}");
    }
}
