//! The change events one stream record makes for Amazon EventBridge: what really changed, from
//! the record's old and new item, and nothing for what did not. Pure; the notifier claims and
//! puts them (`super::event_bus`).
//!
//! | event | when |
//! | --- | --- |
//! | `{family}.created` | an item of the family appears live, or a tombstone gives way to a live item (a re-added member) |
//! | `{family}.updated` | a live item is replaced by a live item whose attributes or `data` differ |
//! | `{family}.deleted` | a live item becomes a tombstone, or a cascade removes it (a deleted organization's memberships); not a TTL expiry |
//! | `user.primary_email_changed` | beside `user.updated`, when the primary email differs |
//! | `user.banned`, `user.unbanned` | beside `user.updated`, when `data.banned` turns true or false |
//! | `organizationMembership.role_changed` | beside `organizationMembership.updated`, when the role differs |
//!
//! A rewrite with the same content, a duplicate or a stale event (no record at all), event
//! records, claims and checkpoints make nothing; so do families and writers the configuration
//! leaves out (`EVENT_FAMILIES`, `EVENT_SOURCES`). Each event's `change_id` is the same
//! whenever the same change is seen again, so consumers can deduplicate; `version` (Clerk's
//! `updated_at`) lets them order.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::table::encoding::{self, number, text, JsonItem};
use crate::table::{attr, is_live, Entity, Item, Writer};

/// Clerk's event families whose items can make events, and how each names itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    pub entity: Entity,
    /// The prefix of the event's `detail-type`, as Clerk names its events (`organizationMembership`).
    pub name: &'static str,
    /// The detail's `object`: Clerk's `object` of the type (`organization_membership`).
    pub object: &'static str,
}

impl Family {
    pub const ALL: [Self; 13] = [
        Self::new(Entity::User, "user", "user"),
        Self::new(Entity::Organization, "organization", "organization"),
        Self::new(
            Entity::Membership,
            "organizationMembership",
            "organization_membership",
        ),
        Self::new(Entity::Session, "session", "session"),
        Self::new(
            Entity::OrganizationInvitation,
            "organizationInvitation",
            "organization_invitation",
        ),
        Self::new(Entity::Domain, "organizationDomain", "organization_domain"),
        Self::new(Entity::Invitation, "invitation", "invitation"),
        Self::new(Entity::Role, "role", "role"),
        Self::new(Entity::Permission, "permission", "permission"),
        Self::new(Entity::WaitlistEntry, "waitlistEntry", "waitlist_entry"),
        Self::new(
            Entity::Subscription,
            "subscription",
            "commerce_subscription",
        ),
        Self::new(
            Entity::SubscriptionItem,
            "subscriptionItem",
            "commerce_subscription_item",
        ),
        Self::new(
            Entity::PaymentAttempt,
            "paymentAttempt",
            "commerce_payment_attempt",
        ),
    ];

    /// `EVENT_FAMILIES`' default: users, organizations and memberships.
    pub const DEFAULT: [Self; 3] = [Self::ALL[0], Self::ALL[1], Self::ALL[2]];

    const fn new(entity: Entity, name: &'static str, object: &'static str) -> Self {
        Self {
            entity,
            name,
            object,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name == name)
    }

    fn of(entity: Entity) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.entity == entity)
    }
}

/// Who made a change: the writers of `source`, and `cascade` for an item a parent's deletion
/// removed.
pub const CASCADE: &str = "cascade";

/// What the events carry and for which changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRules {
    pub families: Vec<Family>,
    /// The writers whose changes make events (`EVENT_SOURCES`): `webhook`, `sync`, `backfill`,
    /// `reconcile`, `cascade`.
    pub sources: Vec<String>,
    /// `EVENT_DETAIL=attributes`: the old and new top-level attributes too (personal data).
    pub attributes: bool,
}

impl Default for EventRules {
    fn default() -> Self {
        Self {
            families: Family::DEFAULT.to_vec(),
            sources: [Writer::Webhook.as_str(), Writer::Sync.as_str(), CASCADE]
                .map(str::to_owned)
                .to_vec(),
            attributes: false,
        }
    }
}

