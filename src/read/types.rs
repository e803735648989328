//! What the reader returns: one type per entity, with the item's top-level attributes and
//! `data`, the whole Clerk object exactly as Clerk sent it (either item encoding).
//!
//! Top-level attributes are conveniences for queries and filters: a value DynamoDB cannot hold
//! is left out of the item (docs/table.md), so each is an `Option`, and `data` is the
//! authority. Metadata is only in `data`: read it with [`Record::data_as`]. Every type also has
//! `version` (Clerk's `updated_at`, or the event's time) and `source`, who wrote that version
//! (`webhook`, `backfill`, `reconcile` or `sync`).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::table::Entity;

/// An entity type the reader can return.
pub trait Record: DeserializeOwned + Serialize + Clone + Send + Sync + 'static {
    /// The `entity` values of the items this type reads.
    const ENTITIES: &'static [Entity];
    /// The Clerk object, as the JSON text Clerk sent.
    fn data(&self) -> &RawValue;
    fn set_data(&mut self, data: Box<RawValue>);
    /// The version the table holds: Clerk's `updated_at`, or the event's time.
    fn version(&self) -> i64;
    /// `data` as your own type (or `serde_json::Value`).
    fn data_as<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.data().get())
    }
}

/// `data` before it is read: JSON `null`.
fn no_data() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("null is JSON")
}

/// Implements [`Record`] for a type with a `data: Box<RawValue>` field.
macro_rules! record {
    ($type:ty, $($entity:expr),+) => {
        impl Record for $type {
            const ENTITIES: &'static [Entity] = &[$($entity),+];
            fn data(&self) -> &RawValue {
                &self.data
            }
            fn set_data(&mut self, data: Box<RawValue>) {
                self.data = data;
            }
            fn version(&self) -> i64 {
                self.version
            }
        }
    };
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    /// The primary email address (not simply the first).
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub image_url: Option<String>,
    pub external_id: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub version: i64,
    pub source: Option<String>,
    #[serde(skip_deserializing, default = "no_data")]
    pub data: Box<RawValue>,
}
record!(User, Entity::User);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Organization {
    pub id: String,
    pub name: Option<String>,
    pub slug: Option<String>,
    pub image_url: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub version: i64,
    pub source: Option<String>,
    #[serde(skip_deserializing, default = "no_data")]
    pub data: Box<RawValue>,
}
record!(Organization, Entity::Organization);

/// A user's membership of an organization; `data` carries the organization and the user's
/// public data as Clerk sent them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Membership {
    /// The `orgmem_…` id.
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub role: Option<String>,
    pub permissions: Option<Vec<String>>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub version: i64,
    pub source: Option<String>,
    #[serde(skip_deserializing, default = "no_data")]
    pub data: Box<RawValue>,
}
record!(Membership, Entity::Membership);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub status: Option<String>,
    pub client_id: Option<String>,
    pub last_active_at: Option<i64>,
    pub expire_at: Option<i64>,
    pub abandon_at: Option<i64>,
    pub last_active_organization_id: Option<String>,
    pub device_type: Option<String>,
    pub browser_name: Option<String>,
    pub browser_version: Option<String>,
    pub is_mobile: Option<bool>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub version: i64,
    pub source: Option<String>,
    #[serde(skip_deserializing, default = "no_data")]
    pub data: Box<RawValue>,
}
record!(Session, Entity::Session);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrganizationInvitation {
    pub id: String,
    pub org_id: String,
    pub email_address: Option<String>,
    pub role: Option<String>,
    pub status: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub version: i64,
    pub source: Option<String>,
    #[serde(skip_deserializing, default = "no_data")]
    pub data: Box<RawValue>,
}
record!(OrganizationInvitation, Entity::OrganizationInvitation);

/// An instance invitation (not to an organization).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invitation {
    pub id: String,
    pub email_address: Option<String>,
    pub status: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub version: i64,
    pub source: Option<String>,
    #[serde(skip_deserializing, default = "no_data")]
    pub data: Box<RawValue>,
}
record!(Invitation, Entity::Invitation);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Domain {
    pub id: String,
    pub org_id: Option<String>,
    pub name: Option<String>,
    pub enrollment_mode: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub version: i64,
    pub source: Option<String>,
    #[serde(skip_deserializing, default = "no_data")]
    pub data: Box<RawValue>,
}
record!(Domain, Entity::Domain);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub id: String,
    pub key: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Permission keys.
    pub permissions: Option<Vec<String>>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub version: i64,
    pub source: Option<String>,
    #[serde(skip_deserializing, default = "no_data")]
    pub data: Box<RawValue>,
}
record!(Role, Entity::Role);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Permission {
    pub id: String,
    pub key: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub version: i64,
    pub source: Option<String>,
    #[serde(skip_deserializing, default = "no_data")]
    pub data: Box<RawValue>,
}
record!(Permission, Entity::Permission);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaitlistEntry {
    pub id: String,
    pub email_address: Option<String>,
    pub status: Option<String>,
    pub is_locked: Option<bool>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub version: i64,
    pub source: Option<String>,
    #[serde(skip_deserializing, default = "no_data")]
    pub data: Box<RawValue>,
}
record!(WaitlistEntry, Entity::WaitlistEntry);

/// A billing object: a subscription, a subscription item or a payment attempt (`entity`
/// says which), under the user or organization that pays.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Billing {
    /// `subscription`, `subscription_item` or `payment_attempt`.
    pub entity: String,
    pub id: String,
    pub status: Option<String>,
    pub payer_user_id: Option<String>,
    pub payer_org_id: Option<String>,
    pub subscription_id: Option<String>,
    pub plan_id: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub version: i64,
    pub source: Option<String>,
    #[serde(skip_deserializing, default = "no_data")]
    pub data: Box<RawValue>,
}
record!(
    Billing,
    Entity::Subscription,
    Entity::SubscriptionItem,
    Entity::PaymentAttempt
);
