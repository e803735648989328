//! What the reader returns: one type per entity, with the item's top-level attributes and
//! `data`, the whole Clerk object exactly as Clerk sent it (either item encoding).
//!
//! Top-level attributes are conveniences for queries and filters: a value DynamoDB cannot hold
//! is left out of the item (docs/table.md), so each is an `Option`, and `data` is the
//! authority. Metadata is only in `data`: read it with [`Record::data_as`].

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

/// Declares one entity type: the attributes of its own, then those every type has (`id`,
/// `created_at`, `updated_at`, `version`, `source`, `data`), and its [`Record`] impl.
macro_rules! entity_type {
    (
        $(#[$doc:meta])*
        $name:ident reads [$($entity:expr),+] {
            $($(#[$field_doc:meta])* $field:ident: $type:ty,)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub struct $name {
            /// Clerk's id of the object.
            pub id: String,
            $($(#[$field_doc])* pub $field: $type,)*
            pub created_at: Option<i64>,
            pub updated_at: Option<i64>,
            /// The version the table holds: Clerk's `updated_at`, or the event's time.
            pub version: i64,
            /// Who wrote that version: `webhook`, `backfill`, `reconcile` or `sync`.
            pub source: Option<String>,
            /// The Clerk object, exactly as Clerk sent it.
            #[serde(skip_deserializing, default = "no_data")]
            pub data: Box<RawValue>,
        }

        impl Record for $name {
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

entity_type! {
    User reads [Entity::User] {
        /// The primary email address (not simply the first).
        email: Option<String>,
        first_name: Option<String>,
        last_name: Option<String>,
        username: Option<String>,
        image_url: Option<String>,
        external_id: Option<String>,
    }
}

entity_type! {
    Organization reads [Entity::Organization] {
        name: Option<String>,
        slug: Option<String>,
        image_url: Option<String>,
    }
}

entity_type! {
    /// A user's membership of an organization (`id` is the `orgmem_…` id); `data` carries the
    /// organization and the user's public data as Clerk sent them.
    Membership reads [Entity::Membership] {
        org_id: String,
        user_id: String,
        role: Option<String>,
        permissions: Option<Vec<String>>,
    }
}

entity_type! {
    Session reads [Entity::Session] {
        user_id: String,
        status: Option<String>,
        client_id: Option<String>,
        last_active_at: Option<i64>,
        expire_at: Option<i64>,
        abandon_at: Option<i64>,
        last_active_organization_id: Option<String>,
        device_type: Option<String>,
        browser_name: Option<String>,
        browser_version: Option<String>,
        is_mobile: Option<bool>,
    }
}

entity_type! {
    OrganizationInvitation reads [Entity::OrganizationInvitation] {
        org_id: String,
        email_address: Option<String>,
        role: Option<String>,
        status: Option<String>,
    }
}

entity_type! {
    /// An instance invitation (not to an organization).
    Invitation reads [Entity::Invitation] {
        email_address: Option<String>,
        status: Option<String>,
    }
}

entity_type! {
    Domain reads [Entity::Domain] {
        org_id: Option<String>,
        name: Option<String>,
        enrollment_mode: Option<String>,
    }
}

entity_type! {
    Role reads [Entity::Role] {
        key: Option<String>,
        name: Option<String>,
        description: Option<String>,
        /// Permission keys.
        permissions: Option<Vec<String>>,
    }
}

entity_type! {
    Permission reads [Entity::Permission] {
        key: Option<String>,
        name: Option<String>,
        description: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
    }
}

entity_type! {
    WaitlistEntry reads [Entity::WaitlistEntry] {
        email_address: Option<String>,
        status: Option<String>,
        is_locked: Option<bool>,
    }
}

entity_type! {
    /// A billing object under the user or organization that pays for it.
    Billing reads [Entity::Subscription, Entity::SubscriptionItem, Entity::PaymentAttempt] {
        /// `subscription`, `subscription_item` or `payment_attempt`.
        entity: String,
        status: Option<String>,
        payer_user_id: Option<String>,
        payer_org_id: Option<String>,
        subscription_id: Option<String>,
        plan_id: Option<String>,
    }
}
