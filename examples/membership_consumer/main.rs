//! An example consumer of clerk-webhooks' change events: a Lambda that an EventBridge rule
//! invokes with each membership event, keeping a team-member and a workspace record per
//! membership in a table of its own (`CONSUMER_TABLE`). See docs/notifications.md ("An example
//! consumer") for the rule; `consumer.rs` for what it writes and why it is safe to repeat.
//!
//! cargo lambda build --release --example membership_consumer

mod consumer;

use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let table = std::env::var("CONSUMER_TABLE").map_err(|_| "CONSUMER_TABLE is not set")?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let (client, table) = (&client, table.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let writes = consumer::writes_for(&event.payload);
        // An error makes EventBridge retry the event (its retry policy), then its DLQ.
        consumer::apply(client, table, &writes).await?;
        Ok::<_, lambda_runtime::Error>(())
    }))
    .await
}
