//! Where a backfill of one kind stands, kept in the table itself so a run on a laptop and a
//! run in Lambda resume the same way: `BACKFILL` / `users` (or `organizations`,
//! `memberships`), and for a reconcile `RECONCILE` / `users`, with the later phases' state
//! beside the listing's. Entity keys always hold a `#` (`USER#…`), and ids cannot contain one,
//! so a checkpoint can never collide with an entity. Pure conversions; the store reads and
//! writes it.

use serde_json::{json, Value};

use super::counts::{Counts, ReconcileCounts};
use super::kind::Kind;
use crate::table::encoding::{self, JsonItem};
use crate::table::{attr, Entity, Item, Key};

pub(crate) const CHECKPOINT_PK: &str = "BACKFILL";
pub(crate) const RECONCILE_PK: &str = "RECONCILE";
pub(crate) const CHECKPOINT_ENTITY: Entity = Entity::BackfillCheckpoint;

/// Saved after every page, once all of that page's writes are done: a crash loses at most
/// the page in flight, which the next run writes again (harmlessly: the versions make the
/// second write `stale`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub kind: Kind,
    /// Users: the id of the last user copied, the next page's `starting_after`.
    pub cursor: Option<String>,
    /// Organizations and memberships: how many objects precede the next page.
    pub offset: u64,
    /// Totals since the first run (or the last `--restart`).
    /// This kind's numbers over the whole run, across invocations.
    pub counts: Counts,
    /// The last run reached the end of the list. A later run continues from there, so it
    /// only copies what was created since. (A reconcile: the whole run, every phase, ended.)
    pub complete: bool,
    /// A reconcile's checkpoint: where its later phases stand. `None` for a backfill.
    pub reconcile: Option<ReconcileState>,
}

/// A reconcile of one kind: list everything (the listing above), sweep the table for live
/// items the listing did not return, then tombstone those Clerk confirms gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReconcileState {
    /// When this run began (ms): only items older than this can be candidates, and its
    /// records live under `RECONCILE#{kind}#{run_started_ms}`.
    pub run_started_ms: i64,
    pub phase: Phase,
    /// The sweep: where the next scan page starts (a table key), pages done.
    pub scan_from: Option<JsonItem>,
    pub sweep_pages: u64,
    /// How far into the gone list the tombstones got.
    pub tombstone_from: u64,
    pub counts: ReconcileCounts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Listing,
    Sweep,
    Tombstone,
    Done,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Self::Listing => "listing",
            Self::Sweep => "sweep",
            Self::Tombstone => "tombstone",
            Self::Done => "done",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::Listing, Self::Sweep, Self::Tombstone, Self::Done]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

impl ReconcileState {
    pub fn new(run_started_ms: i64) -> Self {
        Self {
            run_started_ms,
            phase: Phase::Listing,
            scan_from: None,
            sweep_pages: 0,
            tombstone_from: 0,
            counts: ReconcileCounts::default(),
        }
    }
}

