//! Every sync rule of the table contract, against DynamoDB Local through the real handler.

use crate::helpers::*;
use aws_sdk_dynamodb::types::AttributeValue;
use clerk_webhooks::event::Event;
use clerk_webhooks::plan::plan;
use clerk_webhooks::store::{Committed, Store};
use clerk_webhooks::table::encoding;

const USER: &str = "user_2NNEqL2nrIRdJ194ndJqAHwEfxC";
const ORG: &str = "org_2NNEqL2nrIRdJ194ndJqAHwEfxD";
const T0: i64 = 1_716_883_200_000;

#[tokio::test]
async fn user_created_is_stored_with_its_primary_email_and_whole_data() {
    let app = TestApp::spawn().await;
    let id = msg_id();
    let body = envelope("user.created", T0 + 5, user(USER, T0, "Lovelace"));
    assert_eq!(app.deliver(&body, &id).await, "applied");

    let item = app.get(&format!("USER#{USER}"), "PROFILE").await.unwrap();
    assert_eq!(s(&item, "entity"), "user");
    assert_eq!(s(&item, "id"), USER);
    // The second address is the primary one: not simply the first.
    assert_eq!(s(&item, "email"), format!("Ada.{USER}@Example.org"));
    assert_eq!(
        s(&item, "gsi1pk"),
        format!("EMAIL#ada.{}@example.org", USER.to_lowercase())
    );
    assert_eq!(s(&item, "last_name"), "Lovelace");
    assert_eq!(n(&item, "version"), T0);
    assert_eq!(n(&item, "updated_at"), T0);
    assert_eq!(s(&item, "last_svix_id"), id);
    assert!(
        matches!(item.get("data"), Some(AttributeValue::B(_))),
        "data is compressed JSON"
    );
    let data: serde_json::Value =
        serde_json::from_str(&encoding::data_text(&item).unwrap().unwrap()).unwrap();
    assert_eq!(data["email_addresses"].as_array().map(Vec::len), Some(2));
    let Some(AttributeValue::M(meta)) = item.get("public_metadata") else {
        panic!("metadata is a map")
    };
    assert_eq!(meta.get("plan"), Some(&AttributeValue::S("pro".into())));

    let record = app.get(&format!("EVENT#{id}"), "EVENT").await.unwrap();
    assert_eq!(s(&record, "type"), "user.created");
    let ttl = n(&record, "expires_at") - now_secs();
    assert!(
        (30 * 86_400 - 60..=30 * 86_400).contains(&ttl),
        "event record lives 30 days: {ttl}"
    );

    // Access pattern: user by email (lower-cased).
    let found = app
        .by_gsi1(&format!("EMAIL#ada.{}@example.org", USER.to_lowercase()))
        .await;
    assert_eq!(found.len(), 1);
    assert_eq!(s(&found[0], "id"), USER);
}

#[tokio::test]
async fn the_same_svix_id_twice_is_a_duplicate_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let id = msg_id();
    let body = envelope("user.created", T0, user(USER, T0, "Lovelace"));
    assert_eq!(app.deliver(&body, &id).await, "applied");
    let before = app.scan().await;
    assert_eq!(app.deliver(&body, &id).await, "duplicate");
    assert_eq!(app.scan().await, before);
}

#[tokio::test]
async fn update_before_create_keeps_the_newer_version() {
    let app = TestApp::spawn().await;
    let updated = envelope(
        "user.updated",
        T0 + 3_600_005,
        user(USER, T0 + 3_600_000, "King"),
    );
    let created = envelope("user.created", T0 + 5, user(USER, T0, "Lovelace"));
    assert_eq!(app.deliver(&updated, &msg_id()).await, "applied");
    assert_eq!(app.deliver(&created, &msg_id()).await, "stale");
    let item = app.get(&format!("USER#{USER}"), "PROFILE").await.unwrap();
    assert_eq!(s(&item, "last_name"), "King");
    assert_eq!(n(&item, "version"), T0 + 3_600_000);
}

#[tokio::test]
async fn a_stale_event_leaves_no_event_record() {
    let app = TestApp::spawn().await;
    let newer = envelope(
        "organization.updated",
        T0,
        organization(ORG, T0 + 10, "New"),
    );
    let older = envelope("organization.updated", T0, organization(ORG, T0 + 5, "Old"));
    assert_eq!(app.deliver(&newer, &msg_id()).await, "applied");
    let id = msg_id();
    assert_eq!(app.deliver(&older, &id).await, "stale");
    assert!(app.get(&format!("EVENT#{id}"), "EVENT").await.is_none());
    let org = app.get(&format!("ORG#{ORG}"), "PROFILE").await.unwrap();
    assert_eq!(s(&org, "name"), "New");
    // Access pattern: organization by slug.
    let found = app.by_gsi1(&format!("SLUG#slug-{ORG}")).await;
    assert_eq!(found.len(), 1);
}

