//! The notifier end to end on one machine: the webhook handler writes DynamoDB Local, the
//! table's real stream is read back and handed to the notifier as Lambda's batches, and the
//! notifier talks to loopback fakes of Resend and Slack that follow their API contracts
//! (`helpers/providers.rs`), with failures injected.

use std::time::Duration;

use clerk_webhooks::notify::notifier::LEASE;
use clerk_webhooks::notify::Clock;
use clerk_webhooks::store::{Claim, Store};
use clerk_webhooks::table::Key;
use serde_json::{json, Value};

use crate::helpers::fake_clerk::{self, Data, FakeClerk};
use crate::helpers::logs::Capture;
use crate::helpers::notify::{sequence_numbers_of, NotifyApp, FROM};
use crate::helpers::providers::{Fault, RESEND_KEY, SLACK_PATH};
use crate::helpers::template::{filter_matches, Template};
use crate::helpers::*;

const HOUR: i64 = 3_600_000;

pub(super) fn user_id(n: u32) -> String {
    format!("user_2NotIfY{n:020}")
}

/// A user as Clerk sends it, created at `created_at` and last updated at `updated_at`.
pub(super) fn person(id: &str, created_at: i64, updated_at: i64) -> Value {
    let mut data = user(id, updated_at, "Lovelace");
    data["created_at"] = json!(created_at);
    data
}

pub(super) fn primary_email(id: &str) -> String {
    format!("Ada.{id}@Example.org")
}

/// A user who signed up a minute ago, as `user.created` carries them.
/// The first recipient of each email Resend took, in order.
fn recipients(n: &NotifyApp) -> Vec<Value> {
    n.resend
        .accepted()
        .iter()
        .map(|e| e["to"][0].clone())
        .collect()
}

pub(super) async fn sign_up(app: &TestApp, id: &str) -> i64 {
    let created = now_ms() - 60_000;
    assert_eq!(
        app.apply("user.created", created + 5, person(id, created, created))
            .await,
        "applied"
    );
    created
}

#[tokio::test]
async fn one_user_created_sends_one_email_and_one_post_whatever_is_redelivered() {
    let n = NotifyApp::spawn("user.created").await;
    let (capture, _guard) = Capture::install();
    let id = user_id(1);
    let created = now_ms() - 60_000;
    let body = envelope("user.created", created + 5, person(&id, created, created));
    let svix_id = msg_id();
    assert_eq!(n.app.deliver(&body, &svix_id).await, "applied");

    let before_notify = std::time::Instant::now();
    let first = n.notify_all().await;
    assert_eq!(first.failed(), Vec::<&str>::new());
    assert!(
        n.resend.received()[0].at >= before_notify,
        "the email is sent by the notifier, not by the webhook"
    );
    let sent = n.resend.accepted();
    assert_eq!(sent.len(), 1, "one email");
    assert_eq!(
        sent[0],
        json!({
            "from": FROM, "to": [primary_email(&id)], "subject": "Welcome, Ada!",
            "html": format!("<p>Hi Ada Lovelace, your account for {} is ready.</p>", primary_email(&id)),
        })
    );
    let request = &n.resend.received()[0];
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {RESEND_KEY}").as_str())
    );
    assert_eq!(
        request.header("idempotency-key"),
        Some(format!("welcome-user/{id}").as_str())
    );
    assert!(request
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("clerk-webhooks-notify/")));
    let posts = n.slack.accepted();
    assert_eq!(posts.len(), 1, "one post");
    assert_eq!(
        posts[0]["text"],
        json!(format!(
            "New user *Ada Lovelace* ({}), {id}",
            primary_email(&id)
        ))
    );

    // Lambda hands the same batch over again (a retry after a timeout, a replayed batch).
    let again = n.notify_all().await;
    assert_eq!(again.failed(), Vec::<&str>::new());
    // Svix redelivers the same message; a Dashboard replay (a new svix-id); a later update.
    assert_eq!(n.app.deliver(&body, &svix_id).await, "duplicate");
    assert_eq!(n.app.deliver(&body, &msg_id()).await, "stale");
    assert_eq!(
        n.app
            .apply(
                "user.updated",
                created + 9_000,
                person(&id, created, created + 9_000)
            )
            .await,
        "applied"
    );
    n.notify_all().await;
    assert_eq!(n.resend.received().len(), 1, "no second email request");
    assert_eq!(n.slack.received().len(), 1, "no second post");
    // The claims are in the stream too; the event source mapping's filter drops them.
    let filters = Template::load().notify_filters();
    let records = n.records().await;
    let claims: Vec<&Value> = records
        .iter()
        .filter(|r| r["dynamodb"]["NewImage"]["entity"]["S"] == json!("claim"))
        .collect();
    assert!(claims.len() >= 4, "taken and finished, twice");
    assert!(claims
        .iter()
        .all(|r| !filters.iter().any(|f| filter_matches(f, Some(r)))));

    // The notifier's log lines name ids, never the address, the name or a credential.
    let text = capture.text();
    assert!(text.contains("notify sent"), "{text}");
    for secret in [
        primary_email(&id).as_str(),
        "Lovelace",
        "\"Ada",
        RESEND_KEY,
        SLACK_PATH,
        "FaKeSlAcK",
    ] {
        assert!(!text.contains(secret), "{secret} logged: {text}");
    }
}

