//! The backfill against a fake Clerk Backend API on loopback (tests/it/helpers/fake_clerk.rs) and
//! DynamoDB Local: every object lands, webhooks and tombstones win, a crash resumes where it
//! stopped, and rate limits, server errors and slow pages are ridden out.

use std::time::{Duration, Instant};

use crate::helpers::fake_clerk::{
    self, email, org_id, user_id, Data, FakeClerk, Reply, KEY, MEMBERSHIPS, ORGANIZATIONS, USERS,
    USER_COUNT,
};
use crate::helpers::*;
use aws_sdk_dynamodb::types::AttributeValue;
use clerk_webhooks::backfill::options::Options;
use clerk_webhooks::backfill::progress::Display;
use clerk_webhooks::backfill::{Backfill, BackfillError, Kind, Summary};
use clerk_webhooks::clerk_api::{ApiBase, ApiError, ClerkApi, RetryPolicy, SecretKey};
use serde_json::{json, Value};

mod reconcile;

/// Short back-off, so failures cost milliseconds; 5 s is far above a loopback answer even on
/// a busy machine, so nothing times out unless a test makes it.
fn policy() -> RetryPolicy {
    RetryPolicy {
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        max_attempts: 4,
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(100),
        ..RetryPolicy::default()
    }
}

fn options(kinds: &[Kind]) -> Options {
    Options {
        kinds: kinds.to_vec(),
        page_size: 10,
        concurrency: 4,
        retry: policy(),
        write_backoff: Duration::from_millis(10),
        display: Display::Off,
        ..Options::default()
    }
}

fn api(fake: &FakeClerk, key: &str, policy: RetryPolicy) -> ClerkApi {
    ClerkApi::new(
        ApiBase::parse(&fake.url).unwrap(),
        SecretKey::parse(key).unwrap(),
        policy,
    )
    .unwrap()
}

async fn backfill(
    fake: &FakeClerk,
    app: &TestApp,
    options: Options,
) -> Result<Summary, BackfillError> {
    let api = api(fake, KEY, options.retry);
    Backfill::new(api, Some(app.backfill_store()), options)
        .run()
        .await
}

const ALL: [Kind; 3] = [Kind::Users, Kind::Organizations, Kind::Memberships];

fn kind(summary: &Summary, kind: Kind) -> &clerk_webhooks::backfill::KindSummary {
    summary.kinds.iter().find(|k| k.kind == kind).unwrap()
}

/// (seen, written, stale, skipped, pages) of one kind.
fn counts(summary: &Summary, k: Kind) -> (u64, u64, u64, u64, u64) {
    let k = kind(summary, k);
    let c = k.counts;
    (c.seen, c.written, c.stale, c.skipped, c.pages)
}

fn entities(items: &[Item], entity: &str) -> Vec<Item> {
    items
        .iter()
        .filter(|i| s(i, "entity") == entity)
        .cloned()
        .collect()
}

/// The table without the checkpoints (whose `updated_at` moves on every run).
async fn entity_items(app: &TestApp) -> Vec<Item> {
    app.scan()
        .await
        .into_iter()
        .filter(|i| s(i, "pk") != "BACKFILL")
        .collect()
}

fn list_requests(fake: &FakeClerk, path: &str) -> Vec<fake_clerk::Seen> {
    fake.seen().into_iter().filter(|r| r.path == path).collect()
}

