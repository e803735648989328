//! The rules for the families beyond users, organizations and memberships, against DynamoDB
//! Local: sessions, invitations, domains, billing, messages, and the cascades that reach them.

mod conformance;

use crate::helpers::*;
use aws_sdk_dynamodb::types::AttributeValue;
use clerk_webhooks::handler::Handler;
use clerk_webhooks::table::encoding;
use serde_json::{json, Value};

const USER: &str = "user_2NNEqL2nrIRdJ194ndJqAHwEfxC";
const ORG: &str = "org_2NNEqL2nrIRdJ194ndJqAHwEfxD";
const T0: i64 = 1_716_883_200_000;

fn session(id: &str, status: &str, updated_at: i64, user_updated_at: Option<i64>) -> Value {
    let mut data = json!({
        "object": "session", "id": id, "user_id": USER, "client_id": "client_1", "status": status,
        "last_active_at": updated_at, "expire_at": updated_at + 7 * 86_400_000,
        "abandon_at": updated_at + 30 * 86_400_000, "created_at": T0, "updated_at": updated_at,
        "last_active_organization_id": ORG,
        "latest_activity": {"object": "session_activity", "id": "sess_activity_1", "is_mobile": false,
            "device_type": "Macintosh", "browser_name": "Firefox", "browser_version": "131.0",
            "ip_address": "203.0.113.7", "city": "Paris", "country": "FR"}
    });
    if let Some(at) = user_updated_at {
        data["user"] = user(USER, at, &format!("Name{at}"));
    }
    data
}

fn invitation(id: &str, status: &str, updated_at: i64) -> Value {
    json!({"object": "organization_invitation", "id": id, "organization_id": ORG,
           "email_address": "Grace.Hopper@Example.com", "role": "org:member", "role_name": "Member",
           "status": status, "public_metadata": {}, "url": "https://example.org/accept",
           "expires_at": updated_at + 7 * 86_400_000, "created_at": T0, "updated_at": updated_at})
}

fn subscription_item(status: &str, updated_at: i64) -> Value {
    json!({"object": "commerce_subscription_item", "id": "csub_item_1", "status": status,
           "plan_id": "cplan_1", "subscription_id": "csub_1", "interval": "month",
           "period_start": T0, "period_end": T0 + 30 * 86_400_000,
           "payer": {"id": "cpayer_1", "user_id": USER, "organization_id": null,
                     "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"},
           "created_at": T0, "updated_at": updated_at})
}

#[tokio::test]
async fn sessions_follow_the_version_rule_and_expire_with_the_session() {
    let app = TestApp::spawn().await;
    let key = ("USER#".to_owned() + USER, "SESSION#sess_1".to_owned());
    assert_eq!(
        app.apply(
            "session.ended",
            T0 + 2_000,
            session("sess_1", "ended", T0 + 2_000, None)
        )
        .await,
        "applied"
    );
    // The older event arrives second: stale.
    assert_eq!(
        app.apply(
            "session.created",
            T0 + 1_000,
            session("sess_1", "active", T0 + 1_000, None)
        )
        .await,
        "stale"
    );
    let item = app.get(&key.0, &key.1).await.unwrap();
    assert_eq!(s(&item, "status"), "ended");
    assert_eq!(s(&item, "browser_name"), "Firefox");
    assert_eq!(
        n(&item, "expires_at"),
        (T0 + 2_000 + 30 * 86_400_000) / 1000
    );
    let text = format!("{item:?}");
    assert!(
        !text.contains("203.0.113.7"),
        "the IP address is not stored"
    );
    assert!(
        !item.contains_key("user")
            && serde_json::from_str::<Value>(&encoding::data_text(&item).unwrap().unwrap())
                .unwrap()
                .get("user")
                .is_none()
    );
}

#[tokio::test]
async fn a_session_carries_its_user_along_only_when_newer() {
    let app = TestApp::spawn().await;
    let user_key = format!("USER#{USER}");
    app.apply("user.updated", T0 + 5_000, user(USER, T0 + 5_000, "Stored"))
        .await;
    // An older copy of the user: the session applies, the user item stays.
    assert_eq!(
        app.apply(
            "session.created",
            T0 + 6_000,
            session("sess_1", "active", T0 + 6_000, Some(T0 + 1_000))
        )
        .await,
        "applied"
    );
    assert_eq!(
        s(&app.get(&user_key, "PROFILE").await.unwrap(), "last_name"),
        "Stored"
    );
    assert!(app.get(&user_key, "SESSION#sess_1").await.is_some());
    // A newer copy of the user: applied to the user item in the same transaction.
    assert_eq!(
        app.apply(
            "session.revoked",
            T0 + 9_000,
            session("sess_1", "revoked", T0 + 9_000, Some(T0 + 8_000))
        )
        .await,
        "applied"
    );
    let user = app.get(&user_key, "PROFILE").await.unwrap();
    assert_eq!(
        (s(&user, "last_name"), n(&user, "version")),
        (format!("Name{}", T0 + 8_000), T0 + 8_000)
    );
}

