//! Clerk's own examples, not ours: every example in Clerk's OpenAPI description of its webhooks
//! (`tests/fixtures/clerk/webhooks-openapi-2025-04-15.yml`, MIT, licence beside it), replayed
//! through the handler against DynamoDB Local. These are the one set of inputs in the suite
//! that we did not write: a rule that refuses one of them is a guess about Clerk, not a fact.
//!
//! Two replays:
//! - **each example alone**, on a table of its own: answered 200 `applied`, with its documented
//!   effect (the item at its key, at its version, from this delivery; a tombstone for a delete;
//!   only the event record for an email or SMS);
//! - **the whole catalog in timestamp order** on one table: every example answered 200, and
//!   each answer agrees with the table: `applied` wrote the item, `stale` left it as it was.
//!
//! What the replay changes: Clerk's examples all carry one instant (`timestamp: 1716883200`,
//! seconds), though some of their objects were updated minutes to weeks after it. Svix
//! delivers an event after the change it reports, so each example is sent with a timestamp no
//! earlier than its own `updated_at` and one second after the example before it, still in
//! seconds. The order is the file's, with deletes last: an object's delete ends its life. Every
//! other byte of every example is sent as Clerk wrote it.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use clerk_webhooks::plan::{delete_version, upsert_version};
use clerk_webhooks::table::Key;
use serde_json::Value;

use crate::helpers::*;

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/clerk/webhooks-openapi-2025-04-15.yml"
);

/// One example of the spec: the webhook type it documents and the event as Clerk wrote it.
struct Example {
    event_type: String,
    body: Value,
}

impl Example {
    fn data(&self) -> &Value {
        &self.body["data"]
    }

    fn is_delete(&self) -> bool {
        self.event_type.ends_with(".deleted")
    }

    fn str(&self, path: &[&str]) -> String {
        let mut value = self.data();
        for part in path {
            value = &value[*part];
        }
        value
            .as_str()
            .unwrap_or_else(|| panic!("{}: no {path:?}", self.event_type))
            .to_owned()
    }

    /// The item the example writes, from docs/table.md's table of items. `None` for a message,
    /// which writes only its event record by default.
    fn key(&self) -> Option<Key> {
        let id = || self.str(&["id"]);
        let family = self.event_type.split('.').next().unwrap();
        Some(match family {
            "user" => Key::user(&id()),
            "organization" => Key::organization(&id()),
            "organizationMembership" => Key::membership(
                &self.str(&["organization", "id"]),
                &self.str(&["public_user_data", "user_id"]),
            ),
            "session" => Key::session(&self.str(&["user_id"]), &id()),
            "organizationInvitation" => {
                Key::organization_invitation(&self.str(&["organization_id"]), &id())
            }
            "organizationDomain" => Key::profile("DOMAIN", &id()),
            "invitation" => Key::profile("INVITATION", &id()),
            "role" => Key::profile("ROLE", &id()),
            "permission" => Key::profile("PERMISSION", &id()),
            "waitlistEntry" => Key::profile("WAITLIST", &id()),
            "subscription" => Key::profile("SUBSCRIPTION", &id()),
            "subscriptionItem" => Key::profile("SUBSCRIPTION_ITEM", &id()),
            "paymentAttempt" => Key::profile("PAYMENT_ATTEMPT", &id()),
            "email" | "sms" => return None,
            other => panic!("the spec documents a family docs/sync-rules.md does not: {other}"),
        })
    }

    /// The version docs/sync-rules.md's rules give the example.
    fn version(&self) -> i64 {
        let updated_at = self.data()["updated_at"].as_i64();
        let timestamp = event_millis(&self.body);
        if self.is_delete() {
            delete_version(updated_at, timestamp, true)
        } else {
            upsert_version(updated_at, timestamp)
        }
    }
}

fn event_millis(body: &Value) -> i64 {
    clerk_webhooks::event::normalize_millis(body["timestamp"].as_i64().unwrap())
}

/// Every example of every webhook in the spec, in the file's order: `example`, or each of
/// `examples` (inline or a `$ref` into `components.examples`).
fn examples() -> Vec<Example> {
    let text = std::fs::read_to_string(SPEC).unwrap();
    let spec: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let named = &spec["components"]["examples"];
    let webhooks = spec["x-webhooks"]
        .as_mapping()
        .expect("x-webhooks is a mapping");
    let mut out = Vec::new();
    for (event_type, webhook) in webhooks {
        let event_type = event_type.as_str().unwrap().to_owned();
        let content = &webhook["post"]["requestBody"]["content"]["application/json"];
        let mut bodies = Vec::new();
        if !content["example"].is_null() {
            bodies.push(&content["example"]);
        }
        if let Some(listed) = content["examples"].as_mapping() {
            for example in listed.values() {
                let example = match example["$ref"].as_str() {
                    Some(reference) => {
                        let name = reference
                            .strip_prefix("#/components/examples/")
                            .unwrap_or_else(|| panic!("{event_type}: unexpected $ref"));
                        &named[name]
                    }
                    None => example,
                };
                bodies.push(&example["value"]);
            }
        }
        assert!(!bodies.is_empty(), "{event_type} has no example");
        for body in bodies {
            let body: Value = serde_json::to_value(body).unwrap();
            assert_eq!(body["type"], event_type.as_str(), "the example's own type");
            out.push(Example {
                event_type: event_type.clone(),
                body,
            });
        }
    }
    out
}