#[tokio::test]
async fn a_three_page_backfill_lands_every_object_once() {
    // 25 users, 12 organizations and 24 memberships in pages of 10: 3, 2 and 3 pages.
    let fake = FakeClerk::start(Data::generate(25, 12, 2)).await;
    let app = TestApp::spawn().await;

    let summary = backfill(&fake, &app, options(&ALL)).await.unwrap();
    assert!(summary.complete, "{summary}");
    assert_eq!(counts(&summary, Kind::Users), (25, 25, 0, 0, 3));
    assert_eq!(counts(&summary, Kind::Organizations), (12, 12, 0, 0, 2));
    assert_eq!(counts(&summary, Kind::Memberships), (24, 24, 0, 0, 3));
    assert_eq!(summary.written, 61);

    let items = app.scan().await;
    assert_eq!(entities(&items, "user").len(), 25);
    assert_eq!(entities(&items, "organization").len(), 12);
    assert_eq!(entities(&items, "membership").len(), 24);
    assert_eq!(entities(&items, "backfill_checkpoint").len(), 3);
    // The binding to the key's instance, recorded on this first run.
    assert_eq!(entities(&items, "instance").len(), 1);
    assert_eq!(
        items.len(),
        25 + 12 + 24 + 3 + 1,
        "no event records, nothing else"
    );
    for item in items
        .iter()
        .filter(|i| !["BACKFILL", "INSTANCE"].contains(&s(i, "pk").as_str()))
    {
        assert_eq!(s(item, "source"), "backfill");
        assert!(!item.contains_key("last_svix_id"));
        assert_eq!(
            n(item, "version"),
            n(item, "updated_at"),
            "versioned by updated_at"
        );
    }
    // The same item a user.created webhook makes: found by email, primary email first-class.
    let found = app
        .by_gsi1(&format!("EMAIL#{}", email(7).to_lowercase()))
        .await;
    assert_eq!(found.len(), 1);
    assert_eq!(s(&found[0], "pk"), format!("USER#{}", user_id(7)));
    assert_eq!(s(&found[0], "email"), email(7));
    let member = app
        .get(
            &format!("ORG#{}", org_id(3)),
            &format!("MEMBER#{}", user_id(6)),
        )
        .await
        .expect("org 3's first member is user 6");
    assert_eq!(s(&member, "role"), "org:member");

    // Users are paged with the cursor, oldest first; the others with offsets.
    let users = list_requests(&fake, USERS);
    let cursors: Vec<Option<&str>> = users
        .iter()
        .map(|r| r.query.get("starting_after").map(String::as_str))
        .collect();
    let (after_9, after_19) = (user_id(9), user_id(19));
    assert_eq!(
        cursors,
        [None, Some(after_9.as_str()), Some(after_19.as_str())]
    );
    assert!(users
        .iter()
        .all(|r| r.query["order_by"] == "created_at" && r.query["limit"] == "10"));
    let offsets: Vec<String> = list_requests(&fake, MEMBERSHIPS)
        .iter()
        .map(|r| r.query["offset"].clone())
        .collect();
    assert_eq!(offsets, ["0", "10", "20"]);
    assert!(
        fake.seen().iter().all(|r| r.status == 200),
        "all authorised"
    );

    // The checkpoints say where each list ended.
    let users_cp = app.get("BACKFILL", "users").await.unwrap();
    assert_eq!(s(&users_cp, "cursor"), user_id(24));
    assert_eq!(users_cp.get("complete"), Some(&AttributeValue::Bool(true)));
    assert_eq!((n(&users_cp, "pages"), n(&users_cp, "written")), (3, 25));
    let members_cp = app.get("BACKFILL", "memberships").await.unwrap();
    assert_eq!(n(&members_cp, "offset"), 24);

    // Running it again continues from the end: nothing new, nothing rewritten.
    let before = entity_items(&app).await;
    let again = backfill(&fake, &app, options(&ALL)).await.unwrap();
    assert_eq!(again.written, 0);
    assert_eq!(
        kind(&again, Kind::Users).started_at,
        format!("after {}", user_id(24))
    );
    assert_eq!(kind(&again, Kind::Organizations).started_at, "offset 12");
    assert_eq!(entity_items(&app).await, before);

    // --restart reads everything again: every copy is stale, the table is unchanged.
    let restart = backfill(
        &fake,
        &app,
        Options {
            restart: true,
            ..options(&ALL)
        },
    )
    .await
    .unwrap();
    assert_eq!(counts(&restart, Kind::Users), (25, 0, 25, 0, 3));
    assert_eq!(counts(&restart, Kind::Memberships), (24, 0, 24, 0, 3));
    assert_eq!(entity_items(&app).await, before);
}

