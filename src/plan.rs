//! Sync rules: what each event does to the table, as a pure function
//! `(event, svix id, settings, now) -> Plan`. No I/O here; [`crate::store`] executes plans.
//!
//! The keys and index entries come from [`crate::table`], the table contract.

use serde_json::Value;

use crate::config::Settings;
use crate::event::{
    normalize_millis, Billing, Domain, Event, Invitation, Membership, Message, MessageKind,
    Organization, OrganizationInvitation, Payload, Permission, Role, Session, User, WaitlistEntry,
};
use crate::table::{IndexEntry, Item, Key};

/// When an entity write may replace what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// The item is absent or holds an older version.
    Newer,
    /// As `Newer`, and the stored item is not a tombstone. For objects whose ids Clerk never
    /// reuses (users, organizations, domains, roles, permissions): once deleted they stay
    /// deleted, whatever a late event says.
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
    /// Fails if the item at the key is a tombstone. An absent item passes: events may arrive
    /// before their parents.
    RequireNotDeleted(Key),
    /// A related object the event carries along (the user inside a session event), written
    /// under [`Guard::NewerAndNotDeleted`]. If the stored copy is newer, the rest of the
    /// event still applies: the store re-sends the transaction with [`Write::RequireNotDeleted`]
    /// in this write's place. If it is a tombstone, the whole event is stale.
    Refresh { item: Item, version: i64 },
}

/// Follow-up deletions once a parent's tombstone is in place. Idempotent: re-running after a
/// partial failure finishes the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cascade {
    /// The organization's memberships and invitations (its partition, `MEMBER#…` and
    /// `INVITATION#…`) and its domains (gsi1 `ORG#{id}` / `DOMAIN#…`).
    Organization { org_id: String },
    /// The user's sessions (partition `USER#{id}`, `SESSION#…`) and whatever gsi1 lists under
    /// `USER#{id}` (memberships, message metadata).
    User { user_id: String },
}

/// Everything one event needs: one transaction, then maybe a cascade.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// For a webhook, `writes[0]` is the [`Write::RecordEvent`] and `writes[1]`, when present,
    /// the entity write. A backfill plan has no event record: `writes[0]` is the entity write.
    pub writes: Vec<Write>,
    pub cascade: Option<Cascade>,
}

/// Who writes an item. Live entity items carry it as `source` (`webhook` or `backfill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// A verified delivery: the plan starts with its event record, and items carry
    /// `last_svix_id`.
    Webhook { svix_id: &'a str },
    /// An object copied from Clerk's Backend API by `clerk-webhooks-backfill`: there is no
    /// svix-id, so no event record; the version rules are the webhook's.
    Backfill,
}

impl Source<'_> {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Backfill => "backfill",
        }
    }
}

/// The writes `event` needs, or `None` for a type we do not sync (nothing is written, not
/// even the event record, so a later version that handles the type can still apply a replay).
pub fn plan(event: &Event, svix_id: &str, settings: &Settings, now_ms: i64) -> Option<Plan> {
    plan_for(event, Source::Webhook { svix_id }, settings, now_ms)
}

/// [`plan`] for an object the backfill read from the Backend API, presented as the
/// `*.created` event that would carry it: the same entity write under the same guard and
/// parent checks, without an event record.
pub fn plan_backfill(event: &Event, settings: &Settings, now_ms: i64) -> Option<Plan> {
    plan_for(event, Source::Backfill, settings, now_ms)
}