#[tokio::test]
async fn no_session_for_a_deleted_user_and_user_deleted_removes_its_sessions() {
    let app = TestApp::spawn().await;
    app.apply(
        "session.created",
        T0 + 1_000,
        session("sess_1", "active", T0 + 1_000, Some(T0)),
    )
    .await;
    app.apply(
        "session.pending",
        T0 + 1_500,
        session("sess_2", "pending", T0 + 1_500, None),
    )
    .await;
    assert_eq!(
        app.partition(&format!("USER#{USER}"), "SESSION#")
            .await
            .len(),
        2
    );
    assert_eq!(
        app.apply("user.deleted", T0 + 9_000, deleted("user", USER))
            .await,
        "applied"
    );
    assert!(app
        .partition(&format!("USER#{USER}"), "SESSION#")
        .await
        .is_empty());
    // A late session event, with or without the user inside, brings nothing back.
    assert_eq!(
        app.apply(
            "session.ended",
            T0 + 10_000,
            session("sess_1", "ended", T0 + 10_000, Some(T0 + 10_000))
        )
        .await,
        "stale"
    );
    assert_eq!(
        app.apply(
            "session.removed",
            T0 + 10_000,
            session("sess_2", "removed", T0 + 10_000, None)
        )
        .await,
        "stale"
    );
    assert!(app
        .partition(&format!("USER#{USER}"), "SESSION#")
        .await
        .is_empty());
    let tomb = app.get(&format!("USER#{USER}"), "PROFILE").await.unwrap();
    assert_eq!(tomb.get("deleted"), Some(&AttributeValue::Bool(true)));
}

#[tokio::test]
async fn organization_invitations_order_by_version_and_die_with_the_organization() {
    let app = TestApp::spawn().await;
    let (pk, sk) = (format!("ORG#{ORG}"), "INVITATION#orginv_1".to_owned());
    assert_eq!(
        app.apply(
            "organizationInvitation.accepted",
            T0 + 2_000,
            invitation("orginv_1", "accepted", T0 + 2_000)
        )
        .await,
        "applied"
    );
    assert_eq!(
        app.apply(
            "organizationInvitation.created",
            T0 + 1_000,
            invitation("orginv_1", "pending", T0 + 1_000)
        )
        .await,
        "stale"
    );
    let item = app.get(&pk, &sk).await.unwrap();
    assert_eq!(s(&item, "status"), "accepted");
    assert_eq!(n(&item, "expires_at"), (T0 + 2_000 + 7 * 86_400_000) / 1000);
    assert_eq!(app.by_gsi1("EMAIL#grace.hopper@example.com").await.len(), 1);

    app.apply("organizationDomain.created", T0 + 1_000, json!({"object": "organization_domain", "id": "orgdmn_1",
        "organization_id": ORG, "name": "example.org", "enrollment_mode": "manual_invitation", "updated_at": T0 + 1_000})).await;
    assert_eq!(app.by_gsi1(&format!("ORG#{ORG}")).await.len(), 1);
    assert_eq!(
        app.apply(
            "organization.deleted",
            T0 + 9_000,
            deleted("organization", ORG)
        )
        .await,
        "applied"
    );
    assert!(
        app.get(&pk, &sk).await.is_none(),
        "the invitation went with the org"
    );
    assert!(
        app.get("DOMAIN#orgdmn_1", "PROFILE").await.is_none(),
        "the domain went with the org"
    );
    // Late events for them are stale: the organization is a tombstone.
    assert_eq!(
        app.apply(
            "organizationInvitation.revoked",
            T0 + 10_000,
            invitation("orginv_1", "revoked", T0 + 10_000)
        )
        .await,
        "stale"
    );
    let late_domain = json!({"object": "organization_domain", "id": "orgdmn_1", "organization_id": ORG,
        "name": "example.org", "updated_at": T0 + 10_000});
    assert_eq!(
        app.apply("organizationDomain.updated", T0 + 10_000, late_domain)
            .await,
        "stale"
    );
    assert!(app.get(&pk, &sk).await.is_none());
}

