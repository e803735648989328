//! What can be backfilled, and everything the run knows about each kind in one place: its
//! names, the webhook whose plan a copy gets, its items' `entity`, what identifies an object in
//! the listing and in the table alike, and the `*.deleted` webhook of one Clerk confirmed gone.
//! Pure; the Backend API calls per kind are `Backfill::fetch` and `Backfill::lookup`.

use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;

use crate::event::{is_key_safe, text_at, Event};
use crate::table::encoding::text;
use crate::table::{attr, Entity, Item};

/// What can be backfilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Users,
    Organizations,
    Memberships,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Users, Kind::Organizations, Kind::Memberships];

    /// The `entity` of the kind's items.
    pub(crate) fn entity(self) -> Entity {
        match self {
            Self::Users => Entity::User,
            Self::Organizations => Entity::Organization,
            Self::Memberships => Entity::Membership,
        }
    }

    /// What the reconcile's sweep reads of each live item: enough for [`Kind::stored_identity`]
    /// and [`Kind::gone_entry`].
    pub(crate) fn sweep_attributes(self) -> &'static [&'static str] {
        match self {
            Self::Memberships => &[attr::ID, attr::VERSION, attr::ORG_ID, attr::USER_ID],
            _ => &[attr::ID, attr::VERSION],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Organizations => "organizations",
            Self::Memberships => "memberships",
        }
    }

    /// The webhook whose plan a copied object gets.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Users => "user.created",
            Self::Organizations => "organization.created",
            Self::Memberships => "organizationMembership.created",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "users" | "user" => Some(Self::Users),
            "organizations" | "organization" | "orgs" | "org" => Some(Self::Organizations),
            "memberships" | "membership" | "organization_memberships" => Some(Self::Memberships),
            _ => None,
        }
    }
}

impl Kind {
    /// What identifies an object in the listing and in the table alike: the id of a user or an
    /// organization; a membership's organization and user (its key; Clerk gives a re-added member
    /// a new membership id).
    pub(crate) fn listed_identity(self, object: &RawValue) -> Option<String> {
        let id = |path: &[&str]| text_at(object, path).filter(|id| is_key_safe(id));
        match self {
            Self::Users | Self::Organizations => id(&["id"]),
            Self::Memberships => Some(format!(
                "{}#{}",
                id(&["organization", "id"])?,
                id(&["public_user_data", "user_id"])?
            )),
        }
    }

    /// [`Kind::listed_identity`] of an item in the table.
    pub(crate) fn stored_identity(self, item: &Item) -> Option<String> {
        let text = |name: &str| text(item, name).map(str::to_owned);
        match self {
            Self::Users | Self::Organizations => text(attr::ID),
            Self::Memberships => Some(format!("{}#{}", text(attr::ORG_ID)?, text(attr::USER_ID)?)),
        }
    }

    /// What a confirmed-gone object needs for its tombstone: an id; for a membership
    /// `{org}#{user}#{membership id}`.
    pub(crate) fn gone_entry(self, item: &Item) -> Option<String> {
        let id = text(item, attr::ID)?;
        match self {
            Self::Users | Self::Organizations => Some(id.to_owned()),
            Self::Memberships => Some(format!("{}#{id}", self.stored_identity(item)?)),
        }
    }

    /// The `*.deleted` webhook of a confirmed-gone object, as Clerk would send it, at `now_ms`.
    pub(crate) fn deleted_event(self, entry: &str, now_ms: i64) -> Option<Event> {
        let (event_type, data) = match self {
            Self::Users => (
                "user.deleted",
                json!({"object": "user", "id": entry, "deleted": true}),
            ),
            Self::Organizations => (
                "organization.deleted",
                json!({"object": "organization", "id": entry, "deleted": true}),
            ),
            Self::Memberships => {
                let mut parts = entry.splitn(3, '#');
                let (org, user, id) = (parts.next()?, parts.next()?, parts.next()?);
                (
                    "organizationMembership.deleted",
                    json!({"object": "organization_membership", "id": id,
                           "organization": {"id": org}, "public_user_data": {"user_id": user}}),
                )
            }
        };
        let data = serde_json::value::to_raw_value(&data).ok()?;
        Event::from_data(event_type, now_ms, &data).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan_reconcile;
    use crate::table::encoding;
    use crate::table::Key;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn item(value: serde_json::Value) -> Item {
        encoding::from_json(value.as_object().unwrap())
    }

    fn raw(value: serde_json::Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&value).unwrap()
    }

    #[test]
    fn listing_and_table_identify_a_membership_by_its_key() {
        let object = json!({"id": "orgmem_new", "organization": {"id": "org_1"},
                            "public_user_data": {"user_id": "user_1"}});
        assert_eq!(
            Kind::Memberships.listed_identity(&raw(object)).as_deref(),
            Some("org_1#user_1")
        );
        assert_eq!(
            Kind::Users.listed_identity(&raw(json!({"id": "user#1"}))),
            None
        );
        let stored = item(json!({"id": "orgmem_old", "org_id": "org_1", "user_id": "user_1"}));
        assert_eq!(
            Kind::Memberships.stored_identity(&stored).as_deref(),
            Some("org_1#user_1")
        );
        assert_eq!(
            Kind::Memberships.gone_entry(&stored).as_deref(),
            Some("org_1#user_1#orgmem_old")
        );
    }

    #[test]
    fn a_gone_object_gets_its_deleted_webhooks_plan() {
        const NOW: i64 = 1_800_000_000_000;
        use crate::plan::{Cascade, Write};
        let settings = crate::plan::Settings::default();
        let user = Kind::Users.deleted_event("user_1", NOW).unwrap();
        let plan = plan_reconcile(&user, &settings, NOW).unwrap();
        assert_eq!(
            plan.cascade,
            Some(Cascade::User {
                user_id: "user_1".into()
            })
        );
        let Write::Put { item, version, .. } = &plan.writes[0] else {
            panic!("a tombstone first: {plan:?}");
        };
        assert_eq!(
            (item["deleted"].clone(), item["source"].clone(), *version),
            (
                AttributeValue::Bool(true),
                AttributeValue::S("reconcile".into()),
                NOW
            )
        );
        assert!(!item.contains_key("last_svix_id"));
        let member = Kind::Memberships
            .deleted_event("org_1#user_1#orgmem_1", NOW)
            .unwrap();
        let plan = plan_reconcile(&member, &settings, NOW).unwrap();
        let Write::Put { item, .. } = &plan.writes[0] else {
            panic!()
        };
        assert_eq!(Key::of(item), Some(Key::membership("org_1", "user_1")));
        assert_eq!(encoding::text(item, "id"), Some("orgmem_1"));
        assert_eq!(Kind::Memberships.deleted_event("org_1", NOW), None);
    }

    #[test]
    fn kinds_map_to_the_created_webhooks() {
        assert_eq!(Kind::parse("Users"), Some(Kind::Users));
        assert_eq!(Kind::parse("org"), Some(Kind::Organizations));
        assert_eq!(Kind::parse("sessions"), None);
        assert_eq!(
            Kind::ALL.map(Kind::event_type),
            [
                "user.created",
                "organization.created",
                "organizationMembership.created"
            ]
        );
    }
}
