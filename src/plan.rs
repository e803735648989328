//! Sync rules: what each event does to the table, as a pure function
//! `(event, svix id, retention, now) -> Plan`. No I/O here; [`crate::store`] executes plans.
//!
//! The table contract (keys, attributes, GSI) is defined here and documented in README.md.

use serde_json::{json, Map, Value};

use crate::config::Retention;
use crate::event::{normalize_millis, Event, Membership, Organization, Payload, User};

/// A whole DynamoDB item as JSON, including `pk` and `sk`. The store converts it with
/// `serde_dynamo`, so maps and lists stay native DynamoDB maps and lists.
pub type Item = Map<String, Value>;

pub const PROFILE_SK: &str = "PROFILE";
pub const EVENT_SK: &str = "EVENT";

/// The primary key of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn user(user_id: &str) -> Self {
        Self {
            pk: format!("USER#{user_id}"),
            sk: PROFILE_SK.into(),
        }
    }
    pub fn organization(org_id: &str) -> Self {
        Self {
            pk: format!("ORG#{org_id}"),
            sk: PROFILE_SK.into(),
        }
    }
    pub fn membership(org_id: &str, user_id: &str) -> Self {
        Self {
            pk: format!("ORG#{org_id}"),
            sk: format!("MEMBER#{user_id}"),
        }
    }
    pub fn event(svix_id: &str) -> Self {
        Self {
            pk: format!("EVENT#{svix_id}"),
            sk: EVENT_SK.into(),
        }
    }

    fn item(&self) -> Item {
        let mut item = Map::new();
        item.insert("pk".into(), Value::String(self.pk.clone()));
        item.insert("sk".into(), Value::String(self.sk.clone()));
        item
    }
}

/// When an entity write may replace what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// The item is absent or holds an older version.
    Newer,
    /// As `Newer`, and the stored item is not a tombstone. Clerk never reuses user or
    /// organization ids, so once deleted they stay deleted whatever a late event says.
    NewerAndNotDeleted,
}

/// One item of the transaction, in the order the store sends them.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// The idempotency record; fails if this svix-id was already applied.
    RecordEvent(Item),
    /// Replaces the item at its key if `guard` holds for `version`.
    Put {
        item: Item,
        version: i64,
        guard: Guard,
    },
    /// Fails if the item at the key is a tombstone. An absent item passes: a membership
    /// may arrive before its organization or user.
    RequireNotDeleted(Key),
}

/// Follow-up deletions once a parent's tombstone is in place. Idempotent: re-running after a
/// partial failure finishes the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cascade {
    /// Every `MEMBER#` item in the organization's partition.
    OrganizationMemberships { org_id: String },
    /// Every membership of the user, found through `gsi1` (`USER#{id}`).
    UserMemberships { user_id: String },
}

/// Everything one event needs: one transaction, then maybe a cascade.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `writes[0]` is always the [`Write::RecordEvent`]; `writes[1]` the entity write.
    pub writes: Vec<Write>,
    pub cascade: Option<Cascade>,
}

/// The writes `event` needs, or `None` for a type we do not sync (nothing is written, not
/// even the event record, so a later version that handles the type can still apply a replay).
pub fn plan(event: &Event, svix_id: &str, retention: &Retention, now_ms: i64) -> Option<Plan> {
    let ctx = Context {
        event,
        svix_id,
        retention,
        now_ms,
    };
    let (entity, checks, cascade) = match &event.payload {
        Payload::Unhandled => return None,
        Payload::UserUpserted(user) => (ctx.user(user), vec![], None),
        Payload::OrganizationUpserted(org) => (ctx.organization(org), vec![], None),
        Payload::MembershipUpserted(m) => (
            ctx.membership(m),
            // Never resurrect a membership of a deleted organization or user.
            vec![
                Write::RequireNotDeleted(Key::organization(&m.organization.id)),
                Write::RequireNotDeleted(Key::user(&m.public_user_data.user_id)),
            ],
            None,
        ),
        Payload::UserDeleted(d) => (
            ctx.tombstone(Key::user(&d.id), "user", &d.id, None),
            vec![],
            Some(Cascade::UserMemberships {
                user_id: d.id.clone(),
            }),
        ),
        Payload::OrganizationDeleted(d) => (
            ctx.tombstone(Key::organization(&d.id), "organization", &d.id, None),
            vec![],
            Some(Cascade::OrganizationMemberships {
                org_id: d.id.clone(),
            }),
        ),
        Payload::MembershipDeleted(m) => {
            let (org_id, user_id) = (&m.organization.id, &m.public_user_data.user_id);
            let key = Key::membership(org_id, user_id);
            let ids = json!({"org_id": org_id, "user_id": user_id});
            (
                ctx.tombstone(key, "membership", &m.id, Some(ids)),
                vec![],
                None,
            )
        }
    };
    let mut writes = Vec::with_capacity(2 + checks.len());
    writes.push(Write::RecordEvent(ctx.event_record()));
    writes.push(entity);
    writes.extend(checks);
    Some(Plan { writes, cascade })
}