#[tokio::test]
async fn deleted_domains_roles_and_permissions_stay_deleted() {
    let app = TestApp::spawn().await;
    for (event_type, kind, id, data) in [
        (
            "organizationDomain.updated",
            "DOMAIN",
            "orgdmn_1",
            json!({"id": "orgdmn_1", "organization_id": ORG, "name": "example.org"}),
        ),
        (
            "role.updated",
            "ROLE",
            "role_1",
            json!({"id": "role_1", "key": "org:x", "name": "X", "permissions": []}),
        ),
        (
            "permission.updated",
            "PERMISSION",
            "perm_1",
            json!({"id": "perm_1", "key": "org:x:y", "name": "Y", "type": "user"}),
        ),
    ] {
        let family = event_type.split('.').next().unwrap();
        assert_eq!(
            app.apply(
                &format!("{family}.deleted"),
                T0 + 5_000,
                json!({"id": id, "deleted": true})
            )
            .await,
            "applied"
        );
        let mut late = data;
        late["updated_at"] = json!(T0 + 6_000);
        assert_eq!(
            app.apply(event_type, T0 + 6_000, late).await,
            "stale",
            "{event_type}"
        );
        let tomb = app.get(&format!("{kind}#{id}"), "PROFILE").await.unwrap();
        assert_eq!(
            tomb.get("deleted"),
            Some(&AttributeValue::Bool(true)),
            "{kind}"
        );
        assert!(!tomb.contains_key("name") && !tomb.contains_key("gsi1pk"));
    }
}

#[tokio::test]
async fn a_terminal_billing_status_is_not_undone_by_a_late_older_event() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.apply(
            "subscriptionItem.ended",
            T0 + 9_000,
            subscription_item("ended", T0 + 9_000)
        )
        .await,
        "applied"
    );
    assert_eq!(
        app.apply(
            "subscriptionItem.active",
            T0 + 3_000,
            subscription_item("active", T0 + 3_000)
        )
        .await,
        "stale"
    );
    let item = app
        .get("SUBSCRIPTION_ITEM#csub_item_1", "PROFILE")
        .await
        .unwrap();
    assert_eq!(
        (s(&item, "status"), s(&item, "payer_user_id")),
        ("ended".into(), USER.into())
    );
    let paid_for = app.by_gsi1(&format!("PAYER#{USER}")).await;
    assert_eq!(paid_for.len(), 1);
    assert_eq!(s(&paid_for[0], "gsi1sk"), "SUBSCRIPTION_ITEM#csub_item_1");
}

#[tokio::test]
async fn messages_leave_only_the_event_record_unless_metadata_is_opted_in() {
    let email = json!({"object": "email", "id": "ema_1", "slug": "verification_code", "user_id": USER,
        "to_email_address": "ada@example.org", "subject": "Code 424242", "body": "424242",
        "status": "queued", "data": {"otp_code": "424242"}, "delivered_by_clerk": true});
    let mut app = TestApp::spawn().await;
    let id = msg_id();
    assert_eq!(
        app.deliver(&envelope("email.created", T0, email.clone()), &id)
            .await,
        "applied"
    );
    assert_eq!(
        app.deliver(&envelope("email.created", T0, email.clone()), &id)
            .await,
        "duplicate"
    );
    let items = app.scan().await;
    assert_eq!(items.len(), 1);
    assert_eq!(s(&items[0], "pk"), format!("EVENT#{id}"));

    let config = clerk_webhooks::config::Config::from_lookup(|name| match name {
        "CLERK_WEBHOOK_SIGNING_SECRET" => Some(SECRET.into()),
        "TABLE_NAME" => Some(app.table.clone()),
        "STORE_MESSAGE_METADATA" => Some("true".into()),
        _ => None,
    });
    // The same table, now under a handler that stores message metadata.
    app.handler = Handler::new(config, app.webhook_client());
    assert_eq!(app.apply("email.created", T0, email).await, "applied");
    let item = app.get("MESSAGE#ema_1", "PROFILE").await.unwrap();
    assert_eq!(
        (s(&item, "slug"), s(&item, "user_id")),
        ("verification_code".into(), USER.into())
    );
    let text = format!("{:?}", app.scan().await);
    assert!(
        !text.contains("424242") && !text.contains("ada@example.org"),
        "message content was stored"
    );
    // Message metadata names the user: it goes when the user is deleted.
    app.apply("user.deleted", T0 + 9_000, deleted("user", USER))
        .await;
    assert!(app.get("MESSAGE#ema_1", "PROFILE").await.is_none());
}