#[tokio::test]
async fn webhooks_newer_than_the_copy_win_and_tombstones_stay() {
    // org 0: users 0, 1; org 1: users 2, 3; org 2: users 4, 5.
    let data = Data::generate(6, 3, 2);
    let app = TestApp::spawn().await;
    let updated = |v: &Value| v["updated_at"].as_i64().unwrap();

    // Before the backfill, webhooks have already written:
    // user 0, updated after the Backend API page was read;
    let mut newer = data.users[0].clone();
    newer["updated_at"] = json!(updated(&newer) + 10_000);
    newer["last_name"] = json!("Byron");
    assert_eq!(
        app.apply("user.updated", updated(&newer), newer.clone())
            .await,
        "applied"
    );
    // user 1 and organization 2, deleted after the page was read (the page still lists them);
    let deleted_at = updated(&data.users[1]) + 20_000;
    let user_1 = json!({"object": "user", "id": user_id(1), "deleted": true});
    assert_eq!(
        app.apply("user.deleted", deleted_at, user_1).await,
        "applied"
    );
    let org_2 = json!({"object": "organization", "id": org_id(2), "deleted": true});
    assert_eq!(
        app.apply("organization.deleted", deleted_at, org_2).await,
        "applied"
    );
    // user 2, at exactly the version the backfill will read.
    let same = data.users[2].clone();
    assert_eq!(
        app.apply("user.created", updated(&same), same).await,
        "applied"
    );

    let fake = FakeClerk::start(data.clone()).await;
    let summary = backfill(&fake, &app, options(&ALL)).await.unwrap();
    assert_eq!(counts(&summary, Kind::Users), (6, 3, 3, 0, 1));
    assert_eq!(counts(&summary, Kind::Organizations), (3, 2, 1, 0, 1));
    // Refused: user 1's membership (deleted user) and both of organization 2's.
    assert_eq!(counts(&summary, Kind::Memberships), (6, 3, 3, 0, 1));

    let user = |i: usize| {
        let app = &app;
        async move {
            app.get(&format!("USER#{}", user_id(i)), "PROFILE")
                .await
                .unwrap()
        }
    };
    let user_0 = user(0).await;
    assert_eq!(s(&user_0, "last_name"), "Byron", "the newer webhook stays");
    assert_eq!(s(&user_0, "source"), "webhook");
    let user_1 = user(1).await;
    assert_eq!(user_1.get("deleted"), Some(&AttributeValue::Bool(true)));
    assert!(
        !user_1.contains_key("data"),
        "the tombstone is not brought back"
    );
    assert_eq!(s(&user(2).await, "source"), "webhook", "a tie is stale");
    assert_eq!(s(&user(3).await, "source"), "backfill");
    let org_2 = app
        .get(&format!("ORG#{}", org_id(2)), "PROFILE")
        .await
        .unwrap();
    assert_eq!(org_2.get("deleted"), Some(&AttributeValue::Bool(true)));
    assert!(app
        .partition(&format!("ORG#{}", org_id(2)), "MEMBER#")
        .await
        .is_empty());
    let org_0_members = app
        .partition(&format!("ORG#{}", org_id(0)), "MEMBER#")
        .await;
    assert_eq!(org_0_members.len(), 1, "only user 0's: user 1 is deleted");
    assert_eq!(
        entities(&app.scan().await, "event").len(),
        4,
        "the four webhooks' records, none for the backfill"
    );

    // After the backfill, a later webhook overwrites a copy as it would any older version…
    let mut later = data.users[3].clone();
    later["updated_at"] = json!(updated(&later) + 60_000);
    later["first_name"] = json!("Augusta");
    assert_eq!(
        app.apply("user.updated", updated(&later), later).await,
        "applied"
    );
    let user_3 = user(3).await;
    assert_eq!(
        (
            s(&user_3, "first_name").as_str(),
            s(&user_3, "source").as_str()
        ),
        ("Augusta", "webhook")
    );
    let mut role = data.memberships[2].clone();
    role["updated_at"] = json!(updated(&role) + 60_000);
    role["role"] = json!("org:admin");
    assert_eq!(
        app.apply("organizationMembership.updated", updated(&role), role)
            .await,
        "applied"
    );
    // …and a replay of the version the copy holds is stale, as for any item.
    let replay = data.users[4].clone();
    assert_eq!(
        app.apply("user.created", updated(&replay), replay).await,
        "stale"
    );
}

