//! What a run reports: per kind and in all, as the command line's table, the Lambda's answer
//! and EMF metrics; and the reconcile's deletion bound, which its summary reports against.

use std::fmt;

use indicatif::HumanCount;
use serde::Serialize;
use serde_json::{json, Value};

use super::counts::{Counts, ReconcileCounts};
use super::kind::Kind;
use crate::metrics;

/// How many skipped ids a summary lists (the count is always complete).
pub const MAX_LISTED_SKIPS: usize = 100;

/// The bound on tombstones: this share of the kind's live items...
pub const BOUND_PERCENT: u64 = 5;
/// ...and at least this many, so a small table can lose a few.
pub const BOUND_FLOOR: u64 = 10;
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

/// One kind's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindSummary {
    pub kind: Kind,
    /// Where this run started: `the first user`, `after user_…`, `offset 1000`.
    pub started_at: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// The ids of the skipped objects (up to [`MAX_LISTED_SKIPS`]; an object without a usable
    /// id is counted but not listed). Ids only, never data.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_ids: Vec<String>,
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
    pub reconcile: Option<ReconcileSummary>,
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
        self.kinds.iter().map(|k| k.counts.skipped).sum()
    }
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
                HumanCount(k.counts.seen).to_string(),
                HumanCount(k.counts.written).to_string(),
                HumanCount(k.counts.stale).to_string(),
                HumanCount(k.counts.skipped).to_string(),
                HumanCount(k.counts.pages).to_string(),
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
                        HumanCount(deletion_bound(r.counts.live)),
                        BOUND_PERCENT,
                        HumanCount(r.counts.live),
                        BOUND_FLOOR,
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

/// The backfill's metrics, per kind and run: what each reports, so a name cannot drift from
/// its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillMetric {
    /// Objects read from the lists.
    Listed,
    /// Objects written.
    Copied,
    Stale,
    Candidates,
    ConfirmedGone,
    Unconfirmed,
    Tombstoned,
    Refused,
}

impl BackfillMetric {
    pub const ALL: [Self; 8] = [
        Self::Listed,
        Self::Copied,
        Self::Stale,
        Self::Candidates,
        Self::ConfirmedGone,
        Self::Unconfirmed,
        Self::Tombstoned,
        Self::Refused,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Listed => "BackfillListed",
            Self::Copied => "BackfillCopied",
            Self::Stale => "BackfillStale",
            Self::Candidates => "BackfillCandidates",
            Self::ConfirmedGone => "BackfillConfirmedGone",
            Self::Unconfirmed => "BackfillUnconfirmed",
            Self::Tombstoned => "BackfillTombstoned",
            Self::Refused => "BackfillRefused",
        }
    }

    /// This metric's value for one kind's summary.
    fn value(self, k: &KindSummary) -> u64 {
        let r = k.reconcile.as_ref().map(|r| r.counts).unwrap_or_default();
        match self {
            Self::Listed => k.counts.seen,
            Self::Copied => k.counts.written,
            Self::Stale => k.counts.stale,
            Self::Candidates => r.candidates,
            Self::ConfirmedGone => r.confirmed_gone,
            Self::Unconfirmed => r.unconfirmed,
            Self::Tombstoned => r.tombstoned,
            Self::Refused => r.refused,
        }
    }
}

/// One EMF line per kind of a backfill or reconcile run (`Mode` = `backfill` or `reconcile`),
/// so a dashboard shows the last run's numbers. A reconcile reports its run's totals.
pub fn backfill_emf(namespace: &str, summary: &Summary, timestamp_ms: i64) -> Vec<Value> {
    let mode = if summary.reconcile {
        "reconcile"
    } else {
        "backfill"
    };
    let declared: Vec<Value> = BackfillMetric::ALL
        .iter()
        .map(|m| json!({"Name": m.name(), "Unit": "Count"}))
        .chain(std::iter::once(
            json!({"Name": "BackfillSeconds", "Unit": "Seconds"}),
        ))
        .collect();
    summary
        .kinds
        .iter()
        .map(|k| {
            let dimensions = json!([["Mode", "Kind"], ["Mode"]]);
            let mut root = metrics::line(namespace, dimensions, declared.clone(), timestamp_ms);
            root.insert("Mode".into(), json!(mode));
            root.insert("Kind".into(), json!(k.kind.as_str()));
            for metric in BackfillMetric::ALL {
                root.insert(metric.name().into(), json!(metric.value(k)));
            }
            root.insert("BackfillSeconds".into(), json!(k.seconds));
            Value::Object(root)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users_summary() -> Summary {
        Summary {
            dry_run: false,
            kinds: vec![KindSummary {
                kind: Kind::Users,
                started_at: "the first user".into(),
                counts: Counts {
                    seen: 1_200,
                    written: 1_199,
                    stale: 1,
                    skipped: 0,
                    pages: 3,
                },
                skipped_ids: Vec::new(),
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
        summary.kinds[0].reconcile = Some(ReconcileSummary {
            counts: ReconcileCounts {
                live: 1_200,
                candidates: 13,
                confirmed_gone: 12,
                found: 1,
                tombstoned: 12,
                ..ReconcileCounts::default()
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