#[tokio::test]
async fn an_update_before_the_create_welcomes_once_and_old_or_backfilled_users_never() {
    let n = NotifyApp::spawn("user.created").await;
    // Out of order: the update first, then the older create (stale, so no record of its own).
    let late = user_id(2);
    let created = now_ms() - 60_000;
    assert_eq!(
        n.app
            .apply(
                "user.updated",
                created + 2_000,
                person(&late, created, created + 2_000)
            )
            .await,
        "applied"
    );
    assert_eq!(
        n.app
            .apply("user.created", created + 5, person(&late, created, created))
            .await,
        "stale"
    );
    // A user who signed up long before the endpoint, first seen through an update.
    let old = user_id(3);
    let long_ago = now_ms() - 400 * 24 * HOUR;
    assert_eq!(
        n.app
            .apply("user.updated", now_ms(), person(&old, long_ago, now_ms()))
            .await,
        "applied"
    );
    // A user copied by the backfill, created a minute ago.
    let fake = FakeClerk::start(Data::generate(1, 0, 0)).await;
    fake.edit(|data| {
        data.users[0]["created_at"] = json!(created);
        data.users[0]["updated_at"] = json!(created + 1);
    });
    n.app.backfill_users(&fake).await;
    assert_eq!(
        s(
            &n.app
                .get(&format!("USER#{}", fake_clerk::user_id(0)), "PROFILE")
                .await
                .unwrap(),
            "source"
        ),
        "backfill"
    );

    assert_eq!(n.notify_all().await.failed(), Vec::<&str>::new());
    let to = recipients(&n);
    assert_eq!(to, [json!(primary_email(&late))]);
    assert_eq!(n.slack.accepted().len(), 1);
}

#[tokio::test]
async fn a_resend_500_then_200_sends_one_email_and_reports_the_record_once() {
    let n = NotifyApp::spawn("user.created").await;
    let id = user_id(4);
    sign_up(&n.app, &id).await;
    n.resend.inject(&[Fault::Status(500)]);
    let records = n.records().await;
    let first = n.notify(&records).await;
    // The user's record, and only it, goes back to Lambda.
    assert_eq!(
        first.failed(),
        sequence_numbers_of(&records, &format!("USER#{id}"))
    );
    assert_eq!(n.resend.accepted().len(), 0);
    assert_eq!(
        n.slack.accepted().len(),
        1,
        "Slack's post is done and claimed on its own"
    );

    // Lambda retries from that record: the email goes, the post does not go again.
    let retried = n.notify(&records).await;
    assert_eq!(retried.failed(), Vec::<&str>::new());
    assert_eq!(n.resend.accepted().len(), 1);
    assert_eq!(n.resend.received().len(), 2);
    assert_eq!(n.slack.received().len(), 1);
    assert_eq!(n.notify(&records).await.failed(), Vec::<&str>::new());
    assert_eq!(n.resend.received().len(), 2);
}