/// One event to put: its `detail-type` and its `detail`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    pub detail_type: String,
    pub detail: Detail,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detail {
    /// The same for the same change however often it is seen: `{detail-type}#{ids}#{version}`.
    pub change_id: String,
    /// The object's Clerk id (a membership's `orgmem_…` id).
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub object: &'static str,
    /// Clerk's `updated_at` (or the event's time) of the version the change made.
    pub version: i64,
    pub source: String,
    /// The names of the top-level attributes that changed, and `data` when the object did.
    pub changed: Vec<String>,
    /// With `EVENT_DETAIL=attributes`: the top-level attributes before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

impl ChangeEvent {
    /// The detail as EventBridge takes it: a JSON object in a string.
    pub fn detail_json(&self) -> String {
        serde_json::to_string(&self.detail).expect("a detail is plain JSON")
    }
}

/// Attributes that say where an item is or who wrote it, not what the object is.
const BOOKKEEPING: [&str; 16] = [
    attr::PK,
    attr::SK,
    attr::GSI1_PK,
    attr::GSI1_SK,
    attr::USERNAME_KEY,
    attr::EXTERNAL_ID_KEY,
    attr::ENTITY,
    attr::ID,
    attr::VERSION,
    attr::SOURCE,
    attr::LAST_SVIX_ID,
    attr::EXPIRES_AT,
    attr::DELETED,
    attr::DELETED_AT,
    attr::DATA,
    attr::TYPE,
];

/// How a record's item went away, when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// `MODIFY` or `INSERT`: nothing went away.
    None,
    /// `REMOVE` by DynamoDB's TTL (an expiry, not a deletion).
    Expired,
    /// `REMOVE` by a writer: a cascade after a parent's deletion.
    Deleted,
}

/// The events one record's images make under `rules`.
pub fn change_events(
    old: Option<&Item>,
    new: Option<&Item>,
    removal: Removal,
    rules: &EventRules,
) -> Vec<ChangeEvent> {
    let Some(either) = new.or(old) else {
        return Vec::new();
    };
    let Some(family) = text(either, attr::ENTITY)
        .and_then(Entity::parse)
        .and_then(Family::of)
        .filter(|f| rules.families.contains(f))
    else {
        return Vec::new();
    };
    let (old_live, new_live) = (old.filter(|i| is_live(i)), new.filter(|i| is_live(i)));
    let (kind, item, source) = match (old_live, new_live, new) {
        (_, Some(new), _) if old_live.is_none() => ("created", new, writer_of(new)),
        (Some(_), Some(new), _) => ("updated", new, writer_of(new)),
        // A live item became a tombstone.
        (Some(_), None, Some(tombstone)) => ("deleted", tombstone, writer_of(tombstone)),
        // A live item removed by a cascade (not by its TTL).
        (Some(old), None, None) if removal == Removal::Deleted => {
            ("deleted", old, CASCADE.to_owned())
        }
        _ => return Vec::new(),
    };
    if !rules.sources.contains(&source) {
        return Vec::new();
    }
    // For an update, what changed in `data` (each side decompressed and read once).
    let data = (kind == "updated").then(|| DataChange::of(old_live.expect("updated"), item));
    let changed = match (&data, kind) {
        (Some(data), _) => changed_names(old_live.expect("updated"), item, data.changed),
        (None, "created") => attribute_names(item),
        _ => Vec::new(),
    };
    if kind == "updated" && changed.is_empty() {
        return Vec::new();
    }
    let base = Base {
        family,
        item,
        source,
        rules,
        old: old_live,
        new: new_live,
    };
    let mut events = vec![base.event(kind, changed)];
    if kind == "updated" {
        let (old, new) = (old_live.expect("updated"), item);
        let differs = |name: &str| text(old, name) != text(new, name);
        match family.entity {
            Entity::User => {
                if differs(attr::EMAIL) {
                    events.push(base.event("primary_email_changed", vec![attr::EMAIL.into()]));
                }
                match data.as_ref().expect("updated").banned {
                    (false, true) => events.push(base.event("banned", vec!["data".into()])),
                    (true, false) => events.push(base.event("unbanned", vec!["data".into()])),
                    _ => {}
                }
            }
            Entity::Membership if differs(attr::ROLE) => {
                events.push(base.event("role_changed", vec![attr::ROLE.into()]));
            }
            _ => {}
        }
    }
    events
}

/// What every event of one record shares.
struct Base<'a> {
    family: Family,
    /// The item the change made (the tombstone, or the removed item for a cascade).
    item: &'a Item,
    source: String,
    rules: &'a EventRules,
    old: Option<&'a Item>,
    new: Option<&'a Item>,
}

