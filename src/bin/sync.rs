//! clerk-webhooks-sync: the Lambda apps invoke with the AWS SDK to read a user, organization
//! or membership, synced from Clerk's Backend API on a miss. Wiring only; see
//! `clerk_webhooks::sync::function`.

use std::process::ExitCode;
use std::sync::Arc;

use clerk_webhooks::clerk_api::{ClerkApi, RetryPolicy};
use clerk_webhooks::store::{self, Store};
use clerk_webhooks::sync::function::{invoke, SyncConfig};
use clerk_webhooks::sync::Syncer;
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> ExitCode {
    clerk_webhooks::logging::init();
    let config = match SyncConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "invalid configuration");
            return ExitCode::FAILURE;
        }
    };
    let api = match ClerkApi::new(config.base, config.key, RetryPolicy::default()) {
        Ok(api) => api,
        Err(error) => {
            tracing::error!(%error, "cannot set up the Backend API client");
            return ExitCode::FAILURE;
        }
    };
    let store = Store::new(store::client_from_env().await, config.table_name);
    let syncer = Arc::new(Syncer::new(store, api).with_budget(config.budget));
    let result = lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let syncer = Arc::clone(&syncer);
        // Boxed: a deep future, one allocation per invocation.
        async move { Box::pin(invoke(&syncer, event.payload)).await }
    }))
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}
