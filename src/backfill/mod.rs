//! `clerk-webhooks-backfill`: copies the users, organizations and memberships that existed
//! before the webhook endpoint, from Clerk's Backend API, through the webhook path's planner
//! and store.
//!
//! Why it is safe next to live webhooks: every object becomes the plan its `*.created`
//! webhook would produce ([`objects::prepare`]), versioned by the object's own `updated_at`,
//! and the store applies it under the same conditions. A copy older than what a webhook wrote
//! is `stale`; a deleted user or organization stays a tombstone; a membership is refused if
//! its organization or user is a tombstone; a later webhook overwrites a copy as it would any
//! older version. Each write is one conditional transaction, so a race with a webhook is
//! decided by DynamoDB, never by timing.
//!
//! The run, per kind: pages are read one after the other (each page's cursor comes from the
//! one before; the next page is fetched while the current one is written), the objects of a
//! page are written with bounded concurrency, then the checkpoint moves past the page.

pub mod checkpoint;
pub mod instance;
pub mod objects;
pub mod options;
pub mod progress;
pub mod reconcile;

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::HumanCount;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::task::JoinSet;

use crate::clerk_api::{ApiError, ClerkApi, Page};
use crate::config::Settings;
use crate::plan::Plan;
use crate::store::{Committed, Outcome, Store, StoreError};
use crate::table::Key;
use checkpoint::Checkpoint;
use options::Options;
use progress::{per_second, Progress};

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

/// One kind's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindSummary {
    pub kind: Kind,
    /// Where this run started: `the first user`, `after user_…`, `offset 1000`.
    pub started_at: String,
    pub seen: u64,
    /// In a dry run: how many would be written.
    pub written: u64,
    /// The table already held this version or a newer one, or a tombstone.
    pub stale: u64,
    /// Objects not copied: the webhook path would refuse them too, or DynamoDB refused their
    /// write (logged with their id and the reason). The run goes on past them.
    pub skipped: u64,
    /// The ids of the skipped objects (up to [`MAX_LISTED_SKIPS`]; an object without a usable
    /// id is counted but not listed). Ids only, never data.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_ids: Vec<String>,
    pub pages: u64,
    /// `429`s waited out (not failures).
    pub rate_limited: u64,
    /// Failed requests retried (5xx, timeouts, connection failures).
    pub retries: u64,
    pub seconds: f64,
    /// Reached the end of the list (false when a Lambda deadline stopped it first); for a
    /// reconcile, every phase ended.
    pub complete: bool,
    /// A reconcile's numbers for the kind (the run's totals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<reconcile::ReconcileSummary>,
}

/// The whole run's result: printed by the command line, returned by the Lambda.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    /// `--reconcile`: deletions too.
    pub reconcile: bool,
    /// The Clerk instance of the key (the table's, once it is bound).
    pub instance_id: String,
    pub kinds: Vec<KindSummary>,
    pub seconds: f64,
    /// Objects read from the Backend API's lists, every kind.
    pub listed: u64,
    /// A reconcile's pace: most of what it lists is already in the table, so it writes little.
    pub listed_per_second: f64,
    pub written: u64,
    pub written_per_second: f64,
    /// Every kind reached the end of its list; otherwise run it again to continue.
    pub complete: bool,
}

impl Summary {
    /// Objects not copied, every kind: the command exits non-zero when there are any.
    pub fn skipped(&self) -> u64 {
        self.kinds.iter().map(|k| k.skipped).sum()
    }
}

