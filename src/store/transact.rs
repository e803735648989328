//! One event, one `TransactWriteItems`: the event record and the entity write commit together
//! or not at all, so a crash or a failed call never leaves half an event behind. Then, for a
//! delete, its cascade.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};

use super::client::{key_of, Store, StoreError};
use crate::table::{attr, Item, Key, LOOKUP_INDEXES};
use crate::writes::{Guard, Plan, Write};

/// What happened to an event that reached DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// This svix-id was already applied.
    Duplicate,
    /// The table holds a newer version, or the target (or a parent) was deleted.
    Stale,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Stale => "stale",
        }
    }
}

/// What a plan's transaction did, before any cascade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Applied,
    /// This svix-id was already applied.
    Duplicate,
    /// Refused by a newer version or a deleted parent. `tombstone`: the entity's stored item
    /// is a tombstone, so a stale delete still runs its cascade.
    Stale {
        tombstone: bool,
    },
}

impl Committed {
    pub fn outcome(self) -> Outcome {
        match self {
            Self::Applied => Outcome::Applied,
            Self::Duplicate => Outcome::Duplicate,
            Self::Stale { .. } => Outcome::Stale,
        }
    }
}

/// How often a transaction that lost a race (`TransactionConflict`) is tried again before the
/// request answers 503 and leaves the retry to Svix.
const CONFLICT_ATTEMPTS: u32 = 3;

impl Store {
    /// Runs the transaction, then the cascade when the parent's tombstone is in place
    /// (freshly written, written by an earlier delivery of this message, or found newer).
    pub async fn apply(&self, plan: &Plan) -> Result<Outcome, StoreError> {
        let committed = self.transact(plan).await?;
        if let Some(cascade) = &plan.cascade {
            // A duplicate means an earlier delivery wrote this tombstone but may have failed
            // mid-cascade: finishing the cascade is what makes Svix's retry complete it.
            let run = match committed {
                Committed::Applied | Committed::Duplicate => true,
                Committed::Stale { tombstone } => tombstone,
            };
            if run {
                self.cascade(cascade).await?;
            }
        }
        Ok(committed.outcome())
    }