/// An upsert's version is the object's `updated_at`, else the envelope timestamp.
pub fn upsert_version(updated_at: Option<i64>, timestamp_ms: i64) -> i64 {
    updated_at.map(normalize_millis).unwrap_or(timestamp_ms)
}

/// A delete happened at the envelope timestamp. `organizationMembership.deleted` also carries
/// the membership's last `updated_at`, which equals the version already stored: taking only it
/// would make the delete a tie and so `stale`. The later of the two orders it correctly.
pub fn delete_version(updated_at: Option<i64>, timestamp_ms: i64) -> i64 {
    updated_at
        .map(normalize_millis)
        .unwrap_or(i64::MIN)
        .max(timestamp_ms)
}

struct Context<'a> {
    event: &'a Event,
    svix_id: &'a str,
    retention: &'a Retention,
    now_ms: i64,
}

impl Context<'_> {
    fn expires_at(&self, ttl_secs: i64) -> i64 {
        self.now_ms.div_euclid(1000) + ttl_secs
    }

    fn event_record(&self) -> Item {
        let mut item = Key::event(self.svix_id).item();
        insert(&mut item, "entity", "event");
        insert(&mut item, "type", self.event.event_type.as_str());
        insert(&mut item, "event_timestamp", self.event.timestamp_ms);
        insert(&mut item, "received_at", self.now_ms);
        insert(
            &mut item,
            "expires_at",
            self.expires_at(self.retention.event_secs),
        );
        item
    }

    /// The attributes every live entity item carries.
    fn entity(&self, key: Key, entity: &str, id: &str, version: i64) -> Item {
        let mut item = key.item();
        insert(&mut item, "entity", entity);
        insert(&mut item, "id", id);
        insert(&mut item, "version", version);
        insert(&mut item, "last_svix_id", self.svix_id);
        insert(&mut item, "data", self.event.data.clone());
        item
    }

    fn user(&self, user: &User) -> Write {
        let version = upsert_version(user.updated_at, self.event.timestamp_ms);
        let mut item = self.entity(Key::user(&user.id), "user", &user.id, version);
        if let Some(email) = user.primary_email() {
            insert(&mut item, "email", email);
            insert(
                &mut item,
                "gsi1pk",
                format!("EMAIL#{}", email.to_lowercase()),
            );
            insert(&mut item, "gsi1sk", format!("USER#{}", user.id));
        }
        insert_opt(&mut item, "first_name", &user.first_name);
        insert_opt(&mut item, "last_name", &user.last_name);
        insert_opt(&mut item, "username", &user.username);
        insert_opt(&mut item, "image_url", &user.image_url);
        insert_opt(&mut item, "external_id", &user.external_id);
        insert_opt(&mut item, "public_metadata", &user.public_metadata);
        insert_opt(&mut item, "created_at", &user.created_at);
        insert_opt(&mut item, "updated_at", &user.updated_at);
        Write::Put {
            item,
            version,
            guard: Guard::NewerAndNotDeleted,
        }
    }

    fn organization(&self, org: &Organization) -> Write {
        let version = upsert_version(org.updated_at, self.event.timestamp_ms);
        let mut item = self.entity(Key::organization(&org.id), "organization", &org.id, version);
        if let Some(slug) = org.slug.as_deref().filter(|s| !s.is_empty()) {
            insert(&mut item, "gsi1pk", format!("SLUG#{slug}"));
            insert(&mut item, "gsi1sk", format!("ORG#{}", org.id));
        }
        insert_opt(&mut item, "name", &org.name);
        insert_opt(&mut item, "slug", &org.slug);
        insert_opt(&mut item, "image_url", &org.image_url);
        insert_opt(&mut item, "public_metadata", &org.public_metadata);
        insert_opt(&mut item, "created_at", &org.created_at);
        insert_opt(&mut item, "updated_at", &org.updated_at);
        Write::Put {
            item,
            version,
            guard: Guard::NewerAndNotDeleted,
        }
    }

    fn membership(&self, m: &Membership) -> Write {
        let (org_id, user_id) = (&m.organization.id, &m.public_user_data.user_id);
        let version = upsert_version(m.updated_at, self.event.timestamp_ms);
        let key = Key::membership(org_id, user_id);
        let mut item = self.entity(key, "membership", &m.id, version);
        insert(&mut item, "org_id", org_id.as_str());
        insert(&mut item, "user_id", user_id.as_str());
        insert(&mut item, "role", m.role.as_str());
        insert(&mut item, "permissions", m.permissions.clone());
        insert_opt(&mut item, "created_at", &m.created_at);
        insert_opt(&mut item, "updated_at", &m.updated_at);
        // Lists a user's organizations: query gsi1 for USER#{user_id}.
        insert(&mut item, "gsi1pk", format!("USER#{user_id}"));
        insert(&mut item, "gsi1sk", format!("ORG#{org_id}"));
        // A membership key (org + user) can come back: a removed member may be re-added,
        // so its tombstone yields to a newer version rather than being final.
        Write::Put {
            item,
            version,
            guard: Guard::Newer,
        }
    }

    /// Keeps the key and the version, drops every personal attribute and the GSI keys.
    fn tombstone(&self, key: Key, entity: &str, id: &str, ids: Option<Value>) -> Write {
        let updated_at = match &self.event.payload {
            Payload::MembershipDeleted(m) => m.updated_at,
            _ => None,
        };
        let version = delete_version(updated_at, self.event.timestamp_ms);
        let mut item = key.item();
        insert(&mut item, "entity", entity);
        insert(&mut item, "id", id);
        insert(&mut item, "deleted", true);
        insert(&mut item, "version", version);
        insert(&mut item, "deleted_at", self.event.timestamp_ms);
        insert(
            &mut item,
            "expires_at",
            self.expires_at(self.retention.tombstone_secs),
        );
        insert(&mut item, "last_svix_id", self.svix_id);
        if let Some(Value::Object(ids)) = ids {
            item.extend(ids);
        }
        Write::Put {
            item,
            version,
            guard: Guard::Newer,
        }
    }
}

