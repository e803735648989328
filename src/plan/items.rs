//! The item builders: what each entity's item holds (keys from [`crate::table`], the
//! attributes readers query, the whole object in `data`), stamped with its version. Which
//! guard an item is written under, and what else the event checks, is decided in
//! [`super::plan_for`].

use std::cell::RefCell;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{delete_version, upsert_version, LeftOut, Source};
use crate::event::{
    is_key_safe, normalize_millis, Billing, BillingKind, Data, Domain, Event, Invitation,
    Membership, Message, MessageKind, Organization, OrganizationInvitation, Permission, Role,
    Session, User, WaitlistEntry,
};
use crate::plan::Settings;
use crate::table::encoding::{self, Unfit, MAX_ITEM_BYTES};
use crate::table::{self, attr, Entity, IndexEntry, Item, Key};

/// An item to write and its version (what the guard compares).
#[derive(Debug)]
pub(super) struct Versioned {
    pub(super) item: Item,
    pub(super) version: i64,
}

/// DynamoDB TTL is epoch seconds; Clerk's times are milliseconds.
fn ttl_from_millis(ms: i64) -> i64 {
    normalize_millis(ms).div_euclid(1000)
}

/// Builds the items of one event: its data, where it came from, the settings and the clock.
pub(super) struct ItemBuilder<'a> {
    pub(super) event: &'a Event,
    pub(super) source: Source<'a>,
    pub(super) settings: &'a Settings,
    pub(super) now_ms: i64,
    /// The top-level attributes left out of the items built so far (kept in `data`).
    pub(super) left_out: RefCell<Vec<LeftOut>>,
}

