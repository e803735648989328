//! Change events on EventBridge, end to end: the webhook's writes, DynamoDB Local's stream,
//! the notifier, and moto's EventBridge evaluating a rule whose target is an SQS queue, read
//! back as a consumer would (`helpers/bus.rs`; `scripts/moto.sh` starts moto). Partial
//! `PutEvents` failures against a stand-in that fails entries one by one.

use std::sync::Arc;
use std::time::Duration;

use clerk_webhooks::notify::config::WithoutKeys;
use clerk_webhooks::notify::event_bus::EventBus;
use clerk_webhooks::notify::sender::Sender;
use clerk_webhooks::notify::stream::StreamReader;
use clerk_webhooks::notify::{BatchResponse, Notifier, NotifyConfig};
use serde_json::{json, Value};

use clerk_webhooks::notify::change::Images;
use clerk_webhooks::notify::change_event::change_events;

use crate::helpers::bus::{moto_endpoint, BusTap, PartialBus};
use crate::helpers::calls::{self, Function};
use crate::helpers::notify::{event, streams_client};
use crate::helpers::template::{filter_matches, Template};
use crate::helpers::*;

use super::actions::{person, primary_email, sign_up, user_id};

const SOURCE: &str = "clerk-webhooks";
/// Long enough for moto to route an event to the queue; the last read waits this much more
/// for any event that should not be there.
const WAIT: Duration = Duration::from_secs(2);

/// The notifier with only the change events on, putting to `bus` at `endpoint`.
struct EventsApp {
    app: TestApp,
    notifier: Arc<Notifier>,
    reader: StreamReader,
}

impl EventsApp {
    async fn start(bus_endpoint: &str, bus: &str, vars: &[(&str, &str)]) -> Self {
        let app = TestApp::spawn_with_stream().await;
        let mut all: Vec<(String, String)> = vec![
            ("TABLE_NAME".into(), app.table.clone()),
            ("EVENT_BUS_NAME".into(), bus.into()),
        ];
        all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = NotifyConfig::from_lookup(
            |name| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            WithoutKeys::Off,
        )
        .unwrap();
        let notifier = Notifier::with_sender(
            config,
            calls::client(Function::Notifier, &endpoint()),
            Sender::with_timeout(Duration::from_secs(5)).unwrap(),
        )
        .with_event_bus(EventBus::new(calls::eventbridge_client(
            Function::Notifier,
            bus_endpoint,
        )));
        let reader = StreamReader::new(app.client.clone(), streams_client(), &app.table);
        Self {
            app,
            notifier: Arc::new(notifier),
            reader,
        }
    }

    async fn on_moto(vars: &[(&str, &str)]) -> (Self, BusTap) {
        let tap = BusTap::new(SOURCE).await;
        (Self::start(&moto_endpoint(), &tap.bus, vars).await, tap)
    }

    async fn records(&self) -> Vec<Value> {
        self.reader.read_all().await.unwrap()
    }

    /// The whole stream as one batch.
    async fn notify_all(&self) -> BatchResponse {
        let records = self.records().await;
        self.notifier
            .invoke(
                &event(&records),
                std::time::Instant::now() + Duration::from_secs(60),
            )
            .await
            .unwrap()
    }
}

fn detail_types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect()
}

/// The detail types in name order: events put in one call arrive in any order.
fn sorted_types(events: &[Value]) -> Vec<&str> {
    let mut types = detail_types(events);
    types.sort();
    types
}

impl EventsApp {
    /// An organization and `user`'s membership of it, at `t`, by webhooks.
    async fn organization_with_member(&self, org: &str, user: &str, t: i64, role: &str) {
        self.app
            .apply("organization.created", t, organization(org, t, "Acme"))
            .await;
        self.app
            .apply(
                "organizationMembership.created",
                t,
                membership(org, user, t, role),
            )
            .await;
    }
}

