//! The table contract: every key format, index entry, attribute name and TTL the functions
//! and the backfill use, and the dependents a cascade deletes. Pure: `store::create_table`
//! creates the table it describes.
//! docs/table.md documents it; `template.yaml` declares the same table and a test
//! checks the two agree.
//!
//! One table, single-table design: `pk` / `sk` (strings), one global secondary index `gsi1`
//! on `gsi1pk` / `gsi1sk` projecting the keys and [`GSI1_PROJECTED`], TTL on `expires_at`
//! (epoch seconds), and a stream of new and old images (what the notifier reads). How an
//! object's values become attributes is [`encoding`].

pub mod encoding;
mod names;

use aws_sdk_dynamodb::types::AttributeValue;
pub use encoding::Item;
pub use names::{attr, Entity, Writer};

use attr::{GSI1_PK, GSI1_SK, PK, SK};

/// Name of the one global secondary index.
pub const GSI1: &str = "gsi1";
/// What `gsi1` carries besides the table's and its own keys: enough to find an item and tell
/// what it is (and, for the cascades, whether it is a tombstone); a reader gets the rest of
/// the item by its key. Not `ALL`: every index write would pay for `data` again.
pub const GSI1_PROJECTED: [&str; 12] = [
    attr::ENTITY,
    attr::ID,
    attr::VERSION,
    attr::DELETED,
    attr::EMAIL,
    attr::EMAIL_ADDRESS,
    attr::SLUG,
    attr::NAME,
    attr::ORG_ID,
    attr::USER_ID,
    attr::ROLE,
    attr::STATUS,
];

/// A sparse index on one attribute of user items, projecting only the keys: the user lookups
/// that `gsi1` (keyed by email) cannot serve. A user item has one `gsi1pk`, so each further
/// way to find a user needs an index of its own; KEYS_ONLY and sparse, it costs one small index
/// write for a user that has the value and nothing for one that has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupIndex {
    pub name: &'static str,
    /// The index's partition key (S); it has no sort key.
    pub key: &'static str,
}

/// Users by username: `username_key` is the username lower-cased (hashed past 2,048 bytes).
pub const USERNAME_INDEX: LookupIndex = LookupIndex {
    name: "username",
    key: attr::USERNAME_KEY,
};
/// Users by the external id an app gave them: `external_id_key` is it exactly (hashed past
/// 2,048 bytes).
pub const EXTERNAL_ID_INDEX: LookupIndex = LookupIndex {
    name: "external_id",
    key: attr::EXTERNAL_ID_KEY,
};
pub const LOOKUP_INDEXES: [LookupIndex; 2] = [USERNAME_INDEX, EXTERNAL_ID_INDEX];

/// Whether `item` is live: a tombstone has `deleted`, and a live item never does.
pub fn is_live(item: &Item) -> bool {
    encoding::flag(item, attr::DELETED) != Some(true)
}

/// The TTL attribute (epoch seconds) of event records, tombstones, claims and expiring
/// entities.
pub const TTL_ATTRIBUTE: &str = attr::EXPIRES_AT;

pub const PROFILE_SK: &str = "PROFILE";
pub(crate) const EVENT_SK: &str = "EVENT";

// Prefixes of the keys that a parent's cascade finds by prefix. Shared by the key
// constructors below and by [`Dependents`], so the two cannot drift apart.
const USER: &str = "USER#";
const ORG: &str = "ORG#";
const MEMBER: &str = "MEMBER#";
const SESSION: &str = "SESSION#";
const INVITATION: &str = "INVITATION#";
const DOMAIN: &str = "DOMAIN#";

