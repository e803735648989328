//! The item encoding against DynamoDB Local: hostile but valid values (one per DynamoDB limit,
//! and combinations) in every metadata Clerk sends are applied through the function URL and
//! read back exactly; random JSON round-trips and DynamoDB Local accepts every item; the
//! limits the encoding checks are DynamoDB Local's own; envelopes from before Clerk added
//! `timestamp` and `instance_id` apply in order; and items in the earlier form (`data` as a
//! native map) are still read.

use aws_sdk_dynamodb::types::AttributeValue;
use clerk_webhooks::event::Event;
use clerk_webhooks::plan::plan;
use clerk_webhooks::store::Outcome;
use clerk_webhooks::table::encoding::{self, MAX_DEPTH};
use lambda_http::http::StatusCode;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{json, Value};

use crate::helpers::*;

const T0: i64 = 1_716_883_200_000;

fn nested_maps(levels: usize, leaf: &str) -> String {
    format!("{}{leaf}{}", r#"{"a":"#.repeat(levels), "}".repeat(levels))
}

fn nested_lists(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

/// Text nobody can compress much: what a large opaque value in metadata looks like.
fn noise(bytes: usize, seed: u64) -> String {
    let mut rng = crate::helpers::rng::Rng::new(seed);
    (0..bytes)
        .map(|_| char::from(b'0' + rng.below(75) as u8))
        .filter(|c| *c != '\\')
        .collect()
}

/// Valid JSON that Clerk accepts in metadata and DynamoDB cannot hold as a native value, one
/// per limit and some combinations; and two that it can (a large string, a 38-digit number).
/// Whether a top-level copy is expected: only where DynamoDB holds the value and the item
/// stays under 400 KB with it.
fn hostile_values() -> Vec<(&'static str, String, bool)> {
    let cases: Vec<(&'static str, String)> = vec![
        (
            "maps a level past DynamoDB's 32",
            nested_maps(MAX_DEPTH + 1, "1"),
        ),
        ("lists 129 levels deep", nested_lists(129)),
        ("lists 4,000 levels deep", nested_lists(4_000)),
        ("a number above DynamoDB's range", "1e300".into()),
        ("a number below DynamoDB's range", "1e-200".into()),
        ("a negative number past the range", "-1e126".into()),
        (
            "39 significant digits",
            "123456789012345678901234567890123456789".into(),
        ),
        ("an empty key", r#"{"":"x"}"#.into()),
        ("an empty key deep inside", r#"{"a":[{"b":{"":1}}]}"#.into()),
        ("an unpaired surrogate", r#""\ud800 alone""#.into()),
        (
            "all of them together",
            format!(
                r#"{{"":1e300,"deep":{},"tiny":-1e-200,"s":"\udfff","n":[1.000000000000000000000000000000000000001]}}"#,
                nested_lists(200)
            ),
        ),
        (
            "38 digits, which fit",
            "12345678901234567890123456789012345678".into(),
        ),
        ("300 KB of noise", format!("\"{}\"", noise(300 * 1024, 7))),
    ];
    cases
        .into_iter()
        .map(|(what, value)| {
            let copied = what.starts_with("38 digits");
            (what, value, copied)
        })
        .collect()
}

fn user_data(id: &str, updated_at: i64, public: &str, unsafe_: &str) -> String {
    format!(
        r#"{{"object":"user","id":"{id}","created_at":{T0},"updated_at":{updated_at},"first_name":"Ada","last_name":"Lovelace","primary_email_address_id":"idn_1","email_addresses":[{{"id":"idn_1","object":"email_address","email_address":"{id}@example.org"}}],"public_metadata":{public},"private_metadata":{{}},"unsafe_metadata":{unsafe_}}}"#
    )
}

fn organization_data(id: &str, metadata: &str) -> String {
    format!(
        r#"{{"object":"organization","id":"{id}","name":"Acme","slug":"{id}","created_at":{T0},"updated_at":{T0},"public_metadata":{metadata},"private_metadata":{{}}}}"#
    )
}

fn membership_data(id: &str, org_id: &str, user_id: &str, metadata: &str) -> String {
    format!(
        r#"{{"object":"organization_membership","id":"{id}","role":"org:member","created_at":{T0},"updated_at":{T0},"public_metadata":{metadata},"private_metadata":{{}},"organization":{{"object":"organization","id":"{org_id}","name":"Acme","public_metadata":{{}}}},"public_user_data":{{"user_id":"{user_id}","first_name":"Ada"}}}}"#
    )
}

/// A signed delivery of `data` (JSON text, sent as it is).
fn body(event_type: &str, timestamp_ms: i64, data: &str) -> Vec<u8> {
    format!(
        r#"{{"object":"event","type":"{event_type}","timestamp":{timestamp_ms},"instance_id":"ins_1","data":{data}}}"#
    )
    .into_bytes()
}

async fn send(app: &TestApp, body: &[u8]) -> (StatusCode, Value) {
    let reply = app.send(signed(body, &msg_id())).await;
    (reply.status, reply.body)
}

/// The item's `data`, as stored, decoded.
fn stored_data(item: &Item) -> String {
    encoding::data_text(item)
        .unwrap()
        .expect("an entity keeps its data")
}

#[tokio::test]
async fn hostile_values_in_every_metadata_are_applied_and_read_back_exactly() {
    let app = TestApp::spawn().await;
    let plain = r#"{"plan":"pro"}"#;
    for (n, (what, value, copied)) in hostile_values().into_iter().enumerate() {
        // In a user's unsafe_metadata (what an end user writes from the browser), then in its
        // public_metadata, which is also a top-level attribute.
        for (place, public, unsafe_) in [
            ("unsafe_metadata", plain, value.as_str()),
            ("public_metadata", value.as_str(), plain),
        ] {
            let id = format!("user_h{n}{}", &place[..2]);
            let data = user_data(&id, T0, public, unsafe_);
            let (status, reply) = send(&app, &body("user.updated", T0 + 5, &data)).await;
            assert_eq!(
                (status, reply["status"].as_str()),
                (StatusCode::OK, Some("applied")),
                "{what} in {place}: {reply}"
            );
            let item = app.get(&format!("USER#{id}"), "PROFILE").await.unwrap();
            assert_eq!(stored_data(&item), data, "{what} in {place}: data is exact");
            assert_eq!(s(&item, "email"), format!("{id}@example.org"));
            if place == "public_metadata" {
                assert_eq!(
                    item.contains_key("public_metadata"),
                    copied,
                    "{what}: a native copy exactly when DynamoDB can hold it"
                );
            }
            // The same user's next update applies.
            let next = user_data(&id, T0 + 1_000, plain, plain);
            let (status, reply) = send(&app, &body("user.updated", T0 + 1_005, &next)).await;
            assert_eq!(reply["status"], "applied", "{what}: next update {status}");
            let item = app.get(&format!("USER#{id}"), "PROFILE").await.unwrap();
            assert_eq!(stored_data(&item), next);
        }
        // An organization's metadata, and a membership's (whose organization carries it too).
        let org = format!("org_h{n}");
        let data = organization_data(&org, &value);
        let (_, reply) = send(&app, &body("organization.updated", T0 + 5, &data)).await;
        assert_eq!(
            reply["status"], "applied",
            "{what} in an organization: {reply}"
        );
        let item = app.get(&format!("ORG#{org}"), "PROFILE").await.unwrap();
        assert_eq!(stored_data(&item), data);
        assert_eq!(s(&item, "name"), "Acme");
        let data = membership_data(&format!("orgmem_h{n}"), &org, &format!("user_m{n}"), &value);
        let (_, reply) = send(&app, &body("organizationMembership.created", T0 + 5, &data)).await;
        assert_eq!(
            reply["status"], "applied",
            "{what} in a membership: {reply}"
        );
        let item = app
            .get(&format!("ORG#{org}"), &format!("MEMBER#user_m{n}"))
            .await
            .unwrap();
        assert_eq!(stored_data(&item), data);
        assert_eq!(s(&item, "role"), "org:member");
    }
}

#[tokio::test]
async fn emails_and_slugs_longer_than_a_key_are_indexed_and_kept_exactly() {
    let app = TestApp::spawn().await;
    let long = format!("{}@example.org", "a".repeat(3_000));
    let mut data = user(USER_LONG, T0, "Lovelace");
    data["email_addresses"][0]["email_address"] = json!(long);
    data["primary_email_address_id"] = data["email_addresses"][0]["id"].clone();
    assert_eq!(app.apply("user.created", T0, data).await, "applied");
    let item = app
        .get(&format!("USER#{USER_LONG}"), "PROFILE")
        .await
        .unwrap();
    assert_eq!(
        s(&item, "email"),
        long,
        "the exact address stays in its attribute"
    );
    let index = s(&item, "gsi1pk");
    assert_eq!(index, clerk_webhooks::table::email_index_pk(&long));
    assert!(index.len() <= 2_048, "{} bytes", index.len());
    let found = app.by_gsi1(&index).await;
    assert_eq!(found.len(), 1);

    let slug = "s".repeat(5_000);
    let mut org = organization("org_longslug", T0, "Acme");
    org["slug"] = json!(slug);
    assert_eq!(app.apply("organization.created", T0, org).await, "applied");
    let found = app
        .by_gsi1(&clerk_webhooks::table::slug_index_pk(&slug))
        .await;
    assert_eq!(found.len(), 1);
    assert_eq!(s(&found[0], "pk"), "ORG#org_longslug");
}

const USER_LONG: &str = "user_2NNEqL2nrIRdJ194ndJqAHwLong";

/// Puts an item of one attribute holding `value` straight into the table.
async fn accepted(app: &TestApp, n: usize, value: AttributeValue) -> bool {
    app.client
        .put_item()
        .table_name(&app.table)
        .item("pk", AttributeValue::S(format!("LIMIT#{n}")))
        .item("sk", AttributeValue::S("LIMIT".into()))
        .item("v", value)
        .send()
        .await
        .is_ok()
}

/// The rules `encoding::attribute` applies are DynamoDB Local's: what it converts is
/// accepted, and one step past each limit is refused.
#[tokio::test]
async fn the_encodings_limits_are_dynamodbs_own() {
    let app = TestApp::spawn().await;
    let raw = |text: &str| serde_json::value::RawValue::from_string(text.to_owned()).unwrap();
    let fits = [
        nested_maps(MAX_DEPTH - 1, "1"),
        nested_lists(MAX_DEPTH),
        "9.9999999999999999999999999999999999999e125".into(),
        "-1e-130".into(),
        "12345678901234567890123456789012345678".into(),
        "0.000000000000000000000000000000000000000001".into(),
        "1234567890123456789012345678901234567800000".into(),
    ];
    for (n, text) in fits.iter().enumerate() {
        let value = encoding::attribute(&raw(text)).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(accepted(&app, n, value).await, "DynamoDB refused {text}");
    }
    // One step past: the encoding refuses it, and so does DynamoDB (given as it would be).
    let past: [(String, AttributeValue); 5] = [
        (nested_lists(MAX_DEPTH + 1), {
            let mut v = AttributeValue::L(vec![]);
            for _ in 0..MAX_DEPTH {
                v = AttributeValue::L(vec![v]);
            }
            v
        }),
        ("1e126".into(), AttributeValue::N("1e126".into())),
        ("1e-131".into(), AttributeValue::N("1e-131".into())),
        (
            "123456789012345678901234567890123456789".into(),
            AttributeValue::N("123456789012345678901234567890123456789".into()),
        ),
        (
            r#"{"":1}"#.into(),
            AttributeValue::M([(String::new(), AttributeValue::N("1".into()))].into()),
        ),
    ];
    for (n, (text, value)) in past.into_iter().enumerate() {
        assert!(encoding::attribute(&raw(&text)).is_err(), "{text}");
        assert!(
            !accepted(&app, 100 + n, value).await,
            "DynamoDB took {text}"
        );
    }
}

// --- random JSON -----------------------------------------------------------------------------

fn json_number() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop_oneof![Just("0".to_owned()), "[1-9][0-9]{0,50}"],
        proptest::option::of("[0-9]{1,45}"),
        proptest::option::of((
            prop_oneof![Just("e"), Just("E"), Just("e+"), Just("e-")],
            0u32..400,
        )),
    )
        .prop_map(|(negative, int, frac, exp)| {
            let mut text = String::new();
            if negative {
                text.push('-');
            }
            text.push_str(&int);
            if let Some(frac) = frac {
                text.push('.');
                text.push_str(&frac);
            }
            if let Some((e, n)) = exp {
                text.push_str(&format!("{e}{n}"));
            }
            text
        })
}

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        1 => Just(String::from(r#""""#)),
        1 => Just(String::from(r#""\ud83d\ude00 \u0000 \"""#)),
        1 => (1usize..120).prop_map(|kb| format!("\"{}\"", noise(kb * 1024, kb as u64))),
    ]
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z_]{1,8}".prop_map(|k| format!("\"{k}\"")),
        1 => Just(String::from(r#""""#)),
        1 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
    ]
}

fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        json_number(),
        json_string(),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("null".to_owned()),
    ];
    let tree = leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6)
                .prop_map(|items| format!("[{}]", items.join(","))),
            proptest::collection::vec((json_key(), inner), 0..6).prop_map(|entries| {
                let entries: Vec<String> =
                    entries.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", entries.join(","))
            }),
        ]
    });
    // Then wrapped in up to 300 levels of lists or maps, most often around DynamoDB's limit of
    // 32, and past serde_json's own 128.
    let levels = prop_oneof![3 => MAX_DEPTH - 4..MAX_DEPTH + 2, 1 => 0usize..300];
    (tree, levels, any::<bool>()).prop_map(|(tree, levels, maps)| {
        if maps {
            nested_maps(levels, &tree)
        } else {
            format!("{}{tree}{}", "[".repeat(levels), "]".repeat(levels))
        }
    })
}

