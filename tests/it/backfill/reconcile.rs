//! `clerk-webhooks-backfill --reconcile` against the fake Backend API, with users,
//! organizations and memberships deleted in Clerk but still live in DynamoDB Local; and the
//! table's binding to one Clerk instance, for the backfill and the webhook function.

use std::time::{Duration, Instant};

use clerk_webhooks::backfill::instance::WrongInstance;
use clerk_webhooks::backfill::{ReconcileCounts, ReconcileSummary};
use clerk_webhooks::clerk_api::RetryPolicy;
use clerk_webhooks::config::Config;
use clerk_webhooks::handler::Handler;
use lambda_http::http::StatusCode;
use serde_json::json;

use super::*;
use crate::helpers::logs::Capture;

fn reconcile_options(kinds: &[Kind]) -> Options {
    Options {
        reconcile: true,
        ..options(kinds)
    }
}

async fn reconcile(fake: &FakeClerk, app: &TestApp) -> Result<Summary, BackfillError> {
    backfill(fake, app, reconcile_options(&ALL)).await
}

fn numbers(summary: &Summary, k: Kind) -> ReconcileCounts {
    reconciled(summary, k).counts
}

fn reconciled(summary: &Summary, k: Kind) -> ReconcileSummary {
    kind(summary, k)
        .reconcile
        .clone()
        .expect("a reconcile summary")
}

/// The live and deleted objects of the table, without bookkeeping (checkpoints, the
/// reconcile's records, the binding): `(pk, sk, deleted, source)`.
async fn objects(app: &TestApp) -> Vec<(String, String, bool, String)> {
    app.scan()
        .await
        .iter()
        .filter(|i| !["BACKFILL", "RECONCILE", "INSTANCE"].contains(&s(i, "pk").as_str()))
        .filter(|i| !s(i, "pk").starts_with("RECONCILE#"))
        .map(|i| {
            let deleted = matches!(i.get("deleted"), Some(AttributeValue::Bool(true)));
            (s(i, "pk"), s(i, "sk"), deleted, s(i, "source"))
        })
        .collect()
}

fn live(objects: &[(String, String, bool, String)]) -> Vec<(String, String)> {
    objects
        .iter()
        .filter(|o| !o.2)
        .map(|o| (o.0.clone(), o.1.clone()))
        .collect()
}

/// 20 users, 2 organizations with 4 members each, all copied by a first backfill; then
/// deleted in Clerk: user 5 (a member of organization 1, with a session in the table), user
/// 11, organization 0 (and with it its memberships), and user 7's membership of
/// organization 1. Returns the fake, the app, and the table after the first backfill.
async fn ghosts() -> (FakeClerk, TestApp) {
    let fake = FakeClerk::start(Data::generate(20, 2, 4)).await;
    let app = TestApp::spawn().await;
    backfill(&fake, &app, options(&ALL)).await.unwrap();
    let session = json!({"object": "session", "id": "sess_2ghost5", "user_id": user_id(5),
                         "client_id": "client_1", "status": "active",
                         "created_at": fake_clerk::T0, "updated_at": fake_clerk::T0,
                         "expire_at": 4_102_444_800_000_i64, "abandon_at": 4_102_444_800_000_i64});
    assert_eq!(
        app.apply("session.created", fake_clerk::T0, session).await,
        "applied"
    );
    fake.edit(|data| {
        data.delete_user(&user_id(5));
        data.delete_user(&user_id(11));
        data.delete_organization(&org_id(0));
        data.delete_membership(&org_id(1), &user_id(7));
    });
    (fake, app)
}

