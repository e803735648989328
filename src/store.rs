//! Executes a [`Plan`] on DynamoDB. The only module that knows the SDK.
//!
//! One event is one `TransactWriteItems`: the event record and the entity write commit
//! together or not at all, so a crash or a failed call never leaves half an event behind.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use aws_sdk_dynamodb::Client;

use crate::plan::{Cascade, Guard, Plan, Write};
use crate::table::{Dependents, Item, Key, GSI1, TTL_ATTRIBUTE};

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

/// Where the claim on one action for one change stands, once a claimer has tried to take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours until the lease ends: act, then [`Store::finish_claim`] with this token.
    Taken { token: String, attempt: u64 },
    /// Someone acted and the provider accepted it: never again.
    Done,
    /// Someone acted and the provider refused it for good: never again.
    Failed,
    /// Another claimer holds a lease until this time (ms): ask again later.
    Held { until_ms: i64 },
}

/// How a claim ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Done,
    Failed,
}

/// Why DynamoDB did not apply a request. Nothing was applied in either case.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, a 5xx, a timeout, a lost connection: a retry can succeed.
    #[error("DynamoDB {operation} failed: {detail}")]
    Call {
        operation: &'static str,
        detail: String,
    },
    #[error("transaction cancelled: {0}")]
    Cancelled(String),
    #[error("invalid item: {0}")]
    Item(String),
    /// DynamoDB refused the request itself (`ValidationException`, or a transaction cancelled
    /// for `ValidationError`): the same request will be refused every time. After the item
    /// encoding this means a bug of ours, not a busy table.
    #[error("DynamoDB refused {operation} as invalid: {detail}")]
    Refused {
        operation: &'static str,
        detail: String,
    },
}

impl StoreError {
    /// Whether no retry of the same request can succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }

    pub(crate) fn call<E: ProvideErrorMetadata, R>(
        operation: &'static str,
        err: &SdkError<E, R>,
    ) -> Self {
        if let SdkError::ServiceError(e) = err {
            if e.err().code() == Some("ValidationException") {
                // DynamoDB's message names the rule (`Item size has exceeded…`), not the data.
                let detail = e
                    .err()
                    .message()
                    .unwrap_or("ValidationException")
                    .to_owned();
                return Self::Refused { operation, detail };
            }
        }
        // Only the error's kind and DynamoDB's code and message: never request data.
        let detail = match err {
            SdkError::ServiceError(e) => format!(
                "{}: {}",
                e.err().code().unwrap_or("unknown"),
                e.err().message().unwrap_or("")
            ),
            SdkError::TimeoutError(_) => "timed out".into(),
            SdkError::DispatchFailure(_) => "could not reach DynamoDB".into(),
            SdkError::ResponseError(_) => "unreadable response".into(),
            SdkError::ConstructionFailure(_) => "could not build the request".into(),
            _ => "unknown error".into(),
        };
        Self::Call { operation, detail }
    }
}

/// How often a transaction that lost a race (`TransactionConflict`) is tried again before the
/// request answers 503 and leaves the retry to Svix.
const CONFLICT_ATTEMPTS: u32 = 3;
/// A cascade's deletes in flight at once.
const DELETE_CONCURRENCY: usize = 16;

/// Per-attempt and per-call limits. Svix gives up after 15 s; with these a hung DynamoDB
/// turns into a 503 within about 6 s, well before that and before the Lambda timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_000);
const OPERATION_TIMEOUT: Duration = Duration::from_millis(6_000);

/// A DynamoDB client from the standard AWS environment (region, credentials, and
/// `AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local), with our limits. Built once at init.
pub async fn client_from_env() -> Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    Client::from_conf(with_limits(aws_sdk_dynamodb::config::Builder::from(&shared)).build())
}

/// Applies our timeouts and retry policy to any client configuration.
pub fn with_limits(config: aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    // Standard mode retries throttling and transient errors with back-off, 3 attempts in all.
    config
        .timeout_config(timeouts)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
}