#[tokio::test]
async fn a_deleted_user_is_a_tombstone_without_personal_data_and_never_comes_back() {
    let app = TestApp::spawn().await;
    app.apply("user.created", T0, user(USER, T0, "Lovelace"))
        .await;
    let deleted_at = T0 + 7_200_000;
    assert_eq!(
        app.apply("user.deleted", deleted_at, deleted("user", USER))
            .await,
        "applied"
    );

    let tomb = app.get(&format!("USER#{USER}"), "PROFILE").await.unwrap();
    assert_eq!(tomb.get("deleted"), Some(&AttributeValue::Bool(true)));
    assert_eq!(n(&tomb, "version"), deleted_at);
    assert_eq!(n(&tomb, "deleted_at"), deleted_at);
    let ttl = n(&tomb, "expires_at") - now_secs();
    assert!(
        (90 * 86_400 - 60..=90 * 86_400).contains(&ttl),
        "tombstone lives 90 days: {ttl}"
    );
    let mut names: Vec<&str> = tomb.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "deleted",
            "deleted_at",
            "entity",
            "expires_at",
            "id",
            "last_svix_id",
            "pk",
            "sk",
            "version"
        ]
    );
    assert!(app
        .by_gsi1(&format!("EMAIL#ada.{}@example.org", USER.to_lowercase()))
        .await
        .is_empty());

    // A late update, older than the delete, is stale…
    let late = envelope(
        "user.updated",
        T0 + 3_600_005,
        user(USER, T0 + 3_600_000, "King"),
    );
    assert_eq!(app.deliver(&late, &msg_id()).await, "stale");
    // …and so is one that claims to be newer: Clerk never reuses a user id.
    let bogus = envelope(
        "user.updated",
        deleted_at + 10,
        user(USER, deleted_at + 5, "Zombie"),
    );
    assert_eq!(app.deliver(&bogus, &msg_id()).await, "stale");
    let after = app.get(&format!("USER#{USER}"), "PROFILE").await.unwrap();
    assert_eq!(after, tomb);
}

#[tokio::test]
async fn an_organization_tombstone_blocks_late_updates() {
    let app = TestApp::spawn().await;
    app.apply(
        "organization.deleted",
        T0 + 9_000,
        deleted("organization", ORG),
    )
    .await;
    let late = envelope(
        "organization.updated",
        T0 + 10,
        organization(ORG, T0 + 5, "Acme"),
    );
    assert_eq!(app.deliver(&late, &msg_id()).await, "stale");
    let org = app.get(&format!("ORG#{ORG}"), "PROFILE").await.unwrap();
    assert!(!org.contains_key("name"));
    assert!(!org.contains_key("gsi1pk"));
}

#[tokio::test]
async fn memberships_list_both_ways_and_may_arrive_before_their_parents() {
    let app = TestApp::spawn().await;
    let other_org = "org_2NNEqL2nrIRdJ194ndJqAHwOTHR";
    // Neither the organization nor the user exists yet.
    let m = envelope(
        "organizationMembership.created",
        T0,
        membership(ORG, USER, T0, "org:member"),
    );
    assert_eq!(app.deliver(&m, &msg_id()).await, "applied");
    let m2 = envelope(
        "organizationMembership.created",
        T0,
        membership(other_org, USER, T0, "org:admin"),
    );
    assert_eq!(app.deliver(&m2, &msg_id()).await, "applied");

    let item = app
        .get(&format!("ORG#{ORG}"), &format!("MEMBER#{USER}"))
        .await
        .unwrap();
    assert_eq!(s(&item, "role"), "org:member");
    assert_eq!(s(&item, "org_id"), ORG);
    assert_eq!(s(&item, "user_id"), USER);
    assert!(s(&item, "id").starts_with("orgmem_"));
    assert_eq!(
        item.get("permissions"),
        Some(&AttributeValue::L(vec![AttributeValue::S(
            "org:sys_memberships:read".into()
        )]))
    );
    // A user's organizations, and an organization's members.
    assert_eq!(app.by_gsi1(&format!("USER#{USER}")).await.len(), 2);
    assert_eq!(
        app.partition(&format!("ORG#{ORG}"), "MEMBER#").await.len(),
        1
    );
}

