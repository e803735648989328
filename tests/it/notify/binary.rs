//! The `clerk-webhooks-notify` binary itself, both ways it runs: under a stand-in for the
//! Lambda Runtime API (Lambda's DynamoDB Streams event in, the partial batch response out),
//! and on a laptop, where it follows DynamoDB Local's stream and previews what it would send
//! (`make dev`). Its output goes to the log audit's folder when the suite runs under
//! scripts/test.sh.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::logs::audit_dir;
use crate::helpers::notify::{event, NotifyApp, FROM};
use crate::helpers::providers::RESEND_KEY;
use crate::helpers::runtime_api::{as_lambda, next_answers, runtime_api};
use crate::helpers::*;

use super::actions::{primary_email, sign_up, user_id};

/// The binary's output file: in the audit folder when there is one, else a temporary file
/// removed when the test passes.
fn log_path(name: &str) -> PathBuf {
    let file = format!("notify-binary-{name}-{}.log", std::process::id());
    audit_dir().unwrap_or_else(std::env::temp_dir).join(file)
}

/// The binary with DynamoDB Local's settings and nothing else from the environment.
fn notify_binary(table: &str, log: &PathBuf) -> Command {
    let file = std::fs::File::create(log).unwrap();
    let mut command = local_binary(env!("CARGO_BIN_EXE_clerk-webhooks-notify"), table);
    command
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .stdin(Stdio::null());
    command
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn remove_unless_audited(path: &PathBuf) {
    if audit_dir().is_none() && std::env::var_os("KEEP_NOTIFY_LOGS").is_none() {
        let _ = std::fs::remove_file(path);
    }
}

#[tokio::test]
async fn as_a_lambda_it_answers_each_batch_with_the_records_to_retry() {
    let n = NotifyApp::spawn("user.created").await;
    let id = user_id(30);
    sign_up(&n.app, &id).await;
    let records = n.records().await;
    let batch = event(&records);
    let (runtime, mut answers) = runtime_api(vec![
        (batch.clone(), 60),
        (batch, 60),
        (json!({"not": "a stream event"}), 60),
    ])
    .await;
    let log = log_path("lambda");
    let _lambda = Running(
        as_lambda(&mut notify_binary(&n.app.table, &log), &runtime, "notify")
            .env("RESEND_API_KEY", RESEND_KEY)
            .env("RESEND_BASE_URL", &n.resend.url)
            .env("WELCOME_EMAIL_FROM", FROM)
            .env("SLACK_WEBHOOK_URL", &n.slack.url)
            .spawn()
            .unwrap(),
    );
    let received = next_answers(&mut answers, 3).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let kinds: Vec<&str> = received.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(kinds, ["response", "response", "error"], "{text}");
    assert_eq!(received[0].1, json!({"batchItemFailures": []}));
    assert_eq!(received[1].1, json!({"batchItemFailures": []}));
    // Not a stream event: the invocation fails, so Lambda would hand the batch over again.
    assert!(
        received[2].1["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("not a DynamoDB Streams event")),
        "{}",
        received[2].1
    );
    assert_eq!(n.resend.accepted().len(), 1);
    assert_eq!(n.slack.accepted().len(), 1);
    assert!(text.contains("notify sent"), "{text}");
    assert!(
        !text.contains(&primary_email(&id)) && !text.contains(RESEND_KEY),
        "{text}"
    );
    remove_unless_audited(&log);
}

/// Waits until `path` holds `count` lines containing `needle`, or `timeout` passes; returns
/// how many it holds.
async fn wait_for_lines(path: &PathBuf, needle: &str, count: usize, timeout: Duration) -> usize {
    let started = Instant::now();
    loop {
        let found = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count();
        if found >= count || started.elapsed() > timeout {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn locally_it_follows_the_stream_and_previews_each_change_once() {
    let app = TestApp::spawn_with_stream().await;
    let id = user_id(31);
    let created = sign_up(&app, &id).await;
    let log = log_path("local");
    let follower = Running(notify_binary(&app.table, &log).spawn().unwrap());
    // Both actions are previewed (no keys): the email and the Slack post; and, without a bus,
    // the change event, by ids only.
    const SEND: &str = "notify preview: would send";
    const PUT: &str = "notify preview: would put the event";
    let previews = wait_for_lines(&log, SEND, 2, Duration::from_secs(60)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(previews, 2, "{text}");
    assert!(text.contains("A***@E***.org"), "the address masked: {text}");
    assert!(!text.contains(&primary_email(&id)), "{text}");

    // The same user.created again (a Dashboard replay: stale) and an update: nothing new.
    let body = envelope(
        "user.created",
        created + 5,
        super::actions::person(&id, created, created),
    );
    assert_eq!(app.deliver(&body, &msg_id()).await, "stale");
    let update = super::actions::person(&id, created, created + 1_000);
    assert_eq!(
        app.apply("user.updated", created + 1_000, update).await,
        "applied"
    );
    let batches = wait_for_lines(&log, "notify batch", 2, Duration::from_secs(30)).await;
    assert!(batches >= 2, "the update was read: {batches}");
    // user.created as an event; the stale replay made none, and neither did the update,
    // which changed nothing but its updated_at.
    let events = wait_for_lines(&log, PUT, 1, Duration::from_secs(30)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(events, 1, "{text}");
    assert!(!text.contains("user.updated#"), "{text}");
    drop(follower);
    // Restarted, it reads the stream from the start again: the claims say it is all done.
    let again = log_path("local-again");
    let _follower = Running(notify_binary(&app.table, &again).spawn().unwrap());
    wait_for_lines(&again, "notify batch", 1, Duration::from_secs(60)).await;
    let text = std::fs::read_to_string(&again).unwrap();
    assert!(text.contains("notify batch"), "{text}");
    assert!(!text.contains("notify preview"), "{text}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches(SEND).count(), 2, "{text}");
    assert_eq!(text.matches(PUT).count(), 1, "{text}");
    remove_unless_audited(&log);
    remove_unless_audited(&again);
}
