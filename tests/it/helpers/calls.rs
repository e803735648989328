//! What each function's code asks DynamoDB to do, recorded as it happens: the clients handed
//! to the code under test carry an SDK interceptor that turns every request into the IAM
//! actions it needs (and the resource each is needed on). `iam.rs` compares what the whole
//! suite recorded with the policies in `template.yaml`.
//!
//! With `CLERK_WEBHOOKS_IAM_DIR` set (scripts/test.sh sets it), each process appends what it
//! records to `<dir>/<pid>.jsonl`, one JSON object per new (function, action, resource).
//! The tests' own reads (`scan`, `get`, table creation) use clients without the interceptor.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use aws_sdk_dynamodb::Client;
use serde_json::Value;

use super::call_log::CallLog;

/// Where scripts/test.sh collects what the suite's processes recorded.
pub const IAM_DIR_VAR: &str = "CLERK_WEBHOOKS_IAM_DIR";

/// The function whose code a client serves, by its binary's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    Webhook,
    Backfill,
    Notifier,
    Sync,
}

impl Function {
    pub fn binary(self) -> &'static str {
        match self {
            Self::Webhook => "clerk-webhooks",
            Self::Backfill => "clerk-webhooks-backfill",
            Self::Notifier => "clerk-webhooks-notify",
            Self::Sync => "clerk-webhooks-sync",
        }
    }
}

/// One IAM permission: an action on a resource, `table` or `table/index/<name>`.
pub type Grant = (String, String);

/// A client for `endpoint` (as [`super::client_for`]) whose requests are recorded as
/// `function`'s.
pub fn client(function: Function, endpoint: &str) -> Client {
    super::logs::init();
    let recorder = CallLog::with_sink(std::sync::Arc::new(move |operation: &str, body: &Value| {
        record(function, needed(operation, body))
    }));
    let config = super::client_config(endpoint).interceptor(recorder);
    Client::from_conf(clerk_webhooks::store::with_limits(config).build())
}

/// An EventBridge client for `endpoint` whose requests are recorded as `function`'s.
pub fn eventbridge_client(function: Function, endpoint: &str) -> aws_sdk_eventbridge::Client {
    use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
    super::logs::init();
    let recorder = CallLog::with_sink(std::sync::Arc::new(move |operation: &str, body: &Value| {
        record(function, needed(operation, body))
    }));
    let config = aws_sdk_eventbridge::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .interceptor(recorder)
        .build();
    aws_sdk_eventbridge::Client::from_conf(config)
}

/// The IAM actions one DynamoDB (or EventBridge) request needs. IAM has no `TransactWriteItems` action: each
/// item of a transaction is authorised as its own `PutItem`, `UpdateItem`, `DeleteItem` or
/// `ConditionCheckItem`. A `Query` on an index is authorised on the index.
pub fn needed(operation: &str, body: &Value) -> BTreeSet<Grant> {
    let on = |action: &str, resource: String| (format!("dynamodb:{action}"), resource);
    let resource = |request: &Value| match request["IndexName"].as_str() {
        Some(index) => format!("table/index/{index}"),
        None => "table".to_owned(),
    };
    match operation {
        // EventBridge's one call; granted on the bus.
        "PutEvents" => BTreeSet::from([("events:PutEvents".to_owned(), "event-bus".to_owned())]),
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item.as_object()?.keys().next().cloned())
            .map(|kind| {
                let action = match kind.as_str() {
                    "ConditionCheck" => "ConditionCheckItem".to_owned(),
                    other => format!("{other}Item"),
                };
                on(&action, "table".into())
            })
            .collect(),
        other => BTreeSet::from([on(other, resource(body))]),
    }
}

fn recorded() -> &'static Mutex<BTreeSet<(Function, Grant)>> {
    static RECORDED: OnceLock<Mutex<BTreeSet<(Function, Grant)>>> = OnceLock::new();
    RECORDED.get_or_init(Default::default)
}

fn record(function: Function, grants: BTreeSet<Grant>) {
    let mut seen = recorded().lock().unwrap();
    for grant in grants {
        if seen.insert((function, grant.clone())) {
            if let Some(file) = iam_file() {
                let line = serde_json::json!({
                    "function": function.binary(), "action": grant.0, "resource": grant.1,
                });
                writeln!(file.lock().unwrap(), "{line}").unwrap();
            }
        }
    }
}

pub fn iam_dir() -> Option<PathBuf> {
    std::env::var_os(IAM_DIR_VAR)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

fn iam_file() -> Option<&'static Mutex<File>> {
    static FILE: OnceLock<Option<Mutex<File>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = iam_dir()?;
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.jsonl", std::process::id()));
        Some(Mutex::new(File::create(path).unwrap()))
    })
    .as_ref()
}