fn plan_for(event: &Event, source: Source, settings: &Settings, now_ms: i64) -> Option<Plan> {
    let ctx = ItemBuilder {
        event,
        source,
        settings,
        now_ms,
    };
    let org_alive = |org_id: &str| Write::RequireNotDeleted(Key::organization(org_id));
    let user_alive = |user_id: &str| Write::RequireNotDeleted(Key::user(user_id));
    let (writes, follow_up) = match &event.payload {
        Payload::Unhandled => return None,
        Payload::UserUpserted(user) => (vec![ctx.user(user)], None),
        Payload::OrganizationUpserted(org) => (vec![ctx.organization(org)], None),
        // Never resurrect a membership of a deleted organization or user.
        Payload::MembershipUpserted(m) => (
            vec![
                ctx.membership(m),
                org_alive(&m.organization.id),
                user_alive(&m.public_user_data.user_id),
            ],
            None,
        ),
        Payload::SessionUpserted(session) => {
            let user = match &session.user {
                Some(user) => ctx.user_refresh(user),
                None => user_alive(&session.user_id),
            };
            (vec![ctx.session(session), user], None)
        }
        Payload::OrganizationInvitationUpserted(inv) => (
            vec![
                ctx.organization_invitation(inv),
                org_alive(&inv.organization_id),
            ],
            None,
        ),
        Payload::DomainUpserted(domain) => (
            vec![ctx.domain(domain), org_alive(&domain.organization_id)],
            None,
        ),
        Payload::InvitationUpserted(inv) => (vec![ctx.invitation(inv)], None),
        Payload::RoleUpserted(role) => (vec![ctx.role(role)], None),
        Payload::PermissionUpserted(p) => (vec![ctx.permission(p)], None),
        Payload::WaitlistEntryUpserted(entry) => (vec![ctx.waitlist_entry(entry)], None),
        Payload::BillingUpserted(billing) => (vec![ctx.billing(billing)], None),
        Payload::MessageSent(message) => (ctx.message(message).into_iter().collect(), None),
        Payload::UserDeleted(d) => (
            vec![ctx.tombstone(Key::user(&d.id), "user", &d.id, None, &[])],
            Some(Cascade::User {
                user_id: d.id.clone(),
            }),
        ),
        Payload::OrganizationDeleted(d) => (
            vec![ctx.tombstone(Key::organization(&d.id), "organization", &d.id, None, &[])],
            Some(Cascade::Organization {
                org_id: d.id.clone(),
            }),
        ),
        Payload::MembershipDeleted(m) => {
            let (org_id, user_id) = (&m.organization.id, &m.public_user_data.user_id);
            let key = Key::membership(org_id, user_id);
            // Clerk's membership delete carries the whole membership, its updated_at included.
            let ids = [("org_id", org_id.as_str()), ("user_id", user_id.as_str())];
            (
                vec![ctx.tombstone(key, "membership", &m.id, m.updated_at, &ids)],
                None,
            )
        }
        Payload::DomainDeleted(d) => (
            vec![ctx.tombstone(Key::domain(&d.id), "domain", &d.id, None, &[])],
            None,
        ),
        Payload::RoleDeleted(d) => (
            vec![ctx.tombstone(Key::role(&d.id), "role", &d.id, None, &[])],
            None,
        ),
        Payload::PermissionDeleted(d) => (
            vec![ctx.tombstone(Key::permission(&d.id), "permission", &d.id, None, &[])],
            None,
        ),
    };
    let mut all = Vec::with_capacity(1 + writes.len());
    if let Source::Webhook { svix_id } = source {
        all.push(Write::RecordEvent(ctx.event_record(svix_id)));
    }
    all.extend(writes);
    Some(Plan {
        writes: all,
        cascade: follow_up,
    })
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

/// DynamoDB TTL is epoch seconds; Clerk's times are milliseconds.
fn ttl_from_millis(ms: i64) -> i64 {
    normalize_millis(ms).div_euclid(1000)
}

/// Builds the items of one event: its data, where it came from, the settings and the clock.
struct ItemBuilder<'a> {
    event: &'a Event,
    source: Source<'a>,
    settings: &'a Settings,
    now_ms: i64,
}

