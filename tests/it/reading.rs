//! The reader (`clerk_webhooks::read`) against DynamoDB Local: every access pattern returns
//! what docs/table.md's AWS CLI queries return (the same keys, then the items), tombstones
//! and bookkeeping excluded, `data` exactly as stored, in either encoding, across pages and
//! batches; and `clerk-webhooks-get`, the command line over it.

use std::collections::BTreeSet;
use std::path::Path;

use aws_sdk_dynamodb::types::AttributeValue;
use clerk_webhooks::read::{Reader, Record};
use clerk_webhooks::table::encoding;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::properties::invariants::load_fixtures;

const T: i64 = 1_760_000_000_000;

/// A user with its own username and external id.
fn person(id: &str, username: &str, external_id: Option<&str>) -> Value {
    let mut user = user(id, T, "Lovelace");
    user["username"] = json!(username);
    user["external_id"] = json!(external_id);
    user
}

/// Every fixture of events/, then objects of our own so that each access pattern has live
/// items and tombstones to skip.
async fn filled() -> TestApp {
    let app = TestApp::spawn().await;
    for fixture in load_fixtures(&Path::new(env!("CARGO_MANIFEST_DIR")).join("events")) {
        let body = serde_json::to_vec(&fixture).unwrap();
        let status = app.deliver(&body, &msg_id()).await;
        assert!(
            ["applied", "stale", "ignored"].contains(&status.as_str()),
            "{status}"
        );
    }
    for (id, username, external) in [
        ("user_rdA", "grace", Some("ext-A")),
        ("user_rdB", "hopper", None),
        ("user_rdC", "gone", Some("ext-C")),
    ] {
        assert_eq!(
            app.apply("user.created", T, person(id, username, external))
                .await,
            "applied"
        );
    }
    assert_eq!(
        app.apply(
            "organization.created",
            T,
            organization("org_rdO", T, "Acme")
        )
        .await,
        "applied"
    );
    for user in ["user_rdA", "user_rdB", "user_rdC"] {
        let member = membership("org_rdO", user, T, "org:member");
        assert_eq!(
            app.apply("organizationMembership.created", T, member).await,
            "applied"
        );
    }
    // The fixtures' session and invitation end with their user and organization deleted:
    // one of each that stays.
    let fixture = |name: &str| -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("events/{name}.json"));
        serde_json::from_slice::<Value>(&std::fs::read(path).unwrap()).unwrap()["data"].clone()
    };
    let later = now_ms() + 86_400_000;
    let mut session = fixture("session.created");
    session["id"] = json!("sess_rdA");
    session["user_id"] = json!("user_rdA");
    session["user"]["id"] = json!("user_rdA");
    session["updated_at"] = json!(T);
    session["expire_at"] = json!(later);
    session["abandon_at"] = json!(later);
    assert_eq!(app.apply("session.created", T, session).await, "applied");
    let mut invitation = fixture("organizationInvitation.created");
    invitation["id"] = json!("orginv_rdO");
    invitation["organization_id"] = json!("org_rdO");
    invitation["public_organization_data"]["id"] = json!("org_rdO");
    invitation["expires_at"] = json!(later);
    invitation["updated_at"] = json!(T);
    assert_eq!(
        app.apply("organizationInvitation.created", T, invitation)
            .await,
        "applied"
    );
    // A deleted user: a tombstone, and its membership cascaded away.
    assert_eq!(
        app.apply("user.deleted", T + 1, deleted("user", "user_rdC"))
            .await,
        "applied"
    );
    app
}

fn ids_of(items: &[Item]) -> BTreeSet<String> {
    items.iter().map(|i| s(i, "id")).collect()
}

fn is_live(item: &Item) -> bool {
    !matches!(item.get("deleted"), Some(AttributeValue::Bool(true)))
}

