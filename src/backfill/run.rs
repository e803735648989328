//! One run: for each kind, list the objects page by page, write each page with bounded
//! concurrency through the webhook path's planner and store, and move the checkpoint past it;
//! or, for `--reconcile`, the three phases of `reconcile.rs`.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::value::RawValue;
use tokio::task::JoinSet;

use crate::clerk_api::{ApiError, ClerkApi, Page};
use crate::plan::Plan;
use crate::plan::Settings;
use crate::store::{Committed, Outcome, Store, StoreError};
use crate::table::Key;

use super::checkpoint::Checkpoint;
use super::counts::Counts;
use super::instance;
use super::kind::Kind;
use super::ledger::Ledger;
use super::objects;
use super::options::Options;
use super::progress::{per_second, Progress};
use super::summary::{KindSummary, ReconcileSummary, Summary, MAX_LISTED_SKIPS};

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("DynamoDB: {0}")]
    Store(#[from] StoreError),
    #[error("the {0} checkpoint is unreadable: {1}")]
    Checkpoint(&'static str, String),
    #[error("a {0} on the page has no id to continue after")]
    NoCursor(&'static str),
    #[error(transparent)]
    WrongInstance(#[from] instance::WrongInstance),
    #[error("a reconcile compares the table with Clerk: set TABLE_NAME, even for --dry-run")]
    NoTable,
}

pub struct Backfill {
    pub(super) api: ClerkApi,
    /// `None` only in a dry run without a table.
    pub(super) store: Option<Store>,
    pub(super) settings: Settings,
    pub(super) options: Options,
    pub(super) progress: Arc<Progress>,
    /// The (kind, field) pairs already logged by [`Self::note_unexpected_prefixes`].
    pub(super) noted_prefixes: Mutex<HashSet<(Kind, &'static str)>>,
    /// The ids of the objects skipped so far, per kind, for the summary.
    pub(super) skipped_ids: Mutex<Vec<(Kind, String)>>,
}

impl Backfill {
    pub fn new(api: ClerkApi, store: Option<Store>, options: Options) -> Self {
        let progress = Arc::new(Progress::new(
            options.display,
            options.dry_run,
            Arc::clone(api.stats()),
        ));
        Self {
            api,
            store,
            settings: Settings::default(),
            options,
            progress,
            noted_prefixes: Mutex::default(),
            skipped_ids: Mutex::default(),
        }
    }

    /// Counts an object that is not copied, keeps its id for the summary, and logs it: the
    /// run goes on.
    pub(super) fn skip(&self, kind: Kind, id: Option<&str>, why: Skipped, counts: &mut Counts) {
        counts.skipped += 1;
        self.progress
            .counters
            .skipped
            .fetch_add(1, Ordering::Relaxed);
        if let Some(id) = id {
            let mut ids = self.skipped_ids.lock().expect("never poisoned");
            if ids.len() < MAX_LISTED_SKIPS {
                ids.push((kind, id.to_owned()));
            }
        }
        match why {
            Skipped::Refused(reason) => tracing::warn!(
                kind = kind.as_str(),
                id,
                reason,
                "skipped an object the webhook path would refuse"
            ),
            Skipped::Unwritable(error) => tracing::error!(
                kind = kind.as_str(),
                id,
                %error,
                "skipped an object DynamoDB refused to store; the run goes on"
            ),
        }
    }

    pub async fn run(&self) -> Result<Summary, BackfillError> {
        let started = Instant::now();
        // Before anything is written: the key must belong to the table's instance.
        let instance_id = self.check_instance().await?;
        let _reporter = self.progress.spawn_reporter();
        let mut kinds = Vec::new();
        for &kind in &self.options.kinds {
            let summary = match self.options.reconcile {
                true => self.reconcile_kind(kind).await,
                false => self.run_kind(kind).await,
            };
            self.progress.finish();
            let summary = summary?;
            let complete = summary.complete;
            kinds.push(summary);
            if !complete {
                break; // out of time: the next invocation resumes here
            }
        }
        // One reading of the clock, so the rates agree with `seconds`.
        let elapsed = started.elapsed();
        let written = kinds.iter().map(|k| k.counts.written).sum();
        let listed = kinds.iter().map(|k| k.counts.seen).sum();
        let summary = Summary {
            dry_run: self.options.dry_run,
            reconcile: self.options.reconcile,
            instance_id,
            complete: kinds.len() == self.options.kinds.len() && kinds.iter().all(|k| k.complete),
            written_per_second: per_second(written, elapsed),
            listed_per_second: per_second(listed, elapsed),
            kinds,
            seconds: elapsed.as_secs_f64(),
            listed,
            written,
        };
        tracing::info!(
            listed = summary.listed,
            listed_per_second = summary.listed_per_second.round() as u64,
            written = summary.written,
            seconds = summary.seconds,
            written_per_second = summary.written_per_second.round() as u64,
            complete = summary.complete,
            dry_run = summary.dry_run,
            "backfill finished"
        );
        Ok(summary)
    }

    pub(super) async fn run_kind(&self, kind: Kind) -> Result<KindSummary, BackfillError> {
        let checkpoint = self.load_checkpoint(kind).await?;
        let (summary, _) = self.list_kind(kind, checkpoint, None).await?;
        Ok(summary)
    }

    /// Lists `kind` from `checkpoint` and copies each page, saving the checkpoint after each;
    /// with a reconcile's `ledger`, each page's identities are kept too. Returns this run's
    /// summary and the checkpoint where it stopped.
    pub(super) async fn list_kind(
        &self,
        kind: Kind,
        mut checkpoint: Checkpoint,
        ledger: Option<&Ledger>,
    ) -> Result<(KindSummary, Checkpoint), BackfillError> {
        let started = Started::now(self);
        let started_at = checkpoint.position();
        let total = match kind {
            Kind::Users => self.user_count().await,
            _ => None,
        };
        tracing::info!(
            kind = kind.as_str(),
            from = started_at.as_str(),
            total,
            "backfill started a kind"
        );
        self.progress.start(kind, total, checkpoint.counts.seen);
        let mut counts = Counts::default();
        let mut prefetch = JoinSet::new();
        self.spawn_fetch(&mut prefetch, kind, &checkpoint);
        let complete = loop {
            let page = prefetch
                .join_next()
                .await
                .expect("one fetch is always in flight here")
                .expect("a page fetch does not panic")?;
            let last = page.objects.len() < self.options.page_size as usize;
            let mut next = checkpoint.clone();
            advance(&mut next, &page)?;
            let out_of_time = self.options.deadline.is_some_and(|deadline| {
                deadline.saturating_duration_since(Instant::now()) < self.options.margin
            });
            // Read the next page while this one is written.
            if !last && !out_of_time {
                self.spawn_fetch(&mut prefetch, kind, &next);
            }
            if let Some(total) = page.total_count {
                self.progress.set_total(total);
            }
            let listed: Vec<String> = match ledger {
                Some(_) => page
                    .objects
                    .iter()
                    .filter_map(|object| kind.listed_identity(object))
                    .collect(),
                None => Vec::new(),
            };
            let page_counts = self.write_page(kind, page.objects).await?;
            counts.add(&page_counts);
            // A page's counts (`write_page`) include the page itself.
            next.counts.add(&page_counts);
            next.complete = last;
            self.progress.counters.pages.fetch_add(1, Ordering::Relaxed);
            if let (Some(ledger), Some(state)) = (ledger, &next.reconcile) {
                let key = Key::reconcile_chunk(
                    kind.as_str(),
                    state.run_started_ms,
                    "LISTED",
                    next.counts.pages,
                );
                ledger.save(key, listed, now_ms()).await?;
            }
            self.save_checkpoint(&next).await?;
            checkpoint = next;
            if last {
                break true;
            }
            if out_of_time {
                tracing::warn!(
                    kind = kind.as_str(),
                    next = checkpoint.position().as_str(),
                    "stopping before the deadline; invoke again to continue"
                );
                break false;
            }
        };
        let summary = self.summarize(kind, started_at, counts, started, complete, None);
        Ok((summary, checkpoint))
    }

    /// One kind's summary, for this invocation since `started`.
    pub(super) fn summarize(
        &self,
        kind: Kind,
        started_at: String,
        counts: Counts,
        started: Started,
        complete: bool,
        reconcile: Option<ReconcileSummary>,
    ) -> KindSummary {
        let stats = self.api.stats();
        KindSummary {
            kind,
            started_at,
            counts,
            skipped_ids: self.skipped_ids_of(kind),
            rate_limited: stats.rate_limited.load(Ordering::Relaxed) - started.rate_limited,
            retries: stats.retries.load(Ordering::Relaxed) - started.retries,
            seconds: started.at.elapsed().as_secs_f64(),
            complete,
            reconcile,
        }
    }

    /// The ids skipped for `kind` in this run so far.
    pub(super) fn skipped_ids_of(&self, kind: Kind) -> Vec<String> {
        let ids = self.skipped_ids.lock().expect("never poisoned");
        ids.iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Whether the invocation's deadline (Lambda) is closer than the margin.
    pub(super) fn out_of_time(&self) -> bool {
        self.options.deadline.is_some_and(|deadline| {
            deadline.saturating_duration_since(Instant::now()) < self.options.margin
        })
    }

    /// The key's instance, checked against the table's before anything is written; the
    /// table is bound to it on its first run (not in a dry run).
    pub(super) async fn check_instance(&self) -> Result<String, BackfillError> {
        let key_instance = self.api.instance().await?;
        let Some(store) = &self.store else {
            return Ok(key_instance);
        };
        let bound = store.get_item(&Key::instance()).await?;
        let bound = bound.as_ref().and_then(instance::bound_instance);
        let webhooks = match bound {
            Some(_) => Default::default(),
            None => store.webhook_instances(WEBHOOK_SCAN_PAGES).await?,
        };
        if instance::decide(&key_instance, bound, &webhooks)? == instance::Binding::Bind
            && !self.options.dry_run
        {
            let by = if self.options.reconcile {
                "reconcile"
            } else {
                "backfill"
            };
            let item = instance::item(&key_instance, by, now_ms());
            if !store.put_if_absent(&item).await? {
                // Another run bound it first: it must have bound the same instance.
                let other = store.get_item(&Key::instance()).await?;
                let other = other.as_ref().and_then(instance::bound_instance);
                instance::decide(&key_instance, other, &Default::default())?;
            } else {
                tracing::info!(
                    instance = key_instance.as_str(),
                    "the table is bound to this instance"
                );
            }
        }
        Ok(key_instance)
    }

    /// The users' total, for the progress bar only: if the count fails (after the client's
    /// usual retries), the copy goes on without a total.
    pub(super) async fn user_count(&self) -> Option<u64> {
        match self.api.user_count().await {
            Ok(total) => Some(total),
            Err(error) => {
                tracing::warn!(%error, "no user total for the progress display; copying without one");
                None
            }
        }
    }

    pub(super) async fn load_checkpoint(&self, kind: Kind) -> Result<Checkpoint, BackfillError> {
        let store = match &self.store {
            Some(store) if !self.options.restart && !self.options.dry_run => store,
            // A dry run reads from the start and never touches the table.
            _ => return Ok(Checkpoint::new(kind)),
        };
        match store.get_item(&Checkpoint::key(kind)).await? {
            None => Ok(Checkpoint::new(kind)),
            Some(item) => Checkpoint::from_item(kind, &item)
                .map_err(|reason| BackfillError::Checkpoint(kind.as_str(), reason)),
        }
    }

    pub(super) async fn save_checkpoint(
        &self,
        checkpoint: &Checkpoint,
    ) -> Result<(), BackfillError> {
        if let (Some(store), false) = (&self.store, self.options.dry_run) {
            store.put_item(&checkpoint.to_item(now_ms())).await?;
        }
        Ok(())
    }

    pub(super) fn spawn_fetch(
        &self,
        tasks: &mut JoinSet<Result<Page, ApiError>>,
        kind: Kind,
        at: &Checkpoint,
    ) {
        let api = self.api.clone();
        let limit = self.options.page_size;
        let (cursor, offset) = (at.cursor.clone(), at.offset);
        tasks.spawn(async move {
            match kind {
                Kind::Users => api.users(limit, cursor.as_deref()).await,
                Kind::Organizations => api.organizations(limit, offset).await,
                Kind::Memberships => api.memberships(limit, offset).await,
            }
        });
    }

    /// Plans every object and writes the plans, at most `concurrency` at a time. Returns once
    /// all of them are durable, or with the first write that failed for good (the others are
    /// cancelled; the checkpoint has not moved, so the next run writes the page again).
    pub(super) async fn write_page(
        &self,
        kind: Kind,
        objects: Vec<Box<RawValue>>,
    ) -> Result<Counts, BackfillError> {
        let mut counts = Counts {
            pages: 1,
            ..Counts::default()
        };
        let counters = &self.progress.counters;
        let now = now_ms();
        let by = match self.options.reconcile {
            true => objects::Copier::Reconcile,
            false => objects::Copier::Backfill,
        };
        let mut writes: JoinSet<(Option<String>, Result<Outcome, StoreError>)> = JoinSet::new();
        for object in objects {
            counts.seen += 1;
            counters.seen.fetch_add(1, Ordering::Relaxed);
            let (plan, id) = match objects::prepare(kind, &object, &self.settings, now, by) {
                Ok(prepared) => {
                    self.note_unexpected_prefixes(kind, &prepared.unexpected_prefixes);
                    (prepared.plan, prepared.id)
                }
                Err(skip) => {
                    let why = Skipped::Refused(&skip.reason);
                    self.skip(kind, skip.id.as_deref(), why, &mut counts);
                    continue;
                }
            };
            let store = match (&self.store, self.options.dry_run) {
                (Some(store), false) => store.clone(),
                _ => {
                    counts.written += 1;
                    counters.written.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            while writes.len() >= self.options.concurrency {
                self.tally(kind, &mut writes, &mut counts).await?;
            }
            let backoff = self.options.write_backoff;
            writes.spawn(async move { (id, write(&store, &plan, backoff).await) });
        }
        while !writes.is_empty() {
            self.tally(kind, &mut writes, &mut counts).await?;
        }
        Ok(counts)
    }

    /// One log line per kind and field for a run, not one per object: if Clerk changed a
    /// prefix, every object of the kind would carry the new one.
    pub(super) fn note_unexpected_prefixes(&self, kind: Kind, fields: &[&'static str]) {
        for &field in fields {
            let first = self
                .noted_prefixes
                .lock()
                .expect("never poisoned: nothing panics while it is held")
                .insert((kind, field));
            if first {
                tracing::warn!(
                    kind = kind.as_str(),
                    field,
                    "ids without the prefix Clerk usually gives them; copied all the same (noted once per run)"
                );
            }
        }
    }

    pub(super) async fn tally(
        &self,
        kind: Kind,
        writes: &mut JoinSet<(Option<String>, Result<Outcome, StoreError>)>,
        counts: &mut Counts,
    ) -> Result<(), BackfillError> {
        let Some(done) = writes.join_next().await else {
            return Ok(());
        };
        let counters = &self.progress.counters;
        let (id, written) = done.expect("a write does not panic");
        let outcome = match written {
            // This object's write can never succeed: skip it, not the run.
            Err(error) if error.is_permanent() => {
                self.skip(kind, id.as_deref(), Skipped::Unwritable(&error), counts);
                return Ok(());
            }
            written => written?,
        };
        match outcome {
            Outcome::Applied => {
                counts.written += 1;
                counters.written.fetch_add(1, Ordering::Relaxed);
            }
            // Without an event record a backfill write is never a duplicate; count it as stale
            // all the same should that change.
            Outcome::Stale | Outcome::Duplicate => {
                counts.stale += 1;
                counters.stale.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// Why an object was not copied.
pub(super) enum Skipped<'a> {
    /// The webhook path would refuse it too (field names only, never values).
    Refused(&'a str),
    /// DynamoDB refused its write, which no retry fixes.
    Unwritable(&'a StoreError),
}

/// How many scan pages (1 MB each) are read for the instances of the event records, while the
/// table is unbound: enough to meet webhooks in any table that has had some.
const WEBHOOK_SCAN_PAGES: usize = 5;

/// How many times a write is tried before the run stops (on top of the SDK's own 3
/// attempts per call): a long backfill should ride out a throttling burst.
const WRITE_ATTEMPTS: u32 = 5;

pub(super) async fn write(
    store: &Store,
    plan: &Plan,
    base: std::time::Duration,
) -> Result<Outcome, StoreError> {
    // A backfill plan is a `*.created` write: it never cascades, so the transaction is the
    // whole plan (and the function's role needs no Query or BatchWriteItem).
    let mut attempt = 1;
    loop {
        match store.transact(plan).await.map(Committed::outcome) {
            Ok(outcome) => return Ok(outcome),
            Err(error) if attempt < WRITE_ATTEMPTS && !error.is_permanent() => {
                let wait = crate::backoff::jittered(attempt, base, base * 64);
                tracing::warn!(
                    %error,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "DynamoDB write failed; retrying"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Moves `checkpoint` past `page`.
fn advance(checkpoint: &mut Checkpoint, page: &Page) -> Result<(), BackfillError> {
    match checkpoint.kind {
        Kind::Users => {
            if let Some(last) = page.objects.last() {
                let id =
                    crate::event::text_at(last, &["id"]).ok_or(BackfillError::NoCursor("user"))?;
                checkpoint.cursor = Some(id);
            }
        }
        _ => checkpoint.offset += page.objects.len() as u64,
    }
    Ok(())
}

/// When a kind's run started, and the API's counters then.
#[derive(Clone, Copy)]
pub(super) struct Started {
    at: Instant,
    rate_limited: u64,
    retries: u64,
}

impl Started {
    pub(super) fn now(backfill: &Backfill) -> Self {
        let stats = backfill.api.stats();
        Self {
            at: Instant::now(),
            rate_limited: stats.rate_limited.load(Ordering::Relaxed),
            retries: stats.retries.load(Ordering::Relaxed),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(value: serde_json::Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&value).unwrap()
    }

    #[test]
    fn the_checkpoint_moves_past_a_page() {
        let page = Page {
            objects: vec![raw(json!({"id": "user_1"})), raw(json!({"id": "user_2"}))],
            total_count: None,
        };
        let mut users = Checkpoint::new(Kind::Users);
        advance(&mut users, &page).unwrap();
        assert_eq!(users.cursor.as_deref(), Some("user_2"));
        let empty = Page {
            objects: vec![],
            total_count: Some(2),
        };
        advance(&mut users, &empty).unwrap();
        assert_eq!(
            users.cursor.as_deref(),
            Some("user_2"),
            "an empty page keeps it"
        );
        let mut orgs = Checkpoint {
            offset: 10,
            ..Checkpoint::new(Kind::Organizations)
        };
        advance(&mut orgs, &page).unwrap();
        assert_eq!(orgs.offset, 12);
        let bad = Page {
            objects: vec![raw(json!({"name": "x"}))],
            total_count: None,
        };
        assert!(advance(&mut Checkpoint::new(Kind::Users), &bad).is_err());
    }
}
