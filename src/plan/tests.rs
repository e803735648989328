use super::*;
use crate::event::Event;
use crate::table::encoding::{self, JsonItem, Unfit};
use crate::table::Item;
use serde_json::{json, Value};

const NOW: i64 = 1_716_883_300_000;
const SVIX: &str = "msg_2jJ7cW4q5ZLz1Lq9fYqkVwN3Xyz";

fn event(event_type: &str, timestamp: i64, data: Value) -> Event {
    let body = json!({"object": "event", "type": event_type, "timestamp": timestamp,
                      "instance_id": "ins_1", "data": data});
    Event::decode(&serde_json::to_vec(&body).unwrap(), NOW).unwrap()
}

/// An item as JSON, `data` decoded: what the assertions read.
fn json(item: &Item) -> JsonItem {
    encoding::to_json(item).unwrap()
}

fn plan_of(e: &Event) -> Plan {
    plan(e, SVIX, &Settings::default(), NOW).expect("a synced type")
}

fn user_event() -> Event {
    event("user.updated", 1_716_883_200_500, user_data())
}

fn user_data() -> Value {
    json!({
        "id": "user_1", "first_name": "Jane", "last_name": "Doe", "username": null,
        "primary_email_address_id": "idn_2",
        "email_addresses": [{"id": "idn_1", "email_address": "first@example.org"},
                            {"id": "idn_2", "email_address": "Jane@Example.ORG"}],
        "public_metadata": {"plan": "pro"},
        "created_at": 1_716_000_000_000_i64, "updated_at": 1_716_883_200_000_i64
    })
}

fn membership_data() -> Value {
    json!({"id": "orgmem_1", "role": "org:admin", "permissions": ["org:sys_memberships:read"],
           "organization": {"id": "org_1", "name": "Acme"},
           "public_user_data": {"user_id": "user_1", "first_name": "Jane"},
           "created_at": 1_716_000_000_000_i64, "updated_at": 1_716_883_200_000_i64})
}

fn put(w: &Write) -> (JsonItem, i64, Guard) {
    match w {
        Write::Put {
            item,
            version,
            guard,
        } => (json(item), *version, *guard),
        other => panic!("expected a put, got {other:?}"),
    }
}

#[test]
fn user_upsert_is_event_record_plus_guarded_put() {
    let p = plan_of(&user_event());
    assert_eq!(p.writes.len(), 2);
    assert_eq!(p.cascade, None);
    let Write::RecordEvent(record) = &p.writes[0] else {
        panic!("first write is the record")
    };
    let record = json(record);
    assert_eq!(record["pk"], json!(format!("EVENT#{SVIX}")));
    assert_eq!(record["type"], json!("user.updated"));
    assert_eq!(record["expires_at"], json!(NOW / 1000 + 30 * 86_400));
    let (item, version, guard) = put(&p.writes[1]);
    assert_eq!(version, 1_716_883_200_000, "version is data.updated_at");
    assert_eq!(guard, Guard::NewerAndNotDeleted);
    assert_eq!(item["pk"], json!("USER#user_1"));
    assert_eq!(item["sk"], json!("PROFILE"));
    assert_eq!(item["email"], json!("Jane@Example.ORG"));
    assert_eq!(item["gsi1pk"], json!("EMAIL#jane@example.org"));
    assert_eq!(item["gsi1sk"], json!("USER#user_1"));
    assert_eq!(item["public_metadata"], json!({"plan": "pro"}));
    assert_eq!(item["data"]["first_name"], json!("Jane"));
    assert_eq!(item["last_svix_id"], json!(SVIX));
    assert!(!item.contains_key("username"), "null fields are left out");
}

#[test]
fn a_user_with_a_username_or_an_external_id_gets_the_lookup_index_keys() {
    let mut data = user_data();
    data["username"] = json!("Jane_D");
    data["external_id"] = json!("crm-4711");
    let (item, ..) = put(&plan_of(&event("user.updated", 1, data.clone())).writes[1]);
    assert_eq!(item["username_key"], json!("jane_d"), "lower-cased");
    assert_eq!(item["external_id_key"], json!("crm-4711"), "exact");
    // Empty or not a string: no key (an empty index key is refused by DynamoDB).
    data["username"] = json!("");
    data["external_id"] = json!(42);
    let (item, ..) = put(&plan_of(&event("user.updated", 1, data)).writes[1]);
    assert!(!item.contains_key("username_key") && !item.contains_key("external_id_key"));
    // A sync on demand writes the same item, marked as its own.
    let e = event("user.created", 1, user_data());
    let synced = plan_sync(&e, &Settings::default(), NOW).unwrap();
    let (item, ..) = put(&synced.writes[0]);
    assert_eq!(item["source"], json!("sync"));
    assert!(!item.contains_key("last_svix_id"));
}