#[tokio::test]
async fn a_crash_after_page_two_resumes_at_page_three() {
    let fake = FakeClerk::start(Data::generate(25, 0, 0)).await;
    let app = TestApp::spawn().await;
    // Page 3 never answers: the process is killed while waiting for it.
    fake.inject(USERS, 3, Reply::Hang, 1);
    let run = tokio::spawn({
        let api = api(&fake, KEY, policy());
        let store = app.backfill_store();
        let options = Options {
            retry: RetryPolicy {
                request_timeout: Duration::from_secs(60),
                ..policy()
            },
            ..options(&[Kind::Users])
        };
        async move { Backfill::new(api, Some(store), options).run().await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let checkpoint = app.get("BACKFILL", "users").await;
        if checkpoint.is_some_and(|c| n(&c, "pages") == 2) {
            break;
        }
        assert!(Instant::now() < deadline, "page 2 was never checkpointed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.abort(); // kill -9: no cleanup code runs
    assert!(run.await.unwrap_err().is_cancelled());
    assert!(list_requests(&fake, USERS)
        .iter()
        .any(|r| r.page == Some(3)));
    assert_eq!(entities(&app.scan().await, "user").len(), 20);

    fake.clear_faults();
    fake.forget_seen();
    let summary = backfill(&fake, &app, options(&[Kind::Users]))
        .await
        .unwrap();
    let users = kind(&summary, Kind::Users);
    assert_eq!(users.started_at, format!("after {}", user_id(19)));
    assert_eq!(counts(&summary, Kind::Users), (5, 5, 0, 0, 1));
    let requests = list_requests(&fake, USERS);
    assert_eq!(requests.len(), 1, "pages 1 and 2 are not read again");
    assert_eq!(requests[0].page, Some(3));
    assert_eq!(requests[0].query["starting_after"], user_id(19));
    assert_eq!(entities(&app.scan().await, "user").len(), 25);
    let checkpoint = app.get("BACKFILL", "users").await.unwrap();
    assert_eq!((n(&checkpoint, "pages"), n(&checkpoint, "seen")), (3, 25));
}

#[tokio::test]
async fn a_run_that_gives_up_resumes_organizations_at_the_failed_page() {
    let fake = FakeClerk::start(Data::generate(0, 25, 0)).await;
    let app = TestApp::spawn().await;
    fake.inject(ORGANIZATIONS, 2, Reply::Status(500), 100);
    let err = backfill(&fake, &app, options(&[Kind::Organizations]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            BackfillError::Api(ApiError::GaveUp { attempts: 4, .. })
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "GET /v1/organizations still failing after 4 attempts: answered 500"
    );
    let checkpoint = app.get("BACKFILL", "organizations").await.unwrap();
    assert_eq!(n(&checkpoint, "offset"), 10);

    fake.clear_faults();
    let summary = backfill(&fake, &app, options(&[Kind::Organizations]))
        .await
        .unwrap();
    assert_eq!(kind(&summary, Kind::Organizations).started_at, "offset 10");
    assert_eq!(counts(&summary, Kind::Organizations), (15, 15, 0, 0, 2));
    assert_eq!(entities(&app.scan().await, "organization").len(), 25);
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_not_counted_as_a_failure() {
    let fake = FakeClerk::start(Data::generate(25, 0, 0)).await;
    let app = TestApp::spawn().await;
    fake.inject(USERS, 2, Reply::TooManyRequests(Some(1)), 1);
    let started = Instant::now();
    let summary = backfill(&fake, &app, options(&[Kind::Users]))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    let users = kind(&summary, Kind::Users);
    assert_eq!((users.rate_limited, users.retries), (1, 0));
    assert_eq!(counts(&summary, Kind::Users), (25, 25, 0, 0, 3));
    let page_2: Vec<u16> = list_requests(&fake, USERS)
        .iter()
        .filter(|r| r.page == Some(2))
        .map(|r| r.status)
        .collect();
    assert_eq!(page_2, [429, 200]);
}

#[tokio::test]
async fn server_errors_and_slow_pages_are_retried_with_back_off() {
    let fake = FakeClerk::start(Data::generate(15, 12, 1)).await;
    let app = TestApp::spawn().await;
    fake.inject(ORGANIZATIONS, 1, Reply::Status(503), 2);
    fake.inject(USERS, 2, Reply::Slow(Duration::from_secs(6)), 1);
    fake.inject(MEMBERSHIPS, 2, Reply::Status(502), 1);
    let summary = backfill(
        &fake,
        &app,
        Options {
            retry: RetryPolicy {
                request_timeout: Duration::from_millis(2_000),
                ..policy()
            },
            ..options(&ALL)
        },
    )
    .await
    .unwrap();
    assert!(summary.complete);
    let retries: Vec<u64> = summary.kinds.iter().map(|k| k.retries).collect();
    assert_eq!(retries, [1, 2, 1], "one timeout, two 503s, one 502");
    assert_eq!(summary.written, 15 + 12 + 12);
    assert!(summary.kinds.iter().all(|k| k.rate_limited == 0));
}

#[tokio::test]
async fn a_refused_key_stops_at_once_without_retrying() {
    let fake = FakeClerk::start(Data::generate(5, 0, 0)).await;
    let app = TestApp::spawn().await;
    let wrong = "sk_test_NotTheRightKeyAtAll000000";
    let err = Backfill::new(
        api(&fake, wrong, policy()),
        Some(app.backfill_store()),
        options(&ALL),
    )
    .run()
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            BackfillError::Api(ApiError::Unauthorized { status: 401 })
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("NotTheRightKey"));
    // The key's instance is asked first, before anything is written: that stops the run.
    let paths: Vec<String> = fake.seen().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, [fake_clerk::INSTANCE_PATH], "no retries");
    assert!(app.scan().await.is_empty());
}

#[tokio::test]
async fn a_dry_run_counts_and_writes_nothing() {
    let mut data = Data::generate(12, 2, 2);
    data.users[3].as_object_mut().unwrap().remove("updated_at");
    let fake = FakeClerk::start(data).await;
    let app = TestApp::spawn().await;
    let summary = backfill(
        &fake,
        &app,
        Options {
            dry_run: true,
            ..options(&ALL)
        },
    )
    .await
    .unwrap();
    assert!(summary.dry_run && summary.complete);
    assert_eq!(counts(&summary, Kind::Users), (12, 11, 0, 1, 2));
    assert_eq!(counts(&summary, Kind::Memberships), (4, 4, 0, 0, 1));
    assert!(app.scan().await.is_empty(), "not even a checkpoint");
}

/// The user count only feeds the progress display: whatever it answers, after the usual
/// retries, the copy goes on without a total and lands everything (issue 11).
#[tokio::test]
async fn a_failing_user_count_costs_the_total_not_the_copy() {
    for status in [404, 500] {
        let data = Data::generate(25, 3, 6);
        let objects = data.users.len() + data.organizations.len() + data.memberships.len();
        let fake = FakeClerk::start(data).await;
        // More failures than the client's attempts: the count never succeeds.
        fake.inject(USER_COUNT, 1, Reply::Status(status), 100);
        let app = TestApp::spawn().await;
        let summary = backfill(&fake, &app, options(&ALL))
            .await
            .unwrap_or_else(|e| panic!("count {status}: {e}"));
        assert!(summary.complete, "count {status}");
        assert_eq!(summary.written as usize, objects, "count {status}");
        let counts = list_requests(&fake, USER_COUNT);
        let expected = if status == 404 {
            1
        } else {
            policy().max_attempts as usize
        };
        assert_eq!(
            counts.len(),
            expected,
            "count {status}: 404 is not retried, 500 is"
        );
    }
}

/// (seen, written, stale, skipped) of one kind.
fn copied(summary: &Summary, k: Kind) -> (u64, u64, u64, u64) {
    let (seen, written, stale, skipped, _) = counts(summary, k);
    (seen, written, stale, skipped)
}

/// Text nobody can compress much (DynamoDB refuses 600 KB of it even gzip-compressed).
fn noise(bytes: usize) -> String {
    let mut rng = crate::helpers::rng::Rng::new(600);
    (0..bytes)
        .map(|_| char::from(b'0' + rng.below(75) as u8))
        .filter(|c| *c != '\\')
        .collect()
}

/// Nested lists, `levels` deep, around `leaf`.
fn nested(levels: usize, leaf: Value) -> Value {
    (0..levels).fold(leaf, |inner, _| json!([inner]))
}

/// An end user's metadata Clerk accepts and DynamoDB cannot hold as a native value, on one
/// user among hundreds: it is copied like any other, `data` exactly. A user whose `data` is
/// over 400 KB even compressed (which Clerk's own limits never produce) is skipped, named in
/// the summary, and the run goes on; run again, it finishes again.
#[tokio::test]
async fn one_hostile_user_never_stops_a_backfill_or_a_reconcile() {
    let mut data = Data::generate(250, 20, 3);
    let hostile =
        json!({"": {"x": 1}, "huge": 1e300, "tiny": -1e-200, "deep": nested(100, json!(1))});
    data.users[123]["unsafe_metadata"] = hostile.clone();
    data.users[123]["public_metadata"] = hostile.clone();
    data.users[200]["private_metadata"] = json!({ "blob": noise(600 * 1024) });
    let fake = FakeClerk::start(data).await;
    let expected = fake.data().users[123].clone();
    let app = TestApp::spawn().await;

    let summary = backfill(&fake, &app, options(&ALL)).await.unwrap();
    assert!(summary.complete, "{summary}");
    assert_eq!(copied(&summary, Kind::Users), (250, 249, 0, 1));
    assert_eq!(kind(&summary, Kind::Users).skipped_ids, [user_id(200)]);
    assert_eq!(copied(&summary, Kind::Organizations), (20, 20, 0, 0));
    assert_eq!(copied(&summary, Kind::Memberships), (60, 60, 0, 0));
    assert_eq!(summary.skipped(), 1);
    assert!(
        summary
            .to_string()
            .contains(&format!("users skipped: {}", user_id(200))),
        "{summary}"
    );
    let item = app
        .get(&format!("USER#{}", user_id(123)), "PROFILE")
        .await
        .expect("the hostile user is copied");
    let stored = clerk_webhooks::table::encoding::data_text(&item)
        .unwrap()
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&stored).unwrap(), expected);
    assert!(
        !item.contains_key("public_metadata"),
        "left out, kept in data"
    );
    assert_eq!(s(&item, "email"), email(123));
    assert!(app
        .get(&format!("USER#{}", user_id(200)), "PROFILE")
        .await
        .is_none());

    // From the start again: the same skip, and the run still finishes.
    let again = Options {
        restart: true,
        ..options(&ALL)
    };
    let summary = backfill(&fake, &app, again).await.unwrap();
    assert!(summary.complete, "{summary}");
    assert_eq!(copied(&summary, Kind::Users), (250, 0, 249, 1));
    // The reconcile lists the same users: it finishes too, naming the same one.
    let reconcile = Options {
        reconcile: true,
        ..options(&ALL)
    };
    let summary = backfill(&fake, &app, reconcile).await.unwrap();
    assert!(summary.complete, "{summary}");
    assert_eq!(kind(&summary, Kind::Users).skipped_ids, [user_id(200)]);
    let reconciled = kind(&summary, Kind::Users).reconcile.clone().unwrap();
    assert_eq!(reconciled.counts.tombstoned, 0, "nothing is gone");
}
