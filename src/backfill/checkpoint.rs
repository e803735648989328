//! Where a backfill of one kind stands, kept in the table itself so a run on a laptop and a
//! run in Lambda resume the same way: `BACKFILL` / `users` (or `organizations`,
//! `memberships`). Entity keys always hold a `#` (`USER#…`), and ids cannot contain one, so
//! the checkpoint can never collide with an entity. Pure conversions; the store reads and
//! writes it.

use serde_json::{json, Value};

use super::Kind;
use crate::table::{Item, Key};

pub(crate) const CHECKPOINT_PK: &str = "BACKFILL";
pub(crate) const CHECKPOINT_ENTITY: &str = "backfill_checkpoint";

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
    pub pages: u64,
    pub seen: u64,
    pub written: u64,
    pub stale: u64,
    pub skipped: u64,
    /// The last run reached the end of the list. A later run continues from there, so it
    /// only copies what was created since.
    pub complete: bool,
}

impl Checkpoint {
    /// The start of the list.
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            cursor: None,
            offset: 0,
            pages: 0,
            seen: 0,
            written: 0,
            stale: 0,
            skipped: 0,
            complete: false,
        }
    }

    pub fn key(kind: Kind) -> Key {
        Key {
            pk: CHECKPOINT_PK.into(),
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
        let key = Self::key(self.kind);
        let mut item = json!({
            "pk": key.pk, "sk": key.sk, "entity": CHECKPOINT_ENTITY,
            "offset": self.offset, "pages": self.pages, "seen": self.seen,
            "written": self.written, "stale": self.stale, "skipped": self.skipped,
            "complete": self.complete, "updated_at": now_ms,
        });
        if let Some(cursor) = &self.cursor {
            item["cursor"] = json!(cursor);
        }
        match item {
            Value::Object(map) => map,
            _ => unreachable!("built as an object"),
        }
    }

    /// Reads a stored checkpoint; absent counters read as 0.
    pub fn from_item(kind: Kind, item: &Item) -> Result<Self, String> {
        if item.get("entity").and_then(Value::as_str) != Some(CHECKPOINT_ENTITY) {
            return Err(format!(
                "{CHECKPOINT_PK}/{} is not a checkpoint",
                kind.as_str()
            ));
        }
        let n = |name: &str| item.get(name).and_then(Value::as_u64).unwrap_or(0);
        Ok(Self {
            kind,
            cursor: item
                .get("cursor")
                .and_then(Value::as_str)
                .map(str::to_owned),
            offset: n("offset"),
            pages: n("pages"),
            seen: n("seen"),
            written: n("written"),
            stale: n("stale"),
            skipped: n("skipped"),
            complete: item
                .get("complete")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_never_collides_with_entity_keys() {
        let cp = Checkpoint {
            cursor: Some("user_2x".into()),
            pages: 2,
            seen: 20,
            written: 19,
            stale: 1,
            ..Checkpoint::new(Kind::Users)
        };
        let item = cp.to_item(1_760_000_000_000);
        assert_eq!(item["pk"], json!("BACKFILL"));
        assert_eq!(item["sk"], json!("users"));
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
    fn an_item_that_is_not_a_checkpoint_is_refused() {
        let mut item = Checkpoint::new(Kind::Users).to_item(0);
        item.insert("entity".into(), json!("user"));
        assert!(Checkpoint::from_item(Kind::Users, &item).is_err());
    }
}
