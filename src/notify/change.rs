//! What counts as a change worth acting on, as a pure function of one stream record's old and
//! new images (DynamoDB Streams, `NEW_AND_OLD_IMAGES`, decoded to JSON items).
//!
//! The table already says what was applied, once and in order per object, so a change is read
//! from the item, never from the delivery that wrote it: a retried or replayed delivery, a stale
//! event or a duplicate writes nothing, so its record never reaches the stream.
//!
//! | change | when |
//! | --- | --- |
//! | `user.created` | a user item appears (no old image), live, written by a webhook or a sync on demand, and Clerk's `created_at` is within the welcome window: this welcomes a user whose `user.updated` arrived before `user.created`, and never a user copied by the backfill or the reconcile, or one who existed long before the endpoint. A user synced on demand before its `user.created` lands is welcomed by the sync's write; the webhook then finds the same version and writes nothing |
//! | `organization.created` | the same, for an organization |
//! | `organizationMembership.created` | a membership becomes live: it appears, or a tombstone gives way to a re-added member, written by a webhook, within the window |
//! | `user.deleted` | a live user becomes a tombstone |
//!
//! Nothing else fires: not updates, not event records, checkpoints or TTL removals, not items
//! the backfill wrote.

use serde::Deserialize;
use serde_json::Value;

use super::change_event::Removal;
use crate::table::encoding::{self, number, text};
use crate::table::{attr, is_live, Entity, Item, Writer};

/// The four kinds of change, named as Clerk names the events (and `SLACK_NOTIFY` lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    UserCreated,
    OrganizationCreated,
    MemberJoined,
    UserDeleted,
}

impl ChangeKind {
    pub const ALL: [Self; 4] = [
        Self::UserCreated,
        Self::OrganizationCreated,
        Self::MemberJoined,
        Self::UserDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user.created",
            Self::OrganizationCreated => "organization.created",
            Self::MemberJoined => "organizationMembership.created",
            Self::UserDeleted => "user.deleted",
        }
    }
}

/// One change, with what the actions need to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    UserCreated(Person),
    OrganizationCreated {
        org_id: String,
        name: Option<String>,
    },
    MemberJoined {
        org_id: String,
        user_id: String,
        /// The membership's version: a member removed and re-added joins again, and that is
        /// another change.
        version: i64,
        role: Option<String>,
        org_name: Option<String>,
    },
    UserDeleted {
        user_id: String,
    },
}

/// The user a change is about, from the item (`email` is the primary address).
#[derive(Clone, PartialEq, Eq)]
pub struct Person {
    pub user_id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Names and addresses never reach a log, not even through `{:?}`.
impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl Person {
    /// The same person with every personal value masked to its first character (an
    /// address keeps its top-level domain): what a preview may print.
    pub fn masked(&self) -> Self {
        Self {
            user_id: self.user_id.clone(),
            email: self.email.as_deref().map(mask_email),
            first_name: self.first_name.as_deref().map(mask),
            last_name: self.last_name.as_deref().map(mask),
        }
    }
}

/// `Lovelace` -> `L***`: the first character, and nothing of the length.
fn mask(value: &str) -> String {
    match value.chars().next() {
        Some(first) => format!("{first}***"),
        None => String::new(),
    }
}

/// `ada@example.org` -> `a***@e***.org`.
pub(crate) fn mask_email(address: &str) -> String {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return mask(address);
    };
    let domain = match domain.rsplit_once('.') {
        Some((name, tld)) => format!("{}.{tld}", mask(name)),
        None => mask(domain),
    };
    format!("{}@{domain}", mask(local))
}

impl Change {
    pub fn kind(&self) -> ChangeKind {
        match self {
            Self::UserCreated(_) => ChangeKind::UserCreated,
            Self::OrganizationCreated { .. } => ChangeKind::OrganizationCreated,
            Self::MemberJoined { .. } => ChangeKind::MemberJoined,
            Self::UserDeleted { .. } => ChangeKind::UserDeleted,
        }
    }