/// The primary key of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    /// `{KIND}#{id}` / `PROFILE`: the item of an object keyed by its own id.
    pub fn profile(kind: &str, id: &str) -> Self {
        Self {
            pk: format!("{kind}#{id}"),
            sk: PROFILE_SK.into(),
        }
    }
    pub fn user(user_id: &str) -> Self {
        Self {
            pk: format!("{USER}{user_id}"),
            sk: PROFILE_SK.into(),
        }
    }
    pub fn organization(org_id: &str) -> Self {
        Self {
            pk: format!("{ORG}{org_id}"),
            sk: PROFILE_SK.into(),
        }
    }
    pub fn membership(org_id: &str, user_id: &str) -> Self {
        Self {
            pk: format!("{ORG}{org_id}"),
            sk: format!("{MEMBER}{user_id}"),
        }
    }
    pub fn session(user_id: &str, session_id: &str) -> Self {
        Self {
            pk: format!("{USER}{user_id}"),
            sk: format!("{SESSION}{session_id}"),
        }
    }
    pub fn organization_invitation(org_id: &str, invitation_id: &str) -> Self {
        Self {
            pk: format!("{ORG}{org_id}"),
            sk: format!("{INVITATION}{invitation_id}"),
        }
    }
    pub fn domain(domain_id: &str) -> Self {
        Self::profile("DOMAIN", domain_id)
    }
    pub fn invitation(invitation_id: &str) -> Self {
        Self::profile("INVITATION", invitation_id)
    }
    pub fn role(role_id: &str) -> Self {
        Self::profile("ROLE", role_id)
    }
    pub fn permission(permission_id: &str) -> Self {
        Self::profile("PERMISSION", permission_id)
    }
    pub fn waitlist_entry(entry_id: &str) -> Self {
        Self::profile("WAITLIST", entry_id)
    }
    /// An email or SMS message's metadata (`STORE_MESSAGE_METADATA`).
    pub fn message(message_id: &str) -> Self {
        Self::profile("MESSAGE", message_id)
    }
    pub fn event(svix_id: &str) -> Self {
        Self {
            pk: format!("EVENT#{svix_id}"),
            sk: EVENT_SK.into(),
        }
    }

    /// The notifier's claim on one action for one change (`Change::id`):
    /// `CLAIM#{action}#{change id}` / `CLAIM`.
    pub fn claim(action: &str, change_id: &str) -> Self {
        Self {
            pk: format!("CLAIM#{action}#{change_id}"),
            sk: "CLAIM".into(),
        }
    }

    /// Which Clerk instance the table mirrors (`backfill::instance`): one item, written by
    /// the first backfill or reconcile.
    pub fn instance() -> Self {
        Self {
            pk: "INSTANCE".into(),
            sk: "INSTANCE".into(),
        }
    }

    /// A part of one reconcile run's record (`backfill::reconcile`): the ids one listing page
    /// returned (`LISTED#00001`) or one sweep page confirmed gone (`GONE#00001`), under
    /// `RECONCILE#{kind}#{run started, ms}`.
    pub fn reconcile_chunk(kind: &str, run_started_ms: i64, part: &str, n: u64) -> Self {
        Self {
            pk: reconcile_run(kind, run_started_ms),
            sk: format!("{part}#{n:06}"),
        }
    }

    /// Reads the key back from an item.
    pub fn of(item: &Item) -> Option<Self> {
        let text = |name: &str| match item.get(name)? {
            AttributeValue::S(s) => Some(s.clone()),
            _ => None,
        };
        Some(Self {
            pk: text(PK)?,
            sk: text(SK)?,
        })
    }

    /// An item holding only this key.
    pub fn item(&self) -> Item {
        Item::from([
            (PK.to_owned(), AttributeValue::S(self.pk.clone())),
            (SK.to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// The partition that holds one reconcile run's chunks.
pub fn reconcile_run(kind: &str, run_started_ms: i64) -> String {
    format!("RECONCILE#{kind}#{run_started_ms}")
}

/// An item's entry in `gsi1`: what to look it up by, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub pk: String,
    pub sk: String,
}

/// The longest `gsi1pk` we write: DynamoDB allows 2,048 bytes for a partition key value.
const MAX_INDEX_PK_BYTES: usize = 2048;

/// `{prefix}{text}`, or, when that would be longer than a partition key may be,
/// `{prefix}sha256:{hex digest of text}`. For index keys made from what users type (an
/// email address, a slug): any input stays a valid key, and the exact text stays in its own
/// attribute, which a reader compares.
fn bounded_index_pk(prefix: &str, text: &str) -> String {
    if prefix.len() + text.len() <= MAX_INDEX_PK_BYTES {
        return format!("{prefix}{text}");
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}sha256:{hex}")
}

/// The `gsi1pk` under which users, invitations and waitlist entries with this address are
/// indexed: `EMAIL#{address, lower-cased}` (hashed past 2,048 bytes).
pub fn email_index_pk(email: &str) -> String {
    bounded_index_pk("EMAIL#", &email.to_lowercase())
}

/// The `gsi1pk` of the organization with this slug: `SLUG#{slug}` (hashed past 2,048 bytes).
pub fn slug_index_pk(slug: &str) -> String {
    bounded_index_pk("SLUG#", slug)
}

/// The `username_key` of a user with this username.
pub fn username_key(username: &str) -> String {
    bounded_index_pk("", &username.to_lowercase())
}

/// The `external_id_key` of a user with this external id.
pub fn external_id_key(external_id: &str) -> String {
    bounded_index_pk("", external_id)
}

impl IndexEntry {
    /// Users, invitations and waitlist entries by (lower-cased) email address;
    /// `of` is the item's own kind and id, e.g. `USER#user_1`.
    fn by_email(email: &str, of: String) -> Self {
        Self {
            pk: email_index_pk(email),
            sk: of,
        }
    }
    pub(crate) fn user_email(email: &str, user_id: &str) -> Self {
        Self::by_email(email, format!("{USER}{user_id}"))
    }
    pub(crate) fn organization_invitation_email(email: &str, invitation_id: &str) -> Self {
        Self::by_email(email, format!("ORGINV#{invitation_id}"))
    }
    pub(crate) fn invitation_email(email: &str, invitation_id: &str) -> Self {
        Self::by_email(email, format!("{INVITATION}{invitation_id}"))
    }
    pub(crate) fn waitlist_email(email: &str, entry_id: &str) -> Self {
        Self::by_email(email, format!("WAITLIST#{entry_id}"))
    }
    /// An organization by its slug.
    pub(crate) fn organization_slug(slug: &str, org_id: &str) -> Self {
        Self {
            pk: slug_index_pk(slug),
            sk: format!("{ORG}{org_id}"),
        }
    }
    /// A membership under its user: a user's organizations, and what the user's cascade
    /// deletes.
    pub(crate) fn user_membership(user_id: &str, org_id: &str) -> Self {
        Self {
            pk: format!("{USER}{user_id}"),
            sk: format!("{ORG}{org_id}"),
        }
    }
    /// A domain under its organization: an organization's domains, and what the
    /// organization's cascade deletes.
    pub fn organization_domain(org_id: &str, domain_id: &str) -> Self {
        Self {
            pk: format!("{ORG}{org_id}"),
            sk: format!("{DOMAIN}{domain_id}"),
        }
    }
    /// A message's metadata under its user, found by the user's cascade.
    pub(crate) fn user_message(user_id: &str, message_id: &str) -> Self {
        Self {
            pk: format!("{USER}{user_id}"),
            sk: format!("MESSAGE#{message_id}"),
        }
    }
    /// A billing object under whoever pays for it (a user or an organization id), so one
    /// query lists what they pay for; `of` is the object's own key.
    pub fn payer(payer_id: &str, of: &Key) -> Self {
        Self {
            pk: format!("PAYER#{payer_id}"),
            sk: of.pk.clone(),
        }
    }

    /// Sets `gsi1pk` / `gsi1sk` on `item`.
    pub(crate) fn set_on(self, item: &mut Item) {
        item.insert(GSI1_PK.into(), AttributeValue::S(self.pk));
        item.insert(GSI1_SK.into(), AttributeValue::S(self.sk));
    }
}

/// Where the live items that die with a parent are found: a query of the table or of
/// `gsi1`, for one partition, optionally narrowed to sort keys with a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dependents {
    Partition {
        pk: String,
        sk_prefix: &'static str,
    },
    Index {
        gsi1pk: String,
        sk_prefix: Option<&'static str>,
    },
}

impl Dependents {
    /// An organization's memberships and invitations (its partition) and its domains (gsi1).
    pub(crate) fn of_organization(org_id: &str) -> Vec<Self> {
        let pk = format!("{ORG}{org_id}");
        vec![
            Self::Partition {
                pk: pk.clone(),
                sk_prefix: MEMBER,
            },
            Self::Partition {
                pk: pk.clone(),
                sk_prefix: INVITATION,
            },
            Self::Index {
                gsi1pk: pk,
                sk_prefix: Some(DOMAIN),
            },
        ]
    }

    /// A user's sessions (its partition) and whatever gsi1 lists under the user
    /// (memberships, message metadata).
    pub(crate) fn of_user(user_id: &str) -> Vec<Self> {
        let pk = format!("{USER}{user_id}");
        vec![
            Self::Partition {
                pk: pk.clone(),
                sk_prefix: SESSION,
            },
            Self::Index {
                gsi1pk: pk,
                sk_prefix: None,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether an item with this key and index entry is what `dependents` finds.
    fn includes(dependents: &Dependents, key: &Key, index: Option<&IndexEntry>) -> bool {
        match dependents {
            Dependents::Partition { pk, sk_prefix } => {
                key.pk == *pk && key.sk.starts_with(sk_prefix)
            }
            Dependents::Index { gsi1pk, sk_prefix } => index.is_some_and(|index| {
                index.pk == *gsi1pk && sk_prefix.is_none_or(|p| index.sk.starts_with(p))
            }),
        }
    }

    /// The cascades find what the key constructors make: a change to a key format that the
    /// cascade did not follow fails here, not in production as items that outlive a delete.
    #[test]
    fn every_dependent_is_found_by_its_parents_cascade() {
        let org = Dependents::of_organization("org_1");
        let user = Dependents::of_user("user_1");
        let found = |dependents: &[Dependents], key: &Key, index: Option<&IndexEntry>| {
            dependents.iter().any(|d| includes(d, key, index))
        };
        let membership = Key::membership("org_1", "user_1");
        let membership_index = IndexEntry::user_membership("user_1", "org_1");
        assert!(found(&org, &membership, Some(&membership_index)));
        assert!(found(&user, &membership, Some(&membership_index)));
        let invitation = Key::organization_invitation("org_1", "orginv_1");
        let invitation_index = IndexEntry::organization_invitation_email("a@example.org", "x");
        assert!(found(&org, &invitation, Some(&invitation_index)));
        let domain = Key::domain("orgdmn_1");
        assert!(found(
            &org,
            &domain,
            Some(&IndexEntry::organization_domain("org_1", "orgdmn_1"))
        ));
        assert!(found(&user, &Key::session("user_1", "sess_1"), None));
        let message = IndexEntry::user_message("user_1", "sms_1");
        assert!(found(&user, &Key::message("sms_1"), Some(&message)));

        // ...and nothing else: not the parents themselves, not another parent's items.
        assert!(!found(&org, &Key::organization("org_1"), None));
        assert!(!found(&user, &Key::user("user_1"), None));
        let user_by_email = IndexEntry::user_email("a@example.org", "user_1");
        assert!(!found(&user, &Key::user("user_1"), Some(&user_by_email)));
        assert!(!found(&org, &Key::membership("org_2", "user_1"), None));
        assert!(!found(&user, &Key::session("user_2", "sess_1"), None));
        let slug = IndexEntry::organization_slug("acme", "org_1");
        assert!(!found(&org, &Key::organization("org_1"), Some(&slug)));
    }

    #[test]
    fn keys_read_back_from_their_items() {
        let key = Key::membership("org_1", "user_1");
        assert_eq!(Key::of(&key.item()), Some(key));
        let mut item = Key::user("user_1").item();
        IndexEntry::user_email("Ada@Example.org", "user_1").set_on(&mut item);
        assert_eq!(
            item[GSI1_PK],
            AttributeValue::S("EMAIL#ada@example.org".into())
        );
        assert_eq!(item[GSI1_SK], AttributeValue::S("USER#user_1".into()));
    }

    #[test]
    fn index_keys_from_typed_text_stay_within_dynamodbs_key_limit() {
        assert_eq!(email_index_pk("Ada@Example.org"), "EMAIL#ada@example.org");
        let longest = "a".repeat(MAX_INDEX_PK_BYTES - "SLUG#".len());
        assert_eq!(slug_index_pk(&longest), format!("SLUG#{longest}"));
        let long = format!("{longest}b");
        let hashed = slug_index_pk(&long);
        assert!(hashed.starts_with("SLUG#sha256:") && hashed.len() == 5 + 7 + 64);
        assert_ne!(hashed, slug_index_pk(&format!("{longest}c")));
        let email = format!("{}@example.org", "é".repeat(2000));
        assert!(email_index_pk(&email).len() <= MAX_INDEX_PK_BYTES);
        // The user lookup keys: a username lower-cased, an external id as it is.
        assert_eq!(username_key("Ada_L"), "ada_l");
        assert_eq!(external_id_key("CRM-1"), "CRM-1");
        let long_id = "x".repeat(MAX_INDEX_PK_BYTES + 1);
        assert!(external_id_key(&long_id).starts_with("sha256:"));
        assert!(username_key(&long_id).len() <= MAX_INDEX_PK_BYTES);
    }
}
