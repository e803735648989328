//! What the sync rules hand the store: a [`Plan`] of [`Write`]s, each under a [`Guard`], and a
//! [`Cascade`] for a delete. The vocabulary between the two, so that neither imports the
//! other: `plan` decides them (pure), `store` executes them.

use crate::table::encoding::Unfit;
use crate::table::{Item, Key};

/// When an entity write may replace what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// The item is absent or holds an older version.
    Newer,
    /// As `Newer`, and the stored item is not a tombstone. For objects whose ids Clerk never
    /// reuses (users, organizations, domains, roles, permissions): once deleted they stay
    /// deleted, whatever a late event says.
    NewerAndNotDeleted,
}

/// One item of the transaction, in the order the store sends them.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// The idempotency record; fails if this svix-id was already applied.
    RecordEvent(Item),
    /// Replaces the item at its key if `guard` holds for `version`.
    Put {
        item: Item,
        version: i64,
        guard: Guard,
    },
    /// Fails if the item at the key is a tombstone. An absent item passes: events may arrive
    /// before their parents.
    RequireNotDeleted(Key),
    /// A related object the event carries along (the user inside a session event), written
    /// under [`Guard::NewerAndNotDeleted`]. If the stored copy is newer, the rest of the
    /// event still applies: the store re-sends the transaction with [`Write::RequireNotDeleted`]
    /// in this write's place. If it is a tombstone, the whole event is stale.
    Refresh { item: Item, version: i64 },
}

/// Follow-up deletions once a parent's tombstone is in place. Idempotent: re-running after a
/// partial failure finishes the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cascade {
    /// The organization's memberships and invitations (its partition, `MEMBER#…` and
    /// `INVITATION#…`) and its domains (gsi1 `ORG#{id}` / `DOMAIN#…`).
    Organization { org_id: String },
    /// The user's sessions (partition `USER#{id}`, `SESSION#…`) and whatever gsi1 lists under
    /// `USER#{id}` (memberships, message metadata).
    User { user_id: String },
}

/// Everything one event needs: one transaction, then maybe a cascade.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// For a webhook, `writes[0]` is the [`Write::RecordEvent`] and `writes[1]`, when present,
    /// the entity write. A backfill plan has no event record: `writes[0]` is the entity write.
    pub writes: Vec<Write>,
    pub cascade: Option<Cascade>,
    /// Top-level attributes left out of the items because DynamoDB cannot hold their value
    /// exactly; each is still in `data`. Counted and logged by field name, never value.
    pub left_out: Vec<LeftOut>,
}

/// A top-level attribute left out of an item, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeftOut {
    /// The field's name in Clerk's object (`public_metadata`, …).
    pub field: &'static str,
    pub why: Unfit,
}