pub struct Backfill {
    api: ClerkApi,
    /// `None` only in a dry run without a table.
    store: Option<Store>,
    settings: Settings,
    options: Options,
    progress: Arc<Progress>,
    /// The (kind, field) pairs already logged by [`Self::note_unexpected_prefixes`].
    noted_prefixes: Mutex<HashSet<(Kind, &'static str)>>,
    /// The ids of the objects skipped so far, per kind, for the summary.
    skipped_ids: Mutex<Vec<(Kind, String)>>,
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
    fn skip(&self, kind: Kind, id: Option<&str>, why: Skipped, counts: &mut Counts) {
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
        let written = kinds.iter().map(|k| k.written).sum();
        let listed = kinds.iter().map(|k| k.seen).sum();
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

    async fn run_kind(&self, kind: Kind) -> Result<KindSummary, BackfillError> {
        let checkpoint = self.load_checkpoint(kind).await?;
        let (summary, _) = self.list_kind(kind, checkpoint, None).await?;
        Ok(summary)
    }

    /// Lists `kind` from `checkpoint` and copies each page, saving the checkpoint after each;
    /// with a reconcile's `ledger`, each page's identities are kept too. Returns this run's
    /// summary and the checkpoint where it stopped.
    async fn list_kind(
        &self,
        kind: Kind,
        mut checkpoint: Checkpoint,
        ledger: Option<&reconcile::Ledger>,
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
        self.progress.start(kind, total, checkpoint.seen);
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
                    .filter_map(|object| reconcile::listed_identity(kind, object))
                    .collect(),
                None => Vec::new(),
            };
            let page_counts = self.write_page(kind, page.objects).await?;
            counts.add(&page_counts);
            next.pages += 1;
            next.seen += page_counts.seen;
            next.written += page_counts.written;
            next.stale += page_counts.stale;
            next.skipped += page_counts.skipped;
            next.complete = last;
            self.progress.counters.pages.fetch_add(1, Ordering::Relaxed);
            if let (Some(ledger), Some(state)) = (ledger, &next.reconcile) {
                let key =
                    Key::reconcile_chunk(kind.as_str(), state.run_started_ms, "LISTED", next.pages);
                ledger.save(key, listed).await?;
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
    fn summarize(
        &self,
        kind: Kind,
        started_at: String,
        counts: Counts,
        started: Started,
        complete: bool,
        reconcile: Option<reconcile::ReconcileSummary>,
    ) -> KindSummary {
        let stats = self.api.stats();
        KindSummary {
            kind,
            started_at,
            seen: counts.seen,
            written: counts.written,
            stale: counts.stale,
            skipped: counts.skipped,
            skipped_ids: self.skipped_ids_of(kind),
            pages: counts.pages,
            rate_limited: stats.rate_limited.load(Ordering::Relaxed) - started.rate_limited,
            retries: stats.retries.load(Ordering::Relaxed) - started.retries,
            seconds: started.at.elapsed().as_secs_f64(),
            complete,
            reconcile,
        }
    }

    /// The ids skipped for `kind` in this run so far.
    fn skipped_ids_of(&self, kind: Kind) -> Vec<String> {
        let ids = self.skipped_ids.lock().expect("never poisoned");
        ids.iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Whether the invocation's deadline (Lambda) is closer than the margin.
    fn out_of_time(&self) -> bool {
        self.options.deadline.is_some_and(|deadline| {
            deadline.saturating_duration_since(Instant::now()) < self.options.margin
        })
    }

    /// The key's instance, checked against the table's before anything is written; the
    /// table is bound to it on its first run (not in a dry run).
    async fn check_instance(&self) -> Result<String, BackfillError> {
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
    async fn user_count(&self) -> Option<u64> {
        match self.api.user_count().await {
            Ok(total) => Some(total),
            Err(error) => {
                tracing::warn!(%error, "no user total for the progress display; copying without one");
                None
            }
        }
    }

    async fn load_checkpoint(&self, kind: Kind) -> Result<Checkpoint, BackfillError> {
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

    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), BackfillError> {
        if let (Some(store), false) = (&self.store, self.options.dry_run) {
            store.put_item(&checkpoint.to_item(now_ms())).await?;
        }
        Ok(())
    }

    fn spawn_fetch(
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
    async fn write_page(
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
            let plan = match objects::prepare(kind, &object, &self.settings, now, by) {
                Ok(prepared) => {
                    self.note_unexpected_prefixes(kind, &prepared.unexpected_prefixes);
                    prepared.plan
                }
                Err(skip) => {
                    let why = Skipped::Refused(&skip.reason);
                    self.skip(kind, skip.id.as_deref(), why, &mut counts);
                    continue;
                }
            };
            let id =
                crate::event::text_at(&object, &["id"]).filter(|id| crate::event::is_key_safe(id));
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
    fn note_unexpected_prefixes(&self, kind: Kind, fields: &[&'static str]) {
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

    async fn tally(
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
enum Skipped<'a> {
    /// The webhook path would refuse it too (field names only, never values).
    Refused(&'a str),
    /// DynamoDB refused its write, which no retry fixes.
    Unwritable(&'a StoreError),
}

/// How many skipped ids a summary lists (the count is always complete).
pub const MAX_LISTED_SKIPS: usize = 100;

/// How many scan pages (1 MB each) are read for the instances of the event records, while the
/// table is unbound: enough to meet webhooks in any table that has had some.
const WEBHOOK_SCAN_PAGES: usize = 5;

/// How many times a write is tried before the run stops (on top of the SDK's own 3
/// attempts per call): a long backfill should ride out a throttling burst.
const WRITE_ATTEMPTS: u32 = 5;

async fn write(
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
struct Started {
    at: Instant,
    rate_limited: u64,
    retries: u64,
}

impl Started {
    fn now(backfill: &Backfill) -> Self {
        let stats = backfill.api.stats();
        Self {
            at: Instant::now(),
            rate_limited: stats.rate_limited.load(Ordering::Relaxed),
            retries: stats.retries.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    seen: u64,
    written: u64,
    stale: u64,
    skipped: u64,
    pages: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.seen += other.seen;
        self.written += other.written;
        self.stale += other.stale;
        self.skipped += other.skipped;
        self.pages += other.pages;
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl fmt::Display for Summary {
    /// The table the command line prints at the end.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let written = if self.dry_run { "to write" } else { "written" };
        writeln!(
            f,
            "{:<14}{:>9}{:>10}{:>8}{:>9}{:>7}{:>7}{:>9}{:>9}  from",
            "kind", "seen", written, "stale", "skipped", "pages", "429s", "retries", "seconds"
        )?;
        for k in &self.kinds {
            writeln!(
                f,
                "{:<14}{:>9}{:>10}{:>8}{:>9}{:>7}{:>7}{:>9}{:>9.1}  {}{}",
                k.kind.as_str(),
                HumanCount(k.seen).to_string(),
                HumanCount(k.written).to_string(),
                HumanCount(k.stale).to_string(),
                HumanCount(k.skipped).to_string(),
                HumanCount(k.pages).to_string(),
                k.rate_limited,
                k.retries,
                k.seconds,
                k.started_at,
                if k.complete { "" } else { " (not finished)" }
            )?;
        }
        for k in self.kinds.iter().filter(|k| !k.skipped_ids.is_empty()) {
            writeln!(
                f,
                "{} skipped: {}",
                k.kind.as_str(),
                k.skipped_ids.join(" ")
            )?;
        }
        if self.reconcile {
            writeln!(
                f,
                "{:<14}{:>9}{:>11}{:>8}{:>8}{:>12}{:>12}{:>9}",
                "reconcile",
                "live",
                "candidates",
                "found",
                "gone",
                "unconfirmed",
                "tombstoned",
                "refused"
            )?;
            for (k, r) in self
                .kinds
                .iter()
                .filter_map(|k| Some((k, k.reconcile.as_ref()?)))
            {
                writeln!(
                    f,
                    "{:<14}{:>9}{:>11}{:>8}{:>8}{:>12}{:>12}{:>9}",
                    k.kind.as_str(),
                    HumanCount(r.counts.live).to_string(),
                    HumanCount(r.counts.candidates).to_string(),
                    HumanCount(r.counts.found).to_string(),
                    HumanCount(r.counts.confirmed_gone).to_string(),
                    HumanCount(r.counts.unconfirmed).to_string(),
                    HumanCount(r.counts.tombstoned).to_string(),
                    HumanCount(r.counts.refused).to_string(),
                )?;
            }
            for (k, r) in self
                .kinds
                .iter()
                .filter_map(|k| Some((k, k.reconcile.as_ref()?)))
            {
                if r.counts.refused > 0 {
                    writeln!(
                        f,
                        "{}: {} confirmed gone is more than the bound ({}: {} % of {} live, at least {}); \
                         nothing tombstoned. Check, then run again with --allow-mass-delete",
                        k.kind.as_str(),
                        HumanCount(r.counts.refused),
                        HumanCount(reconcile::deletion_bound(r.counts.live)),
                        reconcile::BOUND_PERCENT,
                        HumanCount(r.counts.live),
                        reconcile::BOUND_FLOOR,
                    )?;
                }
                if !r.would_tombstone.is_empty() {
                    writeln!(
                        f,
                        "{}: would tombstone {}: {}",
                        k.kind.as_str(),
                        r.would_tombstone.len(),
                        r.would_tombstone.join(" ")
                    )?;
                }
            }
        }
        let (verb, tombstone_verb) = if self.dry_run {
            ("would write", "would tombstone")
        } else {
            ("wrote", "tombstoned")
        };
        if self.reconcile {
            // A reconcile mostly finds what it lists already in the table: its pace is the
            // listing's, and what it changed is the copies and the tombstones.
            let tombstones: u64 = (self.kinds.iter())
                .filter_map(|k| k.reconcile.as_ref())
                .map(|r| {
                    if self.dry_run {
                        r.would_tombstone.len() as u64
                    } else {
                        r.counts.tombstoned
                    }
                })
                .sum();
            write!(
                f,
                "listed {} objects in {:.1} s ({}/s); {verb} {}, {tombstone_verb} {}",
                HumanCount(self.listed),
                self.seconds,
                HumanCount(self.listed_per_second.round() as u64),
                HumanCount(self.written),
                HumanCount(tombstones),
            )?;
        } else {
            write!(
                f,
                "{verb} {} objects in {:.1} s ({}/s)",
                HumanCount(self.written),
                self.seconds,
                HumanCount(self.written_per_second.round() as u64),
            )?;
        }
        if !self.complete {
            f.write_str("; not finished: run again to continue from the checkpoint")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(value: serde_json::Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&value).unwrap()
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

    fn users_summary() -> Summary {
        Summary {
            dry_run: false,
            kinds: vec![KindSummary {
                kind: Kind::Users,
                started_at: "the first user".into(),
                seen: 1_200,
                written: 1_199,
                stale: 1,
                skipped: 0,
                skipped_ids: Vec::new(),
                pages: 3,
                rate_limited: 1,
                retries: 0,
                seconds: 1.24,
                complete: true,
                reconcile: None,
            }],
            instance_id: "ins_1".into(),
            reconcile: false,
            seconds: 1.5,
            listed: 1_200,
            listed_per_second: 800.0,
            written: 1_199,
            written_per_second: 799.3,
            complete: true,
        }
    }

    #[test]
    fn the_summary_table() {
        let text = users_summary().to_string();
        assert!(text.contains("users             1,200     1,199       1        0      3      1        0      1.2  the first user"), "{text}");
        assert!(
            text.ends_with("wrote 1,199 objects in 1.5 s (799/s)"),
            "{text}"
        );
    }

    #[test]
    fn a_reconcile_ends_with_its_listing_pace_and_its_tombstones() {
        let mut summary = users_summary();
        summary.reconcile = true;
        summary.written = 0;
        summary.kinds[0].reconcile = Some(reconcile::ReconcileSummary {
            counts: checkpoint::ReconcileCounts {
                live: 1_200,
                candidates: 13,
                confirmed_gone: 12,
                found: 1,
                tombstoned: 12,
                ..checkpoint::ReconcileCounts::default()
            },
            would_tombstone: vec![],
        });
        let text = summary.to_string();
        assert!(
            text.contains("users             1,200         13       1      12           0          12        0"),
            "{text}"
        );
        assert!(
            text.ends_with("listed 1,200 objects in 1.5 s (800/s); wrote 0, tombstoned 12"),
            "{text}"
        );

        summary.dry_run = true;
        summary.complete = false;
        let kind = summary.kinds[0].reconcile.as_mut().unwrap();
        kind.counts.tombstoned = 0;
        kind.would_tombstone = vec!["user_1".into(), "user_2".into()];
        let text = summary.to_string();
        assert!(
            text.contains("users: would tombstone 2: user_1 user_2"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "listed 1,200 objects in 1.5 s (800/s); would write 0, would tombstone 2; \
                 not finished: run again to continue from the checkpoint"
            ),
            "{text}"
        );
    }
}