#[test]
fn a_backfill_plan_is_the_webhook_plan_without_the_event_record() {
    let cases = [
        ("user.created", user_data()),
        (
            "organization.created",
            json!({"id": "org_1", "name": "Acme", "slug": "acme", "updated_at": 1_716_883_200_000_i64}),
        ),
        ("organizationMembership.created", membership_data()),
    ];
    for (event_type, data) in cases {
        let e = event(event_type, 1_716_883_200_500, data);
        let webhook = plan_of(&e);
        let backfill = plan_backfill(&e, &Settings::default(), NOW).unwrap();
        assert_eq!(backfill.cascade, None);
        assert_eq!(
            backfill.writes.len() + 1,
            webhook.writes.len(),
            "{event_type}: no event record"
        );
        assert!(!backfill
            .writes
            .iter()
            .any(|w| matches!(w, Write::RecordEvent(_))));
        // The same parent checks, in the same order.
        assert_eq!(backfill.writes[1..], webhook.writes[2..], "{event_type}");
        let (ours, version, guard) = put(&backfill.writes[0]);
        let (theirs, v, g) = put(&webhook.writes[1]);
        assert_eq!(
            (version, guard),
            (v, g),
            "{event_type}: same version and guard"
        );
        assert_eq!(ours["source"], json!("backfill"));
        assert_eq!(theirs["source"], json!("webhook"));
        assert!(!ours.contains_key("last_svix_id"));
        let mut same = theirs.clone();
        same.remove("last_svix_id");
        same.insert("source".into(), json!("backfill"));
        assert_eq!(ours, same, "{event_type}: otherwise the same item");
    }
}

#[test]
fn version_falls_back_to_the_envelope_timestamp() {
    let e = event("user.created", 1_716_883_200, json!({"id": "user_1"}));
    let p = plan_of(&e);
    let (item, version, _) = put(&p.writes[1]);
    assert_eq!(version, 1_716_883_200_000, "seconds normalised to ms");
    assert!(!item.contains_key("gsi1pk"), "no email, no email index key");
}

#[test]
fn organization_upsert_indexes_the_slug() {
    let e = event(
        "organization.created",
        NOW,
        json!({"id": "org_1", "name": "Acme", "slug": "acme", "updated_at": 1_716_883_200_000_i64}),
    );
    let p = plan_of(&e);
    let (item, _, guard) = put(&p.writes[1]);
    assert_eq!(guard, Guard::NewerAndNotDeleted);
    assert_eq!(
        (&item["pk"], &item["gsi1pk"], &item["gsi1sk"]),
        (
            &json!("ORG#org_1"),
            &json!("SLUG#acme"),
            &json!("ORG#org_1")
        )
    );
}

#[test]
fn membership_upsert_checks_both_parents_are_not_deleted() {
    let p = plan_of(&event(
        "organizationMembership.created",
        NOW,
        membership_data(),
    ));
    assert_eq!(p.writes.len(), 4);
    let (item, _, guard) = put(&p.writes[1]);
    assert_eq!(guard, Guard::Newer);
    assert_eq!(item["pk"], json!("ORG#org_1"));
    assert_eq!(item["sk"], json!("MEMBER#user_1"));
    assert_eq!(item["gsi1pk"], json!("USER#user_1"));
    assert_eq!(item["gsi1sk"], json!("ORG#org_1"));
    assert_eq!(item["permissions"], json!(["org:sys_memberships:read"]));
    assert_eq!(
        p.writes[2],
        Write::RequireNotDeleted(Key::organization("org_1"))
    );
    assert_eq!(p.writes[3], Write::RequireNotDeleted(Key::user("user_1")));
}

fn assert_no_personal_data(item: &JsonItem) {
    for gone in [
        "email",
        "first_name",
        "last_name",
        "username",
        "image_url",
        "data",
        "public_metadata",
        "name",
        "slug",
        "gsi1pk",
        "gsi1sk",
        "role",
        "permissions",
    ] {
        assert!(!item.contains_key(gone), "tombstone keeps {gone}");
    }
    assert_eq!(item["deleted"], json!(true));
}