fn ids<T: Record + serde::Serialize>(records: &[T]) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| {
            serde_json::to_value(r).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

impl TestApp {
    /// docs/table.md's index queries: the index gives keys, `get-item` the items; tombstones
    /// skipped as the page says.
    async fn index_then_items(&self, gsi1pk: &str, sk_prefix: &str) -> Vec<Item> {
        let mut items = Vec::new();
        for entry in self.by_gsi1(gsi1pk).await {
            if !s(&entry, "gsi1sk").starts_with(sk_prefix) {
                continue;
            }
            if let Some(item) = self.get(&s(&entry, "pk"), &s(&entry, "sk")).await {
                items.push(item);
            }
        }
        items.retain(is_live);
        items
    }

    async fn live_partition(&self, pk: &str, prefix: &str) -> Vec<Item> {
        let mut items = self.partition(pk, prefix).await;
        items.retain(is_live);
        items
    }
}

/// `data` as the reader returns it equals `data` decoded from the stored item.
fn same_data<T: Record>(record: &T, item: &Item) {
    let stored = encoding::to_json(item).unwrap()["data"].clone();
    assert_eq!(record.data_as::<Value>().unwrap(), stored);
}

#[tokio::test]
async fn every_access_pattern_returns_what_the_documented_queries_return() {
    let app = filled().await;
    let reader = Reader::new(local_client(), &app.table);
    let items = app.scan().await;
    // Every user and organization id the table mentions in a key, live or not.
    let under = |prefix: &str| -> BTreeSet<String> {
        items
            .iter()
            .flat_map(|i| [i.get("pk"), i.get("gsi1pk")])
            .filter_map(|key| match key {
                Some(AttributeValue::S(key)) => key.strip_prefix(prefix).map(str::to_owned),
                _ => None,
            })
            .collect()
    };
    let (mut sessions_seen, mut memberships_seen, mut invitations_seen) = (0, 0, 0);
    for id in under("USER#") {
        let item = app.get(&format!("USER#{id}"), "PROFILE").await;
        let user = reader.user(&id).await.unwrap();
        match item.filter(is_live) {
            Some(item) => {
                let user = user.expect("a live user");
                assert_eq!(user.id, id);
                same_data(&user, &item);
                if let Some(AttributeValue::S(email)) = item.get("email") {
                    let documented = app
                        .index_then_items(&clerk_webhooks::table::email_index_pk(email), "USER#")
                        .await;
                    let found = reader.user_by_email(&email.to_uppercase()).await.unwrap();
                    assert_eq!(
                        found.map(|u| u.id).into_iter().collect::<BTreeSet<_>>(),
                        ids_of(&documented),
                    );
                }
            }
            None => assert!(user.is_none(), "{id}"),
        }
        let sessions = reader.sessions(&id).await.unwrap();
        assert_eq!(
            ids(&sessions),
            ids_of(&app.live_partition(&format!("USER#{id}"), "SESSION#").await)
        );
        sessions_seen += sessions.len();
        let orgs = reader.organizations_of(&id).await.unwrap();
        assert_eq!(
            ids(&orgs),
            ids_of(&app.index_then_items(&format!("USER#{id}"), "ORG#").await)
        );
        memberships_seen += orgs.len();
    }
    for id in under("ORG#") {
        let pk = format!("ORG#{id}");
        let item = app.get(&pk, "PROFILE").await;
        let org = reader.organization(&id).await.unwrap();
        match item.filter(is_live) {
            Some(item) => {
                let org = org.expect("a live organization");
                same_data(&org, &item);
                if let Some(AttributeValue::S(slug)) = item.get("slug") {
                    let by_slug = reader.organization_by_slug(slug).await.unwrap().unwrap();
                    assert_eq!(by_slug.id, id);
                }
            }
            None => assert!(org.is_none(), "{id}"),
        }
        let members = reader.members(&id).await.unwrap();
        assert_eq!(
            ids(&members),
            ids_of(&app.live_partition(&pk, "MEMBER#").await)
        );
        let invitations = reader.invitations(&id).await.unwrap();
        assert_eq!(
            ids(&invitations),
            ids_of(&app.live_partition(&pk, "INVITATION#").await)
        );
        invitations_seen += invitations.len();
        let domains = reader.domains(&id).await.unwrap();
        assert_eq!(
            ids(&domains),
            ids_of(&app.index_then_items(&pk, "DOMAIN#").await)
        );
    }
    // Billing, by every payer the table indexes.
    let payers: BTreeSet<String> = items
        .iter()
        .filter_map(|i| match i.get("gsi1pk") {
            Some(AttributeValue::S(pk)) if pk.starts_with("PAYER#") => Some(pk.clone()),
            _ => None,
        })
        .collect();
    assert!(!payers.is_empty(), "the fixtures have billing objects");
    for payer in &payers {
        let billing = reader.billing(&payer["PAYER#".len()..]).await.unwrap();
        assert!(!billing.is_empty());
        assert_eq!(
            ids(&billing),
            ids_of(&app.index_then_items(payer, "").await)
        );
    }
    // Each pattern was exercised on something real.
    assert!(
        sessions_seen >= 1 && memberships_seen >= 2 && invitations_seen >= 1,
        "{sessions_seen} {memberships_seen} {invitations_seen}"
    );

    // Tombstones are never returned: by id, by index, or in a list.
    assert!(reader.user("user_rdC").await.unwrap().is_none());
    assert!(matches!(
        reader.user_state("user_rdC").await.unwrap(),
        clerk_webhooks::read::Stored::Deleted
    ));
    assert!(reader.user_by_username("gone").await.unwrap().is_none());
    assert!(reader.user_by_external_id("ext-C").await.unwrap().is_none());
    let members = reader.members("org_rdO").await.unwrap();
    assert_eq!(
        ids(&members).len(),
        2,
        "user_rdC's membership went with the user"
    );
    // Bookkeeping items are not users: an event record's key read as one.
    assert!(reader
        .get::<clerk_webhooks::read::User>(&clerk_webhooks::table::Key::instance())
        .await
        .unwrap()
        .live()
        .is_none());
}

#[tokio::test]
async fn users_are_found_by_username_and_external_id_as_they_change() {
    let app = TestApp::spawn().await;
    let reader = Reader::new(local_client(), &app.table);
    app.apply(
        "user.created",
        T,
        person("user_lkA", "Grace_H", Some("ext-42")),
    )
    .await;
    let by_name = reader.user_by_username("grace_h").await.unwrap().unwrap();
    assert_eq!(by_name.id, "user_lkA");
    assert_eq!(by_name.username.as_deref(), Some("Grace_H"));
    let by_external = reader.user_by_external_id("ext-42").await.unwrap().unwrap();
    assert_eq!(by_external.id, "user_lkA");
    assert!(
        reader
            .user_by_external_id("EXT-42")
            .await
            .unwrap()
            .is_none(),
        "external ids are exact"
    );
    // The username changes and the external id is removed: the old ones find nothing.
    let mut changed = person("user_lkA", "grace2", None);
    changed["updated_at"] = json!(T + 10);
    assert_eq!(app.apply("user.updated", T + 10, changed).await, "applied");
    assert!(reader.user_by_username("grace_h").await.unwrap().is_none());
    assert!(reader
        .user_by_external_id("ext-42")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        reader.user_by_username("GRACE2").await.unwrap().unwrap().id,
        "user_lkA"
    );
    let item = app.get("USER#user_lkA", "PROFILE").await.unwrap();
    assert!(!item.contains_key("external_id_key"));
}

#[tokio::test]
async fn large_results_are_read_to_the_last_page_and_batch() {
    let app = TestApp::spawn().await;
    let calls = crate::helpers::call_log::CallLog::default();
    let reader = Reader::new(logged_client(&calls), &app.table);
    // 130 members with 20 KB of random letters each (over 1 MB stored): more than one Query
    // page.
    let mut rng = crate::helpers::rng::Rng::new(7);
    for i in 0..130 {
        let user_id = format!("user_big{i:04}");
        let mut member = membership("org_big", &user_id, T, "org:member");
        let noise: String = (0..20_000)
            .map(|_| char::from(b'a' + (rng.below(26) as u8)))
            .collect();
        member["public_metadata"] = json!({ "noise": noise });
        assert_eq!(
            app.apply("organizationMembership.created", T, member).await,
            "applied"
        );
    }
    calls.take();
    let members = reader.members("org_big").await.unwrap();
    assert_eq!(members.len(), 130);
    assert!(calls.take()["Query"] >= 2, "read to its last page");
    let one: Value = members[0].data_as().unwrap();
    assert_eq!(
        one["public_metadata"]["noise"].as_str().unwrap().len(),
        20_000
    );
    // One user in 120 organizations: more than one BatchGetItem of 100 keys.
    for i in 0..120 {
        let member = membership(&format!("org_many{i:04}"), "user_many", T, "org:admin");
        app.apply("organizationMembership.created", T, member).await;
    }
    calls.take();
    let orgs = reader.organizations_of("user_many").await.unwrap();
    assert_eq!(orgs.len(), 120);
    assert_eq!(calls.take()["BatchGetItem"], 2, "100 keys a call");
    assert!(orgs.iter().all(|m| m.role.as_deref() == Some("org:admin")));
}

#[tokio::test]
async fn items_in_the_old_encoding_read_the_same() {
    let app = TestApp::spawn().await;
    let reader = Reader::new(local_client(), &app.table);
    app.apply("user.created", T, person("user_old", "old", None))
        .await;
    let new_form = reader.user("user_old").await.unwrap().unwrap();
    // Rewrite the item with `data` as a native map, as items written before the encoding.
    let item = app.get("USER#user_old", "PROFILE").await.unwrap();
    let data = encoding::to_json(&item).unwrap()["data"].clone();
    app.put(earlier_form(item, &data)).await;
    let old_form = reader.user("user_old").await.unwrap().unwrap();
    assert_eq!(
        old_form.data_as::<Value>().unwrap(),
        new_form.data_as::<Value>().unwrap()
    );
    assert_eq!(old_form.email, new_form.email);
}

#[tokio::test]
async fn the_command_line_prints_one_json_object_per_line() {
    let app = filled().await;
    let run = |args: &[&str]| {
        let out = local_binary(env!("CARGO_BIN_EXE_clerk-webhooks-get"), &app.table)
            .args(args)
            .output()
            .unwrap();
        let lines: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (out.status.code(), lines)
    };
    let (code, lines) = run(&["user", "user_rdA"]);
    assert_eq!(code, Some(0));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], "user_rdA");
    assert_eq!(lines[0]["data"]["public_metadata"], json!({"plan": "pro"}));
    let (_, lines) = run(&["user", "--username", "grace"]);
    assert_eq!(lines[0]["id"], "user_rdA");
    // Data sent as indented JSON is kept exactly, and still printed on one line.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/user.created.json");
    let indented = std::fs::read_to_string(path)
        .unwrap()
        .replace("user_2NNEqL2nrIRdJ194ndJqAHwEfxC", "user_rdIndented");
    assert_eq!(app.deliver(indented.as_bytes(), &msg_id()).await, "applied");
    let (code, lines) = run(&["user", "user_rdIndented"]);
    assert_eq!((code, lines.len()), (Some(0), 1));
    assert_eq!(lines[0]["data"]["id"], "user_rdIndented");
    let (_, lines) = run(&["user", "--username", "grace"]);
    assert_eq!(lines[0]["id"], "user_rdA");
    let (_, lines) = run(&["members", "org_rdO"]);
    assert_eq!(lines.len(), 2);
    let (_, lines) = run(&["orgs", "user_rdB"]);
    assert_eq!(lines[0]["org_id"], "org_rdO");
    // A miss and a tombstone print nothing and exit 1; a usage error exits 2.
    assert_eq!(run(&["user", "user_nobody"]), (Some(1), vec![]));
    assert_eq!(run(&["user", "user_rdC"]), (Some(1), vec![]));
    assert_eq!(run(&["user"]).0, Some(2));
    // An empty list is an answer.
    assert_eq!(run(&["sessions", "user_nobody"]), (Some(0), vec![]));
}