#[tokio::test]
async fn one_user_created_is_one_event_however_often_it_is_delivered() {
    let (e, tap) = EventsApp::on_moto(&[]).await;
    let id = user_id(101);
    let created = now_ms() - 60_000;
    let body = envelope("user.created", created + 5, person(&id, created, created));
    let svix_id = msg_id();
    assert_eq!(e.app.deliver(&body, &svix_id).await, "applied");
    assert!(e.notify_all().await.batch_item_failures.is_empty());
    let events = tap.events(1, WAIT).await;
    assert_eq!(detail_types(&events), ["user.created"]);
    let put = &events[0];
    assert_eq!(put["source"], SOURCE);
    let detail = &put["detail"];
    assert_eq!(
        detail["change_id"],
        json!(format!("user.created#{id}#{created}"))
    );
    assert_eq!(detail["id"], json!(id));
    assert_eq!(detail["object"], "user");
    assert_eq!(detail["version"], json!(created));
    assert_eq!(detail["source"], "webhook");
    assert!(detail["changed"]
        .as_array()
        .unwrap()
        .contains(&json!("email")));
    // Ids and names of fields only: no address, no name.
    let text = put.to_string();
    assert!(
        !text.contains(&primary_email(&id)) && !text.contains("Lovelace"),
        "{text}"
    );

    // The same batch again, Svix's retry or a Dashboard replay (the same svix-id: a
    // duplicate), the same event under a new svix-id (stale), and 16 notifiers on the same
    // records at once: nothing more.
    e.notify_all().await;
    assert_eq!(e.app.deliver(&body, &svix_id).await, "duplicate");
    assert_eq!(e.app.deliver(&body, &msg_id()).await, "stale");
    let records = e.records().await;
    let concurrent: Vec<_> = (0..16)
        .map(|_| {
            let (notifier, batch) = (Arc::clone(&e.notifier), event(&records));
            tokio::spawn(async move {
                notifier
                    .invoke(&batch, std::time::Instant::now() + Duration::from_secs(60))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for invocation in concurrent {
        invocation.await.unwrap();
    }
    assert!(tap.events(0, WAIT).await.is_empty(), "nothing more");
}

#[tokio::test]
async fn an_update_says_what_changed_and_derives_a_new_primary_email() {
    let (e, tap) = EventsApp::on_moto(&[]).await;
    let id = user_id(102);
    let created = sign_up(&e.app, &id).await;
    e.notify_all().await;
    assert_eq!(detail_types(&tap.events(1, WAIT).await), ["user.created"]);

    // A newer version that changes nothing but its updated_at: no event.
    let same = person(&id, created, created + 1_000);
    assert_eq!(
        e.app.apply("user.updated", created + 1_000, same).await,
        "applied"
    );
    e.notify_all().await;
    assert!(tap.events(0, WAIT).await.is_empty());

    // A new primary address: user.updated and user.primary_email_changed.
    let mut moved = person(&id, created, created + 2_000);
    moved["email_addresses"][1]["email_address"] = json!("ada@new.example.org");
    assert_eq!(
        e.app.apply("user.updated", created + 2_000, moved).await,
        "applied"
    );
    e.notify_all().await;
    let events = tap.events(2, WAIT).await;
    assert_eq!(
        sorted_types(&events),
        ["user.primary_email_changed", "user.updated"]
    );
    let updated = events
        .iter()
        .find(|e| e["detail-type"] == "user.updated")
        .unwrap();
    assert_eq!(updated["detail"]["changed"], json!(["email", "data"]));
    assert!(!updated.to_string().contains("new.example.org"));

    // Deleted: one user.deleted.
    assert_eq!(
        e.app
            .apply("user.deleted", created + 3_000, deleted("user", &id))
            .await,
        "applied"
    );
    e.notify_all().await;
    let events = tap.events(1, WAIT).await;
    assert_eq!(detail_types(&events), ["user.deleted"]);
    assert_eq!(
        events[0]["detail"]["change_id"],
        json!(format!("user.deleted#{id}#{}", created + 3_000))
    );
}

#[tokio::test]
async fn a_role_change_and_an_organizations_deletion_reach_the_bus() {
    let (e, tap) = EventsApp::on_moto(&[]).await;
    let (org, user) = ("org_2EvEnTs0000000000000001", user_id(103));
    let t = 1_760_000_000_000_i64;
    e.organization_with_member(org, &user, t, "org:member")
        .await;
    e.notify_all().await;
    assert_eq!(
        sorted_types(&tap.events(2, WAIT).await),
        ["organization.created", "organizationMembership.created"]
    );

    e.app
        .apply(
            "organizationMembership.updated",
            t + 1,
            membership(org, &user, t + 1, "org:admin"),
        )
        .await;
    e.notify_all().await;
    let events = tap.events(2, WAIT).await;
    let role = events
        .iter()
        .find(|e| e["detail-type"] == "organizationMembership.role_changed")
        .expect("a role change");
    assert_eq!(role["detail"]["org_id"], json!(org));
    assert_eq!(role["detail"]["user_id"], json!(user));
    assert_eq!(events.len(), 2, "and its organizationMembership.updated");

    // The organization deleted: its tombstone, and the membership its cascade removed.
    e.app
        .apply("organization.deleted", t + 2, deleted("organization", org))
        .await;
    e.notify_all().await;
    let events = tap.events(2, WAIT).await;
    assert_eq!(
        sorted_types(&events),
        ["organization.deleted", "organizationMembership.deleted"]
    );
    let cascade = events
        .iter()
        .find(|e| e["detail-type"] == "organizationMembership.deleted")
        .unwrap();
    assert_eq!(cascade["detail"]["source"], "cascade");

    // The deployed mapping's filters with a bus let every record that makes an event through.
    let filters = Template::load().notify_filters_with(true);
    let rules = clerk_webhooks::notify::change_event::EventRules::default();
    let mut making = 0;
    for record in e.records().await {
        let images = Images::of(&record).unwrap();
        let events = change_events(
            images.old.as_ref(),
            images.new.as_ref(),
            images.removal,
            &rules,
        );
        if !events.is_empty() {
            making += 1;
            assert!(
                filters.iter().any(|f| filter_matches(f, Some(&record))),
                "{record}"
            );
        }
    }
    assert_eq!(making, 5, "two created, one update, two deletions");
}

#[tokio::test]
async fn backfilled_users_make_no_event_unless_configured() {
    let (e, tap) = EventsApp::on_moto(&[]).await;
    let fake = fake_clerk_with_users(2).await;
    e.app.backfill_users(&fake).await;
    e.notify_all().await;
    assert!(
        tap.events(0, WAIT).await.is_empty(),
        "a first backfill does not flood the bus"
    );

    let (e, tap) = EventsApp::on_moto(&[("EVENT_SOURCES", "webhook,backfill")]).await;
    e.app.backfill_users(&fake).await;
    e.notify_all().await;
    let events = tap.events(2, WAIT).await;
    assert_eq!(detail_types(&events), ["user.created", "user.created"]);
    assert!(events.iter().all(|e| e["detail"]["source"] == "backfill"));
}

async fn fake_clerk_with_users(n: usize) -> crate::helpers::fake_clerk::FakeClerk {
    crate::helpers::fake_clerk::FakeClerk::start(crate::helpers::fake_clerk::Data::generate(
        n, 0, 0,
    ))
    .await
}

#[tokio::test]
async fn attributes_are_in_the_detail_only_when_asked_for() {
    let (e, tap) = EventsApp::on_moto(&[("EVENT_DETAIL", "attributes")]).await;
    let id = user_id(104);
    sign_up(&e.app, &id).await;
    e.notify_all().await;
    let events = tap.events(1, WAIT).await;
    let detail = &events[0]["detail"];
    assert_eq!(detail["new"]["email"], json!(primary_email(&id)));
    assert_eq!(detail["old"], Value::Null);
}

#[tokio::test]
async fn a_partial_failure_puts_again_only_the_failed_entry() {
    let bus = PartialBus::start().await;
    let e = EventsApp::start(&bus.url, "clerk-events", &[]).await;
    let (first, second) = (user_id(105), user_id(106));
    sign_up(&e.app, &first).await;
    sign_up(&e.app, &second).await;
    // The first call fails its second entry (the second user's user.created).
    bus.fail_next(&[1]);
    let response = e.notify_all().await;
    let records = e.records().await;
    let second_record =
        crate::helpers::notify::sequence_numbers_of(&records, &format!("USER#{second}"));
    assert_eq!(
        response.failed(),
        [second_record[0].as_str()],
        "only that record is reported"
    );
    // Lambda hands the batch over again: only the failed entry is put again.
    let response = e.notify_all().await;
    assert!(response.batch_item_failures.is_empty());
    let calls = bus.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].len(), 2);
    assert_eq!(calls[1].len(), 1);
    assert_eq!(calls[1][0].0, "user.created");
    assert_eq!(calls[1][0].1["id"], json!(second));
    // And a third time: all done.
    e.notify_all().await;
    assert_eq!(bus.calls().len(), 2);
}

// The example consumer in examples/, run on what the bus delivered.
#[path = "../../../examples/membership_consumer/consumer.rs"]
mod consumer;

#[tokio::test]
async fn the_example_consumer_keeps_a_team_and_a_workspace_record_per_membership() {
    let (e, tap) = EventsApp::on_moto(&[("EVENT_DETAIL", "attributes")]).await;
    let theirs = TestApp::spawn().await; // the consumer's own table
    let (org, user) = ("org_2CoNsUmEr000000000000001", user_id(107));
    let t = 1_760_000_000_000_i64;
    e.organization_with_member(org, &user, t, "org:admin").await;
    e.notify_all().await;
    let created = tap.events(2, WAIT).await;
    // Delivered twice, as EventBridge may.
    for event in created.iter().chain(&created) {
        consumer::apply(&local_client(), &theirs.table, &consumer::writes_for(event))
            .await
            .unwrap();
    }
    let team = theirs
        .get(&format!("TEAM#{org}"), &format!("MEMBER#{user}"))
        .await
        .unwrap();
    assert_eq!(s(&team, "role"), "org:admin");
    assert!(theirs
        .get(&format!("WORKSPACE#{user}"), &format!("ORG#{org}"))
        .await
        .is_some());

    e.app
        .apply(
            "organizationMembership.deleted",
            t + 5,
            membership(org, &user, t + 5, "org:admin"),
        )
        .await;
    e.notify_all().await;
    let removed = tap.events(1, WAIT).await;
    assert_eq!(detail_types(&removed), ["organizationMembership.deleted"]);
    // The deletion, then the old creation late: the member stays removed.
    for event in removed.iter().chain(&created) {
        consumer::apply(&local_client(), &theirs.table, &consumer::writes_for(event))
            .await
            .unwrap();
    }
    for (pk, sk) in [
        (format!("TEAM#{org}"), format!("MEMBER#{user}")),
        (format!("WORKSPACE#{user}"), format!("ORG#{org}")),
    ] {
        let item = theirs.get(&pk, &sk).await.unwrap();
        assert!(
            item.contains_key("deleted") && !item.contains_key("role"),
            "{pk}"
        );
    }
}
