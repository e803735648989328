//! The Clerk event envelope and the typed payloads we read. The one place that knows
//! Clerk's field names.
//!
//! Routing is on the envelope `type`, never on `data.object`: Clerk's sources disagree on the
//! `object` literals.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

pub(crate) use crate::json::text_at;
use crate::json::RawObject;

/// Why a verified body was refused (all 400: retrying the same bytes cannot help).
///
/// A verified payload is refused only when storing it would be unsafe or meaningless: an id
/// that cannot be part of a key, a version or an expiry of the wrong type, a parent the key
/// needs that is missing. Every other field is read leniently: a value of an unexpected type
/// reads as absent, and the object is stored as Clerk sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body is not a Clerk event: {0}")]
    InvalidEnvelope(String),
    #[error("{event_type} data is not usable: {reason}")]
    InvalidPayload { event_type: String, reason: String },
}

/// A decoded, routed Clerk event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_type: String,
    /// When the event happened, Unix milliseconds (10-digit second values are normalised):
    /// the envelope's `timestamp`, or, for deliveries from before Clerk added it, the signed
    /// `svix-timestamp` (see [`Event::timestamp_in_envelope`]).
    pub timestamp_ms: i64,
    /// Whether `timestamp_ms` is Clerk's own `timestamp`. Clerk's envelopes had none until
    /// at least mid-2024; then it is the signed delivery time, later than the event itself.
    pub timestamp_in_envelope: bool,
    pub payload: Payload,
    /// The whole `data` object, exactly as Clerk sent it, kept to store verbatim.
    pub data: Data,
    /// The fields (`id`, `organization.id`, …) whose id lacks the prefix Clerk usually gives
    /// it (`user_`, `org_`, …). Prefixes are not a contract (Clerk's own examples use both
    /// `orgdmn_` and `orgdm_`), so the event is applied all the same; the handler counts it
    /// and logs the field names, never the values.
    pub unexpected_prefixes: Vec<&'static str>,
    /// The envelope's `instance_id`: which Clerk instance sent it (`None` for an object read
    /// from the Backend API, or an envelope without a usable one).
    pub instance_id: Option<String>,
}

/// What the event is about. Routed on the envelope `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    UserUpserted(User),
    UserDeleted(DeletedObject),
    OrganizationUpserted(Organization),
    OrganizationDeleted(DeletedObject),
    MembershipUpserted(Membership),
    /// Unlike other deletes, Clerk sends the whole membership.
    MembershipDeleted(Membership),
    /// Every `session.*` type: a session changes status, it is never deleted.
    SessionUpserted(Session),
    OrganizationInvitationUpserted(OrganizationInvitation),
    DomainUpserted(Domain),
    DomainDeleted(DeletedObject),
    /// Instance invitations (`invitation.*`).
    InvitationUpserted(Invitation),
    RoleUpserted(Role),
    RoleDeleted(DeletedObject),
    PermissionUpserted(Permission),
    PermissionDeleted(DeletedObject),
    WaitlistEntryUpserted(WaitlistEntry),
    BillingUpserted(Billing),
    /// `email.created` / `sms.created`: a message Clerk sends, not entity state.
    MessageSent(Message),
    /// A type we do not sync, including types Clerk adds in the future.
    Unhandled,
}

/// A Clerk object exactly as it was sent: its JSON text, byte for byte, and its top-level
/// fields, each as its own exact text. Nothing is parsed deeper than the planner needs, so
/// no depth, number or key that JSON allows can fail here.
#[derive(Debug, Clone)]
pub struct Data {
    text: Box<RawValue>,
    fields: RawObject,
}

impl Data {
    /// `None` unless `text` is a JSON object.
    pub fn parse(text: Box<RawValue>) -> Option<Self> {
        let fields = RawObject::parse(text.get())?;
        Some(Self { text, fields })
    }

    /// The object's JSON text, exactly as received.
    pub fn text(&self) -> &str {
        self.text.get()
    }

    /// A top-level field's exact text (the last, if the object names it twice).
    pub fn field(&self, name: &str) -> Option<&RawValue> {
        self.fields.get(name)
    }

    /// The same object without the top-level fields `names`, and with `replace`'s fields in
    /// place of those of the same name; every other field keeps its exact text.
    pub fn edited(&self, names: &[&str], replace: &[(&str, Data)]) -> Self {
        let fields = RawObject(
            self.fields
                .0
                .iter()
                .filter(|(key, _)| !names.contains(&key.as_str()))
                .map(
                    |(key, value)| match replace.iter().find(|(name, _)| name == key) {
                        Some((_, data)) => (key.clone(), data.text.clone()),
                        None => (key.clone(), value.clone()),
                    },
                )
                .collect(),
        );
        let text = serde_json::to_string(&fields).expect("raw JSON values serialize");
        Self {
            text: RawValue::from_string(text).expect("serialized JSON is JSON"),
            fields,
        }
    }

