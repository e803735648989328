//! The backfill's logs, at the most verbose setting and through a run that retries, waits out
//! a 429, skips objects and fails on a refused key: useful lines, and never the secret key,
//! an email, a phone number, a name or a piece of a Clerk object.

use std::time::Duration;

use crate::helpers::fake_clerk::{
    user_id, Data, FakeClerk, Reply, KEY, MEMBERSHIPS, ORGANIZATIONS, USERS,
};
use crate::helpers::*;
use clerk_webhooks::backfill::options::Options;
use clerk_webhooks::backfill::progress::Display;
use clerk_webhooks::backfill::{Backfill, Kind};
use clerk_webhooks::clerk_api::{ApiBase, ClerkApi, RetryPolicy, SecretKey};
use serde_json::Value;

// The current-thread runtime keeps every task (hyper's connections included) on the thread
// whose default subscriber captures.
#[tokio::test]
async fn the_secret_key_and_personal_data_never_reach_the_logs() {
    // The production filter at TRACE, as JSON; the lines also join the suite's log audit.
    let (capture, _guard) = crate::helpers::logs::Capture::install();

    let mut data = Data::generate(25, 6, 2);
    data.users[4].as_object_mut().unwrap().remove("updated_at");
    data.memberships[1]
        .as_object_mut()
        .unwrap()
        .remove("public_user_data");
    let fake = FakeClerk::start(data).await;
    fake.inject(USERS, 2, Reply::TooManyRequests(None), 1);
    fake.inject(ORGANIZATIONS, 1, Reply::Status(500), 1);
    fake.inject(MEMBERSHIPS, 1, Reply::Slow(Duration::from_secs(2)), 1);
    let app = TestApp::spawn().await;
    let policy = RetryPolicy {
        request_timeout: Duration::from_millis(500),
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    let options = Options {
        page_size: 10,
        retry: policy,
        display: Display::Lines(Duration::from_millis(20)),
        ..Options::default()
    };
    let base = ApiBase::parse(&fake.url).unwrap();
    let api = ClerkApi::new(base.clone(), SecretKey::parse(KEY).unwrap(), policy).unwrap();
    tracing::debug!(?api, "the client as Debug prints it");
    let store = app.backfill_store();
    let summary = Backfill::new(api, Some(store.clone()), options.clone())
        .run()
        .await
        .unwrap();
    assert_eq!(
        summary.kinds.iter().map(|k| k.counts.skipped).sum::<u64>(),
        2
    );

    // A refused key, logged the way the Lambda runtime logs a failed invocation.
    let wrong = SecretKey::parse("sk_test_WrongKeyWrongKeyWrongKey").unwrap();
    let err = Backfill::new(
        ClerkApi::new(base, wrong, policy).unwrap(),
        Some(store),
        Options {
            kinds: vec![Kind::Users],
            ..options
        },
    )
    .run()
    .await
    .unwrap_err();
    tracing::error!(error = %err, debug = ?err, "backfill failed");

    let text = capture.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let messages: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    // The lines an operator needs are there…
    for expected in [
        "backfill started a kind",
        "backfill progress",
        "backfill finished a kind",
        "backfill finished",
        "rate-limited by Clerk (429); waiting, then asking again",
        "Clerk API request failed; retrying",
        "skipped an object the webhook path would refuse",
        "backfill failed",
    ] {
        assert!(
            messages.contains(&expected),
            "no {expected:?} line in:\n{text}"
        );
    }
    let skipped = lines
        .iter()
        .find(|l| l["fields"]["id"] == user_id(4).as_str())
        .expect("the skipped user is named by id");
    assert!(skipped["fields"]["reason"]
        .as_str()
        .unwrap()
        .contains("updated_at"));

    // …and nothing secret or personal is.
    let lower = text.to_lowercase();
    for forbidden in [
        KEY,
        KEY.trim_start_matches("sk_test_"),
        "WrongKeyWrongKey",
        "bearer",
        "example.org",
        "lovelace",
        "+1555",
        "cus_",
        "acme",
        "img.clerk.com",
    ] {
        if let Some(line) = lower
            .lines()
            .find(|l| l.contains(&forbidden.to_lowercase()))
        {
            panic!(
                "a log line contains {forbidden:?}: {}",
                &line[..line.len().min(600)]
            );
        }
    }
}
