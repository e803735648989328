//! Every name the table holds: attribute names ([`attr`]), what an item is ([`Entity`], the
//! `entity` attribute) and who wrote it ([`Writer`], the `source` attribute). The functions
//! spell none of these in a string of their own; docs/table.md lists the same entities, and a
//! test checks the two agree.

/// Attribute names. Top-level copies of Clerk's fields keep Clerk's spelling.
pub mod attr {
    // Keys.
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const GSI1_PK: &str = "gsi1pk";
    pub const GSI1_SK: &str = "gsi1sk";
    /// The keys of the sparse user lookup indexes (`table::USERNAME_INDEX`,
    /// `table::EXTERNAL_ID_INDEX`).
    pub const USERNAME_KEY: &str = "username_key";
    pub const EXTERNAL_ID_KEY: &str = "external_id_key";

    // What every item says about itself.
    pub const ENTITY: &str = "entity";
    pub const ID: &str = "id";
    /// Who wrote a live item, or a reconcile's tombstone ([`super::Writer`]).
    pub const SOURCE: &str = "source";
    /// The svix-id of the delivery that wrote a webhook's item.
    pub const LAST_SVIX_ID: &str = "last_svix_id";
    /// The object's version (Clerk's `updated_at`, else the event's time): what guards compare.
    pub const VERSION: &str = "version";
    /// The whole Clerk object (`table::encoding`).
    pub const DATA: &str = "data";
    /// DynamoDB's TTL, epoch seconds.
    pub const EXPIRES_AT: &str = "expires_at";

    // Tombstones.
    pub const DELETED: &str = "deleted";
    pub const DELETED_AT: &str = "deleted_at";

    // Event records.
    pub const TYPE: &str = "type";
    pub const EVENT_TIMESTAMP: &str = "event_timestamp";
    pub const RECEIVED_AT: &str = "received_at";
    pub const INSTANCE_ID: &str = "instance_id";

    // Our own attributes of entity items.
    /// A user's primary email address.
    pub const EMAIL: &str = "email";
    pub const ORG_ID: &str = "org_id";
    pub const USER_ID: &str = "user_id";
    pub const PAYER_USER_ID: &str = "payer_user_id";
    pub const PAYER_ORG_ID: &str = "payer_org_id";

    // Clerk's fields, copied to the top level.
    pub const CREATED_AT: &str = "created_at";
    pub const UPDATED_AT: &str = "updated_at";
    pub const FIRST_NAME: &str = "first_name";
    pub const LAST_NAME: &str = "last_name";
    pub const USERNAME: &str = "username";
    pub const IMAGE_URL: &str = "image_url";
    pub const EXTERNAL_ID: &str = "external_id";
    pub const PUBLIC_METADATA: &str = "public_metadata";
    pub const NAME: &str = "name";
    pub const SLUG: &str = "slug";
    pub const ROLE: &str = "role";
    pub const PERMISSIONS: &str = "permissions";
    pub const STATUS: &str = "status";
    pub const CLIENT_ID: &str = "client_id";
    pub const LAST_ACTIVE_AT: &str = "last_active_at";
    pub const EXPIRE_AT: &str = "expire_at";
    pub const ABANDON_AT: &str = "abandon_at";
    pub const LAST_ACTIVE_ORGANIZATION_ID: &str = "last_active_organization_id";
    pub const DEVICE_TYPE: &str = "device_type";
    pub const BROWSER_NAME: &str = "browser_name";
    pub const BROWSER_VERSION: &str = "browser_version";
    pub const IS_MOBILE: &str = "is_mobile";
    pub const EMAIL_ADDRESS: &str = "email_address";
    pub const ENROLLMENT_MODE: &str = "enrollment_mode";
    pub const KEY: &str = "key";
    pub const DESCRIPTION: &str = "description";
    pub const IS_LOCKED: &str = "is_locked";
    pub const SUBSCRIPTION_ID: &str = "subscription_id";
    pub const PLAN_ID: &str = "plan_id";

    // The notifier's claims.
    pub const STATE: &str = "state";
    pub const LEASE_UNTIL: &str = "lease_until";
    pub const CLAIM_TOKEN: &str = "claim_token";
    pub const ATTEMPTS: &str = "attempts";

    // The reconcile's records and the instance binding.
    pub const IDS: &str = "ids";
    pub const BOUND_BY: &str = "bound_by";
    pub const BOUND_AT: &str = "bound_at";
}

/// What an item is: its `entity` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    User,
    Organization,
    Membership,
    Session,
    OrganizationInvitation,
    Domain,
    Invitation,
    Role,
    Permission,
    WaitlistEntry,
    Subscription,
    SubscriptionItem,
    PaymentAttempt,
    Email,
    Sms,
    Event,
    BackfillCheckpoint,
    Claim,
    Instance,
    ReconcileChunk,
}

impl Entity {
    pub const ALL: [Self; 20] = [
        Self::User,
        Self::Organization,
        Self::Membership,
        Self::Session,
        Self::OrganizationInvitation,
        Self::Domain,
        Self::Invitation,
        Self::Role,
        Self::Permission,
        Self::WaitlistEntry,
        Self::Subscription,
        Self::SubscriptionItem,
        Self::PaymentAttempt,
        Self::Email,
        Self::Sms,
        Self::Event,
        Self::BackfillCheckpoint,
        Self::Claim,
        Self::Instance,
        Self::ReconcileChunk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Organization => "organization",
            Self::Membership => "membership",
            Self::Session => "session",
            Self::OrganizationInvitation => "organization_invitation",
            Self::Domain => "domain",
            Self::Invitation => "invitation",
            Self::Role => "role",
            Self::Permission => "permission",
            Self::WaitlistEntry => "waitlist_entry",
            Self::Subscription => "subscription",
            Self::SubscriptionItem => "subscription_item",
            Self::PaymentAttempt => "payment_attempt",
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Event => "event",
            Self::BackfillCheckpoint => "backfill_checkpoint",
            Self::Claim => "claim",
            Self::Instance => "instance",
            Self::ReconcileChunk => "reconcile_chunk",
        }
    }

    /// The entity an `entity` attribute names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// Who wrote an item: its `source` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// A verified delivery (the item also carries `last_svix_id`).
    Webhook,
    /// `clerk-webhooks-backfill`, from Clerk's Backend API.
    Backfill,
    /// `clerk-webhooks-backfill --reconcile`: its copies, and its tombstones.
    Reconcile,
    /// A sync on demand (`sync::Syncer`, `clerk-webhooks-sync`): one object fetched from the
    /// Backend API because an app asked for it before its webhook arrived.
    Sync,
}

impl Writer {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Backfill => "backfill",
            Self::Reconcile => "reconcile",
            Self::Sync => "sync",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entity_reads_back_from_its_name() {
        for entity in Entity::ALL {
            assert_eq!(Entity::parse(entity.as_str()), Some(entity));
        }
        assert_eq!(Entity::parse("users"), None);
    }
}