    /// Identifies the change among all others, the same on every delivery of its record:
    /// what a claim is keyed by. Ids only, never personal data.
    pub fn id(&self) -> String {
        match self {
            Self::UserCreated(person) => format!("user.created#{}", person.user_id),
            Self::OrganizationCreated { org_id, .. } => format!("organization.created#{org_id}"),
            Self::MemberJoined {
                org_id,
                user_id,
                version,
                ..
            } => format!("organizationMembership.created#{org_id}#{user_id}#{version}"),
            Self::UserDeleted { user_id } => format!("user.deleted#{user_id}"),
        }
    }
}

/// The window within which a newly seen object counts as created, and the clock.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub now_ms: i64,
    pub max_age_ms: i64,
}

impl Window {
    /// `WELCOME_MAX_AGE_HOURS`' default.
    pub const DEFAULT_MAX_AGE_HOURS: i64 = 72;

    pub fn hours(now_ms: i64, hours: i64) -> Self {
        Self {
            now_ms,
            max_age_ms: hours.saturating_mul(3_600_000),
        }
    }

    /// Whether Clerk's `created_at` (ms) is recent. An item without one never is.
    fn is_recent(&self, item: &Item) -> bool {
        number(item, attr::CREATED_AT)
            .is_some_and(|created| self.now_ms.saturating_sub(created) <= self.max_age_ms)
    }
}

/// When the record's change was written (`ApproximateCreationDateTime`, epoch seconds), in
/// ms. The welcome window is measured to it, not to when the record is processed, so a
/// retried record means the same change however late the retry.
pub fn record_time_ms(record: &Value) -> Option<i64> {
    let seconds = record["dynamodb"]["ApproximateCreationDateTime"].as_f64()?;
    Some((seconds * 1000.0) as i64)
}

/// An image that is not an item in DynamoDB's JSON (`{"S": ...}`, `{"N": ...}`, ...). It
/// names the image, never the parser's message, which may quote a value (an address, a name).
#[derive(Debug, thiserror::Error)]
#[error("the stream record's {image} is not a DynamoDB item")]
pub struct ImageError {
    image: &'static str,
}

/// A DynamoDB Streams record's items (as Lambda delivers it: `eventName`, `userIdentity`, and
/// `dynamodb` with `OldImage` and `NewImage`), read once for every kind of change.
#[derive(Debug, Clone)]
pub struct Images {
    pub old: Option<Item>,
    pub new: Option<Item>,
    pub removal: Removal,
}

impl Images {
    pub fn of(record: &Value) -> Result<Self, ImageError> {
        let image = |name: &'static str| -> Result<Option<Item>, ImageError> {
            let Some(image) = record["dynamodb"].get(name) else {
                return Ok(None);
            };
            let invalid = ImageError { image: name };
            match serde_json::from_value::<serde_dynamo::Item>(image.clone()) {
                Ok(image) => Ok(Some(image.into())),
                Err(_) => Err(invalid),
            }
        };
        // DynamoDB's TTL deletes as the service itself; every other removal is a writer's.
        let removal = match record["eventName"].as_str() {
            Some("REMOVE") => {
                let identity = &record["userIdentity"];
                match (identity["type"].as_str(), identity["principalId"].as_str()) {
                    (Some("Service"), Some("dynamodb.amazonaws.com")) => Removal::Expired,
                    _ => Removal::Deleted,
                }
            }
            _ => Removal::None,
        };
        Ok(Self {
            old: image("OldImage")?,
            new: image("NewImage")?,
            removal,
        })
    }
}

/// The change a DynamoDB Streams record describes, if any.
pub fn change_of_record(record: &Value, window: Window) -> Result<Option<Change>, ImageError> {
    let images = Images::of(record)?;
    Ok(change_of(images.old.as_ref(), images.new.as_ref(), window))
}