impl ItemBuilder<'_> {
    /// `source` on every live item; `last_svix_id` on what a webhook wrote.
    fn mark_source(&self, item: &mut Item) {
        insert(item, attr::SOURCE, self.source.as_str());
        if let Source::Webhook { svix_id } = self.source {
            insert(item, attr::LAST_SVIX_ID, svix_id);
        }
    }

    /// Copies the named top-level fields of a Clerk object as native attributes, leaving out
    /// absent and null ones, and those DynamoDB cannot hold exactly (noted in `left_out`).
    fn copy_fields(&self, item: &mut Item, object: &Data, fields: &[&'static str]) {
        for &field in fields {
            let Some(raw) = object.field(field) else {
                continue;
            };
            match encoding::attribute(raw) {
                Ok(AttributeValue::Null(_)) => {}
                Ok(value) => {
                    item.insert(field.to_owned(), value);
                }
                Err(why) => self.left_out.borrow_mut().push(LeftOut { field, why }),
            }
        }
    }

    /// `data`: the object's exact JSON text, compressed ([`encoding::encode_data`]). Then,
    /// if the item is over DynamoDB's 400 KB, the largest copied `fields` are left out until
    /// it fits: they are all in `data` already.
    fn set_data(&self, item: &mut Item, data: &Data, fields: &[&'static str]) {
        let blob = Blob::new(encoding::encode_data(data.text()));
        item.insert(attr::DATA.to_owned(), AttributeValue::B(blob));
        while encoding::item_size(item) > MAX_ITEM_BYTES {
            let largest = fields
                .iter()
                .filter_map(|&f| item.get(f).map(|v| (f, encoding::attribute_size(f, v))))
                .max_by_key(|&(_, size)| size);
            let Some((field, _)) = largest else {
                // `data` alone is over the limit: DynamoDB refuses the write, reported as a
                // permanent store error. Clerk bounds what a payload holds far below this.
                return;
            };
            item.remove(field);
            self.left_out.borrow_mut().push(LeftOut {
                field,
                why: Unfit::TooLarge,
            });
        }
    }

    fn expires_after(&self, ttl_secs: i64) -> i64 {
        self.now_ms.div_euclid(1000) + ttl_secs
    }

    pub(super) fn event_record(&self, svix_id: &str) -> Item {
        let mut item = Key::event(svix_id).item();
        insert(&mut item, attr::ENTITY, Entity::Event.as_str());
        insert(&mut item, attr::TYPE, self.event.event_type.as_str());
        insert(&mut item, attr::EVENT_TIMESTAMP, self.event.timestamp_ms);
        insert(&mut item, attr::RECEIVED_AT, self.now_ms);
        // Which instance sent it: what a backfill's key is checked against (an id, so safe to
        // keep; anything else is left out).
        if let Some(instance) = self.event.instance_id.as_deref().filter(|i| is_key_safe(i)) {
            insert(&mut item, attr::INSTANCE_ID, instance);
        }
        insert(
            &mut item,
            attr::EXPIRES_AT,
            self.expires_after(self.settings.event_secs),
        );
        item
    }

    /// The attributes every live entity item carries, and the top-level `data` fields named
    /// in `fields` (absent and null ones left out).
    fn entity(&self, key: Key, entity: Entity, id: &str, fields: &[&'static str]) -> Item {
        self.entity_from(key, entity, id, fields, &self.event.data)
    }

    /// As [`Self::entity`], for an object other than the event's own `data` (the user a
    /// session event carries).
    fn entity_from(
        &self,
        key: Key,
        entity: Entity,
        id: &str,
        fields: &[&'static str],
        data: &Data,
    ) -> Item {
        let mut item = key.item();
        insert(&mut item, attr::ENTITY, entity.as_str());
        insert(&mut item, attr::ID, id);
        self.mark_source(&mut item);
        self.copy_fields(&mut item, data, fields);
        self.set_data(&mut item, data, fields);
        item
    }

    /// Stamps the version: the object's `updated_at`, else the envelope time.
    fn versioned(&self, mut item: Item, updated_at: Option<i64>) -> Versioned {
        let version = upsert_version(updated_at, self.event.timestamp_ms);
        insert(&mut item, attr::VERSION, version);
        Versioned { item, version }
    }

    fn user_item(&self, user: &User, data: &Data) -> Item {
        const FIELDS: [&str; 8] = [
            attr::FIRST_NAME,
            attr::LAST_NAME,
            attr::USERNAME,
            attr::IMAGE_URL,
            attr::EXTERNAL_ID,
            attr::PUBLIC_METADATA,
            attr::CREATED_AT,
            attr::UPDATED_AT,
        ];
        let mut item = self.entity_from(Key::user(&user.id), Entity::User, &user.id, &FIELDS, data);
        if let Some(email) = user.primary_email() {
            insert(&mut item, attr::EMAIL, email);
            IndexEntry::user_email(email, &user.id).set_on(&mut item);
        }
        // The sparse lookup indexes' keys (table::LOOKUP_INDEXES); an empty value is no key.
        if let Some(username) = user.username.as_deref().filter(|u| !u.is_empty()) {
            insert(
                &mut item,
                attr::USERNAME_KEY,
                table::username_key(username).as_str(),
            );
        }
        if let Some(external_id) = user.external_id.as_deref().filter(|e| !e.is_empty()) {
            insert(
                &mut item,
                attr::EXTERNAL_ID_KEY,
                table::external_id_key(external_id).as_str(),
            );
        }
        item
    }

    pub(super) fn user(&self, user: &User) -> Versioned {
        let item = self.user_item(user, &self.event.data);
        self.versioned(item, user.updated_at)
    }

    /// The user a session event carries, as `user.updated` would write it.
    pub(super) fn session_user(&self, user: &User) -> Versioned {
        let data = self
            .event
            .data
            .field("user")
            .and_then(|raw| Data::parse(raw.to_owned()))
            .expect("the session's user was read from this object");
        self.versioned(self.user_item(user, &data), user.updated_at)
    }

    pub(super) fn organization(&self, org: &Organization) -> Versioned {
        let key = Key::organization(&org.id);
        let mut item = self.entity(
            key,
            Entity::Organization,
            &org.id,
            &[
                attr::NAME,
                attr::SLUG,
                attr::IMAGE_URL,
                attr::PUBLIC_METADATA,
                attr::CREATED_AT,
                attr::UPDATED_AT,
            ],
        );
        if let Some(slug) = org.slug.as_deref().filter(|s| !s.is_empty()) {
            IndexEntry::organization_slug(slug, &org.id).set_on(&mut item);
        }
        self.versioned(item, org.updated_at)
    }

    pub(super) fn membership(&self, m: &Membership) -> Versioned {
        let (org_id, user_id) = (&m.organization.id, &m.public_user_data.user_id);
        let key = Key::membership(org_id, user_id);
        let mut item = self.entity(
            key,
            Entity::Membership,
            &m.id,
            &[
                attr::ROLE,
                attr::PERMISSIONS,
                attr::CREATED_AT,
                attr::UPDATED_AT,
            ],
        );
        insert(&mut item, attr::ORG_ID, org_id.as_str());
        insert(&mut item, attr::USER_ID, user_id.as_str());
        // Lists a user's organizations: query gsi1 for USER#{user_id}.
        IndexEntry::user_membership(user_id, org_id).set_on(&mut item);
        self.versioned(item, m.updated_at)
    }

    pub(super) fn session(&self, s: &Session) -> Versioned {
        const SESSION_FIELDS: &[&str] = &[
            attr::USER_ID,
            attr::STATUS,
            attr::CLIENT_ID,
            attr::LAST_ACTIVE_AT,
            attr::EXPIRE_AT,
            attr::ABANDON_AT,
            attr::CREATED_AT,
            attr::UPDATED_AT,
            attr::LAST_ACTIVE_ORGANIZATION_ID,
        ];
        let activity = self
            .event
            .data
            .field("latest_activity")
            .and_then(|raw| Data::parse(raw.to_owned()));
        // The user has its own item; the IP address is not ours to keep.
        let without_ip = activity
            .as_ref()
            .map(|a| ("latest_activity", a.edited(&["ip_address"], &[])));
        let data = self.event.data.edited(&["user"], without_ip.as_slice());
        let key = Key::session(&s.user_id, &s.id);
        let mut item = self.entity_from(key, Entity::Session, &s.id, SESSION_FIELDS, &data);
        if let Some(activity) = &activity {
            self.copy_fields(
                &mut item,
                activity,
                &[
                    attr::DEVICE_TYPE,
                    attr::BROWSER_NAME,
                    attr::BROWSER_VERSION,
                    attr::IS_MOBILE,
                ],
            );
        }
        // A dead session disappears on its own once it can no longer be used.
        if let Some(end) = s.expire_at.into_iter().chain(s.abandon_at).max() {
            insert(&mut item, attr::EXPIRES_AT, ttl_from_millis(end));
        }
        self.versioned(item, s.updated_at)
    }

    pub(super) fn organization_invitation(&self, inv: &OrganizationInvitation) -> Versioned {
        let key = Key::organization_invitation(&inv.organization_id, &inv.id);
        let mut item = self.entity(
            key,
            Entity::OrganizationInvitation,
            &inv.id,
            &[
                attr::EMAIL_ADDRESS,
                attr::ROLE,
                attr::STATUS,
                attr::CREATED_AT,
                attr::UPDATED_AT,
            ],
        );
        insert(&mut item, attr::ORG_ID, inv.organization_id.as_str());
        if let Some(email) = inv.email_address.as_deref().filter(|e| !e.is_empty()) {
            IndexEntry::organization_invitation_email(email, &inv.id).set_on(&mut item);
        }
        if let Some(expiry) = inv.expires_at {
            insert(&mut item, attr::EXPIRES_AT, ttl_from_millis(expiry));
        }
        self.versioned(item, inv.updated_at)
    }

    pub(super) fn domain(&self, d: &Domain) -> Versioned {
        let key = Key::domain(&d.id);
        let mut item = self.entity(
            key,
            Entity::Domain,
            &d.id,
            &[
                attr::NAME,
                attr::ENROLLMENT_MODE,
                attr::CREATED_AT,
                attr::UPDATED_AT,
            ],
        );
        insert(&mut item, attr::ORG_ID, d.organization_id.as_str());
        // Lists an organization's domains: query gsi1 for ORG#{org_id}.
        IndexEntry::organization_domain(&d.organization_id, &d.id).set_on(&mut item);
        self.versioned(item, d.updated_at)
    }

    pub(super) fn invitation(&self, inv: &Invitation) -> Versioned {
        let key = Key::invitation(&inv.id);
        let mut item = self.entity(
            key,
            Entity::Invitation,
            &inv.id,
            &[
                attr::EMAIL_ADDRESS,
                attr::STATUS,
                attr::CREATED_AT,
                attr::UPDATED_AT,
            ],
        );
        if let Some(email) = inv.email_address.as_deref().filter(|e| !e.is_empty()) {
            IndexEntry::invitation_email(email, &inv.id).set_on(&mut item);
        }
        if let Some(expiry) = inv.expires_at {
            insert(&mut item, attr::EXPIRES_AT, ttl_from_millis(expiry));
        }
        self.versioned(item, inv.updated_at)
    }

    pub(super) fn role(&self, role: &Role) -> Versioned {
        let key = Key::role(&role.id);
        let mut item = self.entity(
            key,
            Entity::Role,
            &role.id,
            &[
                attr::KEY,
                attr::NAME,
                attr::DESCRIPTION,
                attr::CREATED_AT,
                attr::UPDATED_AT,
            ],
        );
        insert(&mut item, attr::PERMISSIONS, role.permission_keys());
        self.versioned(item, role.updated_at)
    }

    pub(super) fn permission(&self, p: &Permission) -> Versioned {
        let key = Key::permission(&p.id);
        let item = self.entity(
            key,
            Entity::Permission,
            &p.id,
            &[
                attr::KEY,
                attr::NAME,
                attr::DESCRIPTION,
                attr::TYPE,
                attr::CREATED_AT,
                attr::UPDATED_AT,
            ],
        );
        self.versioned(item, p.updated_at)
    }

    pub(super) fn waitlist_entry(&self, entry: &WaitlistEntry) -> Versioned {
        let key = Key::waitlist_entry(&entry.id);
        let mut item = self.entity(
            key,
            Entity::WaitlistEntry,
            &entry.id,
            &[
                attr::EMAIL_ADDRESS,
                attr::STATUS,
                attr::IS_LOCKED,
                attr::CREATED_AT,
                attr::UPDATED_AT,
            ],
        );
        if let Some(email) = entry.email_address.as_deref().filter(|e| !e.is_empty()) {
            IndexEntry::waitlist_email(email, &entry.id).set_on(&mut item);
        }
        self.versioned(item, entry.updated_at)
    }

    pub(super) fn billing(&self, billing: &Billing) -> Versioned {
        let kind = billing.kind.key_prefix();
        let id = &billing.object.id;
        let key = Key::profile(kind, id);
        let payer_entry = billing
            .payer_id()
            .map(|payer| IndexEntry::payer(payer, &key));
        let mut item = self.entity(
            key,
            match billing.kind {
                BillingKind::Subscription => Entity::Subscription,
                BillingKind::SubscriptionItem => Entity::SubscriptionItem,
                BillingKind::PaymentAttempt => Entity::PaymentAttempt,
            },
            id,
            &[
                attr::STATUS,
                attr::SUBSCRIPTION_ID,
                attr::PLAN_ID,
                attr::CREATED_AT,
                attr::UPDATED_AT,
            ],
        );
        if let Some(payer) = &billing.object.payer {
            insert_opt(&mut item, attr::PAYER_USER_ID, &payer.user_id);
            insert_opt(&mut item, attr::PAYER_ORG_ID, &payer.organization_id);
        }
        // Lists what a user or an organization pays for: query gsi1 for PAYER#{id}.
        if let Some(entry) = payer_entry {
            entry.set_on(&mut item);
        }
        self.versioned(item, billing.object.updated_at)
    }

    /// Emails and SMS messages hold one-time codes and personal text: by default only the
    /// event record is written; with `STORE_MESSAGE_METADATA`, metadata without content.
    pub(super) fn message(&self, message: &Message) -> Option<Versioned> {
        if !self.settings.message_metadata {
            return None;
        }
        let m = &message.metadata;
        let entity = match message.kind {
            MessageKind::Email => Entity::Email,
            MessageKind::Sms => Entity::Sms,
        };
        let mut item = Key::message(&m.id).item();
        insert(&mut item, attr::ENTITY, entity.as_str());
        insert(&mut item, attr::ID, m.id.as_str());
        self.mark_source(&mut item);
        insert_opt(&mut item, attr::USER_ID, &m.user_id);
        insert_opt(&mut item, attr::SLUG, &m.slug);
        insert_opt(&mut item, attr::STATUS, &m.status);
        let created_at = m
            .created_at
            .or(m.created_at_ms)
            .unwrap_or(self.event.timestamp_ms);
        insert(&mut item, attr::CREATED_AT, created_at);
        insert(
            &mut item,
            attr::EXPIRES_AT,
            self.expires_after(self.settings.event_secs),
        );
        if let Some(user_id) = &m.user_id {
            IndexEntry::user_message(user_id, &m.id).set_on(&mut item);
        }
        Some(self.versioned(item, None))
    }

    /// Keeps the key and the version, drops every personal attribute and the GSI keys.
    /// `updated_at` is the deleted object's own, when its delete event carries one; `ids` are
    /// identifiers (never personal data) the tombstone keeps for readers.
    pub(super) fn tombstone(
        &self,
        key: Key,
        entity: Entity,
        id: &str,
        updated_at: Option<i64>,
        ids: &[(&str, &str)],
    ) -> Versioned {
        let version = delete_version(
            updated_at,
            self.event.timestamp_ms,
            self.event.timestamp_in_envelope,
        );
        let mut item = key.item();
        insert(&mut item, attr::ENTITY, entity.as_str());
        insert(&mut item, attr::ID, id);
        insert(&mut item, attr::DELETED, true);
        insert(&mut item, attr::VERSION, version);
        insert(&mut item, attr::DELETED_AT, self.event.timestamp_ms);
        insert(
            &mut item,
            attr::EXPIRES_AT,
            self.expires_after(self.settings.tombstone_secs),
        );
        match self.source {
            Source::Webhook { svix_id } => insert(&mut item, attr::LAST_SVIX_ID, svix_id),
            // Only the reconcile marks its tombstones: a webhook's carries its svix-id.
            Source::Reconcile => insert(&mut item, attr::SOURCE, self.source.as_str()),
            // Copies are of live objects: they plan no tombstones.
            Source::Backfill | Source::Sync => {}
        }
        for (name, value) in ids {
            insert(&mut item, name, *value);
        }
        Versioned { item, version }
    }
}

/// A value the planner sets itself: a key, an id, a name, a count, a flag, a list of keys.
pub(super) enum Attribute {
    Text(String),
    Number(i64),
    Flag(bool),
    Texts(Vec<String>),
}

impl From<&str> for Attribute {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}
impl From<i64> for Attribute {
    fn from(v: i64) -> Self {
        Self::Number(v)
    }
}
impl From<bool> for Attribute {
    fn from(v: bool) -> Self {
        Self::Flag(v)
    }
}
impl From<Vec<String>> for Attribute {
    fn from(v: Vec<String>) -> Self {
        Self::Texts(v)
    }
}

impl From<Attribute> for AttributeValue {
    fn from(value: Attribute) -> Self {
        match value {
            Attribute::Text(s) => AttributeValue::S(s),
            Attribute::Number(n) => AttributeValue::N(n.to_string()),
            Attribute::Flag(b) => AttributeValue::Bool(b),
            Attribute::Texts(list) => {
                AttributeValue::L(list.into_iter().map(AttributeValue::S).collect())
            }
        }
    }
}

pub(super) fn insert(item: &mut Item, name: &str, value: impl Into<Attribute>) {
    item.insert(name.to_owned(), value.into().into());
}

/// Absent fields are left out rather than stored as NULL.
fn insert_opt(item: &mut Item, name: &str, value: &Option<String>) {
    if let Some(v) = value {
        insert(item, name, v.as_str());
    }
}
