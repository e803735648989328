//! Sync rules: what each event does to the table, as a pure function
//! `(event, svix id, settings, now) -> Plan`. No I/O here; [`crate::store`] executes plans.
//!
//! The keys and index entries come from [`crate::table`], the table contract.

mod items;
pub mod settings;

use crate::event::{normalize_millis, Event, Payload};
use crate::table::{attr, Entity, Key, Writer};
pub use crate::writes::{Cascade, Guard, LeftOut, Plan, Write};
use items::{ItemBuilder, Versioned};
pub use settings::Settings;

/// Who writes an item. Live entity items carry it as `source` (`webhook`, `backfill`,
/// `reconcile` or `sync`); so do the reconcile's tombstones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source<'a> {
    /// A verified delivery: the plan starts with its event record, and items carry
    /// `last_svix_id`.
    Webhook { svix_id: &'a str },
    /// An object copied from Clerk's Backend API by `clerk-webhooks-backfill`: there is no
    /// svix-id, so no event record; the version rules are the webhook's.
    Backfill,
    /// Written by `clerk-webhooks-backfill --reconcile`: a copy as the backfill's, or the
    /// tombstone of an object Clerk confirmed gone, planned as its `*.deleted` webhook.
    Reconcile,
    /// A sync on demand (`crate::sync`): one object fetched from the Backend API, written as
    /// the backfill writes its copies.
    Sync,
}

impl Source<'_> {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook { .. } => Writer::Webhook.as_str(),
            Self::Backfill => Writer::Backfill.as_str(),
            Self::Reconcile => Writer::Reconcile.as_str(),
            Self::Sync => Writer::Sync.as_str(),
        }
    }
}

/// The writes `event` needs, or `None` for a type we do not sync (nothing is written, not
/// even the event record, so a later version that handles the type can still apply a replay).
pub fn plan(event: &Event, svix_id: &str, settings: &Settings, now_ms: i64) -> Option<Plan> {
    plan_for(event, Source::Webhook { svix_id }, settings, now_ms)
}

/// [`plan`] for an object the backfill read from the Backend API, presented as the
/// `*.created` event that would carry it: the same entity write under the same guard and
/// parent checks, without an event record.
pub(crate) fn plan_backfill(event: &Event, settings: &Settings, now_ms: i64) -> Option<Plan> {
    plan_for(event, Source::Backfill, settings, now_ms)
}

/// [`plan_backfill`] for the reconcile: its copies, and the `*.deleted` event of an object
/// Clerk confirmed gone (the same tombstone and cascade as the webhook's, without an event
/// record).
pub(crate) fn plan_reconcile(event: &Event, settings: &Settings, now_ms: i64) -> Option<Plan> {
    plan_for(event, Source::Reconcile, settings, now_ms)
}

/// [`plan_backfill`] for a sync on demand: the same copy, with `source` = `sync`.
pub(crate) fn plan_sync(event: &Event, settings: &Settings, now_ms: i64) -> Option<Plan> {
    plan_for(event, Source::Sync, settings, now_ms)
}