#[tokio::test]
async fn ghosts_are_tombstoned_and_cascaded_and_nothing_else_changes() {
    let (fake, app) = ghosts().await;
    // Written by a webhook after the reconcile starts (its version is later than the run):
    // a user Clerk's listing cannot know yet. Never a candidate.
    let later = user(&user_id(99), 4_102_444_800_000, "Newcomer");
    assert_eq!(
        app.apply("user.created", 4_102_444_800_000, later).await,
        "applied"
    );
    let before = objects(&app).await;
    let (capture, _guard) = Capture::install();

    let summary = reconcile(&fake, &app).await.unwrap();
    assert!(summary.complete && summary.reconcile);
    let users = numbers(&summary, Kind::Users);
    assert_eq!(
        (
            users.live,
            users.candidates,
            users.confirmed_gone,
            users.tombstoned
        ),
        (21, 2, 2, 2)
    );
    let orgs = numbers(&summary, Kind::Organizations);
    assert_eq!((orgs.candidates, orgs.tombstoned), (1, 1));
    // Organization 0's members and user 5's and 11's went with their cascades, so only user
    // 7's membership of organization 1 is left to the memberships' sweep.
    let members = numbers(&summary, Kind::Memberships);
    assert_eq!(
        (
            members.candidates,
            members.confirmed_gone,
            members.tombstoned
        ),
        (1, 1, 1)
    );
    assert_eq!(members.refused + users.refused + orgs.refused, 0);

    let after = objects(&app).await;
    let tombstone = |pk: String, sk: &str| (pk, sk.to_owned(), true, "reconcile".to_owned());
    for gone in [
        tombstone(format!("USER#{}", user_id(5)), "PROFILE"),
        tombstone(format!("USER#{}", user_id(11)), "PROFILE"),
        tombstone(format!("ORG#{}", org_id(0)), "PROFILE"),
        tombstone(
            format!("ORG#{}", org_id(1)),
            &format!("MEMBER#{}", user_id(7)),
        ),
    ] {
        assert!(after.contains(&gone), "no tombstone {gone:?}");
    }
    // Cascaded: the ghost user's session and memberships, the ghost organization's members.
    let still_live = live(&after);
    assert!(!still_live
        .iter()
        .any(|(pk, _)| pk == &format!("ORG#{}", org_id(0))));
    assert!(!still_live
        .iter()
        .any(|(pk, sk)| pk == &format!("USER#{}", user_id(5)) && sk.starts_with("SESSION#")));
    assert!(!still_live
        .iter()
        .any(|(_, sk)| sk == &format!("MEMBER#{}", user_id(5))));
    // Everything else is as it was: every live object that is not a ghost's stays live.
    let ghostly = |(pk, sk): &(String, String)| {
        pk.contains(&user_id(5))
            || pk.contains(&user_id(11))
            || pk.contains(&org_id(0))
            || sk.contains(&user_id(5))
            || sk.contains(&user_id(11))
            || (pk == &format!("ORG#{}", org_id(1)) && sk == &format!("MEMBER#{}", user_id(7)))
    };
    let expected: Vec<(String, String)> =
        live(&before).into_iter().filter(|o| !ghostly(o)).collect();
    assert_eq!(still_live, expected);
    assert!(still_live.contains(&(format!("USER#{}", user_id(99)), "PROFILE".to_owned())));

    // A second run changes nothing.
    let second = reconcile(&fake, &app).await.unwrap();
    assert_eq!(numbers(&second, Kind::Users).tombstoned, 0);
    assert_eq!(numbers(&second, Kind::Users).candidates, 0);
    assert_eq!(objects(&app).await, after);
    // The key never reaches a log line.
    assert!(!capture.text().contains(KEY.trim_start_matches("sk_test_")));
    assert!(capture
        .text()
        .contains("tombstoned an object Clerk confirmed gone"));
}

#[tokio::test]
async fn a_failed_listing_page_tombstones_nothing_of_its_kind() {
    let (fake, app) = ghosts().await;
    let before = objects(&app).await;
    // The users' listing fails for good on page 2 (after its retries).
    fake.inject(USERS, 2, Reply::Status(500), 100);
    let err = reconcile(&fake, &app).await.unwrap_err();
    assert!(
        matches!(err, BackfillError::Api(ApiError::GaveUp { .. })),
        "{err}"
    );
    let after = objects(&app).await;
    assert!(
        after.iter().all(|o| !o.2 || before.contains(o)),
        "no new tombstone"
    );
    assert_eq!(live(&after), live(&before));
    assert!(
        fake.seen()
            .iter()
            .all(|r| !r.path.starts_with("/v1/users/user_")),
        "no lookups"
    );
}

