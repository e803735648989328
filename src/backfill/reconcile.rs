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

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::value::RawValue;

use super::checkpoint::{Checkpoint, Phase, ReconcileState};
use super::counts::Counts;
use super::kind::Kind;
use super::ledger::Ledger;
use super::objects::{self, Copier};
use super::run::{now_ms, write, Backfill, BackfillError, Skipped, Started};
use super::summary::{deletion_bound, KindSummary, ReconcileSummary};
use crate::clerk_api::ApiError;
use crate::event::text_at;
use crate::plan::plan_reconcile;
use crate::store::{Outcome, Store};
use crate::table::encoding::{self, text};
use crate::table::{attr, reconcile_run, Item, Key};

/// A live item the complete listing did not return, older than the run: maybe gone.
pub(crate) fn is_candidate(
    kind: Kind,
    item: &Item,
    listed: &HashSet<String>,
    run_started_ms: i64,
) -> bool {
    let older = encoding::number(item, attr::VERSION).is_some_and(|v| v < run_started_ms);
    older
        && kind
            .stored_identity(item)
            .is_some_and(|id| !listed.contains(&id))
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
        let fresh = checkpoint.counts.pages == 0 && state(&checkpoint).phase == Phase::Listing;
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
            counts.add(&listed.counts);
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
        let attributes = kind.sweep_attributes();
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
            let (items, next) = store.scan_live(kind.entity(), attributes, from).await?;
            let mut gone = Vec::new();
            for item in &items {
                state_mut(checkpoint).counts.live += 1;
                if !is_candidate(kind, item, &listed, run) {
                    continue;
                }
                state_mut(checkpoint).counts.candidates += 1;
                let id = text(item, attr::ID).unwrap_or("-");
                match self.lookup(kind, item).await {
                    Lookup::Found(object) => {
                        state_mut(checkpoint).counts.found += 1;
                        self.copy_found(kind, object, counts).await?;
                    }
                    Lookup::Gone => {
                        state_mut(checkpoint).counts.confirmed_gone += 1;
                        gone.extend(kind.gone_entry(item));
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
                ledger.save(key, gone, now_ms()).await?;
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
            Kind::Users => self.api.user(text(attr::ID)).await,
            Kind::Organizations => self.api.organization(text(attr::ID)).await,
            Kind::Memberships => {
                self.api
                    .user_memberships(text(attr::USER_ID))
                    .await
                    .map(|memberships| {
                        memberships.into_iter().flatten().find(|m| {
                            text_at(m, &["organization", "id"]).as_deref()
                                == Some(text(attr::ORG_ID))
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
        let prepared =
            match objects::prepare(kind, &object, &self.settings, now_ms(), Copier::Reconcile) {
                Ok(prepared) => prepared,
                Err(skip) => {
                    let why = Skipped::Refused(&skip.reason);
                    self.skip(kind, skip.id.as_deref(), why, counts);
                    return Ok(());
                }
            };
        let plan = &prepared.plan;
        match (&self.store, self.options.dry_run) {
            (Some(store), false) => match write(store, plan, self.options.write_backoff).await {
                Ok(Outcome::Applied) => counts.written += 1,
                Ok(Outcome::Stale | Outcome::Duplicate) => counts.stale += 1,
                // This object's write can never succeed: skip it, not the run.
                Err(error) if error.is_permanent() => {
                    let id = prepared.id.as_deref();
                    self.skip(kind, id, Skipped::Unwritable(&error), counts);
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
            let Some(plan) = kind
                .deleted_event(entry, now_ms())
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
    use serde_json::json;

    fn item(value: serde_json::Value) -> Item {
        encoding::from_json(value.as_object().unwrap())
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
}
