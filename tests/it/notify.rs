//! The notifier on DynamoDB Local's real Streams API: the records the webhook function's
//! transactions produce, read with GetRecords and handed over in the JSON Lambda delivers
//! (`NEW_AND_OLD_IMAGES`), make exactly the changes docs/notifications.md's table of changes names, and
//! nothing for retries, replays, stale events or updates; `actions` then sends each change's
//! email and posts once, against fakes of Resend and Slack.

use std::time::Duration;

use clerk_webhooks::notify::change::{change_of_record, Window};
use clerk_webhooks::notify::stream::StreamReader;

use crate::helpers::notify::streams_client;
use crate::helpers::template::{filter_matches, Template};
use crate::helpers::*;
use serde_json::Value;

mod actions;
mod binary;
mod events;

const USER: &str = "user_2NNEqL2nrIRdJ194ndJqAHwEfxC";
const ORG: &str = "org_2NNEqL2nrIRdJ194ndJqAHwEfxD";

/// The change ids the stream's records make, in order.
async fn changes(app: &TestApp, now_ms: i64) -> Vec<String> {
    StreamReader::new(app.client.clone(), streams_client(), &app.table)
        .read_all()
        .await
        .unwrap()
        .iter()
        .filter_map(|record| change_of_record(record, Window::hours(now_ms, 72)).unwrap())
        .map(|change| change.id())
        .collect()
}

#[tokio::test]
async fn the_webhooks_writes_make_one_change_each_and_retries_make_none() {
    let app = TestApp::spawn_with_stream().await;
    // Created an hour before "now": inside the welcome window.
    let created = 1_716_883_200_000;
    let now = created + 3_600_000;
    let user_created = envelope("user.created", created + 5, user(USER, created, "Lovelace"));
    let id = msg_id();
    assert_eq!(app.deliver(&user_created, &id).await, "applied");
    // Svix retries the same message; a Dashboard replay; a later update; an older one.
    assert_eq!(app.deliver(&user_created, &id).await, "duplicate");
    assert_eq!(app.deliver(&user_created, &msg_id()).await, "stale");
    assert_eq!(
        app.apply(
            "user.updated",
            created + 9_000,
            user(USER, created + 9_000, "Byron")
        )
        .await,
        "applied"
    );
    assert_eq!(
        app.apply(
            "user.updated",
            created + 1_000,
            user(USER, created + 1_000, "Old")
        )
        .await,
        "stale"
    );
    // An organization and a member, then the user's deletion (which cascades).
    app.apply(
        "organization.created",
        created,
        organization(ORG, created, "Acme"),
    )
    .await;
    app.apply(
        "organizationMembership.created",
        created + 10_000,
        membership(ORG, USER, created + 10_000, "org:member"),
    )
    .await;
    app.apply("user.deleted", created + 20_000, deleted("user", USER))
        .await;

    let membership_version = created + 10_000;
    assert_eq!(
        changes(&app, now).await,
        [
            format!("user.created#{USER}"),
            format!("organization.created#{ORG}"),
            format!("organizationMembership.created#{ORG}#{USER}#{membership_version}"),
            format!("user.deleted#{USER}"),
        ]
    );
    // The same stream read again (Lambda retrying a batch) makes the same ids: what the
    // claims will key on.
    assert_eq!(changes(&app, now).await.len(), 4);
    // The event source mapping's filter lets every one of these records through, and not the
    // event records, updates or TTL-free bookkeeping around them.
    let filters = Template::load().notify_filters();
    let records = StreamReader::new(app.client.clone(), streams_client(), &app.table)
        .read_all()
        .await
        .unwrap();
    let passed: Vec<&Value> = records
        .iter()
        .filter(|r| filters.iter().any(|f| filter_matches(f, Some(r))))
        .collect();
    let changes_in = |records: &[&Value]| -> usize {
        records
            .iter()
            .filter(|r| {
                change_of_record(r, Window::hours(now, 72))
                    .unwrap()
                    .is_some()
            })
            .count()
    };
    assert_eq!(changes_in(&passed), 4);
    assert_eq!(changes_in(&records.iter().collect::<Vec<_>>()), 4);
    assert!(
        passed.len() < records.len() / 2,
        "{} of {} records pass",
        passed.len(),
        records.len()
    );
    assert!(passed.iter().all(|r| !r["dynamodb"]["Keys"]["pk"]["S"]
        .as_str()
        .unwrap()
        .starts_with("EVENT#")));
    // Read a week later, the creations are outside the window; the deletion is not.
    let later = changes(&app, now + 7 * 24 * 3_600_000).await;
    assert_eq!(later, [format!("user.deleted#{USER}")]);
}