/// The sync rules, one arm per event: the entity write and the guard it is written under,
/// the parents that must not be deleted, and the cascade a delete starts. The items
/// themselves are built in [`items`].
///
/// [`Guard::NewerAndNotDeleted`] is for objects whose ids Clerk never reuses: once deleted they
/// stay deleted, whatever a late event says. [`Guard::Newer`] is for the rest, and for every
/// tombstone (a delete replaces any older version).
fn plan_for(event: &Event, source: Source, settings: &Settings, now_ms: i64) -> Option<Plan> {
    use Guard::{Newer, NewerAndNotDeleted as Final};
    let items = ItemBuilder {
        event,
        source,
        settings,
        now_ms,
        left_out: Default::default(),
    };
    let put = |entity: Versioned, guard: Guard| Write::Put {
        item: entity.item,
        version: entity.version,
        guard,
    };
    let refresh = |entity: Versioned| Write::Refresh {
        item: entity.item,
        version: entity.version,
    };
    let org_alive = |org_id: &str| Write::RequireNotDeleted(Key::organization(org_id));
    let user_alive = |user_id: &str| Write::RequireNotDeleted(Key::user(user_id));
    let (writes, cascade) = match &event.payload {
        Payload::Unhandled => return None,

        Payload::UserUpserted(user) => (vec![put(items.user(user), Final)], None),
        Payload::OrganizationUpserted(org) => (vec![put(items.organization(org), Final)], None),
        // A removed member may be re-added (Newer); never a member of a deleted organization
        // or a deleted user.
        Payload::MembershipUpserted(m) => (
            vec![
                put(items.membership(m), Newer),
                org_alive(&m.organization.id),
                user_alive(&m.public_user_data.user_id),
            ],
            None,
        ),
        // The user a session carries is refreshed as `user.updated` would write it (the store
        // falls back to a parent check if ours is older); without one, the user must be alive.
        Payload::SessionUpserted(session) => (
            vec![
                put(items.session(session), Newer),
                match &session.user {
                    Some(user) => refresh(items.session_user(user)),
                    None => user_alive(&session.user_id),
                },
            ],
            None,
        ),
        Payload::OrganizationInvitationUpserted(inv) => (
            vec![
                put(items.organization_invitation(inv), Newer),
                org_alive(&inv.organization_id),
            ],
            None,
        ),
        Payload::DomainUpserted(domain) => (
            vec![
                put(items.domain(domain), Final),
                org_alive(&domain.organization_id),
            ],
            None,
        ),
        Payload::InvitationUpserted(inv) => (vec![put(items.invitation(inv), Newer)], None),
        Payload::RoleUpserted(role) => (vec![put(items.role(role), Final)], None),
        Payload::PermissionUpserted(p) => (vec![put(items.permission(p), Final)], None),
        Payload::WaitlistEntryUpserted(entry) => {
            (vec![put(items.waitlist_entry(entry), Newer)], None)
        }
        Payload::BillingUpserted(billing) => (vec![put(items.billing(billing), Newer)], None),
        // Metadata only with STORE_MESSAGE_METADATA; otherwise the event record alone.
        Payload::MessageSent(message) => (
            items
                .message(message)
                .map(|metadata| put(metadata, Newer))
                .into_iter()
                .collect(),
            None,
        ),

        Payload::UserDeleted(d) => (
            vec![put(
                items.tombstone(Key::user(&d.id), Entity::User, &d.id, None, &[]),
                Newer,
            )],
            Some(Cascade::User {
                user_id: d.id.clone(),
            }),
        ),
        Payload::OrganizationDeleted(d) => (
            vec![put(
                items.tombstone(
                    Key::organization(&d.id),
                    Entity::Organization,
                    &d.id,
                    None,
                    &[],
                ),
                Newer,
            )],
            Some(Cascade::Organization {
                org_id: d.id.clone(),
            }),
        ),
        // Clerk's membership delete carries the whole membership, its updated_at included.
        Payload::MembershipDeleted(m) => {
            let (org_id, user_id) = (&m.organization.id, &m.public_user_data.user_id);
            let key = Key::membership(org_id, user_id);
            let ids = [
                (attr::ORG_ID, org_id.as_str()),
                (attr::USER_ID, user_id.as_str()),
            ];
            let tombstone = items.tombstone(key, Entity::Membership, &m.id, m.updated_at, &ids);
            (vec![put(tombstone, Newer)], None)
        }
        Payload::DomainDeleted(d) => (
            vec![put(
                items.tombstone(Key::domain(&d.id), Entity::Domain, &d.id, None, &[]),
                Newer,
            )],
            None,
        ),
        Payload::RoleDeleted(d) => (
            vec![put(
                items.tombstone(Key::role(&d.id), Entity::Role, &d.id, None, &[]),
                Newer,
            )],
            None,
        ),
        Payload::PermissionDeleted(d) => (
            vec![put(
                items.tombstone(Key::permission(&d.id), Entity::Permission, &d.id, None, &[]),
                Newer,
            )],
            None,
        ),
    };
    let mut all = Vec::with_capacity(1 + writes.len());
    if let Source::Webhook { svix_id } = source {
        all.push(Write::RecordEvent(items.event_record(svix_id)));
    }
    all.extend(writes);
    Some(Plan {
        writes: all,
        cascade,
        left_out: items.left_out.into_inner(),
    })
}

/// An upsert's version is the object's `updated_at`, else the envelope timestamp.
pub fn upsert_version(updated_at: Option<i64>, timestamp_ms: i64) -> i64 {
    updated_at.map(normalize_millis).unwrap_or(timestamp_ms)
}

/// A delete happened at the envelope timestamp. `organizationMembership.deleted` also carries
/// the membership's last `updated_at`, which equals the version already stored: taking only it
/// would make the delete a tie and so `stale`. The later of the two orders it correctly.
///
/// Without an envelope timestamp (Clerk's deliveries before mid-2024), `timestamp_ms` is the
/// signed delivery time, which a retry hours later moves on. Then a membership's delete is
/// versioned just past its own `updated_at`: newer than the membership it removes, older than
/// a re-add (whose `updated_at` is the re-add's time), however late it is delivered. Other
/// deletes take the signed time: it is never earlier than the delete itself, so it beats
/// every version of the object, and as those ids are never reused
/// ([`Guard::NewerAndNotDeleted`]) a late delete cannot remove anything that came after.
pub fn delete_version(updated_at: Option<i64>, timestamp_ms: i64, in_envelope: bool) -> i64 {
    match (updated_at.map(normalize_millis), in_envelope) {
        (Some(updated), true) => updated.max(timestamp_ms),
        (Some(updated), false) => updated.saturating_add(1),
        (None, _) => timestamp_ms,
    }
}

#[cfg(test)]
mod tests;