    /// The transaction alone, without the cascade.
    pub async fn transact(&self, plan: &Plan) -> Result<Committed, StoreError> {
        let mut writes = plan.writes.clone();
        let mut conflicts = 0;
        loop {
            let items = self.transact_items(&writes)?;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Committed::Applied),
                Err(err) => err,
            };
            let reasons = match &err {
                SdkError::ServiceError(e) => match e.err() {
                    TransactWriteItemsError::TransactionCanceledException(c) => {
                        c.cancellation_reasons()
                    }
                    _ => return Err(StoreError::call("TransactWriteItems", &err)),
                },
                _ => return Err(StoreError::call("TransactWriteItems", &err)),
            };
            match classify(&writes, reasons) {
                Cancellation::Refused(committed) => return Ok(committed),
                Cancellation::RefreshNotNewer(indices) => {
                    // The carried-along object is older than ours: apply the rest of the
                    // event, still refusing it if that object has been deleted meanwhile.
                    for i in indices {
                        if let Write::Refresh { item, .. } = &writes[i] {
                            let key = Key::of(item).expect("planned items have keys");
                            writes[i] = Write::RequireNotDeleted(key);
                        }
                    }
                }
                Cancellation::Conflict if conflicts + 1 < CONFLICT_ATTEMPTS => {
                    conflicts += 1;
                    tokio::time::sleep(backoff(conflicts, 25)).await;
                }
                Cancellation::Conflict => {
                    return Err(StoreError::Cancelled("TransactionConflict".into()))
                }
                Cancellation::Other(codes) if codes.split(',').any(|c| c == "ValidationError") => {
                    return Err(StoreError::Refused {
                        operation: "TransactWriteItems",
                        detail: format!("cancellation reasons {codes}"),
                    })
                }
                Cancellation::Other(codes) => return Err(StoreError::Cancelled(codes)),
            }
        }
    }

    /// The `TransactWriteItems` request items for `writes`, conditions included.
    pub fn transact_items(&self, writes: &[Write]) -> Result<Vec<TransactWriteItem>, StoreError> {
        writes.iter().map(|w| self.transact_item(w)).collect()
    }

    fn transact_item(&self, write: &Write) -> Result<TransactWriteItem, StoreError> {
        let item = match write {
            Write::RecordEvent(item) => {
                // The idempotency check: the first delivery of a svix-id creates the record,
                // every later one fails here and cancels its whole transaction.
                let put = self
                    .put(item)
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", attr::PK)
                    .build()
                    .map_err(|e| StoreError::Item(e.to_string()))?;
                TransactWriteItem::builder().put(put).build()
            }
            Write::Put {
                item,
                version,
                guard,
            } => self.guarded_put(item, *version, *guard)?,
            Write::Refresh { item, version } => {
                self.guarded_put(item, *version, Guard::NewerAndNotDeleted)?
            }
            Write::RequireNotDeleted(key) => {
                // An absent item has no `deleted` either, so events that arrive before their
                // parents pass.
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_of(key)))
                    .condition_expression("attribute_not_exists(#deleted)")
                    .expression_attribute_names("#deleted", attr::DELETED)
                    .build()
                    .map_err(|e| StoreError::Item(e.to_string()))?;
                TransactWriteItem::builder().condition_check(check).build()
            }
        };
        Ok(item)
    }

    fn guarded_put(
        &self,
        item: &Item,
        version: i64,
        guard: Guard,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = self
            .put(item)
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#version", attr::VERSION);
        let put = match guard {
            Guard::Newer => {
                put.condition_expression("attribute_not_exists(#pk) OR #version < :version")
            }
            // A tombstone has `deleted`; live items never do.
            Guard::NewerAndNotDeleted => {
                let put = put.expression_attribute_names("#deleted", attr::DELETED);
                // A user written before the lookup indexes lacks their keys: the same version
                // (the same object) may be written again to add them, so a backfill indexes
                // such users. Content that is already keyed stays as it is.
                let lookups: Vec<&str> = LOOKUP_INDEXES
                    .iter()
                    .map(|index| index.key)
                    .filter(|key| item.contains_key(*key))
                    .collect();
                if lookups.is_empty() {
                    put.condition_expression(
                        "attribute_not_exists(#pk) OR (#version < :version AND attribute_not_exists(#deleted))",
                    )
                } else {
                    let missing: Vec<String> = (0..lookups.len())
                        .map(|i| format!("attribute_not_exists(#lookup{i})"))
                        .collect();
                    let put = lookups.iter().enumerate().fold(put, |put, (i, key)| {
                        put.expression_attribute_names(format!("#lookup{i}"), *key)
                    });
                    put.condition_expression(format!(
                        "attribute_not_exists(#pk) OR (#version < :version AND attribute_not_exists(#deleted)) \
                         OR (#version = :version AND attribute_not_exists(#deleted) AND ({}))",
                        missing.join(" OR ")
                    ))
                }
            }
        };
        let put = put
            .expression_attribute_values(":version", AttributeValue::N(version.to_string()))
            // Tells a stale write whether the newer item is a tombstone (a stale delete still
            // cascades; a refused refresh falls back) or a live item.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| StoreError::Item(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn put(&self, item: &Item) -> aws_sdk_dynamodb::types::builders::PutBuilder {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item.clone()))
    }
}

enum Cancellation {
    /// A condition failed: a duplicate or a stale write.
    Refused(Committed),
    /// Only [`Write::Refresh`] writes failed, on live items: these indices fall back.
    RefreshNotNewer(Vec<usize>),
    /// Another transaction touched the same items at the same moment.
    Conflict,
    /// Throttling, validation or anything else: the reason codes, for the log.
    Other(String),
}

/// Reads `TransactionCanceledException` reasons (one per write, in request order).
fn classify(writes: &[Write], reasons: &[CancellationReason]) -> Cancellation {
    let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
    let is_tombstone = |i: usize| {
        reasons
            .get(i)
            .and_then(|r| r.item())
            .is_some_and(|item| matches!(item.get(attr::DELETED), Some(AttributeValue::Bool(true))))
    };
    // A webhook's plan starts with its event record; a backfill plan has none.
    let record = writes
        .iter()
        .position(|w| matches!(w, Write::RecordEvent(_)));
    if record.is_some_and(|i| code(i) == "ConditionalCheckFailed") {
        return Cancellation::Refused(Committed::Duplicate);
    }
    let entity = writes
        .iter()
        .position(|w| matches!(w, Write::Put { .. }))
        .unwrap_or(1);
    let failed: Vec<usize> = (0..reasons.len())
        .filter(|&i| Some(i) != record && code(i) == "ConditionalCheckFailed")
        .collect();
    if !failed.is_empty() {
        let refreshes_only = failed
            .iter()
            .all(|&i| matches!(writes.get(i), Some(Write::Refresh { .. })) && !is_tombstone(i));
        if refreshes_only {
            return Cancellation::RefreshNotNewer(failed);
        }
        return Cancellation::Refused(Committed::Stale {
            tombstone: is_tombstone(entity),
        });
    }
    if (0..reasons.len()).any(|i| code(i) == "TransactionConflict") {
        return Cancellation::Conflict;
    }
    let codes: Vec<&str> = (0..reasons.len()).map(code).collect();
    Cancellation::Other(codes.join(","))
}

