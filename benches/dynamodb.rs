//! End to end against DynamoDB Local: the warm handler, called in-process with real
//! `lambda_http` requests, against its floor (the same `TransactWriteItems`, same client, same
//! items, sent directly); DynamoDB calls per outcome; throughput at 16 concurrent handlers;
//! write capacity per event.
//!
//! scripts/dynamodb-local.sh start && cargo bench --bench dynamodb
//! (EVENTS=2000 by default; AWS_ENDPOINT_URL_DYNAMODB overrides the endpoint.)

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use aws_sdk_dynamodb::Client;
use clerk_webhooks::config::Config;
use clerk_webhooks::function_url::FunctionUrlRequest;
use clerk_webhooks::handler::{prepare, Handler, RequestFacts};
use clerk_webhooks::store::{self, Store};
use clerk_webhooks::verify::SigningSecret;
use serde_json::{json, Value};

// DynamoDB calls per outcome: the suite's own call log (this bench uses part of it).
#[allow(dead_code)]
#[path = "../tests/it/helpers/call_log.rs"]
mod call_log;
use call_log::CallLog;

// Median and p99 of latency samples, shared with the other DynamoDB Local benches.
mod common;
use common::summary;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn fixture(event_type: &str) -> Value {
    let path = format!("{}/events/{event_type}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A realistic user.created (the fixture) for a fresh user id.
fn user_created(n: usize) -> Value {
    let mut event = fixture("user.created");
    event["data"]["id"] = json!(format!("user_bench{n:06}"));
    event
}

/// The function-URL event Lambda would hand over for `event`, signed now.
fn signed(event: &Value, svix_id: &str) -> FunctionUrlRequest {
    let body = event.to_string();
    let ts = now_secs();
    let signature = SigningSecret::parse(SECRET)
        .unwrap()
        .sign(svix_id, ts, body.as_bytes());
    serde_json::from_value(json!({
        "headers": {"content-type": "application/json", "svix-id": svix_id,
                    "svix-timestamp": ts.to_string(), "svix-signature": signature},
        "requestContext": {"http": {"method": "POST"}},
        "body": body, "isBase64Encoded": false
    }))
    .unwrap()
}

/// The floor: the items our planner makes for `event`, sent directly as one
/// `TransactWriteItems`. Returns how long the DynamoDB call alone took.
async fn send_floor(
    client: &Client,
    store: &Store,
    config: &Config,
    event: FunctionUrlRequest,
) -> Duration {
    let request = event.into_request().unwrap();
    let facts = &mut RequestFacts::default();
    let plan = prepare(config, &request, SystemTime::now(), facts)
        .unwrap()
        .expect("a synced type");
    let items = store.transact_items(&plan.writes).unwrap();
    let started = Instant::now();
    client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
        .unwrap();
    started.elapsed()
}

async fn status_of(handler: &Handler, event: FunctionUrlRequest) -> String {
    let response = handler.invoke(event).await;
    let body = response.body.expect("every answer has a body");
    let body: Value = serde_json::from_slice(body.as_ref()).unwrap();
    format!(
        "{} {}",
        response.status_code,
        body["status"].as_str().unwrap_or("?")
    )
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. a test harness probe) runs nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let events: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .unwrap_or_else(|_| "http://127.0.0.1:8000".into());
    let counter = CallLog::default();
    let builder = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "bench"))
        .interceptor(counter.clone());
    let client = Client::from_conf(store::with_limits(builder).build());
    let table = format!("bench-{}", now_secs());
    // No stream: nothing here reads it, and DynamoDB Local slows down with every stream
    // record it keeps (the deployed table's stream costs DynamoDB's writes nothing).
    clerk_webhooks::store::create_table_without_stream(&client, &table)
        .await
        .expect("DynamoDB Local must be running");
    let config = Config::from_lookup(|name| match name {
        "CLERK_WEBHOOK_SIGNING_SECRET" => Some(SECRET.into()),
        "TABLE_NAME" => Some(table.clone()),
        _ => None,
    })
    .unwrap();
    let store = Store::new(client.clone(), &table);
    let handler = Arc::new(Handler::new(Ok(config.clone()), client.clone()));
    eprintln!("DynamoDB Local at {endpoint}, table {table}, {events} events per side\n");

    // 1. Warm handler vs the floor, interleaved so both see the same DynamoDB Local state.
    let warm_up = 200;
    let mut handler_times = Vec::with_capacity(events);
    let mut floor_times = Vec::with_capacity(events);
    for n in 0..warm_up + events {
        // The floor: the items our planner would send for another fresh user, sent directly.
        let floor_request = signed(&user_created(2 * n), &format!("msg_floor{n}"));
        let floor = send_floor(&client, &store, &config, floor_request).await;

        let request = signed(&user_created(2 * n + 1), &format!("msg_handler{n}"));
        let started = Instant::now();
        let response = handler.invoke(request).await;
        let took = started.elapsed();
        assert_eq!(response.status_code, 200);
        if n >= warm_up {
            floor_times.push(floor);
            handler_times.push(took);
        }
    }
    let (floor_median, floor_p99) = summary("floor (TransactWriteItems)", floor_times);
    let (median, p99) = summary("handler (whole request)", handler_times);
    eprintln!(
        "ratio handler/floor          median {:.3}x   p99 {:.3}x\n",
        median / floor_median,
        p99 / floor_p99
    );

    // 2. DynamoDB calls per outcome (retries would count too).
    counter.take_total() as usize;
    let mut calls = Vec::new();
    let once = signed(&user_created(9_000_001), "msg_calls_applied");
    let again = signed(&user_created(9_000_001), "msg_calls_applied");
    calls.push((
        "applied",
        status_of(&handler, once).await,
        counter.take_total() as usize,
    ));
    calls.push((
        "duplicate",
        status_of(&handler, again).await,
        counter.take_total() as usize,
    ));
    let mut older = user_created(9_000_001);
    older["data"]["updated_at"] = json!(1);
    calls.push((
        "stale",
        status_of(&handler, signed(&older, "msg_calls_stale")).await,
        counter.take_total() as usize,
    ));
    let unknown = json!({"object": "event", "type": "brandNew.event", "timestamp": 1, "instance_id": "i", "data": {}});
    calls.push((
        "ignored",
        status_of(&handler, signed(&unknown, "msg_calls_ignored")).await,
        counter.take_total() as usize,
    ));
    let mut session = fixture("session.created");
    session["data"]["user"]["id"] = json!("user_bench9000001");
    session["data"]["user_id"] = json!("user_bench9000001");
    calls.push((
        "session, user not newer",
        status_of(&handler, signed(&session, "msg_calls_session")).await,
        counter.take_total() as usize,
    ));
    for org in ["org_a", "org_b", "org_c"] {
        let mut m = fixture("organizationMembership.created");
        m["data"]["organization"]["id"] = json!(org);
        m["data"]["public_user_data"]["user_id"] = json!("user_bench9000001");
        status_of(&handler, signed(&m, &format!("msg_calls_{org}"))).await;
    }
    counter.take_total() as usize;
    let mut delete = fixture("user.deleted");
    delete["data"]["id"] = json!("user_bench9000001");
    calls.push((
        "delete + cascade (3 memberships, 1 session)",
        status_of(&handler, signed(&delete, "msg_calls_delete")).await,
        counter.take_total() as usize,
    ));
    eprintln!("DynamoDB calls per outcome:");
    for (what, status, n) in &calls {
        eprintln!("  {what:<44} {status:<16} {n} call(s)");
    }
    eprintln!();

    // 3. Throughput: 16 concurrent in-process handlers on one table, and the floor likewise.
    let per_task = events / 16;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16 {
        let handler = handler.clone();
        tasks.spawn(async move {
            for i in 0..per_task {
                let n = 5_000_000 + t * per_task + i;
                let response = handler
                    .invoke(signed(&user_created(n), &format!("msg_tp{n}")))
                    .await;
                assert_eq!(response.status_code, 200);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let handler_rate = (16 * per_task) as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16 {
        let (client, store, config) = (client.clone(), store.clone(), config.clone());
        tasks.spawn(async move {
            for i in 0..per_task {
                let n = 7_000_000 + t * per_task + i;
                let request = signed(&user_created(n), &format!("msg_tpf{n}"));
                send_floor(&client, &store, &config, request).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let floor_rate = (16 * per_task) as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "throughput, 16 concurrent: handler {handler_rate:.0} events/s, floor {floor_rate:.0} events/s (ratio {:.3})\n",
        handler_rate / floor_rate
    );

    // 4. Write capacity of one realistic user.created, as DynamoDB reports it.
    let request = signed(&user_created(9_500_000), "msg_capacity");
    let request = request.into_request().unwrap();
    let plan = prepare(
        &config,
        &request,
        SystemTime::now(),
        &mut RequestFacts::default(),
    )
    .unwrap()
    .unwrap();
    let out = client
        .transact_write_items()
        .set_transact_items(Some(store.transact_items(&plan.writes).unwrap()))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let units: f64 = out
        .consumed_capacity()
        .iter()
        .filter_map(|c| c.capacity_units())
        .sum();
    let body_bytes = request.body().as_ref().len();
    eprintln!("write capacity for one user.created ({body_bytes} B body): {units} WCU (DynamoDB Local's report)");
}