#[tokio::test]
async fn a_422_is_permanent_and_the_rest_of_the_batch_goes_on() {
    let n = NotifyApp::spawn("none").await;
    let (capture, _guard) = Capture::install();
    let (refused, next) = (user_id(5), user_id(6));
    sign_up(&n.app, &refused).await;
    sign_up(&n.app, &next).await;
    n.resend.inject(&[Fault::Status(422)]);
    let records = n.records().await;
    assert_eq!(n.notify(&records).await.failed(), Vec::<&str>::new());
    let to = recipients(&n);
    assert_eq!(to, [json!(primary_email(&next))]);
    // Never asked again, however often the records come back.
    assert_eq!(n.notify(&records).await.failed(), Vec::<&str>::new());
    assert_eq!(n.resend.received().len(), 2);
    let claim = Key::claim("welcome_email", &format!("user.created#{refused}"));
    let item = n.app.get(&claim.pk, &claim.sk).await.unwrap();
    assert_eq!(s(&item, "state"), "failed");
    // One error line says so, with the provider's code and never its message.
    let refusals: Vec<Value> = capture
        .lines()
        .into_iter()
        .filter(|l| l["level"] == "ERROR")
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["fields"]["status"], json!(422));
    assert_eq!(refusals[0]["fields"]["code"], json!("validation_error"));
}