#[tokio::test]
async fn a_backfill_indexes_users_written_before_the_lookup_indexes() {
    let app = TestApp::spawn().await;
    let reader = Reader::new(local_client(), &app.table);
    let fake = crate::helpers::fake_clerk::FakeClerk::start(
        crate::helpers::fake_clerk::Data::generate(1, 0, 0),
    )
    .await;
    app.backfill_users(&fake).await;
    let id = crate::helpers::fake_clerk::user_id(0);
    // As an earlier version wrote it: the same version, no lookup keys.
    let mut item = app.get(&format!("USER#{id}"), "PROFILE").await.unwrap();
    item.remove("username_key");
    app.put(item.clone()).await;
    assert!(reader.user_by_username("ada0").await.unwrap().is_none());
    // A webhook of an older version is still stale, and changes nothing.
    let object = fake.data().users[0].clone();
    let version = object["updated_at"].as_i64().unwrap();
    let mut older = object.clone();
    older["updated_at"] = json!(version - 1);
    assert_eq!(app.apply("user.updated", version - 1, older).await, "stale");
    // The backfill's copy of the same version adds the key, and nothing else changes.
    app.backfill_users(&fake).await;
    assert_eq!(
        reader.user_by_username("ada0").await.unwrap().unwrap().id,
        id
    );
    let rewritten = app.get(&format!("USER#{id}"), "PROFILE").await.unwrap();
    assert_eq!(s(&rewritten, "username_key"), "ada0");
    assert_eq!(n(&rewritten, "version"), version);
    // Keyed now: the same version again is stale, as before.
    let same = envelope("user.updated", version, object);
    assert_eq!(app.deliver(&same, &msg_id()).await, "stale");
}
