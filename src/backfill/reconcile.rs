//! `clerk-webhooks-backfill --reconcile`: the backfill, plus deletions, so the table stays
//! true when webhooks were lost (Svix gave up, the endpoint was disabled, `user.deleted` was
//! never subscribed).
//!
//! Per kind, in three phases, each resumable from the checkpoint (`RECONCILE` / kind):
//!
//! 1. **Listing**: the backfill's listing and copies, newer versions through the same planner
//!    (`source = reconcile`), and every listed identity kept in the table
//!    (`RECONCILE#{kind}#{run}` / `LISTED#…`, one item a page, expiring after 14 days).
//! 2. **Sweep**, only once the *complete* listing succeeded: a scan of the table's live items
//!    of the kind. One the listing did not return and older than the run is a candidate; it is
//!    looked up on its own (`GET /v1/users/{id}`, `/v1/organizations/{id}`, the user's
//!    memberships). Found after all: copied. Gone (404; the membership absent from its user's
//!    list): kept as confirmed gone (`GONE#…`). The lookup failed: neither.
//! 3. **Tombstones**: unless they are more than [`deletion_bound`] (5 % of the kind's live
//!    items, at least 10) and `--allow-mass-delete` was not given, each confirmed-gone object
//!    gets the tombstone and cascade of its `*.deleted` webhook, `source = reconcile`.
//!
//! A listing that fails (any page, after retries) ends the run with an error before the sweep:
//! nothing is deleted for that kind. Items written during the run (a newer version) are never
//! candidates, and a candidate Clerk still has is copied, not deleted.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;

pub use super::checkpoint::ReconcileCounts;
use super::checkpoint::{Checkpoint, Phase, ReconcileState};
use super::objects::{self, Copier};
use super::{now_ms, write, Backfill, BackfillError, Counts, Kind, KindSummary, Skipped, Started};
use crate::clerk_api::ApiError;
use crate::event::{is_key_safe, text_at, Event};
use crate::plan::plan_reconcile;
use crate::store::{Outcome, Store, StoreError};
use crate::table::encoding::{self, text};
use crate::table::{reconcile_run, Item, Key};

/// The bound on tombstones: this share of the kind's live items...
pub const BOUND_PERCENT: u64 = 5;
/// ...and at least this many, so a small table can lose a few.
pub const BOUND_FLOOR: u64 = 10;
/// How long a run's listed and gone ids are kept (TTL): past any resume.
const CHUNK_TTL_SECS: i64 = 14 * 24 * 60 * 60;

/// The most tombstones a reconcile writes for a kind with `live` live items, without
/// `--allow-mass-delete`.
pub fn deletion_bound(live: u64) -> u64 {
    (live * BOUND_PERCENT / 100).max(BOUND_FLOOR)
}

/// One kind's reconcile numbers, in the summary: the run's totals, across invocations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReconcileSummary {
    #[serde(flatten)]
    pub counts: ReconcileCounts,
    /// In a dry run, the ids it would tombstone (ids only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_tombstone: Vec<String>,
}

/// The `entity` of the kind's items.
fn entity(kind: Kind) -> &'static str {
    match kind {
        Kind::Users => "user",
        Kind::Organizations => "organization",
        Kind::Memberships => "membership",
    }
}

/// What identifies an object in the listing and in the table alike: the id of a user or an
/// organization; a membership's organization and user (its key; Clerk gives a re-added member
/// a new membership id).
pub(crate) fn listed_identity(kind: Kind, object: &RawValue) -> Option<String> {
    let id = |path: &[&str]| text_at(object, path).filter(|id| is_key_safe(id));
    match kind {
        Kind::Users | Kind::Organizations => id(&["id"]),
        Kind::Memberships => Some(format!(
            "{}#{}",
            id(&["organization", "id"])?,
            id(&["public_user_data", "user_id"])?
        )),
    }
}

