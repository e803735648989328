//! Sync on demand (`clerk_webhooks::sync`) against DynamoDB Local and the Backend API
//! stand-in: a miss is fetched and written through the planner's guards, a hit asks Clerk
//! nothing, a tombstone stays one, a 404 writes nothing, concurrent callers share one request,
//! a rate limit is waited out within the budget; a sync and a webhook for the same user end
//! with the newer version; a user synced before its `user.created` is welcomed once; and the
//! `clerk-webhooks-sync` binary under the Lambda Runtime API stand-in.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use clerk_webhooks::clerk_api::{ApiBase, ApiError, ClerkApi, RetryPolicy, SecretKey};
use clerk_webhooks::read::Reader;
use clerk_webhooks::sync::function::{invoke, Failure};
use clerk_webhooks::sync::{Answer, SyncError, Syncer};
use serde_json::{json, Value};

use crate::helpers::fake_clerk::{self, FakeClerk, Reply, KEY};
use crate::helpers::logs::audit_dir;
use crate::helpers::notify::NotifyApp;
use crate::helpers::runtime_api::{as_lambda, next_answers, runtime_api};
use crate::helpers::template::{filter_matches, Template};
use crate::helpers::*;

fn api(fake: &FakeClerk) -> ClerkApi {
    let policy = RetryPolicy {
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    ClerkApi::new(
        ApiBase::parse(&fake.url).unwrap(),
        SecretKey::parse(KEY).unwrap(),
        policy,
    )
    .unwrap()
}

/// The sync's code on the app's table, its calls recorded as the sync function's.
fn syncer(app: &TestApp, fake: &FakeClerk) -> Syncer {
    Syncer::new(app.sync_store(), api(fake))
}

/// Requests the stand-in saw for one path.
fn requests(fake: &FakeClerk, path: &str) -> Vec<u16> {
    fake.seen()
        .into_iter()
        .filter(|seen| seen.path == path)
        .map(|seen| seen.status)
        .collect()
}

fn user_path(id: &str) -> String {
    format!("/v1/users/{id}")
}

#[tokio::test]
async fn a_miss_is_synced_and_then_a_hit_asks_clerk_nothing() {
    let app = TestApp::spawn().await;
    let fake = FakeClerk::start(fake_clerk::Data::generate(2, 1, 2)).await;
    let syncer = syncer(&app, &fake);
    let id = fake_clerk::user_id(0);

    let answer = syncer.user_or_sync(&id).await.unwrap();
    assert_eq!(answer.status(), "synced");
    let user = answer.object().unwrap();
    assert_eq!(user.id, id);
    assert_eq!(user.source.as_deref(), Some("sync"));
    let data: Value = clerk_webhooks::read::Record::data_as(&user).unwrap();
    assert_eq!(data["private_metadata"]["stripe_customer"], "cus_0");
    let item = app.get(&format!("USER#{id}"), "PROFILE").await.unwrap();
    assert_eq!(s(&item, "source"), "sync");
    assert_eq!(requests(&fake, &user_path(&id)), [200]);

    let again = syncer.user_or_sync(&id).await.unwrap();
    assert_eq!(again.status(), "found");
    assert_eq!(
        requests(&fake, &user_path(&id)),
        [200],
        "a hit asks Clerk nothing"
    );

    // An organization and a membership the same way; the membership is then a member.
    let org_id = fake_clerk::org_id(0);
    assert_eq!(
        syncer.organization_or_sync(&org_id).await.unwrap().status(),
        "synced"
    );
    let membership = syncer.membership_or_sync(&org_id, &id).await.unwrap();
    assert_eq!(membership.status(), "synced");
    let reader = Reader::new(local_client(), &app.table);
    let members = reader.members(&org_id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user_id, id);
    // No event record: a sync is not a delivery.
    assert!(app.scan().await.iter().all(|i| s(i, "entity") != "event"));
}

#[tokio::test]
async fn a_tombstoned_user_is_deleted_and_stays_a_tombstone_whatever_clerk_returns() {
    let app = TestApp::spawn().await;
    let fake = FakeClerk::start(fake_clerk::Data::generate(1, 0, 0)).await;
    let syncer = syncer(&app, &fake);
    let id = fake_clerk::user_id(0);
    // Deleted by a webhook, while Clerk (a stale replica, a bug) still returns the user.
    let now = now_ms();
    assert_eq!(
        app.apply("user.deleted", now, deleted("user", &id)).await,
        "applied"
    );
    let before = app.get(&format!("USER#{id}"), "PROFILE").await.unwrap();

    let answer = syncer.user_or_sync(&id).await.unwrap();
    assert_eq!(answer.status(), "deleted");
    assert!(
        requests(&fake, &user_path(&id)).is_empty(),
        "no need to ask"
    );
    let refreshed = syncer.sync_user(&id).await.unwrap();
    assert_eq!(refreshed.status(), "deleted");
    assert_eq!(requests(&fake, &user_path(&id)), [200], "refresh asks");
    assert_eq!(
        app.get(&format!("USER#{id}"), "PROFILE").await.unwrap(),
        before,
        "still the same tombstone"
    );
}

#[tokio::test]
async fn a_404_writes_nothing_and_says_so() {
    let app = TestApp::spawn().await;
    let fake = FakeClerk::start(fake_clerk::Data::default()).await;
    let syncer = syncer(&app, &fake);
    assert_eq!(
        syncer.user_or_sync("user_nobody").await.unwrap().status(),
        "not_found"
    );
    assert_eq!(
        syncer
            .organization_or_sync("org_nobody")
            .await
            .unwrap()
            .status(),
        "not_found"
    );
    assert_eq!(
        syncer
            .membership_or_sync("org_nobody", "user_nobody")
            .await
            .unwrap()
            .status(),
        "not_found"
    );
    assert!(app.scan().await.is_empty(), "nothing written");
    assert_eq!(requests(&fake, &user_path("user_nobody")), [404]);
}

#[tokio::test]
async fn a_newer_webhook_after_a_sync_applies_and_an_older_one_is_stale() {
    let app = TestApp::spawn().await;
    let fake = FakeClerk::start(fake_clerk::Data::generate(1, 0, 0)).await;
    let syncer = syncer(&app, &fake);
    let object = fake.data().users[0].clone();
    let id = object["id"].as_str().unwrap().to_owned();
    let version = object["updated_at"].as_i64().unwrap();
    assert_eq!(syncer.user_or_sync(&id).await.unwrap().status(), "synced");

    let at = |updated_at: i64| {
        let mut data = object.clone();
        data["updated_at"] = json!(updated_at);
        data
    };
    assert_eq!(
        app.apply("user.updated", version, at(version)).await,
        "stale"
    );
    assert_eq!(
        app.apply("user.updated", version - 10, at(version - 10))
            .await,
        "stale"
    );
    assert_eq!(
        app.apply("user.updated", version + 10, at(version + 10))
            .await,
        "applied"
    );
    let item = app.get(&format!("USER#{id}"), "PROFILE").await.unwrap();
    assert_eq!(
        (n(&item, "version"), s(&item, "source")),
        (version + 10, "webhook".into())
    );
    // A refresh now finds Clerk's (older) copy stale: the table keeps the webhook's.
    assert_eq!(syncer.sync_user(&id).await.unwrap().status(), "found");
    let item = app.get(&format!("USER#{id}"), "PROFILE").await.unwrap();
    assert_eq!(n(&item, "version"), version + 10);
}

#[tokio::test]
async fn a_sync_racing_a_webhook_for_the_same_user_ends_with_the_newer_version() {
    let app = TestApp::spawn().await;
    let fake = FakeClerk::start(fake_clerk::Data::generate(24, 0, 0)).await;
    let syncer = syncer(&app, &fake);
    for (i, object) in fake.data().users.into_iter().enumerate() {
        let id = object["id"].as_str().unwrap().to_owned();
        let clerks = object["updated_at"].as_i64().unwrap();
        // Half the webhooks carry a newer version than Clerk's answer, half an older one.
        let webhooks = if i % 2 == 0 { clerks + 5 } else { clerks - 5 };
        let mut data = object.clone();
        data["updated_at"] = json!(webhooks);
        let (synced, delivered) = tokio::join!(
            syncer.sync_user(&id),
            app.apply("user.updated", webhooks, data)
        );
        synced.unwrap();
        assert!(["applied", "stale"].contains(&delivered.as_str()));
        let item = app.get(&format!("USER#{id}"), "PROFILE").await.unwrap();
        assert_eq!(n(&item, "version"), clerks.max(webhooks), "round {i}");
    }
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_within_the_budget_and_refused_past_it() {
    let app = TestApp::spawn().await;
    let fake = FakeClerk::start(fake_clerk::Data::generate(2, 0, 0)).await;
    let first = fake_clerk::user_id(0);
    fake.inject(&user_path(&first), 1, Reply::TooManyRequests(Some(1)), 1);
    let syncer = syncer(&app, &fake).with_budget(Duration::from_secs(5));
    assert_eq!(
        syncer.user_or_sync(&first).await.unwrap().status(),
        "synced"
    );
    assert_eq!(requests(&fake, &user_path(&first)), [429, 200]);

    // Clerk asks for 30 s and the caller has 2: the answer is at once, with Clerk's wait.
    let second = fake_clerk::user_id(1);
    fake.inject(&user_path(&second), 1, Reply::TooManyRequests(Some(30)), 2);
    let syncer = syncer_with_budget(&app, &fake, Duration::from_secs(2));
    let started = std::time::Instant::now();
    let error = syncer.user_or_sync(&second).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no sleeping past the budget"
    );
    assert!(
        matches!(
            &*error,
            SyncError::Api(ApiError::OutOfTime { retry_after: Some(wait), .. }) if *wait == Duration::from_secs(30)
        ),
        "{error}"
    );
    let failure = invoke(&syncer, json!({"user_id": second}))
        .await
        .unwrap_err();
    assert_eq!(failure.error_type(), "RateLimited");
    assert!(matches!(failure, Failure::RateLimited { .. }));
    assert!(app
        .get(&format!("USER#{second}"), "PROFILE")
        .await
        .is_none());
}

fn syncer_with_budget(app: &TestApp, fake: &FakeClerk, budget: Duration) -> Syncer {
    syncer(app, fake).with_budget(budget)
}

#[tokio::test]
async fn sixteen_concurrent_calls_for_one_missing_id_make_one_request() {
    let app = TestApp::spawn().await;
    let fake = FakeClerk::start(fake_clerk::Data::generate(1, 0, 0)).await;
    let id = fake_clerk::user_id(0);
    // A slow answer keeps the first request in the air while the others arrive.
    fake.inject(
        &user_path(&id),
        1,
        Reply::Slow(Duration::from_millis(300)),
        1,
    );
    let syncer = Arc::new(syncer(&app, &fake));
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let (syncer, id) = (Arc::clone(&syncer), id.clone());
            tokio::spawn(async move { syncer.user_or_sync(&id).await })
        })
        .collect();
    for call in calls {
        let answer = call.await.unwrap().unwrap();
        assert!(matches!(answer, Answer::Synced(_) | Answer::Found(_)));
    }
    assert_eq!(requests(&fake, &user_path(&id)), [200]);
}

