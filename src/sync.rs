//! Sync on demand: read an object from the table, and on a miss (or when asked to refresh)
//! fetch it from Clerk's Backend API and write it through the same planner and store as every
//! other writer, with `source` = `sync`. The version guards therefore hold as for a webhook: a
//! sync never overwrites a newer version and never brings back a tombstone, and a webhook that
//! lands later applies if it is newer and is stale if it is not.
//!
//! Within one process, concurrent calls for the same object share one flight (one table read,
//! at most one Backend API request). A `429` is waited out as `Retry-After` says when that fits
//! the caller's budget, and answered at once with Clerk's wait when it does not.

mod flight;
pub mod function;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::backfill::objects::{prepare, Copier};
use crate::backfill::{now_ms, Kind};
use crate::clerk_api::{ApiError, ClerkApi};
use crate::event::is_key_safe;
use crate::plan::Settings;
use crate::read::{Membership, Organization, ReadError, Reader, Record, Stored, User};
use crate::store::{Outcome, Store, StoreError};
use flight::Flights;

/// How long one call may take by default, Backend API waits included: well inside the sync
/// function's 15 s timeout, and inside what an app's request handler can wait.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(10);

/// What to read (and sync).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    User(String),
    Organization(String),
    Membership { org_id: String, user_id: String },
}

impl Target {
    /// Ids become table keys and Backend API paths: only Clerk's id alphabet is accepted.
    pub fn check(&self) -> Result<(), SyncError> {
        let ids: Vec<&str> = match self {
            Self::User(id) | Self::Organization(id) => vec![id],
            Self::Membership { org_id, user_id } => vec![org_id, user_id],
        };
        match ids.iter().all(|id| is_key_safe(id)) {
            true => Ok(()),
            false => Err(SyncError::BadId),
        }
    }

    pub fn membership(org_id: &str, user_id: &str) -> Self {
        Self::Membership {
            org_id: org_id.into(),
            user_id: user_id.into(),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Self::User(_) => Kind::Users,
            Self::Organization(_) => Kind::Organizations,
            Self::Membership { .. } => Kind::Memberships,
        }
    }
}

/// One object as the reader returns it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Object {
    User(User),
    Organization(Organization),
    Membership(Membership),
}

/// The answer to one call.
#[derive(Debug, Clone)]
pub enum Answer<T> {
    /// The table had it.
    Found(T),
    /// Fetched from Clerk and written now.
    Synced(T),
    /// Clerk has no such object (404); nothing was written.
    NotFound,
    /// The table holds its tombstone.
    Deleted,
}