fn stored_identity(kind: Kind, item: &Item) -> Option<String> {
    let text = |name: &str| text(item, name).map(str::to_owned);
    match kind {
        Kind::Users | Kind::Organizations => text("id"),
        Kind::Memberships => Some(format!("{}#{}", text("org_id")?, text("user_id")?)),
    }
}

/// A live item the complete listing did not return, older than the run: maybe gone.
pub(crate) fn is_candidate(
    kind: Kind,
    item: &Item,
    listed: &HashSet<String>,
    run_started_ms: i64,
) -> bool {
    let older = encoding::number(item, "version").is_some_and(|v| v < run_started_ms);
    older && stored_identity(kind, item).is_some_and(|id| !listed.contains(&id))
}

/// What a confirmed-gone object needs for its tombstone: an id; for a membership
/// `{org}#{user}#{membership id}`.
fn gone_entry(kind: Kind, item: &Item) -> Option<String> {
    let id = text(item, "id")?;
    match kind {
        Kind::Users | Kind::Organizations => Some(id.to_owned()),
        Kind::Memberships => Some(format!("{}#{id}", stored_identity(kind, item)?)),
    }
}

/// The `*.deleted` webhook of a confirmed-gone object, as Clerk would send it, at `now_ms`.
pub(crate) fn deleted_event(kind: Kind, entry: &str, now_ms: i64) -> Option<Event> {
    let (event_type, data) = match kind {
        Kind::Users => (
            "user.deleted",
            json!({"object": "user", "id": entry, "deleted": true}),
        ),
        Kind::Organizations => (
            "organization.deleted",
            json!({"object": "organization", "id": entry, "deleted": true}),
        ),
        Kind::Memberships => {
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

/// Where a run's listed and gone ids are kept: in the table, so an invocation can resume
/// where another stopped; in memory for a dry run, which writes nothing.
pub(super) enum Ledger {
    Table(Store),
    Memory(Mutex<BTreeMap<(String, String), Vec<String>>>),
}

impl Ledger {
    pub(super) async fn save(&self, key: Key, ids: Vec<String>) -> Result<(), StoreError> {
        match self {
            Self::Table(store) => {
                let expires = now_ms().div_euclid(1000) + CHUNK_TTL_SECS;
                let item = json!({
                    "pk": key.pk, "sk": key.sk, "entity": "reconcile_chunk", "ids": ids,
                    crate::table::TTL_ATTRIBUTE: expires,
                });
                let item = item.as_object().expect("built as an object");
                store.put_item(&encoding::from_json(item)).await
            }
            Self::Memory(chunks) => {
                chunks
                    .lock()
                    .expect("never poisoned")
                    .insert((key.pk, key.sk), ids);
                Ok(())
            }
        }
    }

    /// Every id of the run's chunks of `part` (`LISTED`, `GONE`), in order.
    async fn load(&self, pk: &str, part: &str) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{part}#");
        match self {
            Self::Table(store) => Ok(store
                .partition(pk)
                .await?
                .iter()
                .filter(|item| text(item, "sk").is_some_and(|sk| sk.starts_with(&prefix)))
                .flat_map(|item| match item.get("ids") {
                    Some(AttributeValue::L(ids)) => ids
                        .iter()
                        .filter_map(|id| id.as_s().ok().cloned())
                        .collect(),
                    _ => Vec::new(),
                })
                .collect()),
            Self::Memory(chunks) => Ok(chunks
                .lock()
                .expect("never poisoned")
                .iter()
                .filter(|((p, sk), _)| p == pk && sk.starts_with(&prefix))
                .flat_map(|(_, ids)| ids.iter().cloned())
                .collect()),
        }
    }
}

/// What a candidate's own lookup said.
enum Lookup {
    Found(Box<RawValue>),
    Gone,
    Failed(ApiError),
}

impl Backfill {
    /// One kind's reconcile, from where its checkpoint stands.
    pub(super) async fn reconcile_kind(&self, kind: Kind) -> Result<KindSummary, BackfillError> {
        let started = Started::now(self);
        let Some(store) = self.store.clone() else {
            return Err(BackfillError::NoTable);
        };
        let mut checkpoint = self.load_reconcile(kind, &store).await?;
        let started_at = match state(&checkpoint).phase {
            Phase::Listing => checkpoint.position(),
            phase => format!("the {} phase", phase_name(phase)),
        };
        let mut counts = Counts::default();
        let mut would_tombstone = Vec::new();
        let fresh = checkpoint.pages == 0 && state(&checkpoint).phase == Phase::Listing;
        let complete = if self.options.resume_only && fresh {
            tracing::info!(kind = kind.as_str(), "no reconcile to resume");
            true
        } else {
            self.run_phases(
                kind,
                &store,
                &mut checkpoint,
                &mut counts,
                &mut would_tombstone,
            )
            .await?
        };
        let reconcile = ReconcileSummary {
            counts: state(&checkpoint).counts,
            would_tombstone,
        };
        Ok(self.summarize(kind, started_at, counts, started, complete, Some(reconcile)))
    }

    /// The phases from where `checkpoint` stands; `Ok(false)` when the deadline stopped
    /// them (the checkpoint is saved where they stand).
    async fn run_phases(
        &self,
        kind: Kind,
        store: &Store,
        checkpoint: &mut Checkpoint,
        counts: &mut Counts,
        would_tombstone: &mut Vec<String>,
    ) -> Result<bool, BackfillError> {
        let ledger = match self.options.dry_run {
            true => Ledger::Memory(Mutex::default()),
            false => Ledger::Table(store.clone()),
        };
        if state(checkpoint).phase == Phase::Listing {
            let (listed, next) = self
                .list_kind(kind, checkpoint.clone(), Some(&ledger))
                .await?;
            counts.add(&Counts {
                seen: listed.seen,
                written: listed.written,
                stale: listed.stale,
                skipped: listed.skipped,
                pages: listed.pages,
            });
            *checkpoint = next;
            if !checkpoint.complete {
                return Ok(false);
            }
            checkpoint.complete = false;
            state_mut(checkpoint).phase = Phase::Sweep;
            self.save_checkpoint(checkpoint).await?;
        }
        if state(checkpoint).phase == Phase::Sweep {
            let phase_started = Instant::now();
            if !self.sweep(kind, store, &ledger, checkpoint, counts).await? {
                return Ok(false);
            }
            let s = state(checkpoint).counts;
            tracing::info!(
                kind = kind.as_str(),
                live = s.live,
                candidates = s.candidates,
                found = s.found,
                confirmed_gone = s.confirmed_gone,
                unconfirmed = s.unconfirmed,
                seconds = phase_started.elapsed().as_secs_f64(),
                "reconcile: sweep done"
            );
            state_mut(checkpoint).phase = Phase::Tombstone;
            self.save_checkpoint(checkpoint).await?;
        }
        if state(checkpoint).phase == Phase::Tombstone {
            let phase_started = Instant::now();
            if !self
                .tombstone(kind, store, &ledger, checkpoint, would_tombstone)
                .await?
            {
                return Ok(false);
            }
            let s = state(checkpoint).counts;
            tracing::info!(
                kind = kind.as_str(),
                tombstoned = s.tombstoned,
                refused = s.refused,
                seconds = phase_started.elapsed().as_secs_f64(),
                "reconcile: tombstones done"
            );
            state_mut(checkpoint).phase = Phase::Done;
            checkpoint.complete = true;
            self.save_checkpoint(checkpoint).await?;
        }
        Ok(true)
    }

    /// The checkpoint to go on from: an unfinished run's, or a new run's (after a finished
    /// one, with `--restart`, or in a dry run, which never resumes).
    async fn load_reconcile(&self, kind: Kind, store: &Store) -> Result<Checkpoint, BackfillError> {
        let fresh = || Checkpoint::reconcile(kind, now_ms());
        if self.options.restart || self.options.dry_run {
            return Ok(fresh());
        }
        let Some(item) = store.get_item(&Checkpoint::reconcile_key(kind)).await? else {
            return Ok(fresh());
        };
        let stored = Checkpoint::from_item(kind, &item)
            .map_err(|reason| BackfillError::Checkpoint(kind.as_str(), reason))?;
        match &stored.reconcile {
            Some(state) if state.phase != Phase::Done => Ok(stored),
            _ => Ok(fresh()),
        }
    }

    /// Phase 2. `Ok(false)`: out of time, the checkpoint saved where the scan stands.
    async fn sweep(
        &self,
        kind: Kind,
        store: &Store,
        ledger: &Ledger,
        checkpoint: &mut Checkpoint,
        counts: &mut Counts,
    ) -> Result<bool, BackfillError> {
        let run = state(checkpoint).run_started_ms;
        let pk = reconcile_run(kind.as_str(), run);
        let listed: HashSet<String> = ledger.load(&pk, "LISTED").await?.into_iter().collect();
        let attributes: &[&str] = match kind {
            Kind::Memberships => &["id", "version", "org_id", "user_id"],
            _ => &["id", "version"],
        };
        loop {
            if self.out_of_time() {
                tracing::warn!(
                    kind = kind.as_str(),
                    "stopping the sweep before the deadline; invoke again to continue"
                );
                return Ok(false);
            }
            let from = state(checkpoint)
                .scan_from
                .as_ref()
                .map(encoding::from_json);
            let (items, next) = store.scan_live(entity(kind), attributes, from).await?;
            let mut gone = Vec::new();
            for item in &items {
                state_mut(checkpoint).counts.live += 1;
                if !is_candidate(kind, item, &listed, run) {
                    continue;
                }
                state_mut(checkpoint).counts.candidates += 1;
                let id = text(item, "id").unwrap_or("-");
                match self.lookup(kind, item).await {
                    Lookup::Found(object) => {
                        state_mut(checkpoint).counts.found += 1;
                        self.copy_found(kind, object, counts).await?;
                    }
                    Lookup::Gone => {
                        state_mut(checkpoint).counts.confirmed_gone += 1;
                        gone.extend(gone_entry(kind, item));
                    }
                    Lookup::Failed(error) => {
                        state_mut(checkpoint).counts.unconfirmed += 1;
                        tracing::warn!(kind = kind.as_str(), id, %error,
                            "a candidate's lookup failed; it is neither copied nor deleted");
                    }
                }
            }
            let state = state_mut(checkpoint);
            state.sweep_pages += 1;
            if !gone.is_empty() {
                let key = Key::reconcile_chunk(kind.as_str(), run, "GONE", state.sweep_pages);
                ledger.save(key, gone).await?;
            }
            state.scan_from = next.map(|key| encoding::to_json(&key).expect("a key is strings"));
            let end = state.scan_from.is_none();
            self.save_checkpoint(checkpoint).await?;
            if end {
                return Ok(true);
            }
        }
    }

    /// A candidate looked up on its own: it is gone only if Clerk says so.
    async fn lookup(&self, kind: Kind, item: &Item) -> Lookup {
        let text = |name: &str| text(item, name).unwrap_or("");
        let found = match kind {
            Kind::Users => self.api.user(text("id")).await,
            Kind::Organizations => self.api.organization(text("id")).await,
            Kind::Memberships => {
                self.api
                    .user_memberships(text("user_id"))
                    .await
                    .map(|memberships| {
                        memberships.into_iter().flatten().find(|m| {
                            text_at(m, &["organization", "id"]).as_deref() == Some(text("org_id"))
                        })
                    })
            }
        };
        match found {
            Ok(Some(object)) => Lookup::Found(object),
            Ok(None) => Lookup::Gone,
            Err(error) => Lookup::Failed(error),
        }
    }

    /// A candidate Clerk still has: copied as the listing would have (it missed it, e.g. an
    /// offset page that shifted while the run read it).
    async fn copy_found(
        &self,
        kind: Kind,
        object: Box<RawValue>,
        counts: &mut Counts,
    ) -> Result<(), BackfillError> {
        counts.seen += 1;
        let plan =
            match objects::prepare(kind, &object, &self.settings, now_ms(), Copier::Reconcile) {
                Ok(prepared) => prepared.plan,
                Err(skip) => {
                    let why = Skipped::Refused(&skip.reason);
                    self.skip(kind, skip.id.as_deref(), why, counts);
                    return Ok(());
                }
            };
        match (&self.store, self.options.dry_run) {
            (Some(store), false) => match write(store, &plan, self.options.write_backoff).await {
                Ok(Outcome::Applied) => counts.written += 1,
                Ok(Outcome::Stale | Outcome::Duplicate) => counts.stale += 1,
                // This object's write can never succeed: skip it, not the run.
                Err(error) if error.is_permanent() => {
                    let id = text_at(&object, &["id"]).filter(|id| is_key_safe(id));
                    self.skip(kind, id.as_deref(), Skipped::Unwritable(&error), counts);
                }
                Err(error) => return Err(error.into()),
            },
            _ => counts.written += 1,
        }
        Ok(())
    }

    /// Phase 3. `Ok(false)`: out of time, the checkpoint saved at the next tombstone.
    async fn tombstone(
        &self,
        kind: Kind,
        store: &Store,
        ledger: &Ledger,
        checkpoint: &mut Checkpoint,
        would_tombstone: &mut Vec<String>,
    ) -> Result<bool, BackfillError> {
        let run = state(checkpoint).run_started_ms;
        let gone = ledger
            .load(&reconcile_run(kind.as_str(), run), "GONE")
            .await?;
        let live = state(checkpoint).counts.live;
        let bound = deletion_bound(live);
        if gone.len() as u64 > bound && !self.options.allow_mass_delete {
            state_mut(checkpoint).counts.refused = gone.len() as u64;
            tracing::error!(
                kind = kind.as_str(),
                confirmed_gone = gone.len(),
                live,
                bound,
                "reconcile: more confirmed gone than the bound allows; nothing tombstoned. \
                 Check, then run again with --allow-mass-delete"
            );
            return Ok(true);
        }
        if self.options.dry_run {
            *would_tombstone = gone
                .iter()
                .filter_map(|entry| entry.rsplit('#').next().map(str::to_owned))
                .collect();
            return Ok(true);
        }
        let from = state(checkpoint).tombstone_from as usize;
        for (i, entry) in gone.iter().enumerate().skip(from) {
            if self.out_of_time() {
                state_mut(checkpoint).tombstone_from = i as u64;
                self.save_checkpoint(checkpoint).await?;
                tracing::warn!(
                    kind = kind.as_str(),
                    "stopping the tombstones before the deadline; invoke again to continue"
                );
                return Ok(false);
            }
            let Some(plan) = deleted_event(kind, entry, now_ms())
                .and_then(|event| plan_reconcile(&event, &self.settings, now_ms()))
            else {
                continue;
            };
            if store.apply(&plan).await? == Outcome::Applied {
                state_mut(checkpoint).counts.tombstoned += 1;
            }
            let id = entry.rsplit('#').next().unwrap_or("-");
            tracing::info!(
                kind = kind.as_str(),
                id,
                "reconcile: tombstoned an object Clerk confirmed gone"
            );
        }
        state_mut(checkpoint).tombstone_from = gone.len() as u64;
        Ok(true)
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Listing => "listing",
        Phase::Sweep => "sweep",
        Phase::Tombstone => "tombstone",
        Phase::Done => "done",
    }
}

fn state(checkpoint: &Checkpoint) -> &ReconcileState {
    checkpoint
        .reconcile
        .as_ref()
        .expect("a reconcile checkpoint has its state")
}

fn state_mut(checkpoint: &mut Checkpoint) -> &mut ReconcileState {
    checkpoint
        .reconcile
        .as_mut()
        .expect("a reconcile checkpoint has its state")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(value: serde_json::Value) -> Item {
        encoding::from_json(value.as_object().unwrap())
    }

    fn raw(value: serde_json::Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&value).unwrap()
    }

    #[test]
    fn the_bound_is_five_percent_and_at_least_ten() {
        assert_eq!(deletion_bound(0), 10);
        assert_eq!(deletion_bound(100), 10);
        assert_eq!(deletion_bound(10_000), 500);
        // 30 % of users is far past it.
        assert!(3_000 > deletion_bound(10_000));
    }

    #[test]
    fn a_candidate_is_live_unlisted_and_older_than_the_run() {
        let run = 1_000;
        let listed: HashSet<String> = ["user_listed".to_owned(), "org_1#user_1".to_owned()].into();
        let user = |id: &str, version: i64| item(json!({"id": id, "version": version}));
        assert!(is_candidate(
            Kind::Users,
            &user("user_ghost", 999),
            &listed,
            run
        ));
        assert!(!is_candidate(
            Kind::Users,
            &user("user_listed", 999),
            &listed,
            run
        ));
        // Written during the run (a webhook, a copy): never.
        assert!(!is_candidate(
            Kind::Users,
            &user("user_new", 1_000),
            &listed,
            run
        ));
        assert!(!is_candidate(
            Kind::Users,
            &item(json!({"id": "user_x"})),
            &listed,
            run
        ));
        let member = |org: &str| {
            item(json!({"id": "orgmem_9", "org_id": org, "user_id": "user_1", "version": 5}))
        };
        assert!(!is_candidate(
            Kind::Memberships,
            &member("org_1"),
            &listed,
            run
        ));
        assert!(is_candidate(
            Kind::Memberships,
            &member("org_2"),
            &listed,
            run
        ));
    }

    #[test]
    fn listing_and_table_identify_a_membership_by_its_key() {
        let object = json!({"id": "orgmem_new", "organization": {"id": "org_1"},
                            "public_user_data": {"user_id": "user_1"}});
        assert_eq!(
            listed_identity(Kind::Memberships, &raw(object)).as_deref(),
            Some("org_1#user_1")
        );
        assert_eq!(
            listed_identity(Kind::Users, &raw(json!({"id": "user#1"}))),
            None
        );
        let stored = item(json!({"id": "orgmem_old", "org_id": "org_1", "user_id": "user_1"}));
        assert_eq!(
            stored_identity(Kind::Memberships, &stored).as_deref(),
            Some("org_1#user_1")
        );
        assert_eq!(
            gone_entry(Kind::Memberships, &stored).as_deref(),
            Some("org_1#user_1#orgmem_old")
        );
    }

    #[test]
    fn a_gone_object_gets_its_deleted_webhooks_plan() {
        const NOW: i64 = 1_800_000_000_000;
        use crate::plan::{Cascade, Write};
        let settings = crate::config::Settings::default();
        let user = deleted_event(Kind::Users, "user_1", NOW).unwrap();
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
        let member = deleted_event(Kind::Memberships, "org_1#user_1#orgmem_1", NOW).unwrap();
        let plan = plan_reconcile(&member, &settings, NOW).unwrap();
        let Write::Put { item, .. } = &plan.writes[0] else {
            panic!()
        };
        assert_eq!(Key::of(item), Some(Key::membership("org_1", "user_1")));
        assert_eq!(encoding::text(item, "id"), Some("orgmem_1"));
        assert_eq!(deleted_event(Kind::Memberships, "org_1", NOW), None);
    }
}
