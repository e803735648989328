//! The notifier's reading of the table's stream, on DynamoDB Local's real Streams API: the
//! records the webhook function's transactions produce, read with GetRecords and handed over
//! in the JSON Lambda delivers (`NEW_AND_OLD_IMAGES`), make exactly the changes README's
//! table of changes names, and nothing for retries, replays, stale events or updates.

use std::time::Duration;

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use clerk_webhooks::notify::change::{change_of_record, Window};
use serde_json::{json, Value};

use crate::helpers::*;

const USER: &str = "user_2NNEqL2nrIRdJ194ndJqAHwEfxC";
const ORG: &str = "org_2NNEqL2nrIRdJ194ndJqAHwEfxD";

/// A Streams client for DynamoDB Local (the same endpoint serves both APIs).
fn streams_client() -> aws_sdk_dynamodbstreams::Client {
    use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodbstreams::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

/// Reads the table's stream from the start, as Lambda's poller would, and returns every record
/// in Lambda's event JSON: `eventName`, and `dynamodb` with `Keys`, `NewImage`, `OldImage`.
async fn stream_records(app: &TestApp) -> Vec<Value> {
    let table = app
        .client
        .describe_table()
        .table_name(&app.table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let arn = table.latest_stream_arn().expect("the table has a stream");
    let streams = streams_client();
    let stream = streams
        .describe_stream()
        .stream_arn(arn)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap();
    let mut records = Vec::new();
    for shard in stream.shards() {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        // An open shard always hands back a next iterator: stop at the first empty page.
        while let Some(current) = iterator {
            let page = streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .unwrap();
            if page.records().is_empty() {
                break;
            }
            records.extend(page.records().iter().map(lambda_json));
            iterator = page.next_shard_iterator;
        }
    }
    records
}

/// One SDK record as Lambda's event JSON (DynamoDB JSON images).
fn lambda_json(record: &aws_sdk_dynamodbstreams::types::Record) -> Value {
    let stream = record.dynamodb().unwrap();
    let image = |image: Option<&std::collections::HashMap<String, _>>| {
        image.map(|image| {
            let item: serde_dynamo::Item = serde_dynamo::Item::from(image.clone());
            serde_json::to_value(item).unwrap()
        })
    };
    let mut dynamodb = json!({
        "SequenceNumber": stream.sequence_number(),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    });
    for (name, value) in [
        ("Keys", image(stream.keys.as_ref())),
        ("NewImage", image(stream.new_image.as_ref())),
        ("OldImage", image(stream.old_image.as_ref())),
    ] {
        if let Some(value) = value {
            dynamodb[name] = value;
        }
    }
    json!({
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventSource": "aws:dynamodb",
        "dynamodb": dynamodb,
    })
}

/// The change ids the stream's records make, in order.
async fn changes(app: &TestApp, now_ms: i64) -> Vec<String> {
    stream_records(app)
        .await
        .iter()
        .filter_map(|record| change_of_record(record, Window::hours(now_ms, 72)).unwrap())
        .map(|change| change.id())
        .collect()
}

#[tokio::test]
async fn the_webhooks_writes_make_one_change_each_and_retries_make_none() {
    let app = TestApp::spawn().await;
    // Created an hour before "now": inside the welcome window.
    let created = 1_716_883_200_000;
    let now = created + 3_600_000;
    let user_created = envelope("user.created", created + 5, user(USER, created, "Lovelace"));
    let id = msg_id();
    assert_eq!(app.deliver(&user_created, &id).await, "applied");
    // Svix retries the same message; a Dashboard replay; a later update; an older one.
    assert_eq!(app.deliver(&user_created, &id).await, "duplicate");
    assert_eq!(app.deliver(&user_created, &msg_id()).await, "stale");
    assert_eq!(
        app.apply(
            "user.updated",
            created + 9_000,
            user(USER, created + 9_000, "Byron")
        )
        .await,
        "applied"
    );
    assert_eq!(
        app.apply(
            "user.updated",
            created + 1_000,
            user(USER, created + 1_000, "Old")
        )
        .await,
        "stale"
    );
    // An organization and a member, then the user's deletion (which cascades).
    app.apply(
        "organization.created",
        created,
        organization(ORG, created, "Acme"),
    )
    .await;
    app.apply(
        "organizationMembership.created",
        created + 10_000,
        membership(ORG, USER, created + 10_000, "org:member"),
    )
    .await;
    app.apply("user.deleted", created + 20_000, deleted("user", USER))
        .await;

    let membership_version = created + 10_000;
    assert_eq!(
        changes(&app, now).await,
        [
            format!("user.created#{USER}"),
            format!("organization.created#{ORG}"),
            format!("organizationMembership.created#{ORG}#{USER}#{membership_version}"),
            format!("user.deleted#{USER}"),
        ]
    );
    // The same stream read again (Lambda retrying a batch) makes the same ids: what the
    // claims will key on.
    assert_eq!(changes(&app, now).await.len(), 4);
    // Read a week later, the creations are outside the window; the deletion is not.
    let later = changes(&app, now + 7 * 24 * 3_600_000).await;
    assert_eq!(later, [format!("user.deleted#{USER}")]);
}

#[tokio::test]
async fn an_update_before_the_create_welcomes_the_user_once() {
    let app = TestApp::spawn().await;
    let created = 1_716_883_200_000;
    let now = created + 60_000;
    // Out of order: the update arrives first, then the (older) create is stale.
    assert_eq!(
        app.apply(
            "user.updated",
            created + 2_000,
            user(USER, created + 2_000, "Lovelace")
        )
        .await,
        "applied"
    );
    assert_eq!(
        app.apply("user.created", created + 5, user(USER, created, "Lovelace"))
            .await,
        "stale"
    );
    // DynamoDB Local hands records over promptly, but give it a moment under load.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(changes(&app, now).await, [format!("user.created#{USER}")]);
}