/// Transaction conflicts: `base_ms` doubling per attempt, at most 64 times it.
fn backoff(attempt: u32, base_ms: u64) -> Duration {
    crate::backoff::jittered(
        attempt,
        Duration::from_millis(base_ms),
        Duration::from_millis(base_ms << 6),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str) -> CancellationReason {
        CancellationReason::builder().code(code).build()
    }

    fn put() -> Write {
        Write::Put {
            item: Item::new(),
            version: 1,
            guard: Guard::Newer,
        }
    }

    fn writes() -> Vec<Write> {
        vec![Write::RecordEvent(Item::new()), put(), put()]
    }

    fn outcome(reasons: &[CancellationReason]) -> Option<Committed> {
        match classify(&writes(), reasons) {
            Cancellation::Refused(committed) => Some(committed),
            _ => None,
        }
    }

    #[test]
    fn event_record_failure_is_a_duplicate_whatever_else_failed() {
        let r = [
            reason("ConditionalCheckFailed"),
            reason("ConditionalCheckFailed"),
        ];
        assert_eq!(outcome(&r), Some(Committed::Duplicate));
    }

    #[test]
    fn entity_or_parent_failure_is_stale() {
        let r = [reason("None"), reason("ConditionalCheckFailed")];
        assert_eq!(outcome(&r), Some(Committed::Stale { tombstone: false }));
        let r = [
            reason("None"),
            reason("None"),
            reason("ConditionalCheckFailed"),
        ];
        assert_eq!(outcome(&r), Some(Committed::Stale { tombstone: false }));
        let tomb = CancellationReason::builder()
            .code("ConditionalCheckFailed")
            .item("deleted", AttributeValue::Bool(true))
            .build();
        assert_eq!(
            outcome(&[reason("None"), tomb]),
            Some(Committed::Stale { tombstone: true })
        );
    }

    #[test]
    fn a_backfill_plan_has_no_record_so_its_failures_are_stale_never_duplicate() {
        let plan = vec![
            put(),
            Write::RequireNotDeleted(Key::organization("org_1")),
            Write::RequireNotDeleted(Key::user("user_1")),
        ];
        let tomb = CancellationReason::builder()
            .code("ConditionalCheckFailed")
            .item("deleted", AttributeValue::Bool(true))
            .build();
        assert!(matches!(
            classify(&plan, &[tomb, reason("None"), reason("None")]),
            Cancellation::Refused(Committed::Stale { tombstone: true })
        ));
        assert!(matches!(
            classify(
                &plan,
                &[
                    reason("None"),
                    reason("None"),
                    reason("ConditionalCheckFailed")
                ]
            ),
            Cancellation::Refused(Committed::Stale { tombstone: false })
        ));
    }

    #[test]
    fn conflicts_and_throttles_are_not_outcomes() {
        assert!(matches!(
            classify(&writes(), &[reason("TransactionConflict"), reason("None")]),
            Cancellation::Conflict
        ));
        let Cancellation::Other(codes) =
            classify(&writes(), &[reason("ThrottlingError"), reason("None")])
        else {
            panic!("throttling must not be an outcome")
        };
        assert_eq!(codes, "ThrottlingError,None");
    }

    #[test]
    fn a_refused_refresh_falls_back_unless_it_met_a_tombstone() {
        let refresh = Write::Refresh {
            item: Item::new(),
            version: 1,
        };
        let plan = vec![Write::RecordEvent(Item::new()), put(), refresh];
        let live = [
            reason("None"),
            reason("None"),
            reason("ConditionalCheckFailed"),
        ];
        assert!(matches!(classify(&plan, &live), Cancellation::RefreshNotNewer(i) if i == [2]));
        let tomb = CancellationReason::builder()
            .code("ConditionalCheckFailed")
            .item("deleted", AttributeValue::Bool(true))
            .build();
        let deleted = [reason("None"), reason("None"), tomb];
        assert!(matches!(
            classify(&plan, &deleted),
            Cancellation::Refused(Committed::Stale { tombstone: false })
        ));
        // The entity itself failing too makes the event stale.
        let both = [
            reason("None"),
            reason("ConditionalCheckFailed"),
            reason("ConditionalCheckFailed"),
        ];
        assert!(matches!(
            classify(&plan, &both),
            Cancellation::Refused(Committed::Stale { .. })
        ));
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 1..10 {
            let d = backoff(attempt, 25).as_millis() as u64;
            let ceiling = 25 << attempt.min(6);
            assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d}");
        }
    }
}