/// Random JSON of every shape in a user's public and unsafe metadata: the plan's items are
/// accepted by DynamoDB Local, `data` reads back byte for byte, and a top-level copy is there
/// exactly when the encoding found the value fit.
#[test]
fn random_json_round_trips_exactly_and_dynamodb_local_takes_every_item() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let store = app.backfill_store();
    let settings = clerk_webhooks::plan::Settings::default();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let cases = std::sync::atomic::AtomicU32::new(0);
    runner
        .run(&(json_value(), json_value()), |(public, unsafe_)| {
            let n = cases.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let id = format!("user_p{n}");
            let data = user_data(&id, T0, &public, &unsafe_);
            let event = Event::decode(&body("user.updated", T0, &data), T0)
                .map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
            let planned = plan(&event, &format!("msg_p{n}"), &settings, T0).unwrap();
            let outcome = runtime
                .block_on(store.apply(&planned))
                .map_err(|e| TestCaseError::fail(format!("DynamoDB Local refused: {e}")))?;
            prop_assert_eq!(outcome, Outcome::Applied);
            let item = runtime
                .block_on(app.get(&format!("USER#{id}"), "PROFILE"))
                .unwrap();
            prop_assert_eq!(stored_data(&item), data);
            let raw = serde_json::value::RawValue::from_string(public).unwrap();
            let fits =
                encoding::attribute(&raw).is_ok_and(|v| !matches!(v, AttributeValue::Null(_)));
            let left_out = planned
                .left_out
                .iter()
                .any(|l| l.field == "public_metadata");
            prop_assert_eq!(item.contains_key("public_metadata"), fits && !left_out);
            Ok(())
        })
        .unwrap();
}

