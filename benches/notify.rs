//! The notifier's CPU per stream record, without I/O: reading the record's images, deciding
//! the change, and building each action's request body. Reported next to a floor measured in
//! the same run: decoding the record's new image alone, the least any stream consumer does.
//! And the same work with the change events on (deciding the events, and each detail's JSON)
//! against off, for an insert and for an update whose primary email changed.
//!
//! The record is the one the webhook function's transaction makes of events/user.created.json
//! (the item the planner builds, as DynamoDB JSON in Lambda's record shape).
//!
//! cargo bench --bench notify

use std::hint::black_box;

use clerk_webhooks::event::Event;
use clerk_webhooks::notify::action::{actions, message, View};
use clerk_webhooks::notify::change::{change_of, change_of_record, Images, Window};
use clerk_webhooks::notify::change_event::{change_events, EventRules};
use clerk_webhooks::notify::config::WithoutKeys;
use clerk_webhooks::notify::NotifyConfig;
use clerk_webhooks::plan::Settings;
use clerk_webhooks::plan::{plan, Write};
use clerk_webhooks::table::Item;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

/// Lambda's record for an item written with no old image (an INSERT).
fn record(item: &Item, sequence_number: &str) -> Value {
    let image = serde_dynamo::Item::from(item.clone());
    json!({
        "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_716_883_201,
            "Keys": {"pk": image.get("pk"), "sk": image.get("sk")},
            "NewImage": image, "SequenceNumber": sequence_number, "SizeBytes": 1024,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-12-03T00:00:00.000"
    })
}

fn notify(c: &mut Criterion) {
    let path = format!("{}/events/user.created.json", env!("CARGO_MANIFEST_DIR"));
    let event = Event::decode(&std::fs::read(path).unwrap(), 1_716_883_201_000).unwrap();
    let now_ms = event.timestamp_ms;
    let planned = plan(&event, "msg_bench", &Settings::default(), now_ms).unwrap();
    let (mut event_record, mut user) = (None, None);
    for write in &planned.writes {
        match write {
            Write::RecordEvent(item) => event_record = Some(record(item, "100")),
            Write::Put { item, .. } => user = Some(record(item, "101")),
            _ => {}
        }
    }
    let (event_record, user) = (event_record.unwrap(), user.unwrap());
    let window = Window::hours(now_ms + 60_000, Window::DEFAULT_MAX_AGE_HOURS);
    let config = NotifyConfig::from_lookup(
        |name| match name {
            "TABLE_NAME" => Some("bench".into()),
            "WELCOME_EMAIL_SUBJECT" => Some("Welcome, {{first_name}}!".into()),
            "WELCOME_EMAIL_HTML" => {
                Some("<p>Hi {{name}}, your account for {{email}} is ready.</p>".into())
            }
            _ => None,
        },
        WithoutKeys::Preview,
    )
    .unwrap();
    assert!(change_of_record(&user, window).unwrap().is_some());
    assert!(change_of_record(&event_record, window).unwrap().is_none());

    let mut group = c.benchmark_group("notify");
    group.bench_function("floor: decode the new image", |b| {
        b.iter(|| {
            let image: serde_dynamo::Item =
                serde_json::from_value(black_box(&user)["dynamodb"]["NewImage"].clone()).unwrap();
            let item: Item = image.into();
            black_box(item)
        })
    });
    group.bench_function("user.created record: the change", |b| {
        b.iter(|| black_box(change_of_record(black_box(&user), window).unwrap()))
    });
    group.bench_function(
        "user.created record: change, actions, email and Slack bodies",
        |b| {
            b.iter(|| {
                let change = change_of_record(black_box(&user), window).unwrap().unwrap();
                let bodies: Vec<_> = actions(&change, &config)
                    .into_iter()
                    .filter_map(|action| message(action, &change, &config, View::Real))
                    .collect();
                black_box(bodies)
            })
        },
    );
    group.bench_function("event record: no change", |b| {
        b.iter(|| black_box(change_of_record(black_box(&event_record), window).unwrap()))
    });
    group.finish();

    // The change events: the same record's whole work with the action off, then on.
    let rules = EventRules::default();
    let mut updated = user.clone();
    updated["eventName"] = json!("MODIFY");
    updated["dynamodb"]["OldImage"] = user["dynamodb"]["NewImage"].clone();
    // A newer version with a new primary email (and so new data).
    let new_image = &mut updated["dynamodb"]["NewImage"];
    new_image["email"] = json!({"S": "ada@new.example.org"});
    new_image["version"] = json!({"N": (now_ms + 1).to_string()});
    let mut new_item: Item = serde_json::from_value::<serde_dynamo::Item>(new_image.clone())
        .unwrap()
        .into();
    let text = clerk_webhooks::table::encoding::data_text(&new_item)
        .unwrap()
        .unwrap();
    // The fixture's text is indented: `"banned": false`.
    let edited = text.replacen("\"banned\": false", "\"banned\": true", 1);
    assert_ne!(edited, text, "the fixture names banned");
    new_item.insert(
        "data".into(),
        aws_sdk_dynamodb::types::AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(
            clerk_webhooks::table::encoding::encode_data(&edited),
        )),
    );
    updated["dynamodb"]["NewImage"] =
        serde_json::to_value(serde_dynamo::Item::from(new_item)).unwrap();
    let work = |record: &Value, events: bool| {
        let images = Images::of(record).unwrap();
        let change = change_of(images.old.as_ref(), images.new.as_ref(), window);
        let bodies: Vec<_> = change
            .iter()
            .flat_map(|change| {
                actions(change, &config)
                    .into_iter()
                    .filter_map(|action| message(action, change, &config, View::Real))
            })
            .collect();
        let details: Vec<String> = match events {
            true => change_events(
                images.old.as_ref(),
                images.new.as_ref(),
                images.removal,
                &rules,
            )
            .iter()
            .map(|e| e.detail_json())
            .collect(),
            false => Vec::new(),
        };
        (bodies, details)
    };
    assert_eq!(work(&user, true).1.len(), 1, "user.created");
    assert_eq!(
        work(&updated, true).1.len(),
        3,
        "user.updated, primary_email_changed, banned"
    );
    let mut group = c.benchmark_group("notify events");
    for (name, record) in [("insert", &user), ("update", &updated)] {
        group.bench_function(format!("{name}: events off"), |b| {
            b.iter(|| black_box(work(black_box(record), false)))
        });
        group.bench_function(format!("{name}: events on"), |b| {
            b.iter(|| black_box(work(black_box(record), true)))
        });
    }
    group.finish();
}

criterion_group!(benches, notify);
criterion_main!(benches);