#[tokio::test]
async fn a_membership_never_resurrects_into_a_deleted_organization_or_for_a_deleted_user() {
    let app = TestApp::spawn().await;
    let other_user = "user_2NNEqL2nrIRdJ194ndJqAHwOTHR";
    app.apply(
        "organization.deleted",
        T0 + 9_000,
        deleted("organization", ORG),
    )
    .await;
    let into_deleted_org = envelope(
        "organizationMembership.created",
        T0 + 20_000,
        membership(ORG, other_user, T0 + 20_000, "org:member"),
    );
    assert_eq!(app.deliver(&into_deleted_org, &msg_id()).await, "stale");

    let live_org = "org_2NNEqL2nrIRdJ194ndJqAHwLIVE";
    app.apply("user.deleted", T0 + 9_000, deleted("user", USER))
        .await;
    let for_deleted_user = envelope(
        "organizationMembership.updated",
        T0 + 20_000,
        membership(live_org, USER, T0 + 20_000, "org:admin"),
    );
    assert_eq!(app.deliver(&for_deleted_user, &msg_id()).await, "stale");

    assert!(app
        .partition(&format!("ORG#{ORG}"), "MEMBER#")
        .await
        .is_empty());
    assert!(app
        .partition(&format!("ORG#{live_org}"), "MEMBER#")
        .await
        .is_empty());
}

#[tokio::test]
async fn membership_delete_after_its_update_applies_and_a_re_add_comes_back() {
    let app = TestApp::spawn().await;
    let key = (format!("ORG#{ORG}"), format!("MEMBER#{USER}"));
    let updated = membership(ORG, USER, T0 + 1_000, "org:admin");
    app.apply(
        "organizationMembership.updated",
        T0 + 1_005,
        updated.clone(),
    )
    .await;
    // Clerk's delete carries the same updated_at as the update it follows.
    let del = envelope("organizationMembership.deleted", T0 + 2_000, updated);
    assert_eq!(app.deliver(&del, &msg_id()).await, "applied");
    let tomb = app.get(&key.0, &key.1).await.unwrap();
    assert_eq!(tomb.get("deleted"), Some(&AttributeValue::Bool(true)));
    assert!(
        !tomb.contains_key("role") && !tomb.contains_key("data") && !tomb.contains_key("gsi1pk")
    );

    // The create that preceded everything arrives last: stale.
    let old_create = envelope(
        "organizationMembership.created",
        T0 + 5,
        membership(ORG, USER, T0, "org:member"),
    );
    assert_eq!(app.deliver(&old_create, &msg_id()).await, "stale");
    // Re-adding the member later is a newer version of the same key.
    let re_add = envelope(
        "organizationMembership.created",
        T0 + 60_000,
        membership(ORG, USER, T0 + 60_000, "org:member"),
    );
    assert_eq!(app.deliver(&re_add, &msg_id()).await, "applied");
    let back = app.get(&key.0, &key.1).await.unwrap();
    assert_eq!(s(&back, "role"), "org:member");
    assert!(!back.contains_key("deleted"));
}

async fn add_members(h: &clerk_webhooks::handler::Handler, org: &str, users: &[String]) {
    for u in users {
        let body = envelope(
            "organizationMembership.created",
            T0,
            membership(org, u, T0, "org:member"),
        );
        assert_eq!(deliver(h, &body, &msg_id()).await, "applied");
    }
}

