//! clerk-webhooks-notify: acts on the table's changes (a welcome email, Slack posts, change
//! events on EventBridge) from its DynamoDB stream. Wiring only; see `clerk_webhooks::notify`.
//!
//! Under Lambda (the runtime sets `AWS_LAMBDA_RUNTIME_API`) each invocation is a batch of
//! stream records, answered with the records to retry. Elsewhere (`make dev`) it follows the
//! table's stream itself, and an action without its key is previewed, not sent.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use clerk_webhooks::notify::config::WithoutKeys;
use clerk_webhooks::notify::event_bus::EventBus;
use clerk_webhooks::notify::stream::{streams_client_from_env, StreamReader};
use clerk_webhooks::notify::{Notifier, NotifyConfig};
use clerk_webhooks::store;
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> ExitCode {
    clerk_webhooks::logging::init();
    // Boxed: the two futures are deep, and only one of them runs.
    let result = if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        Box::pin(on_lambda()).await
    } else {
        Box::pin(locally()).await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "clerk-webhooks-notify stopped");
            ExitCode::FAILURE
        }
    }
}

async fn on_lambda() -> Result<(), lambda_runtime::Error> {
    let config = NotifyConfig::from_env(WithoutKeys::Off);
    if let Err(error) = &config {
        tracing::error!(%error, "invalid configuration: every batch fails until it is fixed");
    }
    // One read of the AWS environment for both clients; the bus's only when events are on.
    let shared = store::shared_config().await;
    let events_on = config.as_ref().is_ok_and(|c| c.events.is_some());
    let mut notifier = Notifier::new(config, store::client_from(&shared));
    if events_on {
        notifier = notifier.with_event_bus(EventBus::from_shared(&shared));
    }
    let notifier = &notifier;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let remaining = event
            .context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        // An error fails the whole batch: Lambda hands it over again. Boxed: a deep
        // future, and one allocation per batch.
        Box::pin(notifier.invoke(&event.payload, Instant::now() + remaining))
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await
}

/// `make dev`: follows the local table's stream; actions without keys are previewed.
async fn locally() -> Result<(), lambda_runtime::Error> {
    let config = NotifyConfig::from_env(WithoutKeys::Preview)?;
    let shared = store::shared_config().await;
    let client = store::client_from(&shared);
    let reader = StreamReader::new(
        client.clone(),
        streams_client_from_env().await,
        config.table_name.clone(),
    );
    let notifier = Notifier::new(Ok(config), client).with_event_bus(EventBus::from_shared(&shared));
    tracing::info!("notify: following the table's stream");
    reader.follow(&notifier).await?;
    Ok(())
}