/// What one delivery of `example` did, checked against the table around it.
async fn deliver_and_check(app: &TestApp, example: &Example) -> String {
    let key = example.key();
    let before = match &key {
        Some(key) => app.get(&key.pk, &key.sk).await,
        None => None,
    };
    let svix_id = msg_id();
    let body = serde_json::to_vec(&example.body).unwrap();
    let reply = app.send(signed(&body, &svix_id)).await;
    let what = &example.event_type;
    assert_eq!(reply.status.as_u16(), 200, "{what}: {}", reply.body);
    let outcome = reply.body["status"].as_str().unwrap().to_owned();
    let record = app.get(&format!("EVENT#{svix_id}"), "EVENT").await;
    let after = match &key {
        Some(key) => app.get(&key.pk, &key.sk).await,
        None => None,
    };
    match outcome.as_str() {
        "applied" => {
            let record = record.unwrap_or_else(|| panic!("{what}: applied without a record"));
            assert_eq!(s(&record, "type"), *what);
            if key.is_some() {
                let item = after.unwrap_or_else(|| panic!("{what}: applied, but no item"));
                assert_eq!(
                    s(&item, "last_svix_id"),
                    svix_id,
                    "{what}: written by this delivery"
                );
                assert_eq!(n(&item, "version"), example.version(), "{what}: version");
                let tombstone = item.get("deleted") == Some(&AttributeValue::Bool(true));
                assert_eq!(
                    tombstone,
                    example.is_delete(),
                    "{what}: a tombstone iff a delete"
                );
                assert_eq!(
                    item.contains_key("data"),
                    !example.is_delete(),
                    "{what}: data"
                );
            }
        }
        "stale" => {
            assert!(
                record.is_none(),
                "{what}: stale, yet its event record was written"
            );
            assert_eq!(before, after, "{what}: stale, yet its item changed");
        }
        other => panic!("{what}: answered {other}"),
    }
    outcome
}

#[tokio::test]
async fn every_example_in_clerks_spec_is_applied_on_its_own_with_its_documented_effect() {
    let examples = examples();
    let types: std::collections::BTreeSet<&str> =
        examples.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types.len(), 45, "the 2025-04-15 spec documents 45 types");
    for example in &examples {
        let app = TestApp::spawn().await;
        let outcome = deliver_and_check(&app, example).await;
        assert_eq!(
            outcome, "applied",
            "{} on an empty table",
            example.event_type
        );
    }
}

#[tokio::test]
async fn clerks_spec_replayed_in_timestamp_order_is_answered_200_and_agrees_with_the_table() {
    let mut examples = examples();
    // Deletes last, otherwise the file's order (stable sort); then each its own second.
    examples.sort_by_key(Example::is_delete);
    let mut previous = 0;
    for example in &mut examples {
        let seconds = |ms: i64| ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) > 0);
        let written = example.body["timestamp"].as_i64().unwrap();
        let updated = example.data()["updated_at"].as_i64().map_or(0, seconds);
        let stamp = written.max(updated).max(previous + 1);
        example.body["timestamp"] = Value::from(stamp);
        previous = stamp;
    }
    let app = TestApp::spawn().await;
    let mut outcomes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for example in &examples {
        let outcome = deliver_and_check(&app, example).await;
        outcomes
            .entry(outcome)
            .or_default()
            .push(example.event_type.clone());
    }
    println!("{outcomes:#?}");
    let applied = &outcomes["applied"];
    // The two that were once refused for their `orgdm_` ids (issue 11).
    for event_type in ["organizationDomain.updated", "organizationDomain.deleted"] {
        assert!(applied.iter().any(|t| t == event_type), "{event_type}");
    }
    let domain = examples
        .iter()
        .find(|e| e.event_type == "organizationDomain.deleted")
        .and_then(Example::key)
        .unwrap();
    assert!(domain.pk.starts_with("DOMAIN#orgdm_"), "{}", domain.pk);
    let item = app.get(&domain.pk, &domain.sk).await.unwrap();
    assert_eq!(item.get("deleted"), Some(&AttributeValue::Bool(true)));
    // Every delete ends its object: its key holds a tombstone at the end.
    for example in examples.iter().filter(|e| e.is_delete()) {
        let key = example.key().unwrap();
        let item = app.get(&key.pk, &key.sk).await.unwrap();
        assert_eq!(
            item.get("deleted"),
            Some(&AttributeValue::Bool(true)),
            "{}",
            example.event_type
        );
    }
}

/// Clerk's catalog: the spec's webhook types, and the four its Dashboard lists beyond the spec
/// (`invitation.*`, `subscriptionItem.created`). Every one has a fixture in `events/` and a
/// route: a type Clerk documents and the router forgets fails here, instead of answering 200
/// `ignored` for ever (the checklist: docs/development.md, "Adding an event type").
#[test]
fn every_type_in_clerks_catalog_has_a_fixture_and_a_route() {
    use clerk_webhooks::event::{Event, Payload};
    let mut types: std::collections::BTreeSet<String> =
        examples().into_iter().map(|e| e.event_type).collect();
    types.extend(
        [
            "invitation.created",
            "invitation.accepted",
            "invitation.revoked",
            "subscriptionItem.created",
        ]
        .map(String::from),
    );
    assert_eq!(types.len(), 49, "Clerk's catalog has 49 types");
    for event_type in &types {
        let path = format!("{}/events/{event_type}.json", env!("CARGO_MANIFEST_DIR"));
        let body =
            std::fs::read(&path).unwrap_or_else(|_| panic!("no fixture events/{event_type}.json"));
        let event =
            Event::decode(&body, 1_716_883_200_000).unwrap_or_else(|e| panic!("{event_type}: {e}"));
        assert_eq!(&event.event_type, event_type);
        assert_ne!(
            event.payload,
            Payload::Unhandled,
            "{event_type} has no route"
        );
    }
}