impl Checkpoint {
    /// The start of the list.
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            cursor: None,
            offset: 0,
            counts: Counts::default(),
            complete: false,
            reconcile: None,
        }
    }

    /// A reconcile's start: the listing from the first object.
    pub fn reconcile(kind: Kind, run_started_ms: i64) -> Self {
        Self {
            reconcile: Some(ReconcileState::new(run_started_ms)),
            ..Self::new(kind)
        }
    }

    pub fn key(kind: Kind) -> Key {
        Key {
            pk: CHECKPOINT_PK.into(),
            sk: kind.as_str().into(),
        }
    }

    pub fn reconcile_key(kind: Kind) -> Key {
        Key {
            pk: RECONCILE_PK.into(),
            sk: kind.as_str().into(),
        }
    }

    /// Where the next page starts, for logs and the summary.
    pub fn position(&self) -> String {
        match (&self.cursor, self.kind) {
            (Some(cursor), _) => format!("after {cursor}"),
            (None, Kind::Users) => "the first user".into(),
            (None, _) => format!("offset {}", self.offset),
        }
    }

    pub(crate) fn to_item(&self, now_ms: i64) -> Item {
        let key = match self.reconcile {
            None => Self::key(self.kind),
            Some(_) => Self::reconcile_key(self.kind),
        };
        let mut item = json!({
            attr::PK: key.pk, attr::SK: key.sk, attr::ENTITY: CHECKPOINT_ENTITY.as_str(),
            "offset": self.offset, "pages": self.counts.pages, "seen": self.counts.seen,
            "written": self.counts.written, "stale": self.counts.stale,
            "skipped": self.counts.skipped,
            "complete": self.complete, attr::UPDATED_AT: now_ms,
        });
        if let Some(cursor) = &self.cursor {
            item["cursor"] = json!(cursor);
        }
        if let Some(r) = &self.reconcile {
            item["run_started_at"] = json!(r.run_started_ms);
            item["phase"] = json!(r.phase.as_str());
            item["sweep_pages"] = json!(r.sweep_pages);
            item["tombstone_from"] = json!(r.tombstone_from);
            if let (Value::Object(item), Value::Object(counts)) = (&mut item, json!(r.counts)) {
                item.extend(counts);
            }
            if let Some(from) = &r.scan_from {
                item["scan_from"] = Value::Object(from.clone());
            }
        }
        match item {
            Value::Object(map) => encoding::from_json(&map),
            _ => unreachable!("built as an object"),
        }
    }

    /// Reads a stored checkpoint; absent counters read as 0.
    pub fn from_item(kind: Kind, item: &Item) -> Result<Self, String> {
        let item = &encoding::to_json(item).map_err(|e| e.to_string())?;
        if item.get(attr::ENTITY).and_then(Value::as_str) != Some(CHECKPOINT_ENTITY.as_str()) {
            return Err(format!(
                "{CHECKPOINT_PK}/{} is not a checkpoint",
                kind.as_str()
            ));
        }
        let n = |name: &str| item.get(name).and_then(Value::as_u64).unwrap_or(0);
        let reconcile = match item.get("run_started_at").and_then(Value::as_i64) {
            None => None,
            Some(run_started_ms) => Some(ReconcileState {
                run_started_ms,
                phase: item
                    .get("phase")
                    .and_then(Value::as_str)
                    .and_then(Phase::parse)
                    .ok_or("a reconcile checkpoint without a phase")?,
                scan_from: item.get("scan_from").and_then(Value::as_object).cloned(),
                sweep_pages: n("sweep_pages"),
                tombstone_from: n("tombstone_from"),
                counts: ReconcileCounts {
                    live: n("live"),
                    candidates: n("candidates"),
                    found: n("found"),
                    confirmed_gone: n("confirmed_gone"),
                    unconfirmed: n("unconfirmed"),
                    tombstoned: n("tombstoned"),
                    refused: n("refused"),
                },
            }),
        };
        Ok(Self {
            kind,
            cursor: item
                .get("cursor")
                .and_then(Value::as_str)
                .map(str::to_owned),
            offset: n("offset"),
            counts: Counts {
                pages: n("pages"),
                seen: n("seen"),
                written: n("written"),
                stale: n("stale"),
                skipped: n("skipped"),
            },
            complete: item
                .get("complete")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            reconcile,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    #[test]
    fn round_trips_and_never_collides_with_entity_keys() {
        let cp = Checkpoint {
            cursor: Some("user_2x".into()),
            counts: Counts {
                pages: 2,
                seen: 20,
                written: 19,
                stale: 1,
                skipped: 0,
            },
            ..Checkpoint::new(Kind::Users)
        };
        let item = cp.to_item(1_760_000_000_000);
        assert_eq!(encoding::text(&item, "pk"), Some("BACKFILL"));
        assert_eq!(encoding::text(&item, "sk"), Some("users"));
        assert!(!item.contains_key("gsi1pk"), "not in the index");
        assert!(!item.contains_key("expires_at"), "kept until a --restart");
        assert_eq!(Checkpoint::from_item(Kind::Users, &item).unwrap(), cp);
        assert!(!CHECKPOINT_PK.contains('#'));
        assert_eq!(cp.position(), "after user_2x");
    }

    #[test]
    fn offsets_and_a_fresh_start() {
        let cp = Checkpoint {
            offset: 40,
            ..Checkpoint::new(Kind::Organizations)
        };
        assert_eq!(cp.position(), "offset 40");
        let back = Checkpoint::from_item(Kind::Organizations, &cp.to_item(0)).unwrap();
        assert_eq!(back, cp);
        assert_eq!(Checkpoint::new(Kind::Memberships).position(), "offset 0");
        assert_eq!(Checkpoint::new(Kind::Users).position(), "the first user");
    }

    #[test]
    fn a_reconciles_phases_round_trip_under_their_own_key() {
        let mut cp = Checkpoint::reconcile(Kind::Memberships, 1_700_000_000_000);
        cp.offset = 1_000;
        let state = cp.reconcile.as_mut().unwrap();
        state.phase = Phase::Sweep;
        state.scan_from =
            Some(encoding::to_json(&Key::membership("org_1", "user_1").item()).unwrap());
        state.counts.live = 10;
        state.counts.confirmed_gone = 2;
        let item = cp.to_item(5);
        assert_eq!(encoding::text(&item, "pk"), Some("RECONCILE"));
        assert_eq!(encoding::text(&item, "sk"), Some("memberships"));
        assert_eq!(Checkpoint::from_item(Kind::Memberships, &item).unwrap(), cp);
        // A backfill checkpoint has no reconcile state.
        let backfill = Checkpoint::new(Kind::Users).to_item(0);
        assert_eq!(
            Checkpoint::from_item(Kind::Users, &backfill)
                .unwrap()
                .reconcile,
            None
        );
    }

    #[test]
    fn an_item_that_is_not_a_checkpoint_is_refused() {
        let mut item = Checkpoint::new(Kind::Users).to_item(0);
        item.insert("entity".into(), AttributeValue::S("user".into()));
        assert!(Checkpoint::from_item(Kind::Users, &item).is_err());
    }
}