/// The change one record's images describe, if any.
pub fn change_of(old: Option<&Item>, new: Option<&Item>, window: Window) -> Option<Change> {
    let new = new?;
    let entity = Entity::parse(text(new, attr::ENTITY)?)?;
    // What a webhook or a sync on demand writes is news; the backfill's and the reconcile's
    // copies are of objects that existed before (a sync may write a brand-new user before its
    // `user.created` webhook lands, which then finds the same version and writes nothing).
    let by_webhook = [Writer::Webhook, Writer::Sync]
        .iter()
        .any(|writer| text(new, attr::SOURCE) == Some(writer.as_str()));
    let appeared = old.is_none();
    match entity {
        Entity::User if appeared && is_live(new) && by_webhook && window.is_recent(new) => {
            Some(Change::UserCreated(Person {
                user_id: text(new, attr::ID)?.to_owned(),
                email: text(new, attr::EMAIL).map(str::to_owned),
                first_name: text(new, attr::FIRST_NAME).map(str::to_owned),
                last_name: text(new, attr::LAST_NAME).map(str::to_owned),
            }))
        }
        Entity::User if !is_live(new) && old.is_some_and(is_live) => Some(Change::UserDeleted {
            user_id: text(new, attr::ID)?.to_owned(),
        }),
        Entity::Organization if appeared && is_live(new) && by_webhook && window.is_recent(new) => {
            Some(Change::OrganizationCreated {
                org_id: text(new, attr::ID)?.to_owned(),
                name: text(new, attr::NAME).map(str::to_owned),
            })
        }
        Entity::Membership
            if is_live(new)
                && old.is_none_or(|old| !is_live(old))
                && by_webhook
                && window.is_recent(new) =>
        {
            Some(Change::MemberJoined {
                org_id: text(new, attr::ORG_ID)?.to_owned(),
                user_id: text(new, attr::USER_ID)?.to_owned(),
                version: number(new, attr::VERSION)?,
                role: text(new, attr::ROLE).map(str::to_owned),
                org_name: organization_name(new),
            })
        }
        _ => None,
    }
}