#[tokio::test]
async fn a_candidate_clerk_still_has_is_copied_not_deleted() {
    let fake = FakeClerk::start(Data::generate(12, 0, 0)).await;
    let app = TestApp::spawn().await;
    backfill(&fake, &app, options(&[Kind::Users]))
        .await
        .unwrap();
    // The listing misses user 3 (as a shifting page could), who changed meanwhile.
    fake.edit(|data| {
        data.unlisted.insert(user_id(3));
        data.users[3]["updated_at"] = json!(fake_clerk::T0 + 999_999);
        data.users[3]["last_name"] = json!("Byron");
    });
    let summary = backfill(&fake, &app, reconcile_options(&[Kind::Users]))
        .await
        .unwrap();
    let users = numbers(&summary, Kind::Users);
    assert_eq!(
        (
            users.candidates,
            users.found,
            users.confirmed_gone,
            users.tombstoned
        ),
        (1, 1, 0, 0)
    );
    let item = app
        .get(&format!("USER#{}", user_id(3)), "PROFILE")
        .await
        .unwrap();
    assert_eq!(
        (s(&item, "last_name").as_str(), s(&item, "source").as_str()),
        ("Byron", "reconcile")
    );
    assert!(!item.contains_key("deleted"));
}

#[tokio::test]
async fn a_lookup_that_fails_deletes_nothing() {
    let fake = FakeClerk::start(Data::generate(12, 0, 0)).await;
    let app = TestApp::spawn().await;
    backfill(&fake, &app, options(&[Kind::Users]))
        .await
        .unwrap();
    fake.edit(|data| data.delete_user(&user_id(4)));
    fake.inject(
        &format!("/v1/users/{}", user_id(4)),
        1,
        Reply::Status(503),
        100,
    );
    let summary = backfill(&fake, &app, reconcile_options(&[Kind::Users]))
        .await
        .unwrap();
    let users = numbers(&summary, Kind::Users);
    assert_eq!(
        (users.candidates, users.unconfirmed, users.tombstoned),
        (1, 1, 0)
    );
    let item = app
        .get(&format!("USER#{}", user_id(4)), "PROFILE")
        .await
        .unwrap();
    assert!(!item.contains_key("deleted"));
}

#[tokio::test]
async fn deleting_thirty_percent_of_users_needs_the_flag() {
    let fake = FakeClerk::start(Data::generate(40, 0, 0)).await;
    let app = TestApp::spawn().await;
    backfill(&fake, &app, options(&[Kind::Users]))
        .await
        .unwrap();
    fake.edit(|data| (0..12).for_each(|i| data.delete_user(&user_id(i * 3))));
    let before = objects(&app).await;
    let summary = backfill(&fake, &app, reconcile_options(&[Kind::Users]))
        .await
        .unwrap();
    let users = numbers(&summary, Kind::Users);
    assert_eq!(
        (
            users.live,
            users.confirmed_gone,
            users.refused,
            users.tombstoned
        ),
        (40, 12, 12, 0)
    );
    assert!(
        summary
            .to_string()
            .contains("nothing tombstoned. Check, then run again with --allow-mass-delete"),
        "{summary}"
    );
    assert_eq!(objects(&app).await, before, "nothing deleted");

    let allowed = Options {
        allow_mass_delete: true,
        ..reconcile_options(&[Kind::Users])
    };
    let summary = backfill(&fake, &app, allowed).await.unwrap();
    assert_eq!(numbers(&summary, Kind::Users).tombstoned, 12);
    assert_eq!(live(&objects(&app).await).len(), 28);
}

#[tokio::test]
async fn a_dry_run_names_what_it_would_tombstone_and_writes_nothing() {
    let (fake, app) = ghosts().await;
    let before = app.scan().await;
    let summary = backfill(
        &fake,
        &app,
        Options {
            dry_run: true,
            ..reconcile_options(&ALL)
        },
    )
    .await
    .unwrap();
    let mut would = reconciled(&summary, Kind::Users).would_tombstone;
    would.sort();
    assert_eq!(would, [user_id(5), user_id(11)]);
    assert_eq!(
        reconciled(&summary, Kind::Organizations).would_tombstone,
        [org_id(0)]
    );
    assert!(summary
        .to_string()
        .contains(&format!("organizations: would tombstone 1: {}", org_id(0))));
    assert_eq!(app.scan().await, before, "not a write, not a checkpoint");
}