#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// One cheap read (an item that never exists) so the connection, TLS session and
    /// credentials are ready before the first webhook. Called once at init.
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("pk", s("WARMUP"))
            .key("sk", s("WARMUP"))
            .projection_expression("pk")
            .send()
            .await
            .map_err(|e| StoreError::call("GetItem", &e))?;
        Ok(())
    }

    /// Reads one item (strongly consistent), as JSON. For the backfill's checkpoint.
    pub async fn get_item(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::call("GetItem", &e))?;
        Ok(out.item)
    }

    /// Writes one item unconditionally. For the backfill's checkpoint, which only the backfill
    /// writes; never for entity items, which go through [`Store::apply`] and its guards.
    pub async fn put_item(&self, item: &Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item.clone()))
            .send()
            .await
            .map_err(|e| StoreError::call("PutItem", &e))?;
        Ok(())
    }

    /// Writes `item` only if no item has its key. `false` when one had (another run bound the
    /// table first).
    pub async fn put_if_absent(&self, item: &Item) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item.clone()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(StoreError::call("PutItem", &err)),
        }
    }

    /// Every item of partition `pk`, in sort-key order (strongly consistent).
    pub async fn partition(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| StoreError::call("Query", &e))?;
            items.extend(page.items().iter().cloned());
            start_key = page.last_evaluated_key().cloned();
            if start_key.is_none() {
                return Ok(items);
            }
        }
    }

    /// One page of the live items whose `entity` is `entity`, with the `attributes` named:
    /// the items (each with `pk` and `sk`) and where the next page starts (`None` at the end).
    /// A whole-table scan, for the reconcile's sweep.
    pub async fn scan_live(
        &self,
        entity: &str,
        attributes: &[&str],
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut request = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("entity = :entity AND attribute_not_exists(deleted)")
            .expression_attribute_values(":entity", s(entity))
            .consistent_read(true)
            .set_exclusive_start_key(start);
        let mut projection = vec!["pk".to_owned(), "sk".to_owned()];
        for (i, name) in attributes.iter().enumerate() {
            // Some names (`version`, `data`) are DynamoDB reserved words.
            let placeholder = format!("#a{i}");
            request = request.expression_attribute_names(&placeholder, *name);
            projection.push(placeholder);
        }
        let page = request
            .projection_expression(projection.join(", "))
            .send()
            .await
            .map_err(|e| StoreError::call("Scan", &e))?;
        Ok((page.items().to_vec(), page.last_evaluated_key().cloned()))
    }

    /// The instances the event records name (`instance_id`), from up to `max_pages` scan
    /// pages (a page is up to 1 MB of items): evidence of where the table's webhooks come
    /// from, while no backfill has bound it.
    pub async fn webhook_instances(
        &self,
        max_pages: usize,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut found = std::collections::BTreeSet::new();
        let mut start_key = None;
        for _ in 0..max_pages {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("entity = :event AND attribute_exists(instance_id)")
                .expression_attribute_values(":event", s("event"))
                .projection_expression("instance_id")
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| StoreError::call("Scan", &e))?;
            found.extend(
                page.items()
                    .iter()
                    .filter_map(|item| match item.get("instance_id") {
                        Some(AttributeValue::S(id)) => Some(id.clone()),
                        _ => None,
                    }),
            );
            start_key = page.last_evaluated_key().cloned();
            if start_key.is_none() {
                break;
            }
        }
        Ok(found)
    }

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
                    .condition_expression("attribute_not_exists(pk)")
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
                    .condition_expression("attribute_not_exists(deleted)")
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
        let condition = match guard {
            Guard::Newer => "attribute_not_exists(pk) OR #version < :version",
            // A tombstone has `deleted`; live items never do.
            Guard::NewerAndNotDeleted => {
                "attribute_not_exists(pk) OR (#version < :version AND attribute_not_exists(deleted))"
            }
        };
        let put = self
            .put(item)
            .condition_expression(condition)
            .expression_attribute_names("#version", "version")
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

    /// Takes the claim at `key` for `lease_ms` from `now_ms`, if nobody holds it and nobody
    /// finished it: one conditional UpdateItem, so of any number of concurrent claimers exactly
    /// one gets it. An expired lease (a claimer that crashed between claiming and finishing)
    /// is taken over. The claim is kept `keep_secs` (TTL), past every redelivery window.
    pub async fn claim(
        &self,
        key: &Key,
        now_ms: i64,
        lease_ms: i64,
        keep_secs: i64,
    ) -> Result<Claim, StoreError> {
        let token = format!("{:016x}", crate::backoff::random_u64());
        let n = |v: i64| AttributeValue::N(v.to_string());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression(
                "SET entity = :entity, #state = :pending, lease_until = :lease, claim_token = :token, \
                 #ttl = :expires ADD attempts :one",
            )
            .condition_expression(
                "attribute_not_exists(pk) OR (#state = :pending AND lease_until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":entity", s("claim"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":lease", n(now_ms.saturating_add(lease_ms)))
            .expression_attribute_values(":token", s(token.clone()))
            .expression_attribute_values(":expires", n(now_ms.div_euclid(1000) + keep_secs))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now_ms))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let number = |item: &HashMap<String, AttributeValue>, name: &str| match item.get(name) {
            Some(AttributeValue::N(v)) => v.parse::<i64>().ok(),
            _ => None,
        };
        match result {
            Ok(out) => {
                let attempt = out
                    .attributes()
                    .and_then(|item| number(item, "attempts"))
                    .unwrap_or(1);
                Ok(Claim::Taken {
                    token,
                    attempt: attempt as u64,
                })
            }
            Err(err) => {
                let Some(UpdateItemError::ConditionalCheckFailedException(failed)) =
                    err.as_service_error()
                else {
                    return Err(StoreError::call("UpdateItem", &err));
                };
                let held = failed.item().cloned().unwrap_or_default();
                Ok(match held.get("state") {
                    Some(AttributeValue::S(state)) if state == "done" => Claim::Done,
                    Some(AttributeValue::S(state)) if state == "failed" => Claim::Failed,
                    _ => Claim::Held {
                        until_ms: number(&held, "lease_until").unwrap_or(now_ms),
                    },
                })
            }
        }
    }

    /// Marks a claim taken with `token` as finished. `false` when the lease was lost (it ran
    /// out and another claimer took over): the other claimer finishes it instead.
    pub async fn finish_claim(
        &self,
        key: &Key,
        token: &str,
        finished: Finished,
    ) -> Result<bool, StoreError> {
        let state = match finished {
            Finished::Done => "done",
            Finished::Failed => "failed",
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression("SET #state = :state REMOVE lease_until, claim_token")
            .condition_expression("#state = :pending AND claim_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":state", s(state))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        conditional(result.map(|_| ()))
    }

    /// Ends the lease of a claim taken with `token` without finishing it, so the next attempt
    /// (Lambda's retry of the record) can take it at once instead of waiting for the lease.
    /// `false` when the claim was no longer ours.
    pub async fn release_claim(&self, key: &Key, token: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression("SET lease_until = :ended REMOVE claim_token")
            .condition_expression("#state = :pending AND claim_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":ended", AttributeValue::N("0".into()))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        conditional(result.map(|_| ()))
    }

    /// Deletes every live dependent item the cascade names ([`Dependents`]), page by page.
    /// Safe to re-run.
    pub async fn cascade(&self, cascade: &Cascade) -> Result<usize, StoreError> {
        let dependents = match cascade {
            Cascade::Organization { org_id } => Dependents::of_organization(org_id),
            Cascade::User { user_id } => Dependents::of_user(user_id),
        };
        let mut deleted = 0;
        for dependents in dependents {
            let query = match dependents {
                Dependents::Partition { pk, sk_prefix } => self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":pk", s(pk))
                    .expression_attribute_values(":prefix", s(sk_prefix))
                    .consistent_read(true),
                // gsi1 is eventually consistent: an item written a moment before the
                // tombstone may be missed here. The parent checks stop new ones; a retry or the
                // next delete finds it.
                Dependents::Index { gsi1pk, sk_prefix } => {
                    let query = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .index_name(GSI1)
                        .expression_attribute_values(":pk", s(gsi1pk));
                    match sk_prefix {
                        Some(prefix) => query
                            .key_condition_expression(
                                "gsi1pk = :pk AND begins_with(gsi1sk, :prefix)",
                            )
                            .expression_attribute_values(":prefix", s(prefix)),
                        None => query.key_condition_expression("gsi1pk = :pk"),
                    }
                }
            };
            // Tombstones stay: they still order late events until their TTL.
            let live = query
                .filter_expression("attribute_not_exists(deleted)")
                .projection_expression("pk, sk");
            deleted += self.delete_all(live).await?;
        }
        Ok(deleted)
    }

    async fn delete_all(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<usize, StoreError> {
        let mut deleted = 0;
        let mut start_key = None;
        loop {
            let page = query
                .clone()
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| StoreError::call("Query", &e))?;
            let keys: Vec<_> = page.items().iter().map(key_only).collect();
            deleted += self.delete_unless_tombstone(keys).await?;
            start_key = page.last_evaluated_key().cloned();
            if start_key.is_none() {
                return Ok(deleted);
            }
        }
    }

    /// Deletes each of `keys` unless it has become a tombstone since the query read it: a
    /// delete event for that very item may commit between the two, and its tombstone must
    /// stay. One conditional `DeleteItem` per key, [`DELETE_CONCURRENCY`] at a time
    /// (`BatchWriteItem` cannot carry a condition). Returns how many went.
    async fn delete_unless_tombstone(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for chunk in keys.chunks(DELETE_CONCURRENCY) {
            let mut deletes = tokio::task::JoinSet::new();
            for key in chunk {
                let delete = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key.clone()))
                    .condition_expression("attribute_not_exists(deleted)");
                deletes.spawn(delete.send());
            }
            while let Some(result) = deletes.join_next().await {
                match result.expect("a DeleteItem task does not panic") {
                    Ok(_) => deleted += 1,
                    Err(err)
                        if matches!(
                            err.as_service_error(),
                            Some(DeleteItemError::ConditionalCheckFailedException(_))
                        ) => {}
                    Err(err) => return Err(StoreError::call("DeleteItem", &err)),
                }
            }
        }
        Ok(deleted)
    }
}

/// A conditional UpdateItem's result: `true` when it was made, `false` when its condition
/// failed.
fn conditional<R>(result: Result<(), SdkError<UpdateItemError, R>>) -> Result<bool, StoreError> {
    match result {
        Ok(()) => Ok(true),
        Err(err)
            if matches!(
                err.as_service_error(),
                Some(UpdateItemError::ConditionalCheckFailedException(_))
            ) =>
        {
            Ok(false)
        }
        Err(err) => Err(StoreError::call("UpdateItem", &err)),
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
            .is_some_and(|item| matches!(item.get("deleted"), Some(AttributeValue::Bool(true))))
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

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn key_of(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), s(&key.pk)), ("sk".to_owned(), s(&key.sk))])
}

fn key_only(item: &HashMap<String, AttributeValue>) -> HashMap<String, AttributeValue> {
    item.iter()
        .filter(|(name, _)| *name == "pk" || *name == "sk")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
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