/// The organization's name a membership's `data` carries, in either encoding. Only that
/// field is read: the rest of `data` (metadata of any depth) is never built.
fn organization_name(membership: &Item) -> Option<String> {
    #[derive(Deserialize)]
    struct Membership {
        organization: Organization,
    }
    #[derive(Deserialize)]
    struct Organization {
        name: Option<String>,
    }
    let data = encoding::data_text(membership).ok()??;
    serde_json::from_str::<Membership>(&data)
        .ok()?
        .organization
        .name
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_796_000_000_000;
    const HOUR: i64 = 3_600_000;

    fn item(value: Value) -> Item {
        encoding::from_json(value.as_object().unwrap())
    }

    fn user(source: &str, created_at: i64) -> Item {
        item(json!({
            "pk": "USER#user_1", "sk": "PROFILE", "entity": "user", "id": "user_1",
            "source": source, "email": "ada@example.org", "first_name": "Ada",
            "last_name": "Lovelace", "created_at": created_at, "updated_at": created_at,
            "version": created_at, "data": {}
        }))
    }

    fn tombstone(entity: &str, id: &str) -> Item {
        item(
            json!({"pk": "X#x", "sk": "PROFILE", "entity": entity, "id": id,
                    "deleted": true, "version": NOW, "deleted_at": NOW}),
        )
    }

    fn membership(source: &str, version: i64) -> Item {
        item(json!({
            "pk": "ORG#org_1", "sk": "MEMBER#user_1", "entity": "membership", "id": "orgmem_1",
            "org_id": "org_1", "user_id": "user_1", "source": source, "role": "org:admin",
            "created_at": NOW - HOUR, "version": version,
            "data": {"organization": {"id": "org_1", "name": "Acme"}}
        }))
    }

    fn window() -> Window {
        Window::hours(NOW, Window::DEFAULT_MAX_AGE_HOURS)
    }

    #[test]
    fn a_user_written_by_a_webhook_for_the_first_time_and_recently_created_is_new() {
        let new = user("webhook", NOW - HOUR);
        let Some(Change::UserCreated(person)) = change_of(None, Some(&new), window()) else {
            panic!("not a new user");
        };
        assert_eq!(person.user_id, "user_1");
        assert_eq!(person.email.as_deref(), Some("ada@example.org"));
        assert_eq!(person.first_name.as_deref(), Some("Ada"));
        // Whether user.created or user.updated wrote it first: the item does not say, and
        // need not.
        let change = change_of(None, Some(&new), window()).unwrap();
        assert_eq!(change.kind(), ChangeKind::UserCreated);
        assert_eq!(change.id(), "user.created#user_1");
        assert!(!format!("{change:?}").contains("Ada") && !format!("{change:?}").contains('@'));
    }

    #[test]
    fn a_user_first_written_by_a_sync_on_demand_is_new_and_its_webhook_adds_nothing() {
        let synced = user("sync", NOW - HOUR);
        let change = change_of(None, Some(&synced), window()).expect("a new user");
        assert_eq!(change.id(), "user.created#user_1");
        // The webhook of the same version is stale (no record); a later update is no news.
        let updated = user("webhook", NOW - HOUR);
        assert_eq!(change_of(Some(&synced), Some(&updated), window()), None);
        // The reconcile's copy is as old news as the backfill's.
        assert_eq!(
            change_of(None, Some(&user("reconcile", NOW - HOUR)), window()),
            None
        );
    }

    #[test]
    fn backfilled_old_updated_and_stale_users_are_not_new() {
        // Copied by the backfill.
        assert_eq!(
            change_of(None, Some(&user("backfill", NOW - HOUR)), window()),
            None
        );
        // Existed long before the endpoint, first seen through an update.
        let old_user = user("webhook", NOW - 73 * HOUR);
        assert_eq!(change_of(None, Some(&old_user), window()), None);
        // An update of a user we already had.
        let before = user("webhook", NOW - HOUR);
        assert_eq!(change_of(Some(&before), Some(&before), window()), None);
        // A backfilled user later updated by a webhook.
        let backfilled = user("backfill", NOW - HOUR);
        let updated = user("webhook", NOW - HOUR);
        assert_eq!(change_of(Some(&backfilled), Some(&updated), window()), None);
        // No created_at at all: not known to be recent.
        let mut undated = user("webhook", NOW);
        undated.remove("created_at");
        assert_eq!(change_of(None, Some(&undated), window()), None);
    }

    #[test]
    fn a_live_user_becoming_a_tombstone_is_deleted() {
        let live = user("backfill", NOW - 1000 * HOUR);
        let dead = tombstone("user", "user_1");
        assert_eq!(
            change_of(Some(&live), Some(&dead), window()),
            Some(Change::UserDeleted {
                user_id: "user_1".into()
            })
        );
        // A later delete of a tombstone, and a tombstone that arrives first: not a deletion
        // of anything we held live.
        assert_eq!(change_of(Some(&dead), Some(&dead), window()), None);
        assert_eq!(change_of(None, Some(&dead), window()), None);
        // TTL removing the tombstone: no new image.
        assert_eq!(change_of(Some(&dead), None, window()), None);
    }

    #[test]
    fn organizations_and_memberships() {
        let org = item(
            json!({"pk": "ORG#org_1", "sk": "PROFILE", "entity": "organization", "name": "Acme",
            "id": "org_1", "source": "webhook", "created_at": NOW - HOUR, "version": NOW}),
        );
        assert_eq!(
            change_of(None, Some(&org), window()),
            Some(Change::OrganizationCreated {
                org_id: "org_1".into(),
                name: Some("Acme".into()),
            })
        );
        assert_eq!(change_of(Some(&org), Some(&org), window()), None);

        let joined = membership("webhook", NOW);
        let change = change_of(None, Some(&joined), window()).unwrap();
        let Change::MemberJoined { role, org_name, .. } = &change else {
            panic!("not a member joining: {change:?}");
        };
        assert_eq!(
            (role.as_deref(), org_name.as_deref()),
            (Some("org:admin"), Some("Acme"))
        );
        assert_eq!(
            change.id(),
            format!("organizationMembership.created#org_1#user_1#{NOW}")
        );
        // Removed, then re-added: joins again, a change of its own.
        let removed = tombstone("membership", "orgmem_1");
        let rejoined = membership("webhook", NOW + 5);
        let again = change_of(Some(&removed), Some(&rejoined), window()).unwrap();
        assert_ne!(again.id(), change.id());
        // A role change, and a backfilled membership: nothing.
        assert_eq!(change_of(Some(&joined), Some(&rejoined), window()), None);
        assert_eq!(
            change_of(None, Some(&membership("backfill", NOW)), window()),
            None
        );
    }

    /// A record as Lambda delivers it (the shape of AWS's DynamoDB Streams examples): the
    /// first write of a user, by a webhook.
    #[test]
    fn a_stream_record_is_read_from_its_images() {
        let record = json!({
            "eventID": "c4ca4238a0b923820dcc509a6f75849b", "eventName": "INSERT",
            "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1796000000,
                "Keys": {"pk": {"S": "USER#user_1"}, "sk": {"S": "PROFILE"}},
                "NewImage": {
                    "pk": {"S": "USER#user_1"}, "sk": {"S": "PROFILE"}, "entity": {"S": "user"},
                    "id": {"S": "user_1"}, "source": {"S": "webhook"},
                    "email": {"S": "ada@example.org"}, "first_name": {"S": "Ada"},
                    "created_at": {"N": (NOW - HOUR).to_string()},
                    "version": {"N": (NOW - HOUR).to_string()},
                    "data": {"M": {"id": {"S": "user_1"}, "banned": {"BOOL": false}}}
                },
                "SequenceNumber": "111", "SizeBytes": 26, "StreamViewType": "NEW_AND_OLD_IMAGES"
            },
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-12-02T00:00:00.000"
        });
        let change = change_of_record(&record, window()).unwrap().unwrap();
        assert_eq!(change.id(), "user.created#user_1");
        let Change::UserCreated(person) = change else {
            panic!("not a new user")
        };
        assert_eq!(person.first_name.as_deref(), Some("Ada"));

        // REMOVE (TTL): an old image only.
        let mut removed = record.clone();
        let image = removed["dynamodb"]["NewImage"].take();
        removed["dynamodb"]
            .as_object_mut()
            .unwrap()
            .remove("NewImage");
        removed["dynamodb"]["OldImage"] = image;
        assert_eq!(change_of_record(&removed, window()).unwrap(), None);

        // Not DynamoDB JSON: an error naming the image (never quoting it), not a silent
        // nothing.
        let mut broken = record;
        broken["dynamodb"]["NewImage"]["email"] = json!("ada@example.org");
        let error = change_of_record(&broken, window()).unwrap_err().to_string();
        assert_eq!(error, "the stream record's NewImage is not a DynamoDB item");
    }

    #[test]
    fn a_masked_person_shows_no_name_or_address() {
        let person = Person {
            user_id: "user_1".into(),
            email: Some("ada.lovelace@example.org".into()),
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
        };
        let masked = person.masked();
        assert_eq!(masked.email.as_deref(), Some("a***@e***.org"));
        assert_eq!(masked.first_name.as_deref(), Some("A***"));
        assert_eq!(masked.last_name.as_deref(), Some("L***"));
        assert_eq!(masked.user_id, "user_1");
    }

    #[test]
    fn bookkeeping_items_never_fire() {
        let record = item(
            json!({"pk": "EVENT#msg_1", "sk": "EVENT", "entity": "event",
            "type": "user.created", "event_timestamp": NOW, "received_at": NOW}),
        );
        assert_eq!(change_of(None, Some(&record), window()), None);
        let checkpoint = item(json!({"pk": "BACKFILL", "sk": "users",
            "entity": "backfill_checkpoint", "updated_at": NOW}));
        assert_eq!(change_of(None, Some(&checkpoint), window()), None);
        let session = item(json!({"pk": "USER#user_1", "sk": "SESSION#sess_1",
            "entity": "session", "source": "webhook", "created_at": NOW}));
        assert_eq!(change_of(None, Some(&session), window()), None);
        assert_eq!(change_of(None, Some(&Item::new()), window()), None);
    }
}