#[tokio::test]
async fn a_reconcile_interrupted_after_page_two_ends_with_the_uninterrupted_table() {
    let data = {
        let mut data = Data::generate(25, 0, 0);
        data.users.truncate(25);
        data
    };
    let fake = FakeClerk::start(data).await;
    let (whole, interrupted) = (TestApp::spawn().await, TestApp::spawn().await);
    for app in [&whole, &interrupted] {
        backfill(&fake, app, options(&[Kind::Users])).await.unwrap();
    }
    fake.edit(|data| {
        [2, 13, 24]
            .iter()
            .for_each(|i| data.delete_user(&user_id(*i)))
    });
    backfill(&fake, &whole, reconcile_options(&[Kind::Users]))
        .await
        .unwrap();

    // Page 3 never answers: the run is killed while waiting for it.
    fake.inject(USERS, 3, Reply::Hang, 1);
    let run = tokio::spawn({
        let api = api(
            &fake,
            KEY,
            RetryPolicy {
                request_timeout: Duration::from_secs(60),
                ..policy()
            },
        );
        let store = interrupted.backfill_store();
        let options = reconcile_options(&[Kind::Users]);
        async move { Backfill::new(api, Some(store), options).run().await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let checkpoint = interrupted.get("RECONCILE", "users").await;
        if checkpoint.is_some_and(|c| n(&c, "pages") == 2) {
            break;
        }
        assert!(Instant::now() < deadline, "page 2 was never checkpointed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    fake.clear_faults();
    let resumed = backfill(&fake, &interrupted, reconcile_options(&[Kind::Users]))
        .await
        .unwrap();
    // Pages of 10 without users 2 and 13: the second ends at user 21.
    assert_eq!(
        kind(&resumed, Kind::Users).started_at,
        format!("after {}", user_id(21))
    );
    assert_eq!(numbers(&resumed, Kind::Users).tombstoned, 3);
    assert_eq!(objects(&interrupted).await, objects(&whole).await);
}

#[tokio::test]
async fn the_scheduled_continuation_goes_on_with_an_unfinished_run_and_starts_none() {
    let (fake, app) = ghosts().await;
    let resume_only = || Options {
        resume_only: true,
        ..reconcile_options(&[Kind::Users])
    };
    fake.forget_seen();
    let idle = backfill(&fake, &app, resume_only()).await.unwrap();
    assert!(idle.complete);
    assert!(
        fake.seen()
            .iter()
            .all(|r| r.path == fake_clerk::INSTANCE_PATH),
        "nothing listed"
    );
    // A run stopped before its deadline (one page, then out of time)...
    let stopped = backfill(
        &fake,
        &app,
        Options {
            deadline: Some(Instant::now()),
            ..reconcile_options(&[Kind::Users])
        },
    )
    .await
    .unwrap();
    assert!(!stopped.complete);
    // ...is finished by the continuation.
    let finished = backfill(&fake, &app, resume_only()).await.unwrap();
    assert!(finished.complete);
    assert_eq!(numbers(&finished, Kind::Users).tombstoned, 2);
}

#[tokio::test]
async fn another_instances_key_is_refused_before_any_write() {
    // Bound by an earlier run.
    let fake = FakeClerk::start(Data::generate(5, 0, 0)).await;
    let app = TestApp::spawn().await;
    backfill(&fake, &app, options(&[Kind::Users]))
        .await
        .unwrap();
    let bound = app.get("INSTANCE", "INSTANCE").await.unwrap();
    assert_eq!(s(&bound, "instance_id"), fake_clerk::INSTANCE);
    fake.edit(|data| data.delete_user(&user_id(0)));
    fake.set_instance("ins_2dEvElOpMeNtInStAnCe0000");
    let before = app.scan().await;
    for options in [options(&[Kind::Users]), reconcile_options(&[Kind::Users])] {
        let err = backfill(&fake, &app, options).await.unwrap_err();
        assert!(
            matches!(
                err,
                BackfillError::WrongInstance(WrongInstance::Bound { .. })
            ),
            "{err}"
        );
        assert!(err.to_string().contains("nothing was written"), "{err}");
    }
    assert_eq!(app.scan().await, before);

    // Not bound yet, but its webhooks come from another instance.
    fake.forget_seen();
    let app = TestApp::spawn().await;
    assert_eq!(
        app.apply(
            "user.created",
            fake_clerk::T0,
            user(&user_id(0), fake_clerk::T0, "Lovelace")
        )
        .await,
        "applied"
    );
    let before = app.scan().await;
    let err = backfill(&fake, &app, reconcile_options(&[Kind::Users]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BackfillError::WrongInstance(WrongInstance::Webhooks { .. })
        ),
        "{err}"
    );
    assert_eq!(
        app.scan().await,
        before,
        "nothing written, not even the binding"
    );
    assert!(
        fake.seen()
            .iter()
            .all(|r| r.path == fake_clerk::INSTANCE_PATH),
        "nothing listed"
    );

    // The webhooks' own instance: bound, and copied.
    fake.set_instance(fake_clerk::INSTANCE);
    backfill(&fake, &app, options(&[Kind::Users]))
        .await
        .unwrap();
    let bound = app.get("INSTANCE", "INSTANCE").await.unwrap();
    assert_eq!(
        (
            s(&bound, "instance_id").as_str(),
            s(&bound, "bound_by").as_str()
        ),
        (fake_clerk::INSTANCE, "backfill")
    );
}

#[tokio::test]
async fn a_pinned_webhook_refuses_another_instances_events() {
    let app = TestApp::spawn().await;
    let config = Config::from_lookup(|name| match name {
        "CLERK_WEBHOOK_SIGNING_SECRET" => Some(SECRET.to_owned()),
        "TABLE_NAME" => Some(app.table.clone()),
        "CLERK_INSTANCE_ID" => Some("ins_2pRoDuCtIoN0000000000000".to_owned()),
        _ => None,
    })
    .unwrap();
    let pinned = Handler::new(Ok(config), app.webhook_client());
    // The suite's envelopes name ins_2NNEqL2nrIRdJ194ndJqAHwEfxF, as a Dashboard test event
    // names an example instance.
    let body = envelope(
        "user.created",
        fake_clerk::T0,
        user(&user_id(0), fake_clerk::T0, "Lovelace"),
    );
    let reply = send(&pinned, signed(&body, &msg_id())).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body["error"], json!("wrong_instance"));
    assert!(reply.body["message"]
        .as_str()
        .unwrap()
        .contains("instance ins_2NNEqL2nrIRdJ194ndJqAHwEfxF"));
    assert!(app.scan().await.is_empty(), "nothing written");
    // Its own instance's events apply, and their records keep the instance.
    let mut own: serde_json::Value = serde_json::from_slice(&body).unwrap();
    own["instance_id"] = json!("ins_2pRoDuCtIoN0000000000000");
    let id = msg_id();
    assert_eq!(
        deliver(&pinned, &serde_json::to_vec(&own).unwrap(), &id).await,
        "applied"
    );
    let record = app.get(&format!("EVENT#{id}"), "EVENT").await.unwrap();
    assert_eq!(s(&record, "instance_id"), "ins_2pRoDuCtIoN0000000000000");
}

/// Items the earlier encoding wrote (`data` a native map) are swept like any other: the one
/// Clerk has since deleted is tombstoned; the others, written before the lookup indexes too,
/// get their keys (and today's encoding) from the copy of the same version.
#[tokio::test]
async fn items_with_data_as_a_map_are_reconciled_like_any_other() {
    let data = Data::generate(5, 0, 0);
    let fake = FakeClerk::start(data.clone()).await;
    let app = TestApp::spawn().await;
    let mut users = data.users.clone();
    users.push(fake_clerk::user(5)); // deleted in Clerk since
    for user in &users {
        let id = user["id"].as_str().unwrap();
        let version = user["updated_at"].as_i64().unwrap();
        let item = clerk_webhooks::table::encoding::from_json(
            json!({"pk": format!("USER#{id}"), "sk": "PROFILE", "entity": "user", "id": id,
                   "source": "backfill", "version": version, "updated_at": version,
                   "first_name": "Ada"})
            .as_object()
            .unwrap(),
        );
        app.put(earlier_form(item, user)).await;
    }
    let summary = reconcile(&fake, &app).await.unwrap();
    assert!(summary.complete, "{summary}");
    let users = numbers(&summary, Kind::Users);
    assert_eq!(
        (users.live, users.confirmed_gone, users.tombstoned),
        (6, 1, 1)
    );
    let gone = app
        .get(&format!("USER#{}", user_id(5)), "PROFILE")
        .await
        .unwrap();
    assert_eq!(gone.get("deleted"), Some(&AttributeValue::Bool(true)));
    let kept = app
        .get(&format!("USER#{}", user_id(2)), "PROFILE")
        .await
        .unwrap();
    // The live ones lacked the lookup keys: the reconcile's copy of the same version adds
    // them (and writes today's encoding), changing nothing else.
    assert!(matches!(kept.get("data"), Some(AttributeValue::B(_))));
    assert_eq!(s(&kept, "username_key"), "ada2");
    assert_eq!(
        n(&kept, "version"),
        data.users[2]["updated_at"].as_i64().unwrap()
    );
}