#[test]
fn user_delete_is_a_tombstone_then_a_cascade() {
    let e = event(
        "user.deleted",
        1_716_883_250_000,
        json!({"id": "user_1", "deleted": true}),
    );
    let p = plan_of(&e);
    assert_eq!(
        p.cascade,
        Some(Cascade::User {
            user_id: "user_1".into()
        })
    );
    let (item, version, guard) = put(&p.writes[1]);
    assert_eq!((version, guard), (1_716_883_250_000, Guard::Newer));
    assert_eq!(item["deleted_at"], json!(1_716_883_250_000_i64));
    assert_eq!(item["expires_at"], json!(NOW / 1000 + 90 * 86_400));
    assert_no_personal_data(&item);
}

#[test]
fn organization_delete_cascades_to_its_partition() {
    let e = event(
        "organization.deleted",
        NOW,
        json!({"id": "org_1", "slug": "acme", "deleted": true}),
    );
    let p = plan_of(&e);
    assert_eq!(
        p.cascade,
        Some(Cascade::Organization {
            org_id: "org_1".into()
        })
    );
    assert_no_personal_data(&put(&p.writes[1]).0);
}

#[test]
fn membership_delete_outranks_the_update_it_follows() {
    // Clerk's membership.deleted carries the membership's last updated_at.
    let e = event(
        "organizationMembership.deleted",
        1_716_883_260_000,
        membership_data(),
    );
    let p = plan_of(&e);
    assert_eq!(p.writes.len(), 2, "deletes need no parent checks");
    let (item, version, _) = put(&p.writes[1]);
    assert_eq!(version, 1_716_883_260_000);
    assert!(version > upsert_version(Some(1_716_883_200_000), 0));
    assert_eq!(item["sk"], json!("MEMBER#user_1"));
    assert_eq!(item["user_id"], json!("user_1"));
    assert_no_personal_data(&item);
}

#[test]
fn unhandled_types_plan_nothing() {
    let e = event("somethingNew.happened", NOW, json!({"id": "x_1"}));
    assert_eq!(plan(&e, SVIX, &Settings::default(), NOW), None);
}

fn session_data() -> Value {
    json!({"object": "session", "id": "sess_1", "user_id": "user_1", "client_id": "client_1",
           "status": "active", "last_active_at": 1_716_883_300_000_i64,
           "expire_at": 1_717_488_000_000_i64, "abandon_at": 1_719_475_200_000_i64,
           "created_at": 1_716_883_200_000_i64, "updated_at": 1_716_883_300_000_i64,
           "latest_activity": {"object": "session_activity", "id": "sess_activity_1",
               "device_type": "Macintosh", "is_mobile": false, "browser_name": "Firefox",
               "browser_version": "131.0", "ip_address": "203.0.113.7", "city": "Paris", "country": "FR"},
           "user": {"object": "user", "id": "user_1", "first_name": "Jane",
                    "updated_at": 1_716_883_100_000_i64}})
}

#[test]
fn session_item_without_its_user_or_ip_address_and_expiring_with_the_session() {
    let p = plan_of(&event("session.created", NOW, session_data()));
    let (item, version, guard) = put(&p.writes[1]);
    assert_eq!((version, guard), (1_716_883_300_000, Guard::Newer));
    assert_eq!(
        (&item["pk"], &item["sk"]),
        (&json!("USER#user_1"), &json!("SESSION#sess_1"))
    );
    assert_eq!(item["status"], json!("active"));
    assert_eq!(item["browser_name"], json!("Firefox"));
    assert_eq!(
        item["expires_at"],
        json!(1_719_475_200),
        "the later of expire_at and abandon_at, in s"
    );
    assert!(item["data"].get("user").is_none());
    assert!(item["data"]["latest_activity"].get("ip_address").is_none());
    assert!(!serde_json::to_string(&item)
        .unwrap()
        .contains("203.0.113.7"));
    // The embedded user is carried along as a refresh of the user item.
    let Write::Refresh {
        item: user,
        version,
    } = &p.writes[2]
    else {
        panic!("{:?}", p.writes[2])
    };
    let user = json(user);
    assert_eq!(*version, 1_716_883_100_000);
    assert_eq!(user["pk"], json!("USER#user_1"));
    assert_eq!(user["first_name"], json!("Jane"));
}

#[test]
fn a_session_without_a_user_object_checks_the_user_is_not_deleted() {
    let mut data = session_data();
    data.as_object_mut().unwrap().remove("user");
    let p = plan_of(&event("session.revoked", NOW, data));
    assert_eq!(p.writes[2], Write::RequireNotDeleted(Key::user("user_1")));
}

