//! The table, read as typed objects: one method per access pattern of docs/table.md. Tombstones
//! and bookkeeping items are never returned, every page is followed, both item encodings are
//! read, and an index read (which carries only a few attributes) is completed by fetching the
//! items themselves, 100 keys a call. `clerk-webhooks-get` and the sync function are built on it.
//!
//! ```no_run
//! # async fn example(client: aws_sdk_dynamodb::Client) -> Result<(), clerk_webhooks::read::ReadError> {
//! use clerk_webhooks::read::{Reader, Record};
//! let reader = Reader::new(client, "clerk-webhooks");
//! if let Some(user) = reader.user("user_2NNEqL2nrIRdJ194ndJqAHwEfxC").await? {
//!     let data: serde_json::Value = user.data_as()?; // the whole Clerk object
//!     println!("{:?} {}", user.email, data["public_metadata"]);
//! }
//! # Ok(()) }
//! ```

mod types;

use aws_sdk_dynamodb::Client;
use serde_json::value::RawValue;

use crate::store::{KeyCondition, Store, StoreError};
use crate::table::{
    self, attr, encoding, Entity, Item, Key, EXTERNAL_ID_INDEX, GSI1, USERNAME_INDEX,
};
pub use types::{
    Billing, Domain, Invitation, Membership, Organization, OrganizationInvitation, Permission,
    Record, Role, Session, User, WaitlistEntry,
};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An item of the right entity that the type cannot read: a bug of ours, named by key.
    #[error("the item {pk} / {sk} cannot be read as {entity}: {reason}")]
    Shape {
        pk: String,
        sk: String,
        entity: &'static str,
        reason: String,
    },
    #[error("data: {0}")]
    Json(#[from] serde_json::Error),
}

/// What the table holds at one key.
#[derive(Debug, Clone)]
pub enum Stored<T> {
    Live(T),
    /// A tombstone: the object was deleted (it stays until its TTL removes it).
    Deleted,
    /// Nothing, or an item of another kind.
    Absent,
}

