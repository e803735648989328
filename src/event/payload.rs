//! What an event is about, as typed payloads holding only what the planner reads.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

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
    /// Indexed for the reader's user lookups when they are non-empty strings.
    #[serde(default, deserialize_with = "lenient")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub external_id: Option<String>,
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
    /// The key prefix (`SUBSCRIPTION#…`).
    pub(crate) fn key_prefix(self) -> &'static str {
        match self {
            Self::Subscription => "SUBSCRIPTION",
            Self::SubscriptionItem => "SUBSCRIPTION_ITEM",
            Self::PaymentAttempt => "PAYMENT_ATTEMPT",
        }
    }
    pub(super) fn id_prefix(self) -> &'static str {
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

/// `Some(value)` when the field holds a `T`, `None` when it is absent, null or of another
/// type: for fields that feed no key, version or expiry. The value is taken as raw text
/// first, so no depth of nesting in it can fail the event.
pub(super) fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
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
