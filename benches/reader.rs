//! The reader and sync on demand against DynamoDB Local and the Backend API stand-in, each
//! against its floor measured in the same run, interleaved so both see the same state:
//!
//! - a reader hit (`Reader::user`: `GetItem`, tombstone check, decode, gunzip `data`) against a
//!   bare `GetItem` of the same key on the same client;
//! - a user's organizations (`Reader::organizations_of`: the `gsi1` query, then `BatchGetItem`
//!   of the items) against a bare `Query` of the index alone;
//! - a sync on demand of a missing user (`Syncer::user_or_sync`: `GetItem`, the Backend API
//!   request, the transaction, `GetItem` again) against the stand-in's own answer time (the
//!   same GET through the same Backend API client, on a user of its own) plus the one
//!   `TransactWriteItems` of the same plan.
//!
//! scripts/dynamodb-local.sh start && cargo bench --bench reader
//! (SAMPLES=1000 by default; AWS_ENDPOINT_URL_DYNAMODB overrides the endpoint.)

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use clerk_webhooks::backfill::objects::{prepare, Copier};
use clerk_webhooks::backfill::Kind;
use clerk_webhooks::clerk_api::{ApiBase, ClerkApi, RetryPolicy, SecretKey};
use clerk_webhooks::plan::Settings;
use clerk_webhooks::read::Reader;
use clerk_webhooks::store::{self, Store};
use clerk_webhooks::sync::Syncer;
use clerk_webhooks::table::{self, Key};

// Median and p99 of latency samples, shared with the other DynamoDB Local benches.
mod common;
use common::summary;

// The suite's Backend API stand-in (this bench uses part of it).
#[allow(dead_code)]
#[path = "../tests/it/helpers/fake_clerk.rs"]
mod fake_clerk;
#[allow(dead_code)]
#[path = "../tests/it/helpers/http.rs"]
mod http;

fn ratio(what: &str, ours: (f64, f64), floor: (f64, f64)) {
    eprintln!(
        "ratio {what:<34} median {:.3}x   p99 {:.3}x\n",
        ours.0 / floor.0,
        ours.1 / floor.1
    );
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let samples: usize = std::env::var("SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .unwrap_or_else(|_| "http://127.0.0.1:8000".into());
    let builder = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "bench"));
    let client = Client::from_conf(store::with_limits(builder).build());
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let table = format!("bench-reader-{}", started.as_secs());
    store::create_table_without_stream(&client, &table)
        .await
        .expect("DynamoDB Local must be running");
    let store = Store::new(client.clone(), &table);
    let reader = Reader::from_store(store.clone());

    // The stand-in holds `samples` users (each synced once, below), 5 organizations and a
    // membership of user 0 in each.
    let data = fake_clerk::Data::generate(samples + 1, 5, 1);
    let memberships: Vec<_> = (0..5)
        .map(|o| fake_clerk::membership(&data.organizations[o], &data.users[0], o))
        .collect();
    let fake = fake_clerk::FakeClerk::start(data.clone()).await;
    let api = ClerkApi::new(
        ApiBase::parse(&fake.url).unwrap(),
        SecretKey::parse(fake_clerk::KEY).unwrap(),
        RetryPolicy::default(),
    )
    .unwrap();
    let syncer = Syncer::new(store.clone(), api.clone());
    let settings = Settings::default();
    let copy = |kind: Kind, object: &serde_json::Value| {
        let raw = serde_json::value::to_raw_value(object).unwrap();
        prepare(kind, &raw, &settings, 0, Copier::Sync)
            .unwrap()
            .plan
    };
    // User 0 and its memberships, for the hit and the organizations.
    store
        .apply(&copy(Kind::Users, &data.users[0]))
        .await
        .unwrap();
    for m in &memberships {
        store.apply(&copy(Kind::Memberships, m)).await.unwrap();
    }
    let user0 = fake_clerk::user_id(0);
    eprintln!("DynamoDB Local at {endpoint}, table {table}, {samples} samples per side\n");

    // 1. A hit against a bare GetItem.
    let key = Key::user(&user0);
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for n in 0..samples + 100 {
        let t = Instant::now();
        client
            .get_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(key.pk.clone()))
            .key("sk", AttributeValue::S(key.sk.clone()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        let bare = t.elapsed();
        let t = Instant::now();
        let user = reader.user(&user0).await.unwrap();
        let took = t.elapsed();
        assert!(user.is_some());
        if n >= 100 {
            floor.push(bare);
            ours.push(took);
        }
    }
    let f = summary("bare GetItem", floor);
    let o = summary("Reader::user (hit)", ours);
    ratio("reader hit / GetItem", o, f);

    // 2. A user's organizations against a bare Query of the index.
    let pk = Key::user(&user0).pk;
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for n in 0..samples + 100 {
        let t = Instant::now();
        let page = client
            .query()
            .table_name(&table)
            .index_name(table::GSI1)
            .key_condition_expression("gsi1pk = :pk AND begins_with(gsi1sk, :org)")
            .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
            .expression_attribute_values(":org", AttributeValue::S("ORG#".into()))
            .send()
            .await
            .unwrap();
        let bare = t.elapsed();
        assert_eq!(page.items().len(), 5);
        let t = Instant::now();
        let orgs = reader.organizations_of(&user0).await.unwrap();
        let took = t.elapsed();
        assert_eq!(orgs.len(), 5);
        if n >= 100 {
            floor.push(bare);
            ours.push(took);
        }
    }
    let f = summary("bare Query (gsi1, 5 entries)", floor);
    let o = summary("Reader::organizations_of (5)", ours);
    ratio("organizations / bare Query", o, f);

    // 3. A sync on demand against the stand-in's answer plus one transaction.
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for n in 1..=samples {
        let id = fake_clerk::user_id(n);
        // The floor: the stand-in's answer to the same GET, then the plan's transaction (on
        // a twin of the user, so the sync below still misses).
        let t = Instant::now();
        let body = api.user(&id).await.unwrap().expect("the stand-in has it");
        let mut twin: serde_json::Value = serde_json::from_str(body.get()).unwrap();
        twin["id"] = serde_json::json!(format!("user_twin{n:020}"));
        let plan = copy(Kind::Users, &twin);
        client
            .transact_write_items()
            .set_transact_items(Some(store.transact_items(&plan.writes).unwrap()))
            .send()
            .await
            .unwrap();
        let bare = t.elapsed();
        let t = Instant::now();
        let answer = syncer.user_or_sync(&id).await.unwrap();
        let took = t.elapsed();
        assert_eq!(answer.status(), "synced");
        floor.push(bare);
        ours.push(took);
    }
    let f = summary("stand-in GET + TransactWriteItems", floor);
    let o = summary("Syncer::user_or_sync (miss)", ours);
    ratio("sync on demand / floor", o, f);
}