impl Base<'_> {
    fn event(&self, kind: &str, changed: Vec<String>) -> ChangeEvent {
        let detail_type = format!("{}.{kind}", self.family.name);
        let id = text(self.item, attr::ID).unwrap_or_default().to_owned();
        let (org_id, user_id) = match self.family.entity {
            Entity::Membership => (
                text(self.item, attr::ORG_ID).map(str::to_owned),
                text(self.item, attr::USER_ID).map(str::to_owned),
            ),
            _ => (None, None),
        };
        let version = number(self.item, attr::VERSION).unwrap_or_default();
        // A membership's key is its organization and user: Clerk gives a re-added member a
        // new membership id, and a tombstone keeps the old one.
        let ids = match (&org_id, &user_id) {
            (Some(org), Some(user)) => format!("{org}#{user}"),
            _ => id.clone(),
        };
        let attributes = |item: Option<&Item>| {
            self.rules
                .attributes
                .then(|| item.map_or(Value::Null, |i| Value::Object(top_level(i))))
        };
        ChangeEvent {
            detail: Detail {
                change_id: format!("{detail_type}#{ids}#{version}"),
                id,
                org_id,
                user_id,
                object: self.family.object,
                version,
                source: self.source.clone(),
                changed,
                old: attributes(self.old),
                new: attributes(self.new),
            },
            detail_type,
        }
    }
}

/// Who wrote the item: its `source`; a webhook's tombstone has only `last_svix_id`.
fn writer_of(item: &Item) -> String {
    text(item, attr::SOURCE)
        .unwrap_or(Writer::Webhook.as_str())
        .to_owned()
}