#[tokio::test]
async fn an_update_before_the_create_welcomes_the_user_once() {
    let app = TestApp::spawn_with_stream().await;
    let created = 1_716_883_200_000;
    let now = created + 60_000;
    // Out of order: the update arrives first, then the (older) create is stale.
    assert_eq!(
        app.apply(
            "user.updated",
            created + 2_000,
            user(USER, created + 2_000, "Lovelace")
        )
        .await,
        "applied"
    );
    assert_eq!(
        app.apply("user.created", created + 5, user(USER, created, "Lovelace"))
            .await,
        "stale"
    );
    // DynamoDB Local hands records over promptly, but give it a moment under load.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(changes(&app, now).await, [format!("user.created#{USER}")]);
}

mod claims {
    //! The claims that make each action happen once per change: one conditional write each,
    //! on DynamoDB Local. (The client is the tests' own: the notifier function, and with it
    //! the IAM recording of its calls, comes next.)

    use clerk_webhooks::store::{Claim, Finished, Store};
    use clerk_webhooks::table::Key;

    use crate::helpers::*;

    const LEASE: i64 = 60_000;
    const KEEP: i64 = 30 * 86_400;
    const T: i64 = 1_796_000_000_000;

    fn key() -> Key {
        Key::claim("welcome_email", "user.created#user_1")
    }

    #[tokio::test]
    async fn a_claim_is_taken_once_held_while_leased_and_never_again_once_finished() {
        let app = TestApp::spawn().await;
        let store = Store::new(app.client.clone(), &app.table);
        let Claim::Taken { token, attempt } = store.claim(&key(), T, LEASE, KEEP).await.unwrap()
        else {
            panic!("the first claimer did not get it");
        };
        assert_eq!(attempt, 1);
        assert_eq!(
            store.claim(&key(), T + 1, LEASE, KEEP).await.unwrap(),
            Claim::Held {
                until_ms: T + LEASE
            }
        );
        assert!(store
            .finish_claim(&key(), &token, Finished::Done)
            .await
            .unwrap());
        // Redelivered after it was done, even long after the lease: never again.
        assert_eq!(
            store
                .claim(&key(), T + 10 * LEASE, LEASE, KEEP)
                .await
                .unwrap(),
            Claim::Done
        );
        let item = app.get(&key().pk, &key().sk).await.unwrap();
        assert_eq!(s(&item, "entity"), "claim");
        assert_eq!(n(&item, "expires_at"), T / 1000 + KEEP);
        assert!(!item.contains_key("lease_until") && !item.contains_key("claim_token"));

        let failed = Key::claim("slack", "user.created#user_2");
        let Claim::Taken { token, .. } = store.claim(&failed, T, LEASE, KEEP).await.unwrap() else {
            panic!("not taken");
        };
        assert!(store
            .finish_claim(&failed, &token, Finished::Failed)
            .await
            .unwrap());
        assert_eq!(
            store
                .claim(&failed, T + 10 * LEASE, LEASE, KEEP)
                .await
                .unwrap(),
            Claim::Failed
        );
    }

    #[tokio::test]
    async fn a_claimer_that_died_is_taken_over_after_its_lease() {
        let app = TestApp::spawn().await;
        let store = Store::new(app.client.clone(), &app.table);
        let Claim::Taken { token: first, .. } = store.claim(&key(), T, LEASE, KEEP).await.unwrap()
        else {
            panic!("not taken");
        };
        // The first claimer crashed between claiming and sending; the lease runs out.
        let Claim::Taken {
            token: second,
            attempt,
        } = store
            .claim(&key(), T + LEASE + 1, LEASE, KEEP)
            .await
            .unwrap()
        else {
            panic!("the expired lease was not taken over");
        };
        assert_eq!(attempt, 2);
        // The first one, had it been only slow, can no longer finish the claim.
        assert!(!store
            .finish_claim(&key(), &first, Finished::Done)
            .await
            .unwrap());
        assert!(store
            .finish_claim(&key(), &second, Finished::Done)
            .await
            .unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_twenty_concurrent_claimers_exactly_one_gets_the_claim() {
        let app = TestApp::spawn().await;
        let mut claimers = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let store = Store::new(app.client.clone(), &app.table);
            claimers.spawn(async move { store.claim(&key(), T, LEASE, KEEP).await.unwrap() });
        }
        let mut taken = 0;
        while let Some(claim) = claimers.join_next().await {
            match claim.unwrap() {
                Claim::Taken { .. } => taken += 1,
                Claim::Held { until_ms } => assert_eq!(until_ms, T + LEASE),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(taken, 1);
    }
}
