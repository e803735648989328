//! The notifier measured locally, as `make dev` runs it (perf/notify.sh; BENCHMARKS.md):
//!
//! - **latency**: from the webhook function's 200 for a `user.created` to the welcome email's
//!   request reaching Resend (the test suite's fake, tests/it/helpers/providers.rs), against a
//!   floor measured in the same run: when the same stream record first shows to a reader
//!   polling every 10 ms;
//! - **CPU**: the `clerk-webhooks-notify` process's CPU time (user + system, from /proc) per
//!   record while it handles them, less what it spends idle-polling over as long;
//! - with `--events`, the change events too: from the 200 to the `user.created` event in the
//!   SQS queue a rule on moto's EventBridge targets (`scripts/moto.sh`; perf/notify.sh starts it).
//!
//! Loopback and DynamoDB Local only. The webhook handler runs in this process; the notifier is
//! the real binary, following the stream on its own.
//!
//! ```text
//! cargo run --release --example notify_latency -- --notifier target/release/clerk-webhooks-notify [--users 200]
//! ```

#[allow(dead_code)]
#[path = "../tests/it/helpers/bus.rs"]
mod bus;
#[path = "../tests/it/helpers/http.rs"]
mod http;
// A tool uses part of a shared test helper; the suite itself uses all of it.
#[allow(dead_code)]
#[path = "../tests/it/helpers/providers.rs"]
mod providers;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use clap::Parser;
use clerk_webhooks::config::Config;
use clerk_webhooks::function_url::FunctionUrlRequest;
use clerk_webhooks::handler::Handler;
use clerk_webhooks::notify::stream::streams_client_from_env;
use clerk_webhooks::store;
use clerk_webhooks::verify::SigningSecret;
use providers::{FakeProvider, Provider, RESEND_KEY};
use serde_json::json;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// /proc reports CPU times in USER_HZ ticks, 100 a second on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Parser)]
struct Args {
    /// The notifier binary to measure.
    #[arg(long)]
    notifier: String,
    /// How many users sign up.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// The pause between two sign-ups, in ms (so each is measured alone, not in a queue).
    #[arg(long, default_value_t = 200)]
    gap_ms: u64,
    /// How long the idle floor of the notifier's CPU is measured, in seconds.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// Also put the change events on moto's EventBridge and time them to its queue.
    #[arg(long)]
    events: bool,
}

fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name, in parentheses, may hold spaces: count fields after its ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks = |i: usize| fields[i].parse::<f64>().unwrap();
    (ticks(11) + ticks(12)) / TICKS_PER_SECOND
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let client = store::client_from_env().await;
    let table = format!("clerk-webhooks-notify-bench-{}", now_ms());
    clerk_webhooks::store::create_table(&client, &table)
        .await
        .unwrap();
    let resend = FakeProvider::start(Provider::Resend).await;
    let slack = FakeProvider::start(Provider::Slack).await;
    let log = std::fs::File::create(std::env::temp_dir().join("notify-latency.log")).unwrap();
    let tap = match args.events {
        true => Some(std::sync::Arc::new(
            bus::BusTap::new("clerk-webhooks").await,
        )),
        false => None,
    };
    let mut notifier = Command::new(&args.notifier);
    if let Some(tap) = &tap {
        notifier
            .env("EVENT_BUS_NAME", &tap.bus)
            .env("AWS_ENDPOINT_URL_EVENTBRIDGE", bus::moto_endpoint());
    }
    let mut notifier = notifier
        .env("TABLE_NAME", &table)
        .env("RESEND_API_KEY", RESEND_KEY)
        .env("RESEND_BASE_URL", &resend.url)
        .env("WELCOME_EMAIL_FROM", "Acme <welcome@acme.example>")
        .env("SLACK_WEBHOOK_URL", &slack.url)
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = notifier.id();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_start = cpu_secs(pid);
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let idle_per_sec = (cpu_secs(pid) - idle_start) / args.idle_secs as f64;

    // The floor: a reader polling the stream every 10 ms notes when each user shows.
    let streams = streams_client_from_env().await;
    let arn = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .latest_stream_arn
        .unwrap();
    let shard = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap()
        .shards
        .unwrap()
        .pop()
        .unwrap()
        .shard_id
        .unwrap();
    let mut iterator = streams
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::Latest)
        .send()
        .await
        .unwrap()
        .shard_iterator;
    let users = args.users;
    let floor_reader = tokio::spawn(async move {
        let mut seen: HashMap<String, Instant> = HashMap::new();
        while seen.len() < users {
            let Some(current) = iterator.take() else {
                break;
            };
            let page = streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .unwrap();
            let at = Instant::now();
            for record in page.records() {
                let pk = record
                    .dynamodb()
                    .and_then(|d| d.keys())
                    .and_then(|k| k.get("pk"))
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                if let Some(id) = pk.strip_prefix("USER#") {
                    seen.entry(id.to_owned()).or_insert(at);
                }
            }
            iterator = page.next_shard_iterator;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        seen
    });

    // With --events: a poller notes when each user's event reaches the queue.
    let event_reader = tap.clone().map(|tap| {
        tokio::spawn(async move {
            let mut seen: HashMap<String, Instant> = HashMap::new();
            let deadline = Instant::now() + Duration::from_secs(600);
            while seen.len() < users && Instant::now() < deadline {
                for event in tap.receive().await {
                    let id = event["detail"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    seen.entry(id).or_insert_with(Instant::now);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        })
    });

    let config = Config::from_lookup(|name| match name {
        "CLERK_WEBHOOK_SIGNING_SECRET" => Some(SECRET.into()),
        "TABLE_NAME" => Some(table.clone()),
        _ => None,
    });
    let handler = Handler::new(config, client.clone());
    let secret = SigningSecret::parse(SECRET).unwrap();
    let active_start = cpu_secs(pid);
    let started = Instant::now();
    let mut answered: HashMap<String, Instant> = HashMap::new();
    for i in 0..users {
        let id = format!("user_2BeNcH{i:020}");
        let created = now_ms();
        let body = json!({
            "object": "event", "type": "user.created", "timestamp": created,
            "instance_id": "ins_bench",
            "data": {"object": "user", "id": id, "first_name": "Ada", "last_name": "Lovelace",
                     "primary_email_address_id": "idn_1",
                     "email_addresses": [{"id": "idn_1", "object": "email_address",
                                          "email_address": format!("{id}@example.org")}],
                     "created_at": created, "updated_at": created}
        })
        .to_string();
        let ts = created / 1000;
        let svix_id = format!("msg_bench{i}");
        let event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
            "headers": {"content-type": "application/json", "svix-id": svix_id,
                        "svix-timestamp": ts.to_string(),
                        "svix-signature": secret.sign(&svix_id, ts, body.as_bytes())},
            "requestContext": {"http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                               "sourceIp": "127.0.0.1", "userAgent": "bench"}},
            "body": body, "isBase64Encoded": false
        });
        let request: FunctionUrlRequest = serde_json::from_value(event).unwrap();
        let response = handler.invoke(request).await;
        assert_eq!(response.status_code, 200);
        answered.insert(format!("{id}@example.org"), Instant::now());
        tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while (resend.accepted().len() < users || slack.accepted().len() < users)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let active = started.elapsed().as_secs_f64();
    let active_cpu = cpu_secs(pid) - active_start;
    let floor_seen = floor_reader.await.unwrap();
    let events_seen = match event_reader {
        Some(reader) => Some(reader.await.unwrap()),
        None => None,
    };
    let _ = notifier.kill();
    let _ = notifier.wait();
    let _ = client.delete_table().table_name(&table).send().await;

    let mut latency = Vec::new();
    for request in resend.received() {
        let to = request.json()["to"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(at) = answered.get(&to) {
            latency.push(request.at.duration_since(*at).as_secs_f64() * 1000.0);
        }
    }
    let mut floor: Vec<f64> = answered
        .iter()
        .filter_map(|(to, at)| {
            let id = to.trim_end_matches("@example.org");
            floor_seen
                .get(id)
                .map(|seen| seen.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    latency.sort_by(f64::total_cmp);
    floor.sort_by(f64::total_cmp);
    let sent = resend.accepted().len();
    let posts = slack.accepted().len();
    println!("users {users}, emails sent {sent}, Slack posts {posts}, over {active:.1} s");
    println!(
        "200 -> email request, ms: p50 {:.0}, p95 {:.0}, max {:.0}",
        percentile(&latency, 0.5),
        percentile(&latency, 0.95),
        latency.last().unwrap()
    );
    println!(
        "floor, 200 -> the record shows to a 10 ms poller, ms: p50 {:.0}, p95 {:.0}, max {:.0}",
        percentile(&floor, 0.5),
        percentile(&floor, 0.95),
        floor.last().unwrap()
    );
    println!(
        "p50 ratio to the floor: {:.1}x",
        percentile(&latency, 0.5) / percentile(&floor, 0.5).max(0.001)
    );
    if let Some(seen) = events_seen {
        let mut to_queue: Vec<f64> = answered
            .iter()
            .filter_map(|(to, at)| {
                let id = to.trim_end_matches("@example.org");
                seen.get(id)
                    .map(|s| s.saturating_duration_since(*at).as_secs_f64() * 1000.0)
            })
            .collect();
        to_queue.sort_by(f64::total_cmp);
        println!(
            "200 -> user.created event in the queue, ms ({} of {users}): p50 {:.0}, p95 {:.0}, max {:.0}; p50 ratio to the floor: {:.1}x",
            to_queue.len(),
            percentile(&to_queue, 0.5),
            percentile(&to_queue, 0.95),
            to_queue.last().unwrap(),
            percentile(&to_queue, 0.5) / percentile(&floor, 0.5).max(0.001)
        );
    }
    let busy_cpu = active_cpu - idle_per_sec * active;
    // Each sign-up puts 6 records on the stream (its event record, the user, and two claims
    // taken and finished); deployed, the mapping's filter lets only the user's through.
    println!(
        "notifier CPU: {:.2} s while active, idle polling {:.1} ms/s ({:.2} s over as long); \
         per sign-up (6 stream records read; two claims, the email, the post, two finishes): \
         {:.2} ms",
        active_cpu,
        idle_per_sec * 1000.0,
        idle_per_sec * active,
        busy_cpu / users as f64 * 1000.0
    );
}