#[test]
fn organization_invitation_lives_in_the_org_partition_until_it_expires() {
    let data = json!({"id": "orginv_1", "organization_id": "org_1", "email_address": "Grace@Example.com",
                      "role": "org:member", "status": "pending", "expires_at": 1_717_488_000_000_i64,
                      "updated_at": 1_716_883_200_000_i64});
    let p = plan_of(&event("organizationInvitation.created", NOW, data));
    let (item, _, _) = put(&p.writes[1]);
    assert_eq!(
        (&item["pk"], &item["sk"]),
        (&json!("ORG#org_1"), &json!("INVITATION#orginv_1"))
    );
    assert_eq!(
        (&item["gsi1pk"], &item["gsi1sk"]),
        (&json!("EMAIL#grace@example.com"), &json!("ORGINV#orginv_1"))
    );
    assert_eq!(item["expires_at"], json!(1_717_488_000));
    assert_eq!(item["status"], json!("pending"));
    assert_eq!(
        p.writes[2],
        Write::RequireNotDeleted(Key::organization("org_1"))
    );
}

#[test]
fn domains_are_keyed_by_their_own_id_and_listed_by_org() {
    let data = json!({"id": "orgdmn_1", "organization_id": "org_1", "name": "example.org",
                      "enrollment_mode": "automatic_invitation", "updated_at": 1_716_883_200_000_i64});
    let p = plan_of(&event("organizationDomain.updated", NOW, data));
    let (item, _, guard) = put(&p.writes[1]);
    assert_eq!(guard, Guard::NewerAndNotDeleted);
    assert_eq!(
        (&item["pk"], &item["sk"]),
        (&json!("DOMAIN#orgdmn_1"), &json!("PROFILE"))
    );
    assert_eq!(
        (&item["gsi1pk"], &item["gsi1sk"]),
        (&json!("ORG#org_1"), &json!("DOMAIN#orgdmn_1"))
    );
    assert_eq!(
        p.writes[2],
        Write::RequireNotDeleted(Key::organization("org_1"))
    );
    let del = plan_of(&event(
        "organizationDomain.deleted",
        NOW,
        json!({"id": "orgdmn_1", "deleted": true}),
    ));
    assert_eq!(put(&del.writes[1]).0["pk"], json!("DOMAIN#orgdmn_1"));
    assert_no_personal_data(&put(&del.writes[1]).0);
}

#[test]
fn instance_invitations_and_waitlist_entries_are_found_by_email() {
    let inv = json!({"id": "inv_1", "email_address": "K@Example.com", "status": "pending",
                     "expires_at": 1_717_488_000_000_i64, "updated_at": 1_716_883_200_000_i64});
    let p = plan_of(&event("invitation.created", NOW, inv));
    let (item, _, _) = put(&p.writes[1]);
    assert_eq!(item["pk"], json!("INVITATION#inv_1"));
    assert_eq!(
        (&item["gsi1pk"], &item["gsi1sk"]),
        (&json!("EMAIL#k@example.com"), &json!("INVITATION#inv_1"))
    );
    let wle = json!({"id": "wle_1", "email_address": "M@Example.com", "status": "pending", "is_locked": false});
    let p = plan_of(&event("waitlistEntry.created", NOW, wle));
    let (item, version, _) = put(&p.writes[1]);
    assert_eq!(version, NOW, "no updated_at: the envelope timestamp");
    assert_eq!(
        (&item["pk"], &item["gsi1pk"]),
        (&json!("WAITLIST#wle_1"), &json!("EMAIL#m@example.com"))
    );
    assert_eq!(item["is_locked"], json!(false));
}

#[test]
fn roles_keep_their_permission_keys_and_deletes_are_tombstones() {
    let role = json!({"id": "role_1", "key": "org:billing", "name": "Billing", "description": "d",
                      "permissions": [{"object": "permission", "id": "perm_1", "key": "org:invoices:read"}, "org:x:y"],
                      "updated_at": 1_716_883_200_000_i64});
    let p = plan_of(&event("role.updated", NOW, role));
    let (item, _, guard) = put(&p.writes[1]);
    assert_eq!(guard, Guard::NewerAndNotDeleted);
    assert_eq!(item["permissions"], json!(["org:invoices:read", "org:x:y"]));
    assert_eq!(item["key"], json!("org:billing"));
    let del = plan_of(&event(
        "role.deleted",
        NOW,
        json!({"id": "role_1", "deleted": true, "slug": null}),
    ));
    assert_eq!(put(&del.writes[1]).0["pk"], json!("ROLE#role_1"));
    let perm = plan_of(&event(
        "permission.created",
        NOW,
        json!({"id": "perm_1", "key": "org:invoices:read", "type": "user"}),
    ));
    assert_eq!(put(&perm.writes[1]).0["type"], json!("user"));
    let del = plan_of(&event(
        "permission.deleted",
        NOW,
        json!({"id": "perm_1", "deleted": true}),
    ));
    assert_eq!(put(&del.writes[1]).0["pk"], json!("PERMISSION#perm_1"));
}

