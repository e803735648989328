//! EventBridge for the notifier's change events, two ways:
//!
//! - [`BusTap`]: moto's server (`scripts/moto.sh`, `MOTO_PORT`, default 5055), which evaluates
//!   rules: a bus of the test's own, a rule on `source` with an SQS queue as its target, and
//!   the queue read back, as a consumer would see the events;
//! - [`PartialBus`]: a loopback stand-in of `PutEvents` (AWS's JSON protocol, `AWSEvents.PutEvents`)
//!   that fails the entries it is told to, entry by entry, as EventBridge does under load.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::providers::{Answer, Loopback};

/// moto's endpoint.
pub fn moto_endpoint() -> String {
    let port = std::env::var("MOTO_PORT").unwrap_or_else(|_| "5055".into());
    format!("http://127.0.0.1:{port}")
}

/// moto's fixed account.
const ACCOUNT: &str = "123456789012";

/// A bus of its own on moto, with a rule sending every event of `source` to a queue.
pub struct BusTap {
    pub bus: String,
    queue_url: String,
    http: reqwest::Client,
}

impl BusTap {
    pub async fn new(source: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            Instant::now().elapsed().as_nanos()
        );
        let http =
            clerk_webhooks::http_client::client(Duration::from_secs(2), "clerk-webhooks-tests")
                .unwrap();
        let tap = Self {
            bus: name.clone(),
            queue_url: String::new(),
            http,
        };
        let queue = tap
            .sqs("CreateQueue", json!({"QueueName": name}))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "moto must be running on {} ({e}): scripts/moto.sh start",
                    moto_endpoint()
                )
            });
        let events = events_client();
        events.create_event_bus().name(&name).send().await.unwrap();
        let pattern = json!({"source": [source]}).to_string();
        events
            .put_rule()
            .name(&name)
            .event_bus_name(&name)
            .event_pattern(pattern)
            .send()
            .await
            .unwrap();
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("queue")
            .arn(format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"))
            .build()
            .unwrap();
        events
            .put_targets()
            .rule(&name)
            .event_bus_name(&name)
            .targets(target)
            .send()
            .await
            .unwrap();
        Self {
            queue_url: queue["QueueUrl"].as_str().unwrap().to_owned(),
            ..tap
        }
    }

    /// The events the queue received (EventBridge's envelope: `source`, `detail-type`,
    /// `detail`), waiting until there are `at_least` or `wait` has passed, then a moment more
    /// for any extra one.
    pub async fn events(&self, at_least: usize, wait: Duration) -> Vec<Value> {
        let until = Instant::now() + wait;
        let mut events = self.receive().await;
        while events.len() < at_least && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            events.extend(self.receive().await);
        }
        // A moment more: an event that should not be there has its chance to arrive.
        tokio::time::sleep(Duration::from_millis(500)).await;
        events.extend(self.receive().await);
        events
    }

    /// What the queue holds now (read messages stay hidden for an hour: each is read once).
    pub async fn receive(&self) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let out = self
                .sqs(
                    "ReceiveMessage",
                    json!({"QueueUrl": self.queue_url, "MaxNumberOfMessages": 10,
                           "WaitTimeSeconds": 0, "VisibilityTimeout": 3600}),
                )
                .await
                .unwrap();
            let received = out["Messages"].as_array().cloned().unwrap_or_default();
            if received.is_empty() {
                return events;
            }
            events.extend(
                received
                    .iter()
                    .map(|m| serde_json::from_str::<Value>(m["Body"].as_str().unwrap()).unwrap()),
            );
        }
    }

    /// One call of SQS's JSON protocol (moto routes on the credential scope's service).
    async fn sqs(&self, action: &str, body: Value) -> Result<Value, String> {
        let answer = self
            .http
            .post(format!("{}/", moto_endpoint()))
            .header("x-amz-target", format!("AmazonSQS.{action}"))
            .header("content-type", "application/x-amz-json-1.0")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = answer.status();
        let text = answer.text().await.map_err(|e| e.to_string())?;
        match status.is_success() {
            true => serde_json::from_str(&text).map_err(|e| e.to_string()),
            false => Err(format!("SQS {action}: {status}")),
        }
    }
}

/// An EventBridge client for moto, for the tests' own set-up (not recorded).
fn events_client() -> aws_sdk_eventbridge::Client {
    use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_eventbridge::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto_endpoint())
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .build();
    aws_sdk_eventbridge::Client::from_conf(config)
}

#[derive(Default)]
struct PartialState {
    /// For each coming call, the entries (by position) to fail.
    failures: VecDeque<Vec<usize>>,
    /// Every entry received, call by call: (detail-type, detail).
    calls: Vec<Vec<(String, Value)>>,
}

/// A `PutEvents` stand-in whose calls fail the entries they are told to.
pub struct PartialBus {
    pub url: String,
    state: Arc<Mutex<PartialState>>,
    _server: Loopback,
}

impl PartialBus {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(PartialState::default()));
        let shared = Arc::clone(&state);
        let server = Loopback::start(move |request| {
            let state = Arc::clone(&shared);
            async move {
                let body = request.json();
                let entries = body["Entries"].as_array().cloned().unwrap_or_default();
                let mut state = state.lock().unwrap();
                let failing = state.failures.pop_front().unwrap_or_default();
                state.calls.push(
                    entries
                        .iter()
                        .map(|e| {
                            (
                                e["DetailType"].as_str().unwrap_or("").to_owned(),
                                serde_json::from_str(e["Detail"].as_str().unwrap_or("null"))
                                    .unwrap_or(Value::Null),
                            )
                        })
                        .collect(),
                );
                let results: Vec<Value> = (0..entries.len())
                    .map(|i| match failing.contains(&i) {
                        true => json!({"ErrorCode": "InternalFailure", "ErrorMessage": "injected"}),
                        false => json!({"EventId": format!("evt-{}-{i}", state.calls.len())}),
                    })
                    .collect();
                let failed = results
                    .iter()
                    .filter(|r| r.get("ErrorCode").is_some())
                    .count();
                Answer {
                    status: 200,
                    headers: Vec::new(),
                    content_type: "application/x-amz-json-1.1",
                    body: json!({"FailedEntryCount": failed, "Entries": results}).to_string(),
                    delay: Duration::ZERO,
                }
            }
        })
        .await;
        Self {
            url: server.url.clone(),
            state,
            _server: server,
        }
    }

    /// The next call fails the entries at these positions.
    pub fn fail_next(&self, positions: &[usize]) {
        self.state
            .lock()
            .unwrap()
            .failures
            .push_back(positions.to_vec());
    }

    /// Every call's entries: (detail-type, detail).
    pub fn calls(&self) -> Vec<Vec<(String, Value)>> {
        self.state.lock().unwrap().calls.clone()
    }
}