    /// The object read as `T` (the typed payloads below).
    fn typed<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.text())
    }
}

/// Two objects are equal when their texts are.
impl PartialEq for Data {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

// The typed payloads hold only what the planner reads. Ids, versions (`updated_at`) and
// expiries are strict: they become keys, order writes, or decide when DynamoDB deletes the
// item. Everything marked `lenient` feeds an attribute or an index entry only, so a value of
// another type reads as absent instead of refusing the event.

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EmailAddress {
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub email_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct User {
    pub id: String,
    pub updated_at: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    pub primary_email_address_id: Option<String>,
    /// Entries that are not objects of this shape are left out.
    #[serde(default, deserialize_with = "lenient_list")]
    pub email_addresses: Vec<EmailAddress>,
}

impl User {
    /// The entry whose id is `primary_email_address_id` (not simply the first one).
    pub(crate) fn primary_email(&self) -> Option<&str> {
        let primary = self.primary_email_address_id.as_deref()?;
        self.email_addresses
            .iter()
            .find(|e| e.id.as_deref() == Some(primary))
            .and_then(|e| e.email_address.as_deref())
            .filter(|e| !e.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Organization {
    pub id: String,
    /// Indexed as `SLUG#{slug}` when it is a string.
    #[serde(default, deserialize_with = "lenient")]
    pub slug: Option<String>,
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrganizationRef {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PublicUserData {
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Membership {
    /// Kept as the item's `id`; the key is the organization and the user.
    pub id: String,
    pub updated_at: Option<i64>,
    pub organization: OrganizationRef,
    pub public_user_data: PublicUserData,
}

/// `{object, id, deleted}`: all a `*.deleted` event carries, except memberships.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeletedObject {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub expire_at: Option<i64>,
    pub abandon_at: Option<i64>,
    pub updated_at: Option<i64>,
    /// The session's user as Clerk sends it along: applied to the user item when newer. A
    /// copy we cannot read (no id, a version that is not a number) is not applied; the
    /// session still is.
    #[serde(default, deserialize_with = "lenient")]
    pub user: Option<User>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrganizationInvitation {
    pub id: String,
    pub organization_id: String,
    #[serde(default, deserialize_with = "lenient")]
    pub email_address: Option<String>,
    pub expires_at: Option<i64>,
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Domain {
    pub id: String,
    pub organization_id: String,
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Invitation {
    pub id: String,
    #[serde(default, deserialize_with = "lenient")]
    pub email_address: Option<String>,
    pub expires_at: Option<i64>,
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Role {
    pub id: String,
    /// Permission objects per the schema; plain keys are accepted too.
    #[serde(default, deserialize_with = "lenient_list")]
    pub permissions: Vec<PermissionRef>,
    pub updated_at: Option<i64>,
}

/// One of a role's permissions: its key, or the permission object (whose `key` is read).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PermissionRef {
    Key(String),
    /// An object whose `key` is not a string reads as no key.
    Object {
        #[serde(default)]
        key: Option<String>,
    },
}

impl Role {
    /// The keys of the role's permissions (`org:invoices:read`, …).
    pub(crate) fn permission_keys(&self) -> Vec<String> {
        self.permissions
            .iter()
            .filter_map(|p| match p {
                PermissionRef::Key(key) => Some(key.clone()),
                PermissionRef::Object { key } => key.clone(),
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Permission {
    pub id: String,
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WaitlistEntry {
    pub id: String,
    #[serde(default, deserialize_with = "lenient")]
    pub email_address: Option<String>,
    pub updated_at: Option<i64>,
}

/// The three billing families share one shape as far as the table is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingKind {
    Subscription,
    SubscriptionItem,
    PaymentAttempt,
}

impl BillingKind {
    /// The key prefix (`SUBSCRIPTION#…`) and the `entity` value.
    pub(crate) fn key_prefix(self) -> &'static str {
        match self {
            Self::Subscription => "SUBSCRIPTION",
            Self::SubscriptionItem => "SUBSCRIPTION_ITEM",
            Self::PaymentAttempt => "PAYMENT_ATTEMPT",
        }
    }
    pub fn entity(self) -> &'static str {
        match self {
            Self::Subscription => "subscription",
            Self::SubscriptionItem => "subscription_item",
            Self::PaymentAttempt => "payment_attempt",
        }
    }
    fn id_prefix(self) -> &'static str {
        match self {
            Self::Subscription => "csub_",
            Self::SubscriptionItem => "csub_item_",
            Self::PaymentAttempt => "pa_",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Payer {
    #[serde(default, deserialize_with = "lenient")]
    pub user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub organization_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BillingObject {
    pub id: String,
    #[serde(default, deserialize_with = "lenient")]
    pub payer: Option<Payer>,
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Billing {
    pub kind: BillingKind,
    pub object: BillingObject,
}

impl Billing {
    /// Who pays: the user, else the organization.
    pub fn payer_id(&self) -> Option<&str> {
        let payer = self.object.payer.as_ref()?;
        payer
            .user_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .or(payer.organization_id.as_deref().filter(|id| !id.is_empty()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Email,
    Sms,
}

/// The parts of an email or SMS that are safe to keep: never the recipient's address or
/// number, the subject, the body or the codes in `data`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageMetadata {
    pub id: String,
    /// Indexed as `USER#{user_id}`, so the user's deletion removes the metadata too.
    #[serde(default, deserialize_with = "lenient")]
    pub user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub created_at: Option<i64>,
    /// SmsEventPayload's name for `created_at`.
    #[serde(default, deserialize_with = "lenient")]
    pub created_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: MessageKind,
    pub metadata: MessageMetadata,
}

/// The envelope fields we need. `object` (always `"event"`) is not read; `instance_id` is
/// read leniently: it is kept on the event record and checked against `CLERK_INSTANCE_ID`,
/// but no key depends on it.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    event_type: String,
    /// Orders deletes and versions upserts without `updated_at`. Absent from Clerk's older
    /// deliveries; strict when present.
    #[serde(default)]
    timestamp: Option<i64>,
    data: Box<RawValue>,
    #[serde(default, deserialize_with = "lenient")]
    instance_id: Option<String>,
}

/// `Some(value)` when the field holds a `T`, `None` when it is absent, null or of another
/// type: for fields that feed no key, version or expiry. The value is taken as raw text
/// first, so no depth of nesting in it can fail the event.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    Ok(serde_json::from_str(raw.get()).ok())
}

/// The elements of a list that are `T`s; anything but a list reads as empty.
fn lenient_list<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    let items: Vec<Box<RawValue>> = serde_json::from_str(raw.get()).unwrap_or_default();
    Ok(items
        .iter()
        .filter_map(|item| serde_json::from_str(item.get()).ok())
        .collect())
}

/// Clerk documents milliseconds, but some examples carry 10-digit seconds. Anything below
/// 10^11 (which as milliseconds would be 1973) is taken as seconds. `unsigned_abs`: the
/// magnitude of `i64::MIN` does not fit an i64 (found by the `plan` fuzz target).
pub fn normalize_millis(t: i64) -> i64 {
    if t.unsigned_abs() < 100_000_000_000 {
        t.saturating_mul(1000)
    } else {
        t
    }
}

/// The prefixes Clerk's ids usually carry. Informative only: an id without its prefix is
/// applied and counted (see [`Event::unexpected_prefixes`]).
pub(crate) const USER_PREFIX: &str = "user_";
pub(crate) const ORG_PREFIX: &str = "org_";
pub(crate) const MEMBERSHIP_PREFIX: &str = "orgmem_";
pub(crate) const SESSION_PREFIX: &str = "sess_";
pub(crate) const ORG_INVITATION_PREFIX: &str = "orginv_";
pub(crate) const DOMAIN_PREFIX: &str = "orgdmn_";
pub(crate) const INVITATION_PREFIX: &str = "inv_";
pub(crate) const ROLE_PREFIX: &str = "role_";
pub(crate) const PERMISSION_PREFIX: &str = "perm_";
pub(crate) const WAITLIST_PREFIX: &str = "wle_";
pub(crate) const EMAIL_PREFIX: &str = "ema_";
pub(crate) const SMS_PREFIX: &str = "sms_";

/// The longest id we put in a key. Clerk's are about 30 bytes; DynamoDB allows 1,024 for a
/// sort key and 2,048 for a partition key, so with our `KIND#` prefixes this stays far inside.
pub(crate) const MAX_ID_BYTES: usize = 128;

/// Whether `id` is safe as part of a key: 1 to [`MAX_ID_BYTES`] ASCII letters, digits or `_`,
/// the characters Clerk's ids use. So no id holds our `#` separator (which would let a crafted
/// id alias another item's key), a control character or whitespace.
pub fn is_key_safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Event {
    /// Parses the raw (verified) body and routes it on `type`. `signed_at_ms` is the
    /// delivery's verified `svix-timestamp`: the event's time when the envelope has no
    /// `timestamp` (Clerk's deliveries before mid-2024).
    pub fn decode(body: &[u8], signed_at_ms: i64) -> Result<Self, DecodeError> {
        // The whole body is checked as JSON first (without building it: any depth passes), so
        // a syntax error anywhere is `invalid_json`, whatever the envelope's fields say.
        let raw: &RawValue =
            serde_json::from_slice(body).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
        if !raw.get().starts_with('{') {
            return Err(DecodeError::InvalidEnvelope("not a JSON object".into()));
        }
        let envelope: Envelope = serde_json::from_str(raw.get())
            .map_err(|e| DecodeError::InvalidEnvelope(redact(&message(&e))))?;
        if envelope.event_type.is_empty() {
            return Err(DecodeError::InvalidEnvelope("type is empty".into()));
        }
        let data = Data::parse(envelope.data)
            .ok_or_else(|| DecodeError::InvalidEnvelope("data is not an object".into()))?;
        let (timestamp_ms, in_envelope) = match envelope.timestamp {
            Some(t) => (normalize_millis(t), true),
            None => (signed_at_ms, false),
        };
        let mut event = Self::routed(envelope.event_type, timestamp_ms, data)?;
        event.timestamp_in_envelope = in_envelope;
        event.instance_id = envelope.instance_id;
        Ok(event)
    }

    /// The event a `event_type` webhook carrying `data` at `timestamp_ms` would be, routed and
    /// checked exactly as a delivered one. For objects read from Clerk's Backend API, which
    /// have the shape of the matching webhook's `data`.
    pub(crate) fn from_data(
        event_type: &str,
        timestamp_ms: i64,
        data: &RawValue,
    ) -> Result<Self, DecodeError> {
        let data =
            Data::parse(data.to_owned()).ok_or_else(|| invalid(event_type, "not a JSON object"))?;
        Self::routed(event_type.to_owned(), normalize_millis(timestamp_ms), data)
    }

    fn routed(event_type: String, timestamp_ms: i64, data: Data) -> Result<Self, DecodeError> {
        let mut ids = IdCheck {
            event_type: &event_type,
            unexpected_prefixes: Vec::new(),
        };
        let payload = route(&mut ids, &data)?;
        let unexpected_prefixes = ids.unexpected_prefixes;
        Ok(Self {
            event_type,
            timestamp_ms,
            timestamp_in_envelope: true,
            payload,
            data,
            unexpected_prefixes,
            instance_id: None,
        })
    }
}

/// The part of an event type before the dot (`user`, `organizationMembership`, …): a
/// low-cardinality label for metrics.
pub fn family(event_type: &str) -> &str {
    event_type.split('.').next().unwrap_or(event_type)
}

/// Checks the ids of one event as they are read, and notes the fields whose prefix is off.
struct IdCheck<'a> {
    event_type: &'a str,
    unexpected_prefixes: Vec<&'static str>,
}

impl IdCheck<'_> {
    /// An id that becomes part of a key: refused unless [`is_key_safe`]; its prefix is only
    /// noted.
    fn key(&mut self, field: &'static str, id: &str, prefix: &str) -> Result<(), DecodeError> {
        if !is_key_safe(id) {
            return Err(invalid(
                self.event_type,
                &format!(
                    "{field} cannot be part of a key (1 to {MAX_ID_BYTES} letters, digits or _)"
                ),
            ));
        }
        self.prefix(field, id, prefix);
        Ok(())
    }

    /// An id kept as an attribute only: any string will do; its prefix is noted.
    fn prefix(&mut self, field: &'static str, id: &str, prefix: &str) {
        if !id.starts_with(prefix) {
            self.unexpected_prefixes.push(field);
        }
    }

    fn typed<T: DeserializeOwned>(&self, data: &Data) -> Result<T, DecodeError> {
        data.typed()
            .map_err(|e| invalid(self.event_type, &redact(&message(&e))))
    }

    /// `{object, id, deleted}`.
    fn deleted(&mut self, data: &Data, prefix: &str) -> Result<DeletedObject, DecodeError> {
        let deleted: DeletedObject = self.typed(data)?;
        self.key("id", &deleted.id, prefix)?;
        Ok(deleted)
    }
}

fn route(ids: &mut IdCheck, data: &Data) -> Result<Payload, DecodeError> {
    let event_type = ids.event_type;
    let payload = match event_type {
        "user.created" | "user.updated" => {
            let user: User = ids.typed(data)?;
            ids.key("id", &user.id, USER_PREFIX)?;
            Payload::UserUpserted(user)
        }
        "user.deleted" => Payload::UserDeleted(ids.deleted(data, USER_PREFIX)?),
        "organization.created" | "organization.updated" => {
            let org: Organization = ids.typed(data)?;
            ids.key("id", &org.id, ORG_PREFIX)?;
            Payload::OrganizationUpserted(org)
        }
        "organization.deleted" => Payload::OrganizationDeleted(ids.deleted(data, ORG_PREFIX)?),
        "organizationMembership.created"
        | "organizationMembership.updated"
        | "organizationMembership.deleted" => {
            let m: Membership = ids.typed(data)?;
            ids.prefix("id", &m.id, MEMBERSHIP_PREFIX);
            ids.key("organization.id", &m.organization.id, ORG_PREFIX)?;
            ids.key(
                "public_user_data.user_id",
                &m.public_user_data.user_id,
                USER_PREFIX,
            )?;
            if event_type.ends_with(".deleted") {
                Payload::MembershipDeleted(m)
            } else {
                Payload::MembershipUpserted(m)
            }
        }
        "session.created" | "session.pending" | "session.ended" | "session.removed"
        | "session.revoked" => {
            let session: Session = ids.typed(data)?;
            ids.key("id", &session.id, SESSION_PREFIX)?;
            ids.key("user_id", &session.user_id, USER_PREFIX)?;
            if let Some(user) = &session.user {
                // The session goes under USER#{user_id} and the copy under USER#{user.id}:
                // when they disagree one of the two keys is wrong, and nothing says which.
                if user.id != session.user_id {
                    return Err(invalid(event_type, "user.id differs from user_id"));
                }
            }
            Payload::SessionUpserted(session)
        }
        "organizationInvitation.created"
        | "organizationInvitation.accepted"
        | "organizationInvitation.revoked" => {
            let inv: OrganizationInvitation = ids.typed(data)?;
            ids.key("id", &inv.id, ORG_INVITATION_PREFIX)?;
            ids.key("organization_id", &inv.organization_id, ORG_PREFIX)?;
            Payload::OrganizationInvitationUpserted(inv)
        }
        "organizationDomain.created" | "organizationDomain.updated" => {
            let domain: Domain = ids.typed(data)?;
            ids.key("id", &domain.id, DOMAIN_PREFIX)?;
            ids.key("organization_id", &domain.organization_id, ORG_PREFIX)?;
            Payload::DomainUpserted(domain)
        }
        "organizationDomain.deleted" => Payload::DomainDeleted(ids.deleted(data, DOMAIN_PREFIX)?),
        "invitation.created" | "invitation.accepted" | "invitation.revoked" => {
            let inv: Invitation = ids.typed(data)?;
            ids.key("id", &inv.id, INVITATION_PREFIX)?;
            Payload::InvitationUpserted(inv)
        }
        "role.created" | "role.updated" => {
            let role: Role = ids.typed(data)?;
            ids.key("id", &role.id, ROLE_PREFIX)?;
            Payload::RoleUpserted(role)
        }
        "role.deleted" => Payload::RoleDeleted(ids.deleted(data, ROLE_PREFIX)?),
        "permission.created" | "permission.updated" => {
            let permission: Permission = ids.typed(data)?;
            ids.key("id", &permission.id, PERMISSION_PREFIX)?;
            Payload::PermissionUpserted(permission)
        }
        "permission.deleted" => Payload::PermissionDeleted(ids.deleted(data, PERMISSION_PREFIX)?),
        "waitlistEntry.created" | "waitlistEntry.updated" => {
            let entry: WaitlistEntry = ids.typed(data)?;
            ids.key("id", &entry.id, WAITLIST_PREFIX)?;
            Payload::WaitlistEntryUpserted(entry)
        }
        "email.created" | "sms.created" => {
            let (kind, prefix) = if event_type == "email.created" {
                (MessageKind::Email, EMAIL_PREFIX)
            } else {
                (MessageKind::Sms, SMS_PREFIX)
            };
            let metadata: MessageMetadata = ids.typed(data)?;
            // MESSAGE#{id} with STORE_MESSAGE_METADATA; checked whatever the setting, so that
            // turning it on changes what is stored, never what is accepted.
            ids.key("id", &metadata.id, prefix)?;
            if let Some(user_id) = &metadata.user_id {
                ids.key("user_id", user_id, USER_PREFIX)?;
            }
            Payload::MessageSent(Message { kind, metadata })
        }
        _ => match billing_kind(event_type) {
            Some(kind) => {
                let object: BillingObject = ids.typed(data)?;
                ids.key("id", &object.id, kind.id_prefix())?;
                if let Some(payer) = &object.payer {
                    if let Some(id) = payer.user_id.as_deref().filter(|id| !id.is_empty()) {
                        ids.key("payer.user_id", id, USER_PREFIX)?;
                    }
                    if let Some(id) = payer.organization_id.as_deref().filter(|id| !id.is_empty()) {
                        ids.key("payer.organization_id", id, ORG_PREFIX)?;
                    }
                }
                Payload::BillingUpserted(Billing { kind, object })
            }
            None => Payload::Unhandled,
        },
    };
    Ok(payload)
}

/// Billing families have many status events (`subscriptionItem.pastDue`, …), and Clerk adds
/// more: any type of these families is synced the same way.
fn billing_kind(event_type: &str) -> Option<BillingKind> {
    match event_type.split_once('.')?.0 {
        "subscription" => Some(BillingKind::Subscription),
        "subscriptionItem" => Some(BillingKind::SubscriptionItem),
        "paymentAttempt" => Some(BillingKind::PaymentAttempt),
        _ => None,
    }
}

fn invalid(event_type: &str, reason: &str) -> DecodeError {
    DecodeError::InvalidPayload {
        event_type: event_type.to_owned(),
        reason: reason.to_owned(),
    }
}

/// serde_json's message without its " at line 1 column 42": the reason, not where in the
/// body it was.
fn message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) if e.line() > 0 => text[..at].to_owned(),
        _ => text,
    }
}

/// serde quotes the offending value (`invalid type: string "jane@…"`); error messages go to
/// logs and responses, so quoted values are cut out. Field names use backticks and stay.
/// serde writes the value with Rust's debug escaping: inside it, `\"` and `\\` are part of
/// the value, not its end (found by the `plan` fuzz target).
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in message.chars() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
        } else if c == '"' {
            out.push_str("\"…\"");
            quoted = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The signed delivery time the tests' deliveries carry (ms).
    const SIGNED: i64 = 1_716_883_260_000;

    fn raw(value: Value) -> Box<RawValue> {
        RawValue::from_string(value.to_string()).unwrap()
    }

    fn envelope(event_type: &str, data: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "object": "event", "type": event_type, "timestamp": 1716883200123_i64,
            "instance_id": "ins_2g7np7Hrk0SN6kj5EDMLDaKNL0S", "data": data
        }))
        .unwrap()
    }

    fn user_data() -> Value {
        json!({
            "object": "user", "id": "user_29w83sxmDNGwOuEthce5gg56FcC",
            "primary_email_address_id": "idn_primary",
            "email_addresses": [
                {"id": "idn_other", "email_address": "old@example.org"},
                {"id": "idn_primary", "email_address": "Example@Example.org"}
            ],
            "first_name": "Example", "created_at": 1654012591514_i64, "updated_at": 1654012591835_i64
        })
    }

    #[test]
    fn decodes_a_user_and_finds_the_primary_email_not_the_first() {
        let event = Event::decode(&envelope("user.created", user_data()), SIGNED).unwrap();
        assert_eq!(event.timestamp_ms, 1716883200123);
        assert_eq!(family(&event.event_type), "user");
        let Payload::UserUpserted(user) = event.payload else {
            panic!("not a user")
        };
        assert_eq!(user.primary_email(), Some("Example@Example.org"));
        assert_eq!(user.updated_at, Some(1654012591835));
    }

    #[test]
    fn from_data_routes_and_checks_like_a_delivered_event() {
        let event = Event::from_data("user.created", 1654012591835, &raw(user_data())).unwrap();
        assert_eq!(
            event,
            Event::decode(&envelope("user.created", user_data()), SIGNED)
                .map(|e| Event {
                    // An object read from the Backend API names no instance.
                    instance_id: None,
                    timestamp_ms: 1654012591835,
                    ..e
                })
                .unwrap()
        );
        let err = Event::from_data("user.created", 1, &raw(json!({"id": "usr#1"}))).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidPayload { .. }));
        let err = Event::from_data("user.created", 1, &raw(json!([1]))).unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
    }

    #[test]
    fn a_user_without_a_matching_primary_has_no_email() {
        let mut data = user_data();
        data["primary_email_address_id"] = json!("idn_missing");
        let Payload::UserUpserted(user) = Event::decode(&envelope("user.updated", data), SIGNED)
            .unwrap()
            .payload
        else {
            panic!()
        };
        assert_eq!(user.primary_email(), None);
    }

    #[test]
    fn ten_digit_timestamps_are_seconds() {
        assert_eq!(normalize_millis(1716883200), 1716883200000);
        assert_eq!(normalize_millis(1716883200123), 1716883200123);
        let mut body: Value =
            serde_json::from_slice(&envelope("user.deleted", json!({"id": "user_a1"}))).unwrap();
        body["timestamp"] = json!(1716883200);
        let event = Event::decode(&serde_json::to_vec(&body).unwrap(), SIGNED).unwrap();
        assert_eq!(event.timestamp_ms, 1716883200000);
    }

    #[test]
    fn the_ends_of_i64_are_taken_as_milliseconds() {
        assert_eq!(normalize_millis(i64::MIN), i64::MIN);
        assert_eq!(normalize_millis(i64::MAX), i64::MAX);
        assert_eq!(normalize_millis(-99_999_999_999), -99_999_999_999_000);
        let mut body: Value =
            serde_json::from_slice(&envelope("user.deleted", json!({"id": "user_a1"}))).unwrap();
        body["timestamp"] = json!(i64::MIN);
        let event = Event::decode(&serde_json::to_vec(&body).unwrap(), SIGNED).unwrap();
        assert_eq!(event.timestamp_ms, i64::MIN);
    }

    #[test]
    fn unknown_and_unsynced_types_are_unhandled_not_errors() {
        for t in [
            "brandNew.thing",
            "user.merged",
            "organizationSomething.created",
        ] {
            let event = Event::decode(&envelope(t, json!({"anything": 1})), SIGNED).unwrap();
            assert_eq!(event.payload, Payload::Unhandled, "{t}");
        }
    }

    #[test]
    fn routes_on_type_not_on_data_object() {
        let data =
            json!({"object": "something_else", "id": "org_abc", "slug": "acme", "deleted": true});
        let event = Event::decode(&envelope("organization.deleted", data), SIGNED).unwrap();
        assert_eq!(
            event.payload,
            Payload::OrganizationDeleted(DeletedObject {
                id: "org_abc".into()
            })
        );
    }

    #[test]
    fn membership_needs_org_and_user_ids() {
        let data = json!({"id": "orgmem_1", "role": "org:member", "organization": {"id": "org_1"},
                          "public_user_data": {"first_name": "Jane"}});
        let err =
            Event::decode(&envelope("organizationMembership.created", data), SIGNED).unwrap_err();
        assert_eq!(
            err.to_string(),
            "organizationMembership.created data is not usable: missing field `user_id`"
        );
    }

    #[test]
    fn envelope_errors() {
        let cases: Vec<(&[u8], &str)> = vec![
            (b"{not json", "body is not valid JSON"),
            (b"[1,2]", "body is not a Clerk event: not a JSON object"),
            (br#"{"object":"event","timestamp":1,"instance_id":"i","data":{}}"#, "missing field `type`"),
            (br#"{"object":"event","type":"user.created","timestamp":1,"instance_id":"i","data":[]}"#, "data is not an object"),
            (br#"{"object":"event","type":"user.created","timestamp":"soon","instance_id":"i","data":{}}"#, "invalid type"),
        ];
        for (body, expected) in cases {
            let err = Event::decode(body, SIGNED).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[test]
    fn ids_that_cannot_be_part_of_a_key_are_refused() {
        let too_long = format!("user_{}", "a".repeat(MAX_ID_BYTES - 4));
        for id in [
            "",
            "user_a#b",
            "user_a b",
            "user_a\u{0}",
            "user_é",
            "user_a-b",
            too_long.as_str(),
        ] {
            let err =
                Event::decode(&envelope("user.deleted", json!({"id": id})), SIGNED).unwrap_err();
            assert_eq!(
                err.to_string(),
                "user.deleted data is not usable: id cannot be part of a key (1 to 128 letters, digits or _)",
                "{id:?}"
            );
        }
        let longest = &too_long[..MAX_ID_BYTES];
        assert!(Event::decode(&envelope("user.deleted", json!({"id": longest})), SIGNED).is_ok());
    }

    #[test]
    fn ids_without_the_usual_prefix_are_applied_and_noted() {
        // Clerk's own OpenAPI examples give organizationDomain.updated and .deleted `orgdm_` ids.
        let event = Event::decode(
            &envelope(
                "organizationDomain.updated",
                json!({"id": "orgdm_2g7np7Hrk0SN6kj5EDMLDaKNL0S", "organization_id": "org_1"}),
            ),
            SIGNED,
        )
        .unwrap();
        assert_eq!(event.unexpected_prefixes, ["id"]);
        let event = Event::decode(
            &envelope(
                "organizationDomain.deleted",
                json!({"id": "orgdm_2g7np7Hrk0SN6kj5EDMLDaKNL0S", "deleted": true}),
            ),
            SIGNED,
        )
        .unwrap();
        assert_eq!(event.unexpected_prefixes, ["id"]);
        let membership = json!({"id": "mem_1", "organization": {"id": "o_1"},
                                "public_user_data": {"user_id": "user_1"}});
        let event = Event::decode(
            &envelope("organizationMembership.created", membership),
            SIGNED,
        )
        .unwrap();
        assert_eq!(event.unexpected_prefixes, ["id", "organization.id"]);
        // Only what the prefix says is noted: the usual ones note nothing.
        let event = Event::decode(&envelope("user.created", user_data()), SIGNED).unwrap();
        assert!(event.unexpected_prefixes.is_empty());
    }

    #[test]
    fn fields_that_feed_no_key_version_or_expiry_are_read_leniently() {
        // Each of these was once refused; none of them is unsafe to store.
        let mut data = user_data();
        data["first_name"] = json!(42);
        data["username"] = json!(["x"]);
        data["email_addresses"][0] = json!("not an object");
        let Payload::UserUpserted(user) = Event::decode(&envelope("user.updated", data), SIGNED)
            .unwrap()
            .payload
        else {
            panic!("not a user")
        };
        assert_eq!(user.primary_email(), Some("Example@Example.org"));
        let mut data = user_data();
        data["email_addresses"] = json!("someone@example.org");
        let Payload::UserUpserted(user) = Event::decode(&envelope("user.updated", data), SIGNED)
            .unwrap()
            .payload
        else {
            panic!("not a user")
        };
        assert_eq!(user.primary_email(), None);

        let org = json!({"id": "org_1", "slug": 7, "name": null});
        let Payload::OrganizationUpserted(org) =
            Event::decode(&envelope("organization.updated", org), SIGNED)
                .unwrap()
                .payload
        else {
            panic!("not an organization")
        };
        assert_eq!(org.slug, None);
        let membership = json!({"id": "orgmem_1", "organization": {"id": "org_1"},
                                "public_user_data": {"user_id": "user_1"}});
        assert!(Event::decode(
            &envelope("organizationMembership.updated", membership),
            SIGNED
        )
        .is_ok());
        let role = json!({"id": "role_1", "permissions": "org:x:y"});
        assert!(Event::decode(&envelope("role.updated", role), SIGNED).is_ok());
        let sub = json!({"id": "csub_1", "payer": "cpayer_1"});
        assert!(Event::decode(&envelope("subscription.updated", sub), SIGNED).is_ok());
        // A session's user copy we cannot read is not applied; the session is.
        let session = json!({"id": "sess_1", "user_id": "user_1", "user": {"first_name": "A"}});
        let Payload::SessionUpserted(session) =
            Event::decode(&envelope("session.created", session), SIGNED)
                .unwrap()
                .payload
        else {
            panic!("not a session")
        };
        assert_eq!(session.user, None);
    }

    #[test]
    fn versions_and_expiries_stay_strict() {
        for (event_type, data) in [
            (
                "user.updated",
                json!({"id": "user_1", "updated_at": "yesterday"}),
            ),
            (
                "session.ended",
                json!({"id": "sess_1", "user_id": "user_1", "expire_at": "soon"}),
            ),
            (
                "invitation.created",
                json!({"id": "inv_1", "expires_at": true}),
            ),
        ] {
            let err = Event::decode(&envelope(event_type, data), SIGNED).unwrap_err();
            assert!(
                err.to_string().contains("invalid type"),
                "{event_type}: {err}"
            );
        }
    }

    #[test]
    fn the_envelope_needs_type_timestamp_and_data_only() {
        let body =
            br#"{"object":"list","type":"user.deleted","timestamp":1,"data":{"id":"user_1"}}"#;
        let event = Event::decode(body, SIGNED).unwrap();
        assert_eq!(
            event.payload,
            Payload::UserDeleted(DeletedObject {
                id: "user_1".into()
            })
        );
    }

    #[test]
    fn envelopes_without_timestamp_or_instance_id_take_the_signed_time() {
        // Clerk's deliveries before mid-2024: `data`, `object` and `type` only.
        let body = br#"{"data":{"deleted":true,"id":"user_1","object":"user"},"object":"event","type":"user.deleted"}"#;
        let event = Event::decode(body, SIGNED).unwrap();
        assert_eq!(
            (event.timestamp_ms, event.timestamp_in_envelope),
            (SIGNED, false)
        );
        assert_eq!(event.instance_id, None);
        let body = br#"{"type":"user.deleted","timestamp":null,"data":{"id":"user_1"}}"#;
        assert!(!Event::decode(body, SIGNED).unwrap().timestamp_in_envelope);
        let event =
            Event::decode(&envelope("user.deleted", json!({"id": "user_1"})), SIGNED).unwrap();
        assert_eq!(
            (event.timestamp_ms, event.timestamp_in_envelope),
            (1716883200123, true)
        );
    }

    #[test]
    fn data_is_kept_byte_for_byte_whatever_its_depth_numbers_or_keys() {
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let data = format!(
            r#"{{"id":"user_1", "updated_at":1,"unsafe_metadata":{{"":{deep},"n":1e300,"m":-1e-200,"big":1234567890123456789012345678901234567890123,"k":"\ud83d\ude00"}}, "first_name" : "Ada"}}"#
        );
        let body = format!(r#"{{"type":"user.updated","timestamp":1716883200123,"data":{data}}}"#);
        let event = Event::decode(body.as_bytes(), SIGNED).unwrap();
        assert_eq!(event.data.text(), data);
        assert_eq!(event.data.field("first_name").unwrap().get(), r#""Ada""#);
        let edited = event.data.edited(&["unsafe_metadata"], &[]);
        assert_eq!(
            edited.text(),
            r#"{"id":"user_1","updated_at":1,"first_name":"Ada"}"#
        );
    }

    #[test]
    fn values_with_quotes_or_backslashes_are_cut_out_whole() {
        // serde shows this value as "a\"b@example.org\\": the escaped quote is not its end.
        for value in [r#"a"b@example.org\"#, r#"x\"#, r#""""#, r#"\"@\"#] {
            let data = json!({"id": "user_1", "updated_at": value});
            let err = Event::decode(&envelope("user.created", data), SIGNED)
                .unwrap_err()
                .to_string();
            assert_eq!(
                err, "user.created data is not usable: invalid type: string \"…\", expected i64",
                "{value}"
            );
        }
        assert_eq!(
            redact(r#"invalid type: string "a\"b\\", expected i64"#),
            "invalid type: string \"…\", expected i64"
        );
    }

    #[test]
    fn error_messages_never_echo_values() {
        let data = json!({"id": "user_1", "first_name": "Jane", "updated_at": "jane@example.org"});
        let err = Event::decode(&envelope("user.created", data), SIGNED)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("jane@example.org"), "{err}");
        assert!(err.contains("invalid type"), "{err}");
    }
}