#[test]
fn billing_items_are_listed_by_payer_user_or_organization() {
    let sub = json!({"object": "commerce_subscription", "id": "csub_1", "status": "active",
                     "payer": {"user_id": "user_1", "organization_id": null}, "updated_at": 1_716_883_200_000_i64});
    let p = plan_of(&event("subscription.active", NOW, sub));
    let (item, _, _) = put(&p.writes[1]);
    assert_eq!(
        (&item["pk"], &item["entity"]),
        (&json!("SUBSCRIPTION#csub_1"), &json!("subscription"))
    );
    assert_eq!(
        (&item["gsi1pk"], &item["gsi1sk"]),
        (&json!("PAYER#user_1"), &json!("SUBSCRIPTION#csub_1"))
    );
    assert_eq!(item["payer_user_id"], json!("user_1"));
    let pa = json!({"id": "pa_1", "status": "paid", "payer": {"organization_id": "org_1"}});
    let p = plan_of(&event("paymentAttempt.updated", NOW, pa));
    let (item, _, _) = put(&p.writes[1]);
    assert_eq!(
        (&item["pk"], &item["gsi1pk"]),
        (&json!("PAYMENT_ATTEMPT#pa_1"), &json!("PAYER#org_1"))
    );
    // Routed on type: data.object says something else here.
    let it = json!({"object": "subscription_item", "id": "csub_item_1", "status": "ended"});
    let p = plan_of(&event("subscriptionItem.ended", NOW, it));
    assert_eq!(
        put(&p.writes[1]).0["pk"],
        json!("SUBSCRIPTION_ITEM#csub_item_1")
    );
}

fn email_data() -> Value {
    json!({"object": "email", "id": "ema_1", "slug": "verification_code", "user_id": "user_1",
           "to_email_address": "jane@example.org", "subject": "Your code 424242",
           "body": "<p>424242</p>", "status": "queued", "data": {"otp_code": "424242"}})
}

#[test]
fn messages_write_only_the_event_record_by_default() {
    let p = plan_of(&event("email.created", NOW, email_data()));
    assert_eq!(p.writes.len(), 1);
    assert!(matches!(p.writes[0], Write::RecordEvent(_)));
}

#[test]
fn message_metadata_is_opt_in_and_never_holds_content() {
    let settings = Settings {
        message_metadata: true,
        ..Settings::default()
    };
    let p = plan(
        &event("email.created", NOW, email_data()),
        SVIX,
        &settings,
        NOW,
    )
    .unwrap();
    let (item, _, _) = put(&p.writes[1]);
    assert_eq!(
        (&item["pk"], &item["entity"], &item["slug"]),
        (
            &json!("MESSAGE#ema_1"),
            &json!("email"),
            &json!("verification_code")
        )
    );
    assert_eq!(
        (&item["gsi1pk"], &item["gsi1sk"]),
        (&json!("USER#user_1"), &json!("MESSAGE#ema_1"))
    );
    let text = serde_json::to_string(&item).unwrap();
    for secret in ["424242", "jane@example.org", "subject", "body"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let sms = json!({"object": "sms_message", "id": "sms_1", "to_phone_number": "+15555550100",
                     "message": "code 424242", "status": "queued", "created_at_ms": 1_716_883_200_000_i64});
    let p = plan(&event("sms.created", NOW, sms), SVIX, &settings, NOW).unwrap();
    let (item, _, _) = put(&p.writes[1]);
    assert_eq!(item["created_at"], json!(1_716_883_200_000_i64));
    assert!(!serde_json::to_string(&item).unwrap().contains("5555550100"));
}

#[test]
fn values_dynamodb_cannot_hold_are_left_out_of_the_top_level_and_named() {
    let mut data = user_data();
    data["public_metadata"] = json!({"": 1});
    data["first_name"] = json!(1e300);
    let p = plan_of(&event("user.updated", 1_716_883_200_500, data));
    assert_eq!(
        p.left_out,
        [
            LeftOut {
                field: "first_name",
                why: Unfit::Number
            },
            LeftOut {
                field: "public_metadata",
                why: Unfit::EmptyKey
            }
        ]
    );
    let (item, _, _) = put(&p.writes[1]);
    assert!(!item.contains_key("public_metadata") && !item.contains_key("first_name"));
    assert_eq!(
        item["data"]["public_metadata"],
        json!({"": 1}),
        "kept in data"
    );
    assert_eq!(item["last_name"], json!("Doe"));
}