#[tokio::test]
async fn a_user_synced_on_demand_then_delivered_by_webhook_is_welcomed_once() {
    let n = NotifyApp::spawn("user.created").await;
    let id = "user_2SyNcOnDeMaNd000000000001";
    let created = now_ms() - 60_000;
    let mut object = user(id, created, "Lovelace");
    object["created_at"] = json!(created);
    let fake = FakeClerk::start(fake_clerk::Data::default()).await;
    fake.edit(|d| d.users.push(object.clone()));
    let syncer = syncer(&n.app, &fake);
    // The app asks before the webhook lands.
    assert_eq!(syncer.user_or_sync(id).await.unwrap().status(), "synced");
    // Then user.created arrives with the same version: nothing to write.
    assert_eq!(
        n.app.apply("user.created", created + 5, object).await,
        "stale"
    );
    // The deployed notifier's event filter lets the sync's record through.
    let filters = Template::load().notify_filters();
    let records = n.records().await;
    let passed = records
        .iter()
        .filter(|r| filters.iter().any(|f| filter_matches(f, Some(r))))
        .count();
    assert_eq!(passed, 1, "the synced user's INSERT, and nothing else");
    n.notify_all().await;
    n.notify_all().await;
    let emails = n.resend.accepted();
    assert_eq!(emails.len(), 1, "one welcome email");
    assert_eq!(emails[0]["to"][0], json!(format!("Ada.{id}@Example.org")));
}