/// The item's top-level attributes that describe the object, as JSON.
fn top_level(item: &Item) -> JsonItem {
    let described: Item = item
        .iter()
        .filter(|(name, _)| !BOOKKEEPING.contains(&name.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    encoding::to_json(&described).unwrap_or_default()
}

fn attribute_names(item: &Item) -> Vec<String> {
    let mut names: Vec<String> = item
        .keys()
        .filter(|name| !BOOKKEEPING.contains(&name.as_str()))
        .cloned()
        .collect();
    if item.contains_key(attr::DATA) {
        names.push(attr::DATA.into());
    }
    names.sort();
    names
}

/// The attributes whose values differ, and `data` when the object does.
fn changed_names(old: &Item, new: &Item, data_changed: bool) -> Vec<String> {
    let mut names: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|name| !BOOKKEEPING.contains(&name.as_str()))
        .filter(|name| old.get(*name) != new.get(*name))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    // `updated_at` is the version, which the detail carries: alone it is no change.
    names.retain(|name| name != attr::UPDATED_AT);
    if data_changed {
        names.push(attr::DATA.into());
    }
    names
}

/// What an update did to the object in `data`.
struct DataChange {
    /// It differs in more than `updated_at`.
    changed: bool,
    /// Clerk's `banned`, before and after.
    banned: (bool, bool),
}

/// An object's top-level entries, each value as its exact text: nothing below the first level
/// is built, so any depth reads. `None` for a text that is not an object with plain keys.
fn entries(text: &str) -> Option<HashMap<&str, &RawValue>> {
    serde_json::from_str(text).ok()
}

impl DataChange {
    fn of(old: &Item, new: &Item) -> Self {
        // The same bytes are the same object: nothing to decompress.
        if old.get(attr::DATA) == new.get(attr::DATA) {
            return Self {
                changed: false,
                banned: (false, false),
            };
        }
        // An unreadable `data` reads as absent.
        let text = |item: &Item| encoding::data_text(item).ok().flatten();
        let (old_text, new_text) = (text(old), text(new));
        let (old_entries, new_entries) = (
            old_text.as_deref().and_then(entries),
            new_text.as_deref().and_then(entries),
        );
        let banned = |entries: &Option<HashMap<&str, &RawValue>>| {
            entries
                .as_ref()
                .and_then(|e| e.get("banned"))
                .is_some_and(|v| v.get() == "true")
        };
        fn without_version<'a>(
            entries: &Option<HashMap<&'a str, &'a RawValue>>,
        ) -> Option<HashMap<&'a str, &'a str>> {
            let entries = entries.as_ref()?;
            Some(
                entries
                    .iter()
                    .filter(|(k, _)| **k != attr::UPDATED_AT)
                    .map(|(k, v)| (*k, v.get()))
                    .collect(),
            )
        }
        let changed = old_text != new_text
            && match (without_version(&old_entries), without_version(&new_entries)) {
                (Some(a), Some(b)) => a != b,
                // Not objects with plain keys: the texts differ, so the objects do.
                _ => true,
            };
        Self {
            changed,
            banned: (banned(&old_entries), banned(&new_entries)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::AttributeValue;
    use serde_json::json;

    fn item(value: Value) -> Item {
        let mut value = value;
        let data = value.as_object_mut().unwrap().remove("data");
        let mut item = encoding::from_json(value.as_object().unwrap());
        if let Some(data) = data {
            let gzip = encoding::encode_data(&data.to_string());
            item.insert(attr::DATA.into(), AttributeValue::B(Blob::new(gzip)));
        }
        item
    }

    fn user(version: i64, email: &str, banned: bool, source: &str) -> Item {
        item(json!({
            "pk": "USER#user_1", "sk": "PROFILE", "entity": "user", "id": "user_1",
            "source": source, "version": version, "updated_at": version, "email": email,
            "first_name": "Ada", "gsi1pk": format!("EMAIL#{email}"), "gsi1sk": "USER#user_1",
            "data": {"id": "user_1", "banned": banned, "updated_at": version}
        }))
    }

    fn membership(version: i64, role: &str) -> Item {
        item(json!({
            "pk": "ORG#org_1", "sk": "MEMBER#user_1", "entity": "membership", "id": "orgmem_1",
            "org_id": "org_1", "user_id": "user_1", "role": role, "version": version,
            "updated_at": version, "source": "webhook", "data": {"role": role}
        }))
    }

    fn tombstone(entity: &str, id: &str, version: i64) -> Item {
        item(
            json!({"pk": "USER#user_1", "sk": "PROFILE", "entity": entity, "id": id,
                    "deleted": true, "version": version, "last_svix_id": "msg_1"}),
        )
    }

    fn names(events: &[ChangeEvent]) -> Vec<&str> {
        events.iter().map(|e| e.detail_type.as_str()).collect()
    }

    const RULES: fn() -> EventRules = EventRules::default;

    #[test]
    fn a_first_live_appearance_is_created_with_ids_only() {
        let new = user(10, "ada@example.org", false, "webhook");
        let events = change_events(None, Some(&new), Removal::None, &RULES());
        assert_eq!(names(&events), ["user.created"]);
        let detail = &events[0].detail;
        assert_eq!(detail.change_id, "user.created#user_1#10");
        assert_eq!((detail.object, detail.version), ("user", 10));
        assert_eq!(detail.source, "webhook");
        assert_eq!(
            detail.changed,
            ["data", "email", "first_name", "updated_at"]
        );
        let json = events[0].detail_json();
        assert!(!json.contains("Ada") && !json.contains('@'), "{json}");
        assert!(
            !json.contains("\"old\"") && !json.contains("\"new\""),
            "{json}"
        );
    }

    #[test]
    fn an_update_names_what_changed_and_derives_email_and_ban_changes() {
        let old = user(10, "ada@example.org", false, "webhook");
        let new = user(11, "lovelace@example.org", true, "webhook");
        let events = change_events(Some(&old), Some(&new), Removal::None, &RULES());
        assert_eq!(
            names(&events),
            ["user.updated", "user.primary_email_changed", "user.banned"]
        );
        // gsi1pk changed too: where an item is indexed is not the object; updated_at is the
        // version.
        assert_eq!(events[0].detail.changed, ["email", "data"]);
        assert_eq!(
            events[1].detail.change_id,
            "user.primary_email_changed#user_1#11"
        );
        let unbanned = change_events(
            Some(&new),
            Some(&user(12, "lovelace@example.org", false, "webhook")),
            Removal::None,
            &RULES(),
        );
        assert_eq!(names(&unbanned), ["user.updated", "user.unbanned"]);
    }

    #[test]
    fn the_same_content_rewritten_makes_nothing() {
        let old = user(10, "ada@example.org", false, "webhook");
        let mut new = old.clone();
        // Who wrote it and where it is indexed are not the object.
        new.insert(attr::SOURCE.into(), AttributeValue::S("sync".into()));
        new.insert(attr::LAST_SVIX_ID.into(), AttributeValue::S("msg_2".into()));
        assert_eq!(
            change_events(Some(&old), Some(&new), Removal::None, &RULES()),
            []
        );
    }

    #[test]
    fn a_newer_version_that_changes_nothing_else_makes_nothing() {
        let old = user(10, "ada@example.org", false, "webhook");
        let new = user(11, "ada@example.org", false, "webhook");
        assert_eq!(
            change_events(Some(&old), Some(&new), Removal::None, &RULES()),
            []
        );
    }

    #[test]
    fn a_role_change_is_derived_and_a_deletion_is_one_event() {
        let events = change_events(
            Some(&membership(1, "org:member")),
            Some(&membership(2, "org:admin")),
            Removal::None,
            &RULES(),
        );
        assert_eq!(
            names(&events),
            [
                "organizationMembership.updated",
                "organizationMembership.role_changed"
            ]
        );
        let detail = &events[1].detail;
        assert_eq!(
            (detail.org_id.as_deref(), detail.user_id.as_deref()),
            (Some("org_1"), Some("user_1"))
        );
        assert_eq!(
            detail.change_id,
            "organizationMembership.role_changed#org_1#user_1#2"
        );
        let old = user(10, "ada@example.org", false, "webhook");
        let gone = tombstone("user", "user_1", 20);
        let events = change_events(Some(&old), Some(&gone), Removal::None, &RULES());
        assert_eq!(names(&events), ["user.deleted"]);
        assert_eq!(events[0].detail.change_id, "user.deleted#user_1#20");
        // A tombstone replaced, or written first: no live item went away.
        assert_eq!(
            change_events(Some(&gone), Some(&gone), Removal::None, &RULES()),
            []
        );
        assert_eq!(
            change_events(None, Some(&gone), Removal::None, &RULES()),
            []
        );
    }

    #[test]
    fn a_cascade_removal_is_a_deletion_and_an_expiry_is_not() {
        let member = membership(3, "org:member");
        let events = change_events(Some(&member), None, Removal::Deleted, &RULES());
        assert_eq!(names(&events), ["organizationMembership.deleted"]);
        assert_eq!(events[0].detail.source, "cascade");
        assert_eq!(
            change_events(Some(&member), None, Removal::Expired, &RULES()),
            []
        );
    }

    #[test]
    fn writers_families_and_bookkeeping_are_filtered() {
        let backfilled = user(10, "ada@example.org", false, "backfill");
        assert_eq!(
            change_events(None, Some(&backfilled), Removal::None, &RULES()),
            []
        );
        let everyone = EventRules {
            sources: vec!["backfill".into()],
            ..RULES()
        };
        assert_eq!(
            names(&change_events(
                None,
                Some(&backfilled),
                Removal::None,
                &everyone
            )),
            ["user.created"]
        );
        let synced = user(10, "ada@example.org", false, "sync");
        assert_eq!(
            names(&change_events(None, Some(&synced), Removal::None, &RULES())),
            ["user.created"]
        );
        let session = item(
            json!({"pk": "USER#user_1", "sk": "SESSION#sess_1", "entity": "session",
                                  "id": "sess_1", "version": 1, "source": "webhook"}),
        );
        assert_eq!(
            change_events(None, Some(&session), Removal::None, &RULES()),
            []
        );
        let sessions_too = EventRules {
            families: vec![Family::parse("session").unwrap()],
            ..RULES()
        };
        assert_eq!(
            names(&change_events(
                None,
                Some(&session),
                Removal::None,
                &sessions_too
            )),
            ["session.created"]
        );
        for bookkeeping in [
            json!({"pk": "EVENT#msg_1", "sk": "EVENT", "entity": "event", "type": "user.created"}),
            json!({"pk": "CLAIM#x", "sk": "CLAIM", "entity": "claim", "state": "done"}),
            json!({"pk": "BACKFILL", "sk": "users", "entity": "backfill_checkpoint"}),
        ] {
            assert_eq!(
                change_events(None, Some(&item(bookkeeping)), Removal::None, &RULES()),
                []
            );
        }
    }

    #[test]
    fn attributes_are_in_the_detail_only_when_asked_for() {
        let rules = EventRules {
            attributes: true,
            ..RULES()
        };
        let old = user(10, "ada@example.org", false, "webhook");
        let new = user(11, "lovelace@example.org", false, "webhook");
        let events = change_events(Some(&old), Some(&new), Removal::None, &rules);
        let detail = &events[0].detail;
        assert_eq!(detail.old.as_ref().unwrap()["email"], "ada@example.org");
        assert_eq!(
            detail.new.as_ref().unwrap()["email"],
            "lovelace@example.org"
        );
        assert!(
            detail.new.as_ref().unwrap().get("pk").is_none(),
            "no bookkeeping"
        );
    }
}