impl<T> Stored<T> {
    pub fn live(self) -> Option<T> {
        match self {
            Self::Live(value) => Some(value),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Reader {
    store: Store,
}

impl Reader {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self::from_store(Store::new(client, table))
    }

    pub fn from_store(store: Store) -> Self {
        Self { store }
    }

    /// The user with this id.
    pub async fn user(&self, user_id: &str) -> Result<Option<User>, ReadError> {
        Ok(self.user_state(user_id).await?.live())
    }

    /// The user with this id, or whether it is a tombstone.
    pub async fn user_state(&self, user_id: &str) -> Result<Stored<User>, ReadError> {
        self.get(&Key::user(user_id)).await
    }

    /// The user whose primary email is this address (compared case-insensitively).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, ReadError> {
        let pk = table::email_index_pk(email);
        let users: Vec<User> = self
            .index(GSI1, attr::GSI1_PK, &pk, Some((attr::GSI1_SK, "USER#")))
            .await?;
        let wanted = email.to_lowercase();
        Ok(newest(users.into_iter().filter(|u| {
            u.email.as_deref().map(str::to_lowercase).as_deref() == Some(wanted.as_str())
        })))
    }

    /// The user with this username (compared case-insensitively).
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, ReadError> {
        let key = table::username_key(username);
        let users: Vec<User> = self
            .index(USERNAME_INDEX.name, USERNAME_INDEX.key, &key, None)
            .await?;
        let wanted = username.to_lowercase();
        Ok(newest(users.into_iter().filter(|u| {
            u.username.as_deref().map(str::to_lowercase).as_deref() == Some(wanted.as_str())
        })))
    }

    /// The user your app gave this external id.
    pub async fn user_by_external_id(&self, external_id: &str) -> Result<Option<User>, ReadError> {
        let key = table::external_id_key(external_id);
        let users: Vec<User> = self
            .index(EXTERNAL_ID_INDEX.name, EXTERNAL_ID_INDEX.key, &key, None)
            .await?;
        Ok(newest(
            users
                .into_iter()
                .filter(|u| u.external_id.as_deref() == Some(external_id)),
        ))
    }

    pub async fn organization(&self, org_id: &str) -> Result<Option<Organization>, ReadError> {
        Ok(self.organization_state(org_id).await?.live())
    }

    pub async fn organization_state(
        &self,
        org_id: &str,
    ) -> Result<Stored<Organization>, ReadError> {
        self.get(&Key::organization(org_id)).await
    }

    /// The organization with this slug.
    pub async fn organization_by_slug(
        &self,
        slug: &str,
    ) -> Result<Option<Organization>, ReadError> {
        let pk = table::slug_index_pk(slug);
        let orgs: Vec<Organization> = self.index(GSI1, attr::GSI1_PK, &pk, None).await?;
        Ok(newest(
            orgs.into_iter().filter(|o| o.slug.as_deref() == Some(slug)),
        ))
    }

    /// One user's membership of one organization.
    pub async fn membership(
        &self,
        org_id: &str,
        user_id: &str,
    ) -> Result<Option<Membership>, ReadError> {
        Ok(self.membership_state(org_id, user_id).await?.live())
    }

    pub async fn membership_state(
        &self,
        org_id: &str,
        user_id: &str,
    ) -> Result<Stored<Membership>, ReadError> {
        self.get(&Key::membership(org_id, user_id)).await
    }

    /// An organization's members: one membership per user.
    pub async fn members(&self, org_id: &str) -> Result<Vec<Membership>, ReadError> {
        self.partition(&Key::organization(org_id).pk, "MEMBER#")
            .await
    }

    /// A user's organizations: one membership per organization, each with the organization in
    /// its `data`.
    pub async fn organizations_of(&self, user_id: &str) -> Result<Vec<Membership>, ReadError> {
        let pk = Key::user(user_id).pk;
        self.index(GSI1, attr::GSI1_PK, &pk, Some((attr::GSI1_SK, "ORG#")))
            .await
    }

    /// A user's sessions.
    pub async fn sessions(&self, user_id: &str) -> Result<Vec<Session>, ReadError> {
        self.partition(&Key::user(user_id).pk, "SESSION#").await
    }

    /// An organization's invitations, whatever their status.
    pub async fn invitations(
        &self,
        org_id: &str,
    ) -> Result<Vec<OrganizationInvitation>, ReadError> {
        self.partition(&Key::organization(org_id).pk, "INVITATION#")
            .await
    }

    /// An organization's domains.
    pub async fn domains(&self, org_id: &str) -> Result<Vec<Domain>, ReadError> {
        let pk = Key::organization(org_id).pk;
        self.index(GSI1, attr::GSI1_PK, &pk, Some((attr::GSI1_SK, "DOMAIN#")))
            .await
    }

    /// What a user or an organization pays for: subscriptions, their items, payment attempts.
    pub async fn billing(&self, payer_id: &str) -> Result<Vec<Billing>, ReadError> {
        let pk = format!("PAYER#{payer_id}");
        self.index(GSI1, attr::GSI1_PK, &pk, None).await
    }

    pub async fn domain(&self, id: &str) -> Result<Option<Domain>, ReadError> {
        Ok(self.get(&Key::domain(id)).await?.live())
    }
    pub async fn invitation(&self, id: &str) -> Result<Option<Invitation>, ReadError> {
        Ok(self.get(&Key::invitation(id)).await?.live())
    }
    pub async fn role(&self, id: &str) -> Result<Option<Role>, ReadError> {
        Ok(self.get(&Key::role(id)).await?.live())
    }
    pub async fn permission(&self, id: &str) -> Result<Option<Permission>, ReadError> {
        Ok(self.get(&Key::permission(id)).await?.live())
    }
    pub async fn waitlist_entry(&self, id: &str) -> Result<Option<WaitlistEntry>, ReadError> {
        Ok(self.get(&Key::waitlist_entry(id)).await?.live())
    }

    /// The item at `key` (strongly consistent).
    pub async fn get<T: Record>(&self, key: &Key) -> Result<Stored<T>, ReadError> {
        match self.store.get_item(key).await? {
            None => Ok(Stored::Absent),
            Some(item) => decode::<T>(item),
        }
    }

    /// The live items of type `T` in partition `pk` whose sort key starts with `sk_prefix`.
    async fn partition<T: Record>(&self, pk: &str, sk_prefix: &str) -> Result<Vec<T>, ReadError> {
        let items = self
            .store
            .query_all(KeyCondition {
                index: None,
                pk: (attr::PK, pk),
                sk_prefix: Some((attr::SK, sk_prefix)),
            })
            .await?;
        live(items)
    }

    /// The live items of type `T` an index lists under `value`: the index gives their keys
    /// (tombstones have no index keys, and `gsi1` says `entity`), then the items are fetched.
    async fn index<T: Record>(
        &self,
        index: &str,
        key: &str,
        value: &str,
        sk_prefix: Option<(&str, &str)>,
    ) -> Result<Vec<T>, ReadError> {
        let entries = self
            .store
            .query_all(KeyCondition {
                index: Some(index),
                pk: (key, value),
                sk_prefix,
            })
            .await?;
        let keys: Vec<Key> = entries
            .iter()
            .filter(|entry| match encoding::text(entry, attr::ENTITY) {
                // KEYS_ONLY indexes do not carry `entity`: the item says.
                None => true,
                Some(name) => Entity::parse(name).is_some_and(|e| T::ENTITIES.contains(&e)),
            })
            .filter_map(Key::of)
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        live(self.store.batch_get(&keys).await?)
    }
}

/// The live items of type `T` among `items`, in order.
fn live<T: Record>(items: Vec<Item>) -> Result<Vec<T>, ReadError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Stored::Live(value) = decode::<T>(item)? {
            out.push(value);
        }
    }
    Ok(out)
}