fn insert(item: &mut Item, name: &str, value: impl Into<Value>) {
    item.insert(name.to_owned(), value.into());
}

/// Absent and null fields are left out rather than stored as NULL.
fn insert_opt<T: Clone + Into<Value>>(item: &mut Item, name: &str, value: &Option<T>) {
    if let Some(v) = value {
        let v: Value = v.clone().into();
        if !v.is_null() {
            item.insert(name.to_owned(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    const NOW: i64 = 1_716_883_300_000;
    const SVIX: &str = "msg_2jJ7cW4q5ZLz1Lq9fYqkVwN3Xyz";

    fn event(event_type: &str, timestamp: i64, data: Value) -> Event {
        let body = json!({"object": "event", "type": event_type, "timestamp": timestamp,
                          "instance_id": "ins_1", "data": data});
        Event::decode(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    fn plan_of(e: &Event) -> Plan {
        plan(e, SVIX, &Retention::default(), NOW).expect("a synced type")
    }

    fn user_event() -> Event {
        event(
            "user.updated",
            1_716_883_200_500,
            json!({
                "id": "user_1", "first_name": "Jane", "last_name": "Doe", "username": null,
                "primary_email_address_id": "idn_2",
                "email_addresses": [{"id": "idn_1", "email_address": "first@example.org"},
                                    {"id": "idn_2", "email_address": "Jane@Example.ORG"}],
                "public_metadata": {"plan": "pro"},
                "created_at": 1_716_000_000_000_i64, "updated_at": 1_716_883_200_000_i64
            }),
        )
    }

    fn membership_data() -> Value {
        json!({"id": "orgmem_1", "role": "org:admin", "permissions": ["org:sys_memberships:read"],
               "organization": {"id": "org_1", "name": "Acme"},
               "public_user_data": {"user_id": "user_1", "first_name": "Jane"},
               "created_at": 1_716_000_000_000_i64, "updated_at": 1_716_883_200_000_i64})
    }

    fn put(w: &Write) -> (&Item, i64, Guard) {
        match w {
            Write::Put {
                item,
                version,
                guard,
            } => (item, *version, *guard),
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

    fn assert_no_personal_data(item: &Item) {
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
            Some(Cascade::UserMemberships {
                user_id: "user_1".into()
            })
        );
        let (item, version, guard) = put(&p.writes[1]);
        assert_eq!((version, guard), (1_716_883_250_000, Guard::Newer));
        assert_eq!(item["deleted_at"], json!(1_716_883_250_000_i64));
        assert_eq!(item["expires_at"], json!(NOW / 1000 + 90 * 86_400));
        assert_no_personal_data(item);
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
            Some(Cascade::OrganizationMemberships {
                org_id: "org_1".into()
            })
        );
        assert_no_personal_data(put(&p.writes[1]).0);
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
        assert_no_personal_data(item);
    }

    #[test]
    fn unhandled_types_plan_nothing() {
        let e = event("session.created", NOW, json!({"id": "sess_1"}));
        assert_eq!(plan(&e, SVIX, &Retention::default(), NOW), None);
    }
}