#[tokio::test]
async fn a_crash_between_claim_and_send_sends_exactly_once_after_the_lease() {
    let n = NotifyApp::spawn("none").await;
    let id = user_id(7);
    sign_up(&n.app, &id).await;
    // An invocation claimed the email and died before sending it.
    let store = Store::new(n.app.client.clone(), &n.app.table);
    let key = Key::claim("welcome_email", &format!("user.created#{id}"));
    let lease_ms = LEASE.as_millis() as i64;
    let crashed = store.claim(&key, now_ms(), lease_ms, 86_400).await.unwrap();
    assert!(matches!(crashed, Claim::Taken { .. }));
    let records = n.records().await;
    // Lambda's retry comes at once, with too little time left to wait out the lease.
    let held = n
        .notify_at(&records, Duration::from_secs(20), Clock::system())
        .await;
    assert_eq!(
        held.failed(),
        sequence_numbers_of(&records, &format!("USER#{id}"))
    );
    assert_eq!(n.resend.received().len(), 0);
    // A retry after the lease takes the claim over and sends.
    let later = Clock::ahead(LEASE + Duration::from_secs(1));
    let after = n.notify_at(&records, Duration::from_secs(60), later).await;
    assert_eq!(after.failed(), Vec::<&str>::new());
    assert_eq!(n.resend.accepted().len(), 1);
    let item = n.app.get(&key.pk, &key.sk).await.unwrap();
    assert_eq!(
        (
            s(&item, "state").as_str(),
            crate::helpers::n(&item, "attempts")
        ),
        ("done", 2)
    );
    n.notify_at(&records, Duration::from_secs(60), later).await;
    assert_eq!(n.resend.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_invocations_with_the_same_records_send_one_email() {
    let n = NotifyApp::spawn("user.created").await;
    sign_up(&n.app, &user_id(8)).await;
    // A slow Resend keeps the first claimer busy while the others arrive.
    n.resend.inject(&[Fault::Slow(Duration::from_millis(300))]);
    let records = n.records().await;
    let mut invocations = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let notifier = NotifyApp::notifier_for(&n.config, Duration::from_secs(5));
        let event = crate::helpers::notify::event(&records);
        invocations.spawn(async move {
            notifier
                .invoke(&event, std::time::Instant::now() + Duration::from_secs(60))
                .await
                .unwrap()
        });
    }
    while let Some(response) = invocations.join_next().await {
        // The others waited for the claim to be done instead of failing the record.
        assert_eq!(response.unwrap().failed(), Vec::<&str>::new());
    }
    assert_eq!(n.resend.received().len(), 1, "one email request");
    assert_eq!(n.resend.accepted().len(), 1);
    assert_eq!(n.slack.received().len(), 1, "one post");
}

#[tokio::test]
async fn a_429_with_a_short_retry_after_is_waited_out_in_the_same_invocation() {
    let n = NotifyApp::spawn("user.created").await;
    sign_up(&n.app, &user_id(9)).await;
    n.resend.inject(&[Fault::TooManyRequests(Some(1))]);
    n.slack.inject(&[Fault::TooManyRequests(None)]);
    let records = n.records().await;
    let first = n.notify(&records).await;
    assert_eq!(n.resend.accepted().len(), 1, "waited a second and sent");
    assert_eq!(n.resend.received().len(), 2);
    // Slack said 429 without saying how long: the record goes back to Lambda.
    assert_eq!(first.failed().len(), 1);
    assert_eq!(n.slack.accepted().len(), 0);
    assert_eq!(n.notify(&records).await.failed(), Vec::<&str>::new());
    assert_eq!(n.slack.accepted().len(), 1);
    assert_eq!(n.resend.received().len(), 2);
}

#[tokio::test]
async fn a_provider_slower_than_the_timeout_is_retried_and_resends_idempotency_absorbs_it() {
    let n = NotifyApp::spawn_with("none", Duration::from_millis(500)).await;
    sign_up(&n.app, &user_id(10)).await;
    n.resend
        .inject(&[Fault::Slow(Duration::from_millis(1_500))]);
    let records = n.records().await;
    assert_eq!(
        n.notify(&records).await.failed().len(),
        1,
        "timed out: retried"
    );
    // Resend sent it all the same; the retry carries the same Idempotency-Key and body.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(n.notify(&records).await.failed(), Vec::<&str>::new());
    assert_eq!(n.resend.received().len(), 2);
    assert_eq!(
        n.resend.accepted().len(),
        1,
        "the second request was answered from the key"
    );
}

#[tokio::test]
async fn slack_refusals_are_permanent_and_every_listed_change_is_posted() {
    let n = NotifyApp::spawn(
        "user.created,organization.created,organizationMembership.created,user.deleted",
    )
    .await;
    let id = user_id(11);
    let org = "org_2NotIfYoRgAnIzAtIoN01";
    let created = sign_up(&n.app, &id).await;
    let mut organization = organization(org, created, "Acme & Co");
    organization["created_at"] = json!(created);
    n.app
        .apply("organization.created", created, organization)
        .await;
    let mut member = membership(org, &id, created + 1, "org:admin");
    member["created_at"] = json!(created);
    n.app
        .apply("organizationMembership.created", created + 1, member)
        .await;
    n.app
        .apply("user.deleted", created + 2, deleted("user", &id))
        .await;
    // The first post is refused (an archived channel): not retried, the rest still go.
    n.slack.inject(&[Fault::Status(410)]);
    assert_eq!(n.notify_all().await.failed(), Vec::<&str>::new());
    let texts: Vec<Value> = n
        .slack
        .accepted()
        .iter()
        .map(|p| p["text"].clone())
        .collect();
    assert_eq!(
        texts,
        [
            json!(format!("New organization *Acme &amp; Co* ({org})")),
            json!(format!("{id} joined *Acme* ({org}) as org:admin")),
            json!(format!("User deleted: {id}")),
        ]
    );
    assert_eq!(n.notify_all().await.failed(), Vec::<&str>::new());
    assert_eq!(n.slack.received().len(), 4);
}

#[tokio::test]
async fn out_of_time_the_unstarted_records_go_back_to_lambda() {
    let n = NotifyApp::spawn("user.created").await;
    sign_up(&n.app, &user_id(12)).await;
    let records = n.records().await;
    let all: Vec<&str> = records
        .iter()
        .map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap())
        .collect();
    // Less than one request's timeout and the margin: nothing is started.
    let response = n
        .notify_at(&records, Duration::from_secs(1), Clock::system())
        .await;
    assert_eq!(response.failed(), all);
    assert_eq!(n.resend.received().len() + n.slack.received().len(), 0);
}

#[tokio::test]
async fn a_record_that_is_not_a_dynamodb_item_is_skipped_not_retried_forever() {
    let n = NotifyApp::spawn("user.created").await;
    let id = user_id(13);
    sign_up(&n.app, &id).await;
    let mut records = n.records().await;
    let user = records
        .iter_mut()
        .find(|r| r["dynamodb"]["Keys"]["pk"]["S"] == json!(format!("USER#{id}")))
        .unwrap();
    user["dynamodb"]["NewImage"]["email"] = json!("not DynamoDB JSON");
    assert_eq!(n.notify(&records).await.failed(), Vec::<&str>::new());
    assert_eq!(n.resend.received().len(), 0);
    // And an event that is not a stream event at all fails the invocation, clearly.
    let error = n
        .notifier
        .invoke(
            &json!({"detail": {}}),
            std::time::Instant::now() + Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the event is not a DynamoDB Streams event: it has no Records list"
    );
}