/// One item as `T`: a tombstone is [`Stored::Deleted`]; an item of another entity (a
/// checkpoint, a claim, an event record) is [`Stored::Absent`].
fn decode<T: Record>(mut item: Item) -> Result<Stored<T>, ReadError> {
    let entity = encoding::text(&item, attr::ENTITY).and_then(Entity::parse);
    if !entity.is_some_and(|e| T::ENTITIES.contains(&e)) {
        return Ok(Stored::Absent);
    }
    if !table::is_live(&item) {
        return Ok(Stored::Deleted);
    }
    let key = Key::of(&item).unwrap_or(Key {
        pk: String::new(),
        sk: String::new(),
    });
    let shape = |reason: String| ReadError::Shape {
        pk: key.pk.clone(),
        sk: key.sk.clone(),
        entity: entity.map_or("?", Entity::as_str),
        reason,
    };
    let data = encoding::data_text(&item).map_err(|e| shape(e.to_string()))?;
    item.remove(attr::DATA);
    let mut value: T = serde_dynamo::from_item(item).map_err(|e| shape(e.to_string()))?;
    if let Some(text) = data {
        value.set_data(RawValue::from_string(text)?);
    }
    Ok(Stored::Live(value))
}

/// Of several candidates (an index updated a moment late can list two), the newest version.
fn newest<T: Record>(candidates: impl Iterator<Item = T>) -> Option<T> {
    candidates.max_by_key(Record::version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::AttributeValue;
    use serde_json::json;

    /// A user item as the planner writes it, `data` gzip'd from `text`.
    fn user_item(text: &str) -> Item {
        let mut item = encoding::from_json(
            json!({"pk": "USER#user_1", "sk": "PROFILE", "entity": "user", "id": "user_1",
                   "email": "ada@example.org", "username": "ada", "version": 7,
                   "source": "sync", "created_at": 1, "updated_at": 7})
            .as_object()
            .unwrap(),
        );
        item.insert(
            attr::DATA.into(),
            AttributeValue::B(Blob::new(encoding::encode_data(text))),
        );
        item
    }

    #[test]
    fn a_live_item_reads_as_its_type_with_data_exactly_as_sent() {
        // A number JSON allows and f64 cannot hold, and nesting past serde_json's 128.
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let text = format!(r#"{{"id":"user_1","big":1e400,"deep":{deep}}}"#);
        let Stored::Live(user) = decode::<User>(user_item(&text)).unwrap() else {
            panic!("live");
        };
        assert_eq!(user.data.get(), text, "byte for byte");
        assert_eq!(
            (user.id.as_str(), user.version, user.source.as_deref()),
            ("user_1", 7, Some("sync"))
        );
        assert_eq!(user.username.as_deref(), Some("ada"));
        let out = serde_json::to_string(&user).unwrap();
        assert!(out.contains(r#""big":1e400"#), "{out}");
    }

    #[test]
    fn tombstones_and_other_entities_are_not_objects() {
        let tombstone = encoding::from_json(
            json!({"pk": "USER#user_1", "sk": "PROFILE", "entity": "user", "id": "user_1",
                   "deleted": true, "version": 9})
            .as_object()
            .unwrap(),
        );
        assert!(matches!(decode::<User>(tombstone), Ok(Stored::Deleted)));
        // A user item is not an organization; a checkpoint is nothing the reader returns.
        assert!(matches!(
            decode::<Organization>(user_item("{}")),
            Ok(Stored::Absent)
        ));
        let checkpoint = encoding::from_json(
            json!({"pk": "BACKFILL", "sk": "users", "entity": "backfill_checkpoint"})
                .as_object()
                .unwrap(),
        );
        assert!(matches!(decode::<User>(checkpoint), Ok(Stored::Absent)));
    }

    #[test]
    fn the_old_encoding_reads_the_same() {
        let mut item = user_item("{}");
        item.insert(
            attr::DATA.into(),
            serde_dynamo::to_attribute_value(json!({"id": "user_1", "n": [1, "two"]})).unwrap(),
        );
        let Stored::Live(user) = decode::<User>(item).unwrap() else {
            panic!("live");
        };
        let data: serde_json::Value = user.data_as().unwrap();
        assert_eq!(data, json!({"id": "user_1", "n": [1, "two"]}));
    }

    #[test]
    fn an_item_the_type_cannot_read_is_named_by_key() {
        let mut item = user_item("{}");
        item.remove(attr::VERSION);
        let Err(ReadError::Shape { pk, sk, entity, .. }) = decode::<User>(item) else {
            panic!("a shape error");
        };
        assert_eq!(
            (pk.as_str(), sk.as_str(), entity),
            ("USER#user_1", "PROFILE", "user")
        );
    }

    #[test]
    fn of_two_candidates_the_newest_wins() {
        let older = decode::<User>(user_item("{}")).unwrap().live().unwrap();
        let mut newer = older.clone();
        newer.version = 8;
        newer.id = "user_2".into();
        assert_eq!(newest([older, newer].into_iter()).unwrap().id, "user_2");
    }
}