impl<T> Answer<T> {
    pub fn status(&self) -> &'static str {
        match self {
            Self::Found(_) => "found",
            Self::Synced(_) => "synced",
            Self::NotFound => "not_found",
            Self::Deleted => "deleted",
        }
    }

    pub fn object(self) -> Option<T> {
        match self {
            Self::Found(value) | Self::Synced(value) => Some(value),
            Self::NotFound | Self::Deleted => None,
        }
    }

    fn map<U>(self, f: impl FnOnce(T) -> Option<U>) -> Option<Answer<U>> {
        Some(match self {
            Self::Found(value) => Answer::Found(f(value)?),
            Self::Synced(value) => Answer::Synced(f(value)?),
            Self::NotFound => Answer::NotFound,
            Self::Deleted => Answer::Deleted,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("ids must be Clerk ids (letters, digits, '_' and '-')")]
    BadId,
    #[error("reading the table: {0}")]
    Read(#[from] ReadError),
    #[error("writing the table: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Clerk's object is not one the webhook path would store either (field names only).
    #[error("Clerk's object cannot be stored: {0}")]
    Unusable(String),
}

type Shared = Result<Answer<Object>, Arc<SyncError>>;

/// Reads, and syncs on demand. Cheap to share (`Arc`) across a process's tasks.
pub struct Syncer {
    reader: Reader,
    store: Store,
    api: ClerkApi,
    settings: Settings,
    budget: Duration,
    flights: Flights<(Target, bool), Shared>,
}

impl Syncer {
    pub fn new(store: Store, api: ClerkApi) -> Self {
        Self {
            reader: Reader::from_store(store.clone()),
            store,
            api,
            settings: Settings::default(),
            budget: DEFAULT_BUDGET,
            flights: Flights::default(),
        }
    }

    /// How long one call may take, Backend API waits included.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The user from the table, or from Clerk when the table has neither it nor its tombstone.
    pub async fn user_or_sync(&self, user_id: &str) -> Result<Answer<User>, Arc<SyncError>> {
        self.typed(Target::User(user_id.into()), false).await
    }

    pub async fn organization_or_sync(
        &self,
        org_id: &str,
    ) -> Result<Answer<Organization>, Arc<SyncError>> {
        self.typed(Target::Organization(org_id.into()), false).await
    }

    pub async fn membership_or_sync(
        &self,
        org_id: &str,
        user_id: &str,
    ) -> Result<Answer<Membership>, Arc<SyncError>> {
        self.typed(Target::membership(org_id, user_id), false).await
    }

    /// Fetches the user from Clerk whatever the table holds, and writes it if it is newer.
    pub async fn sync_user(&self, user_id: &str) -> Result<Answer<User>, Arc<SyncError>> {
        self.typed(Target::User(user_id.into()), true).await
    }

    pub async fn sync_organization(
        &self,
        org_id: &str,
    ) -> Result<Answer<Organization>, Arc<SyncError>> {
        self.typed(Target::Organization(org_id.into()), true).await
    }

    pub async fn sync_membership(
        &self,
        org_id: &str,
        user_id: &str,
    ) -> Result<Answer<Membership>, Arc<SyncError>> {
        self.typed(Target::membership(org_id, user_id), true).await
    }

    /// [`Syncer::resolve`], answered with the target's own type.
    async fn typed<T: FromObject>(
        &self,
        target: Target,
        refresh: bool,
    ) -> Result<Answer<T>, Arc<SyncError>> {
        let answer = self.resolve(&target, refresh).await?;
        Ok(answer
            .map(T::from_object)
            .expect("a target's answer holds an object of its own type"))
    }

    /// The table's answer for `target`, synced on a miss, or always with `refresh`; one flight
    /// per target and mode.
    pub async fn resolve(&self, target: &Target, refresh: bool) -> Shared {
        target.check().map_err(Arc::new)?;
        let key = (target.clone(), refresh);
        self.flights
            .run(&key, || async {
                let deadline = tokio::time::Instant::now() + self.budget;
                self.resolve_once(target, refresh, deadline)
                    .await
                    .map_err(Arc::new)
            })
            .await
    }

    async fn resolve_once(
        &self,
        target: &Target,
        refresh: bool,
        deadline: tokio::time::Instant,
    ) -> Result<Answer<Object>, SyncError> {
        if !refresh {
            match self.stored(target).await? {
                Stored::Live(object) => return Ok(Answer::Found(object)),
                Stored::Deleted => return Ok(Answer::Deleted),
                Stored::Absent => {}
            }
        }
        let api = self.api.until(deadline);
        let fetched = match target {
            Target::User(id) => api.user(id).await?,
            Target::Organization(id) => api.organization(id).await?,
            Target::Membership { org_id, user_id } => api.membership(org_id, user_id).await?,
        };
        let Some(object) = fetched else {
            // Gone at Clerk: nothing is written; a tombstone the table holds is still news.
            return Ok(match self.stored(target).await? {
                Stored::Deleted => Answer::Deleted,
                _ => Answer::NotFound,
            });
        };
        let outcome = self.write(target, &object).await?;
        Ok(match (self.stored(target).await?, outcome) {
            (Stored::Live(object), Outcome::Applied) => Answer::Synced(object),
            // The table already had this version or a newer one (a webhook got there first).
            (Stored::Live(object), _) => Answer::Found(object),
            (Stored::Deleted, _) => Answer::Deleted,
            // Refused because a parent (the organization or the user) is a tombstone.
            (Stored::Absent, _) => Answer::Deleted,
        })
    }

    /// Writes Clerk's object as the backfill would, with `source` = `sync`.
    async fn write(&self, target: &Target, object: &RawValue) -> Result<Outcome, SyncError> {
        let prepared = prepare(
            target.kind(),
            object,
            &self.settings,
            now_ms(),
            Copier::Sync,
        )
        .map_err(|skip| SyncError::Unusable(skip.reason))?;
        if !prepared.unexpected_prefixes.is_empty() {
            tracing::warn!(fields = ?prepared.unexpected_prefixes, "an id without its usual prefix; synced all the same");
        }
        Ok(self.store.apply(&prepared.plan).await?)
    }

    async fn stored(&self, target: &Target) -> Result<Stored<Object>, ReadError> {
        Ok(match target {
            Target::User(id) => map_stored(self.reader.user_state(id).await?, Object::User),
            Target::Organization(id) => map_stored(
                self.reader.organization_state(id).await?,
                Object::Organization,
            ),
            Target::Membership { org_id, user_id } => map_stored(
                self.reader.membership_state(org_id, user_id).await?,
                Object::Membership,
            ),
        })
    }
}

fn map_stored<T: Record>(stored: Stored<T>, f: impl FnOnce(T) -> Object) -> Stored<Object> {
    match stored {
        Stored::Live(value) => Stored::Live(f(value)),
        Stored::Deleted => Stored::Deleted,
        Stored::Absent => Stored::Absent,
    }
}

/// The type a target's object is read as.
trait FromObject: Sized {
    fn from_object(object: Object) -> Option<Self>;
}

impl FromObject for User {
    fn from_object(object: Object) -> Option<Self> {
        match object {
            Object::User(user) => Some(user),
            _ => None,
        }
    }
}

impl FromObject for Organization {
    fn from_object(object: Object) -> Option<Self> {
        match object {
            Object::Organization(org) => Some(org),
            _ => None,
        }
    }
}

impl FromObject for Membership {
    fn from_object(object: Object) -> Option<Self> {
        match object {
            Object::Membership(membership) => Some(membership),
            _ => None,
        }
    }
}