impl ItemBuilder<'_> {
    /// `source` on every live item; `last_svix_id` on what a webhook wrote.
    fn mark_source(&self, item: &mut Item) {
        insert(item, "source", self.source.as_str());
        if let Source::Webhook { svix_id } = self.source {
            insert(item, "last_svix_id", svix_id);
        }
    }

    fn expires_after(&self, ttl_secs: i64) -> i64 {
        self.now_ms.div_euclid(1000) + ttl_secs
    }

    fn event_record(&self, svix_id: &str) -> Item {
        let mut item = Key::event(svix_id).item();
        insert(&mut item, "entity", "event");
        insert(&mut item, "type", self.event.event_type.as_str());
        insert(&mut item, "event_timestamp", self.event.timestamp_ms);
        insert(&mut item, "received_at", self.now_ms);
        insert(
            &mut item,
            "expires_at",
            self.expires_after(self.settings.event_secs),
        );
        item
    }

    /// The attributes every live entity item carries, and the top-level `data` fields named
    /// in `fields` (absent and null ones left out).
    fn entity(&self, key: Key, entity: &str, id: &str, fields: &[&str]) -> Item {
        self.entity_from(key, entity, id, fields, &self.event.data)
    }

    /// As [`Self::entity`], for an object other than the event's own `data` (the user a
    /// session event carries).
    fn entity_from(&self, key: Key, entity: &str, id: &str, fields: &[&str], data: &Value) -> Item {
        let mut item = key.item();
        insert(&mut item, "entity", entity);
        insert(&mut item, "id", id);
        self.mark_source(&mut item);
        copy_fields(&mut item, data, fields);
        insert(&mut item, "data", data.clone());
        item
    }

    /// Stamps the version: the object's `updated_at`, else the envelope time.
    fn versioned(&self, mut item: Item, updated_at: Option<i64>) -> (Item, i64) {
        let version = upsert_version(updated_at, self.event.timestamp_ms);
        insert(&mut item, "version", version);
        (item, version)
    }

    fn put(&self, item: Item, updated_at: Option<i64>, guard: Guard) -> Write {
        let (item, version) = self.versioned(item, updated_at);
        Write::Put {
            item,
            version,
            guard,
        }
    }

    fn user_item(&self, user: &User, data: &Value) -> Item {
        let fields = [
            "first_name",
            "last_name",
            "username",
            "image_url",
            "external_id",
            "public_metadata",
            "created_at",
            "updated_at",
        ];
        let mut item = self.entity_from(Key::user(&user.id), "user", &user.id, &fields, data);
        if let Some(email) = user.primary_email() {
            insert(&mut item, "email", email);
            IndexEntry::user_email(email, &user.id).set_on(&mut item);
        }
        item
    }

    fn user(&self, user: &User) -> Write {
        let item = self.user_item(user, &self.event.data);
        self.put(item, user.updated_at, Guard::NewerAndNotDeleted)
    }

    /// The user a session event carries, as `user.updated` would write it.
    fn user_refresh(&self, user: &User) -> Write {
        let data = self.event.data.get("user").cloned().unwrap_or_default();
        let (item, version) = self.versioned(self.user_item(user, &data), user.updated_at);
        Write::Refresh { item, version }
    }

    fn organization(&self, org: &Organization) -> Write {
        let key = Key::organization(&org.id);
        let mut item = self.entity(
            key,
            "organization",
            &org.id,
            &[
                "name",
                "slug",
                "image_url",
                "public_metadata",
                "created_at",
                "updated_at",
            ],
        );
        if let Some(slug) = org.slug.as_deref().filter(|s| !s.is_empty()) {
            IndexEntry::organization_slug(slug, &org.id).set_on(&mut item);
        }
        self.put(item, org.updated_at, Guard::NewerAndNotDeleted)
    }

    fn membership(&self, m: &Membership) -> Write {
        let (org_id, user_id) = (&m.organization.id, &m.public_user_data.user_id);
        let key = Key::membership(org_id, user_id);
        let mut item = self.entity(
            key,
            "membership",
            &m.id,
            &["role", "permissions", "created_at", "updated_at"],
        );
        insert(&mut item, "org_id", org_id.as_str());
        insert(&mut item, "user_id", user_id.as_str());
        // Lists a user's organizations: query gsi1 for USER#{user_id}.
        IndexEntry::user_membership(user_id, org_id).set_on(&mut item);
        // A membership key (org + user) can come back: a removed member may be re-added,
        // so its tombstone yields to a newer version rather than being final.
        self.put(item, m.updated_at, Guard::Newer)
    }

    fn session(&self, s: &Session) -> Write {
        let key = Key::session(&s.user_id, &s.id);
        let mut item = self.entity(
            key,
            "session",
            &s.id,
            &[
                "user_id",
                "status",
                "client_id",
                "last_active_at",
                "expire_at",
                "abandon_at",
                "created_at",
                "updated_at",
                "last_active_organization_id",
            ],
        );
        if let Some(activity) = self.event.data.get("latest_activity") {
            copy_fields(
                &mut item,
                activity,
                &[
                    "device_type",
                    "browser_name",
                    "browser_version",
                    "is_mobile",
                ],
            );
        }
        // The user has its own item; the IP address is not ours to keep.
        let mut data = self.event.data.clone();
        if let Some(data) = data.as_object_mut() {
            data.remove("user");
            if let Some(Value::Object(activity)) = data.get_mut("latest_activity") {
                activity.remove("ip_address");
            }
        }
        insert(&mut item, "data", data);
        // A dead session disappears on its own once it can no longer be used.
        if let Some(end) = s.expire_at.into_iter().chain(s.abandon_at).max() {
            insert(&mut item, "expires_at", ttl_from_millis(end));
        }
        self.put(item, s.updated_at, Guard::Newer)
    }

    fn organization_invitation(&self, inv: &OrganizationInvitation) -> Write {
        let key = Key::organization_invitation(&inv.organization_id, &inv.id);
        let mut item = self.entity(
            key,
            "organization_invitation",
            &inv.id,
            &[
                "email_address",
                "role",
                "status",
                "created_at",
                "updated_at",
            ],
        );
        insert(&mut item, "org_id", inv.organization_id.as_str());
        if let Some(email) = inv.email_address.as_deref().filter(|e| !e.is_empty()) {
            IndexEntry::organization_invitation_email(email, &inv.id).set_on(&mut item);
        }
        if let Some(expiry) = inv.expires_at {
            insert(&mut item, "expires_at", ttl_from_millis(expiry));
        }
        self.put(item, inv.updated_at, Guard::Newer)
    }

    fn domain(&self, d: &Domain) -> Write {
        let key = Key::domain(&d.id);
        let mut item = self.entity(
            key,
            "domain",
            &d.id,
            &["name", "enrollment_mode", "created_at", "updated_at"],
        );
        insert(&mut item, "org_id", d.organization_id.as_str());
        // Lists an organization's domains: query gsi1 for ORG#{org_id}.
        IndexEntry::organization_domain(&d.organization_id, &d.id).set_on(&mut item);
        self.put(item, d.updated_at, Guard::NewerAndNotDeleted)
    }

    fn invitation(&self, inv: &Invitation) -> Write {
        let key = Key::invitation(&inv.id);
        let mut item = self.entity(
            key,
            "invitation",
            &inv.id,
            &["email_address", "status", "created_at", "updated_at"],
        );
        if let Some(email) = inv.email_address.as_deref().filter(|e| !e.is_empty()) {
            IndexEntry::invitation_email(email, &inv.id).set_on(&mut item);
        }
        if let Some(expiry) = inv.expires_at {
            insert(&mut item, "expires_at", ttl_from_millis(expiry));
        }
        self.put(item, inv.updated_at, Guard::Newer)
    }

    fn role(&self, role: &Role) -> Write {
        let key = Key::role(&role.id);
        let mut item = self.entity(
            key,
            "role",
            &role.id,
            &["key", "name", "description", "created_at", "updated_at"],
        );
        insert(&mut item, "permissions", role.permission_keys());
        self.put(item, role.updated_at, Guard::NewerAndNotDeleted)
    }

    fn permission(&self, p: &Permission) -> Write {
        let key = Key::permission(&p.id);
        let item = self.entity(
            key,
            "permission",
            &p.id,
            &[
                "key",
                "name",
                "description",
                "type",
                "created_at",
                "updated_at",
            ],
        );
        self.put(item, p.updated_at, Guard::NewerAndNotDeleted)
    }

    fn waitlist_entry(&self, entry: &WaitlistEntry) -> Write {
        let key = Key::waitlist_entry(&entry.id);
        let mut item = self.entity(
            key,
            "waitlist_entry",
            &entry.id,
            &[
                "email_address",
                "status",
                "is_locked",
                "created_at",
                "updated_at",
            ],
        );
        if let Some(email) = entry.email_address.as_deref().filter(|e| !e.is_empty()) {
            IndexEntry::waitlist_email(email, &entry.id).set_on(&mut item);
        }
        self.put(item, entry.updated_at, Guard::Newer)
    }

    fn billing(&self, billing: &Billing) -> Write {
        let kind = billing.kind.key_prefix();
        let id = &billing.object.id;
        let key = Key::profile(kind, id);
        let payer_entry = billing
            .payer_id()
            .map(|payer| IndexEntry::payer(payer, &key));
        let mut item = self.entity(
            key,
            billing.kind.entity(),
            id,
            &[
                "status",
                "subscription_id",
                "plan_id",
                "created_at",
                "updated_at",
            ],
        );
        if let Some(payer) = &billing.object.payer {
            insert_opt(&mut item, "payer_user_id", &payer.user_id);
            insert_opt(&mut item, "payer_org_id", &payer.organization_id);
        }
        // Lists what a user or an organization pays for: query gsi1 for PAYER#{id}.
        if let Some(entry) = payer_entry {
            entry.set_on(&mut item);
        }
        self.put(item, billing.object.updated_at, Guard::Newer)
    }

    /// Emails and SMS messages hold one-time codes and personal text: by default only the
    /// event record is written; with `STORE_MESSAGE_METADATA`, metadata without content.
    fn message(&self, message: &Message) -> Option<Write> {
        if !self.settings.message_metadata {
            return None;
        }
        let m = &message.metadata;
        let entity = match message.kind {
            MessageKind::Email => "email",
            MessageKind::Sms => "sms",
        };
        let mut item = Key::message(&m.id).item();
        insert(&mut item, "entity", entity);
        insert(&mut item, "id", m.id.as_str());
        self.mark_source(&mut item);
        insert_opt(&mut item, "user_id", &m.user_id);
        insert_opt(&mut item, "slug", &m.slug);
        insert_opt(&mut item, "status", &m.status);
        let created_at = m
            .created_at
            .or(m.created_at_ms)
            .unwrap_or(self.event.timestamp_ms);
        insert(&mut item, "created_at", created_at);
        insert(
            &mut item,
            "expires_at",
            self.expires_after(self.settings.event_secs),
        );
        if let Some(user_id) = &m.user_id {
            IndexEntry::user_message(user_id, &m.id).set_on(&mut item);
        }
        Some(self.put(item, None, Guard::Newer))
    }

    /// Keeps the key and the version, drops every personal attribute and the GSI keys.
    /// `updated_at` is the deleted object's own, when its delete event carries one; `ids` are
    /// identifiers (never personal data) the tombstone keeps for readers.
    fn tombstone(
        &self,
        key: Key,
        entity: &str,
        id: &str,
        updated_at: Option<i64>,
        ids: &[(&str, &str)],
    ) -> Write {
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
            self.expires_after(self.settings.tombstone_secs),
        );
        if let Source::Webhook { svix_id } = self.source {
            insert(&mut item, "last_svix_id", svix_id);
        }
        for (name, value) in ids {
            insert(&mut item, name, *value);
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

/// Copies the named top-level fields of a Clerk object, leaving out absent and null ones.
fn copy_fields(item: &mut Item, object: &Value, fields: &[&str]) {
    for field in fields {
        if let Some(value) = object.get(field).filter(|v| !v.is_null()) {
            item.insert((*field).to_owned(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use serde_json::json;

    const NOW: i64 = 1_716_883_300_000;
    const SVIX: &str = "msg_2jJ7cW4q5ZLz1Lq9fYqkVwN3Xyz";

    fn event(event_type: &str, timestamp: i64, data: Value) -> Event {
        let body = json!({"object": "event", "type": event_type, "timestamp": timestamp,
                          "instance_id": "ins_1", "data": data});
        Event::decode(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    fn plan_of(e: &Event) -> Plan {
        plan(e, SVIX, &Settings::default(), NOW).expect("a synced type")
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
    fn a_backfill_plan_is_the_webhook_plan_without_the_event_record() {
        let cases = [
            ("user.created", user_event().data),
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
            assert_eq!(ours, &same, "{event_type}: otherwise the same item");
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
            Some(Cascade::User {
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
            Some(Cascade::Organization {
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
        assert!(!serde_json::to_string(item).unwrap().contains("203.0.113.7"));
        // The embedded user is carried along as a refresh of the user item.
        let Write::Refresh {
            item: user,
            version,
        } = &p.writes[2]
        else {
            panic!("{:?}", p.writes[2])
        };
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
        assert_no_personal_data(put(&del.writes[1]).0);
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
        let text = serde_json::to_string(item).unwrap();
        for secret in ["424242", "jane@example.org", "subject", "body"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let sms = json!({"object": "sms_message", "id": "sms_1", "to_phone_number": "+15555550100",
                         "message": "code 424242", "status": "queued", "created_at_ms": 1_716_883_200_000_i64});
        let p = plan(&event("sms.created", NOW, sms), SVIX, &settings, NOW).unwrap();
        let (item, _, _) = put(&p.writes[1]);
        assert_eq!(item["created_at"], json!(1_716_883_200_000_i64));
        assert!(!serde_json::to_string(item).unwrap().contains("5555550100"));
    }
}