// --- envelopes from before `timestamp` and `instance_id` --------------------------------------

const USER: &str = "user_2NNEqL2nrIRdJ194ndJqAHwOld1";
const ORG: &str = "org_2NNEqL2nrIRdJ194ndJqAHwOld1";

/// `{data, object, type}`: a delivery from before Clerk added `timestamp` and `instance_id`,
/// signed at `signed_secs`.
async fn deliver_old(app: &TestApp, event_type: &str, data: &Value, signed_secs: i64) -> String {
    let body =
        serde_json::to_vec(&json!({"data": data, "object": "event", "type": event_type})).unwrap();
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(signed_secs as u64);
    let request = signed_at(&body, &msg_id(), signed_secs);
    let reply = app.send_at(request, at).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn envelopes_without_timestamp_or_instance_id_apply() {
    let app = TestApp::spawn().await;
    let now = now_secs();
    assert_eq!(
        deliver_old(&app, "user.created", &user(USER, T0, "Lovelace"), now).await,
        "applied"
    );
    let item = app.get(&format!("USER#{USER}"), "PROFILE").await.unwrap();
    assert_eq!(n(&item, "version"), T0, "still versioned by updated_at");
    let record = app
        .scan()
        .await
        .into_iter()
        .find(|i| s(i, "entity") == "event")
        .unwrap();
    assert!(!record.contains_key("instance_id"), "names no instance");
    assert_eq!(n(&record, "event_timestamp"), now * 1000, "the signed time");
    // A delete without either: a tombstone at the signed time, and a late update stays out.
    assert_eq!(
        deliver_old(&app, "user.deleted", &deleted("user", USER), now).await,
        "applied"
    );
    assert_eq!(
        deliver_old(&app, "user.updated", &user(USER, T0 + 5_000, "Byron"), now).await,
        "stale"
    );
    let item = app.get(&format!("USER#{USER}"), "PROFILE").await.unwrap();
    assert_eq!(item.get("deleted"), Some(&AttributeValue::Bool(true)));
}

/// A membership removed, re-added, and the removal's delivery retried hours later (so signed
/// later than the re-add): without an envelope timestamp, the delete is versioned just past
/// the membership it removed, so the re-add stays; and it still beats an older update.
#[tokio::test]
async fn a_late_delete_without_timestamp_orders_against_an_update_and_a_re_add() {
    let app = TestApp::spawn().await;
    let now = now_secs();
    let first = membership(ORG, USER, T0, "org:member");
    assert_eq!(
        deliver_old(&app, "organizationMembership.created", &first, now).await,
        "applied"
    );
    let updated = membership(ORG, USER, T0 + 1_000, "org:admin");
    assert_eq!(
        deliver_old(&app, "organizationMembership.updated", &updated, now).await,
        "applied"
    );
    // Removed at T0 + 2_000 (Clerk's delete carries the last updated_at, T0 + 1_000) and
    // re-added at T0 + 3_000; the removal is only delivered after the re-add.
    let mut readded = membership(ORG, USER, T0 + 3_000, "org:member");
    readded["id"] = json!("orgmem_readded");
    assert_eq!(
        deliver_old(&app, "organizationMembership.created", &readded, now).await,
        "applied"
    );
    assert_eq!(
        deliver_old(
            &app,
            "organizationMembership.deleted",
            &updated,
            now + 3_600
        )
        .await,
        "stale",
        "the late delete does not remove the re-added member"
    );
    let key = (format!("ORG#{ORG}"), format!("MEMBER#{USER}"));
    let item = app.get(&key.0, &key.1).await.unwrap();
    assert!(!item.contains_key("deleted"));
    assert_eq!(s(&item, "id"), "orgmem_readded");

    // In order, the same delete removes the membership it ends, and an older update
    // delivered after it stays out.
    let other = "org_2NNEqL2nrIRdJ194ndJqAHwOld2";
    let m = membership(other, USER, T0 + 1_000, "org:member");
    deliver_old(&app, "organizationMembership.created", &m, now).await;
    assert_eq!(
        deliver_old(&app, "organizationMembership.deleted", &m, now).await,
        "applied"
    );
    let older = membership(other, USER, T0 + 500, "org:admin");
    assert_eq!(
        deliver_old(&app, "organizationMembership.updated", &older, now).await,
        "stale"
    );
    let item = app
        .get(&format!("ORG#{other}"), &format!("MEMBER#{USER}"))
        .await
        .unwrap();
    assert_eq!(item.get("deleted"), Some(&AttributeValue::Bool(true)));
    assert_eq!(n(&item, "version"), T0 + 1_001);
}

// --- items written before this encoding --------------------------------------------------------

#[tokio::test]
async fn items_with_data_as_a_map_are_read_and_the_next_event_rewrites_them() {
    let app = TestApp::spawn_with_stream().await;
    let created = T0;
    let now = created + 3_600_000;
    // A user and a membership as the earlier version wrote them, by a webhook.
    let user_data = user(USER, created, "Lovelace");
    let user_item = earlier_form(
        encoding::from_json(
            json!({"pk": format!("USER#{USER}"), "sk": "PROFILE", "entity": "user", "id": USER,
                   "source": "webhook", "last_svix_id": "msg_old", "version": created,
                   "created_at": created, "updated_at": created, "first_name": "Ada",
                   "email": "ada@example.org"})
            .as_object()
            .unwrap(),
        ),
        &user_data,
    );
    let member_data = membership(ORG, USER, created, "org:member");
    let member_item = earlier_form(
        encoding::from_json(
            json!({"pk": format!("ORG#{ORG}"), "sk": format!("MEMBER#{USER}"),
                   "entity": "membership", "id": "orgmem_old", "source": "webhook",
                   "version": created, "created_at": created, "updated_at": created,
                   "org_id": ORG, "user_id": USER, "role": "org:member"})
            .as_object()
            .unwrap(),
        ),
        &member_data,
    );
    for item in [&user_item, &member_item] {
        app.put(item.clone()).await;
    }
    // The notifier reads them: a new user, and a member of an organization it names.
    let records = clerk_webhooks::notify::stream::StreamReader::new(
        app.client.clone(),
        crate::helpers::notify::streams_client(),
        &app.table,
    )
    .read_all()
    .await
    .unwrap();
    let window = clerk_webhooks::notify::change::Window::hours(now, 72);
    let changes: Vec<_> = records
        .iter()
        .filter_map(|r| clerk_webhooks::notify::change::change_of_record(r, window).unwrap())
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes.iter().any(|c| matches!(
        c,
        clerk_webhooks::notify::change::Change::MemberJoined { org_name: Some(name), .. } if name == "Acme"
    )));
    // Its data reads back as the map it was.
    let stored = app.get(&format!("USER#{USER}"), "PROFILE").await.unwrap();
    let back: Value = serde_json::from_str(&stored_data(&stored)).unwrap();
    assert_eq!(back, user_data);
    // The next event for the user writes the new form.
    assert_eq!(
        app.apply(
            "user.updated",
            created + 9_000,
            user(USER, created + 9_000, "Byron")
        )
        .await,
        "applied"
    );
    let stored = app.get(&format!("USER#{USER}"), "PROFILE").await.unwrap();
    assert!(matches!(stored.get("data"), Some(AttributeValue::B(_))));
    assert_eq!(s(&stored, "last_name"), "Byron");
}