/// The binary's output file: in the audit folder when there is one, else a temporary file.
fn log_path(name: &str) -> PathBuf {
    let file = format!("sync-binary-{name}-{}.log", std::process::id());
    audit_dir().unwrap_or_else(std::env::temp_dir).join(file)
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_sync_function_answers_each_invocation_under_the_runtime_api() {
    let app = TestApp::spawn().await;
    let fake = FakeClerk::start(fake_clerk::Data::generate(2, 1, 2)).await;
    let (user, org) = (fake_clerk::user_id(0), fake_clerk::org_id(0));
    let invocations = vec![
        (json!({"user_id": user}), 30),
        (json!({"user_id": user}), 30),
        (
            json!({"organization_id": org, "user_id": user, "refresh": true}),
            30,
        ),
        (json!({"user_id": "user_nobody"}), 30),
        (json!({"user_id": "ada@example.org"}), 30),
    ];
    let (runtime, mut answers) = runtime_api(invocations).await;
    let log = log_path("lambda");
    let file = std::fs::File::create(&log).unwrap();
    let _function = Running(
        as_lambda(
            &mut local_binary(env!("CARGO_BIN_EXE_clerk-webhooks-sync"), &app.table),
            &runtime,
            "sync",
        )
        .env("CLERK_SECRET_KEY", KEY)
        .env("CLERK_API_URL", &fake.url)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .stdin(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let received = next_answers(&mut answers, 5).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let status = |i: usize| received[i].1["status"].as_str().unwrap_or("").to_owned();
    assert_eq!(
        (0..4).map(status).collect::<Vec<_>>(),
        ["synced", "found", "synced", "not_found"],
        "{text}"
    );
    assert_eq!(received[0].1["item"]["id"], json!(user));
    assert_eq!(
        received[0].1["item"]["data"]["id"],
        json!(user),
        "data decoded"
    );
    assert_eq!(received[2].1["item"]["org_id"], json!(org));
    assert_eq!(received[3].1["item"], Value::Null);
    assert_eq!(received[4].0, "error");
    assert_eq!(received[4].1["errorType"], "BadRequest");
    assert!(text.contains("answered"), "{text}");
    for secret in [KEY, "Lovelace", "Example.org", "example.org"] {
        assert!(!text.contains(secret), "{secret} in the log: {text}");
    }
    if audit_dir().is_none() {
        let _ = std::fs::remove_file(&log);
    }
}

// Multi-threaded: the binary runs to completion on this thread while the stand-in answers it
// on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_syncs_a_miss_with_sync() {
    let app = TestApp::spawn().await;
    let fake = FakeClerk::start(fake_clerk::Data::generate(1, 0, 0)).await;
    let id = fake_clerk::user_id(0);
    let log = audit_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("get-binary-{}.log", std::process::id()));
    let get = |args: &[&str]| {
        local_binary(env!("CARGO_BIN_EXE_clerk-webhooks-get"), &app.table)
            .env("CLERK_SECRET_KEY", KEY)
            .env("CLERK_API_URL", &fake.url)
            .env("RUST_LOG", "debug")
            .args(args)
            .stderr(std::fs::File::create(&log).unwrap())
            .output()
            .unwrap()
    };
    // Without --sync a miss is a miss; with it, the user is fetched, written and printed.
    assert_eq!(get(&["user", &id]).status.code(), Some(1));
    let out = get(&["--sync", "user", &id]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["id"], json!(id));
    assert_eq!(printed["source"], "sync");
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(stderr.contains("synced"), "{stderr}");
    assert!(
        !stderr.contains(KEY) && !stderr.contains("Example.org"),
        "{stderr}"
    );
    assert!(app.get(&format!("USER#{id}"), "PROFILE").await.is_some());
    // --sync needs an id.
    assert_eq!(
        get(&["--sync", "user", "--email", "a@b.c"]).status.code(),
        Some(2)
    );
    if audit_dir().is_none() {
        let _ = std::fs::remove_file(&log);
    }
}