#[tokio::test]
async fn organization_deleted_removes_every_membership_of_its_partition() {
    let app = TestApp::spawn().await;
    app.apply("organization.created", T0, organization(ORG, T0, "Acme"))
        .await;
    // More than one round of the cascade's concurrent deletes (16) worth of members.
    let users: Vec<String> = (0..30).map(|i| format!("user_member{i:02}")).collect();
    add_members(&app.handler, ORG, &users).await;
    let elsewhere = "org_2NNEqL2nrIRdJ194ndJqAHwKEEP";
    add_members(&app.handler, elsewhere, &users[..1]).await;

    let del = envelope(
        "organization.deleted",
        T0 + 9_000,
        deleted("organization", ORG),
    );
    assert_eq!(app.deliver(&del, &msg_id()).await, "applied");
    assert!(app
        .partition(&format!("ORG#{ORG}"), "MEMBER#")
        .await
        .is_empty());
    assert!(
        app.get(&format!("ORG#{ORG}"), "PROFILE").await.is_some(),
        "tombstone stays"
    );
    assert_eq!(
        app.partition(&format!("ORG#{elsewhere}"), "MEMBER#")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn user_deleted_removes_the_users_memberships_in_every_organization() {
    let app = TestApp::spawn().await;
    let orgs = ["org_a1", "org_b2", "org_c3"];
    for org in orgs {
        add_members(
            &app.handler,
            org,
            &[USER.to_owned(), "user_other".to_owned()],
        )
        .await;
    }
    let del = envelope("user.deleted", T0 + 9_000, deleted("user", USER));
    assert_eq!(app.deliver(&del, &msg_id()).await, "applied");
    for org in orgs {
        let members = app.partition(&format!("ORG#{org}"), "MEMBER#").await;
        let ids: Vec<String> = members.iter().map(|m| s(m, "user_id")).collect();
        assert_eq!(ids, ["user_other"], "{org}");
    }
    assert!(app.by_gsi1(&format!("USER#{USER}")).await.is_empty());
}

#[tokio::test]
async fn a_retry_after_a_failure_mid_cascade_completes_the_cascade() {
    let app = TestApp::spawn().await;
    let users: Vec<String> = (0..5).map(|i| format!("user_m{i}")).collect();
    add_members(&app.handler, ORG, &users).await;

    // First delivery: the transaction commits, then the function dies before the cascade
    // (as a 503 or a crash between the two calls would leave it).
    let id = msg_id();
    let body = envelope(
        "organization.deleted",
        T0 + 9_000,
        deleted("organization", ORG),
    );
    let event = Event::decode(&body, 1_716_883_260_000).unwrap();
    let plan = plan(&event, &id, &config(&app.table).settings, T0 + 9_100).unwrap();
    let committed = Store::new(app.webhook_client(), &app.table)
        .transact(&plan)
        .await
        .unwrap();
    assert_eq!(committed, Committed::Applied);
    assert_eq!(
        app.partition(&format!("ORG#{ORG}"), "MEMBER#").await.len(),
        5
    );

    // Svix retries the same message: a duplicate, and the cascade runs to completion.
    assert_eq!(app.deliver(&body, &id).await, "duplicate");
    assert!(app
        .partition(&format!("ORG#{ORG}"), "MEMBER#")
        .await
        .is_empty());
}

#[tokio::test]
async fn a_stale_delete_that_meets_a_tombstone_still_finishes_the_cascade() {
    let app = TestApp::spawn().await;
    app.apply("user.deleted", T0 + 9_000, deleted("user", USER))
        .await;
    // A membership left behind, e.g. by a cascade that read the index before it caught up.
    app.client
        .put_item()
        .table_name(&app.table)
        .item("pk", AttributeValue::S(format!("ORG#{ORG}")))
        .item("sk", AttributeValue::S(format!("MEMBER#{USER}")))
        .item("gsi1pk", AttributeValue::S(format!("USER#{USER}")))
        .item("gsi1sk", AttributeValue::S(format!("ORG#{ORG}")))
        .send()
        .await
        .unwrap();
    // Another, older delete message for the same user: stale, yet the cascade runs again.
    let older = envelope("user.deleted", T0 + 8_000, deleted("user", USER));
    assert_eq!(app.deliver(&older, &msg_id()).await, "stale");
    assert!(app
        .partition(&format!("ORG#{ORG}"), "MEMBER#")
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_svix_id_apply_exactly_once() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let id = msg_id();
    let body = envelope("user.created", T0, user(USER, T0, "Lovelace"));
    let mut deliveries = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (app, request) = (app.clone(), signed(&body, &id));
        deliveries.spawn(async move { app.send(request).await });
    }
    let mut applied = 0;
    while let Some(reply) = deliveries.join_next().await {
        let reply = reply.unwrap();
        match (
            reply.status.as_u16(),
            reply.body["status"].as_str().unwrap(),
        ) {
            (200, "applied") => applied += 1,
            // A delivery that lost a transaction race answers 503 and Svix retries it.
            (200, "duplicate") | (503, "retry") => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(app.scan().await.len(), 2, "one user, one event record");
    assert_eq!(app.deliver(&body, &id).await, "duplicate");
}

/// A non-cascading event costs exactly one DynamoDB call whatever it comes to: the event
/// record and the entity write are one transaction, and a duplicate or a stale event is told
/// apart by that transaction's cancellation reasons, not by a read first.
#[tokio::test]
async fn an_event_is_one_dynamodb_call_whether_applied_duplicate_or_stale() {
    let app = TestApp::spawn().await;
    let log = crate::helpers::call_log::CallLog::default();
    let handler =
        clerk_webhooks::handler::Handler::new(Ok(config(&app.table)), logged_client(&log));
    let body = envelope("user.created", T0 + 5, user(USER, T0, "Lovelace"));
    let id = msg_id();
    assert_eq!(deliver(&handler, &body, &id).await, "applied");
    assert_eq!(log.take_total(), 1);
    assert_eq!(deliver(&handler, &body, &id).await, "duplicate");
    assert_eq!(log.take_total(), 1);
    assert_eq!(deliver(&handler, &body, &msg_id()).await, "stale");
    assert_eq!(
        log.take(),
        std::collections::BTreeMap::from([("TransactWriteItems".to_owned(), 1)])
    );
}
