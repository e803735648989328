//! `clerk-webhooks-notify`'s entrypoint: one batch of the table's stream records in (Lambda's
//! `{"Records": [...]}`), the records to hand over again out (`batchItemFailures`).
//!
//! For each record: [`Images::of`] reads its items, [`change_of`] says which change it is, if
//! any, and [`actions`] which actions that change needs; each action is then done once:
//!
//! 1. **claim** `(action, change)` in the table: one conditional write, leased for [`LEASE`].
//!    Done or failed before: nothing more. Held by another invocation: wait for it while the
//!    time allows, else report the record, so Lambda retries it;
//! 2. **send** the request (or, in preview, log what would be sent, values masked);
//! 3. **finish**: 2xx marks the claim done; a permanent refusal marks it failed (one error line,
//!    a metric, and the batch goes on); a 429 with a `Retry-After` that fits is waited out
//!    once; anything else retryable (429, 5xx, timeouts, connection errors) ends the lease and
//!    reports the record.
//!
//! Exactly once: a stream retry, a replayed batch, a retry after a timeout and concurrent
//! invocations all meet the same claim. What is left is the window between a provider's 2xx
//! and the "done" mark: a crash there sends again after the lease, which Resend's
//! `Idempotency-Key` absorbs for the email (within its 24 hours) and Slack cannot.
//!
//! Change events for EventBridge ([`super::change_event`]) take the same claims, one per
//! event, and are put together after the batch's other actions, ten a call
//! ([`put_events`]); a crash between the put and the "done" mark puts the event again, with
//! the same `change_id`.

mod put_events;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use serde::Serialize;
use serde_json::Value;

use super::action::{actions, message, Action, View};
use super::answer::Answer;
use super::change::{change_of, record_time_ms, Change, Images, Window};
use super::change_event::{change_events, ChangeEvent};
use super::config::{Delivery, NotifyConfig};
use super::event_bus::EventBus;
use super::sender::{target, Sender};
use crate::env::ConfigError;
use crate::metrics;
use crate::store::{Claim, Finished, Store, StoreError};
use crate::table::Key;

/// How long a claim is ours: longer than one request ([`super::sender::REQUEST_TIMEOUT`])
/// plus one `Retry-After` wait, which is only taken when it fits inside the lease.
pub const LEASE: Duration = Duration::from_secs(30);
/// How long a claim is kept (TTL): past Svix's ~27 hours of retries, Resend's 24-hour
/// idempotency window and the stream's 24 hours, by a wide margin.
pub const KEEP_SECS: i64 = 30 * 24 * 60 * 60;
/// Time kept back to answer Lambda: a record is started only while a whole request and this
/// margin still fit before the deadline.
const MARGIN: Duration = Duration::from_secs(2);

/// Lambda's partial batch response: the records to hand over again. Lambda retries from the
/// lowest of them, so records after a failed one come again too (their claims make that safe).
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    /// The record's `SequenceNumber`.
    pub item_identifier: String,
}

impl BatchResponse {
    /// The sequence numbers reported.
    pub fn failed(&self) -> Vec<&str> {
        self.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }
}

/// Why a whole invocation failed (Lambda then retries the whole batch).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("the notifier is not set up: {0}")]
    Setup(String),
    #[error("the event is not a DynamoDB Streams event: it has no Records list")]
    NotAStreamEvent,
}

/// The notifier's clock: the system's, or ahead of it (tests: after a lease has run out).
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    ahead_ms: i64,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn ahead(by: Duration) -> Self {
        Self {
            ahead_ms: by.as_millis() as i64,
        }
    }

    pub fn now_ms(self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        now + self.ahead_ms
    }
}

/// Whether a record is finished with, or must be handed over again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Done,
    Retry,
}

/// Shared state, built once at init.
pub struct Notifier {
    ready: Result<Ready, String>,
}

struct Ready {
    config: NotifyConfig,
    store: Store,
    sender: Sender,
    /// Where change events go, when the configuration puts them.
    event_bus: Option<EventBus>,
}

impl Notifier {
    /// The notifier for `config`, its claims in the table through `client`. A configuration
    /// error fails every invocation (so no record is lost while it is fixed).
    pub fn new(config: Result<NotifyConfig, ConfigError>, client: Client) -> Self {
        let ready = config.map_err(|e| e.to_string()).and_then(|config| {
            let sender = Sender::new().map_err(|e| e.to_string())?;
            Ok(Self::ready(config, client, sender))
        });
        Self { ready }
    }

    /// As [`Notifier::new`], with this sender (tests: a shorter request timeout).
    pub fn with_sender(config: NotifyConfig, client: Client, sender: Sender) -> Self {
        Self {
            ready: Ok(Self::ready(config, client, sender)),
        }
    }

    fn ready(config: NotifyConfig, client: Client, sender: Sender) -> Ready {
        Ready {
            store: Store::new(client, config.table_name.clone()),
            config,
            sender,
            event_bus: None,
        }
    }

    /// Puts change events with this client (`EVENT_BUS_NAME`).
    pub fn with_event_bus(mut self, bus: EventBus) -> Self {
        if let Ok(ready) = &mut self.ready {
            ready.event_bus = Some(bus);
        }
        self
    }

    /// One invocation: `event` is Lambda's DynamoDB Streams event; `deadline` is the
    /// invocation's.
    pub async fn invoke(
        &self,
        event: &Value,
        deadline: Instant,
    ) -> Result<BatchResponse, NotifyError> {
        self.invoke_at(event, deadline, Clock::system()).await
    }

    /// As [`Notifier::invoke`], on `clock`.
    pub async fn invoke_at(
        &self,
        event: &Value,
        deadline: Instant,
        clock: Clock,
    ) -> Result<BatchResponse, NotifyError> {
        let ready = self
            .ready
            .as_ref()
            .map_err(|e| NotifyError::Setup(e.clone()))?;
        // Records stay JSON: one unreadable record is skipped on its own instead of failing
        // the batch's deserialisation (and with it every record in it).
        let records = event
            .get("Records")
            .and_then(Value::as_array)
            .ok_or(NotifyError::NotAStreamEvent)?;
        let started = Instant::now();
        let mut failures = Vec::new();
        // The batch's change events, by record: put together, up to ten a call.
        let mut events: Vec<(String, ChangeEvent)> = Vec::new();
        for (i, record) in records.iter().enumerate() {
            let Some(number) = sequence_number(record) else {
                // Lambda's records always have one; without it the record cannot be reported.
                tracing::error!("notify: a stream record without a SequenceNumber, skipped");
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left < ready.sender.timeout() + MARGIN {
                let rest: Vec<&str> = records[i..].iter().filter_map(sequence_number).collect();
                tracing::warn!(
                    records = rest.len(),
                    "notify: out of time; the rest of the batch is handed over again"
                );
                failures.extend(rest.into_iter().map(str::to_owned));
                break;
            }
            let (progress, record_events) = ready.record(record, deadline, clock).await;
            if progress == Progress::Retry {
                failures.push(number.to_owned());
            }
            events.extend(record_events.into_iter().map(|e| (number.to_owned(), e)));
        }
        for number in ready.put_events(events, deadline, clock).await {
            if !failures.contains(&number) {
                failures.push(number);
            }
        }
        tracing::info!(
            records = records.len(),
            failed = failures.len(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "notify batch"
        );
        Ok(BatchResponse {
            batch_item_failures: failures
                .into_iter()
                .map(|item_identifier| ItemFailure { item_identifier })
                .collect(),
        })
    }
}

fn sequence_number(record: &Value) -> Option<&str> {
    record["dynamodb"]["SequenceNumber"]
        .as_str()
        .filter(|s| !s.is_empty())
}

impl Ready {
    /// The record's email and Slack actions, done; and its change events, to put with the
    /// batch's ([`Ready::put_events`]).
    async fn record(
        &self,
        record: &Value,
        deadline: Instant,
        clock: Clock,
    ) -> (Progress, Vec<ChangeEvent>) {
        let now = clock.now_ms();
        let images = match Images::of(record) {
            Ok(images) => images,
            Err(error) => {
                // Permanent: the same record will never read better, and it must not block
                // its shard.
                tracing::error!(
                    sequence_number = sequence_number(record),
                    %error,
                    "notify: unreadable stream record, skipped"
                );
                self.metric("none", NotifyOutcome::Unreadable, now);
                return (Progress::Done, Vec::new());
            }
        };
        let events = match &self.config.events {
            Some(settings) => change_events(
                images.old.as_ref(),
                images.new.as_ref(),
                images.removal,
                &settings.rules,
            ),
            None => Vec::new(),
        };
        let window = Window::hours(
            record_time_ms(record).unwrap_or(now),
            self.config.max_age_hours,
        );
        let Some(change) = change_of(images.old.as_ref(), images.new.as_ref(), window) else {
            return (Progress::Done, events);
        };
        let mut progress = Progress::Done;
        for action in actions(&change, &self.config) {
            if self.act(action, &change, deadline, clock).await == Progress::Retry {
                progress = Progress::Retry;
            }
        }
        (progress, events)
    }

    /// Claims, does and finishes one action for one change.
    async fn act(
        &self,
        action: Action,
        change: &Change,
        deadline: Instant,
        clock: Clock,
    ) -> Progress {
        let change_id = change.id();
        let name = action.as_str();
        let key = Key::claim(name, &change_id);
        let started = Instant::now();
        let (token, attempt) = match self.take(&key, deadline, clock).await {
            Ok(Claim::Taken { token, attempt }) => (token, attempt),
            Ok(Claim::Done | Claim::Failed) => {
                tracing::debug!(action = name, change = %change_id, "notify: already done");
                self.metric(name, NotifyOutcome::AlreadyDone, clock.now_ms());
                return Progress::Done;
            }
            Ok(Claim::Held { .. }) => {
                tracing::warn!(
                    action = name,
                    change = %change_id,
                    "notify retry: another invocation holds the claim"
                );
                self.metric(name, NotifyOutcome::Retry, clock.now_ms());
                return Progress::Retry;
            }
            Err(error) => {
                tracing::warn!(action = name, change = %change_id, %error, "notify retry: could not claim");
                self.metric(name, NotifyOutcome::Retry, clock.now_ms());
                return Progress::Retry;
            }
        };
        let lease_end = started + LEASE;

        if action.delivery(&self.config) == Some(&Delivery::Preview) {
            if let Some(shown) = message(action, change, &self.config, View::Masked) {
                tracing::info!(
                    action = name,
                    change = %change_id,
                    request = %shown.body,
                    "notify preview: would send (values masked; set the action's key to send)"
                );
            }
            self.finish(&key, &token, Finished::Done).await;
            self.metric(name, NotifyOutcome::Previewed, clock.now_ms());
            return Progress::Done;
        }
        let Some((target, message)) = message(action, change, &self.config, View::Real)
            .and_then(|m| Some((target(&m, &self.config)?, m)))
        else {
            // `actions` lists configured actions only; nothing to do is done.
            self.finish(&key, &token, Finished::Done).await;
            return Progress::Done;
        };

        let mut waited = false;
        loop {
            let reply = self.sender.send(&message, &target).await;
            let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            match reply.answer {
                Answer::Sent => {
                    self.finish(&key, &token, Finished::Done).await;
                    tracing::info!(
                        action = name, change = %change_id, attempt, status = reply.status,
                        duration_ms, "notify sent"
                    );
                    self.metric(name, NotifyOutcome::Sent, clock.now_ms());
                    return Progress::Done;
                }
                Answer::Refused { status } => {
                    self.finish(&key, &token, Finished::Failed).await;
                    tracing::error!(
                        action = name, change = %change_id, attempt, status,
                        code = reply.code.as_deref(), duration_ms,
                        "notify refused: permanent, not retried (check the action's configuration)"
                    );
                    self.metric(name, NotifyOutcome::Refused, clock.now_ms());
                    return Progress::Done;
                }
                Answer::RetryLater { .. } => {
                    let left = deadline
                        .min(lease_end)
                        .saturating_duration_since(Instant::now());
                    let wait = reply
                        .answer
                        .wait_within(left, self.sender.timeout() + MARGIN)
                        .filter(|_| !waited);
                    if let Some(wait) = wait {
                        tracing::info!(
                            action = name, change = %change_id, status = reply.status,
                            wait_ms = wait.as_millis() as u64,
                            "notify: the provider asked to wait; waiting, then asking again"
                        );
                        tokio::time::sleep(wait).await;
                        waited = true;
                        continue;
                    }
                    // Lambda's retry may take the claim at once instead of waiting the lease.
                    if let Err(error) = self.store.release_claim(&key, &token).await {
                        tracing::warn!(action = name, change = %change_id, %error, "notify: could not end the lease early");
                    }
                    tracing::warn!(
                        action = name, change = %change_id, attempt, status = reply.status,
                        code = reply.code.as_deref(), duration_ms,
                        "notify retry: the record is handed back to Lambda"
                    );
                    self.metric(name, NotifyOutcome::Retry, clock.now_ms());
                    return Progress::Retry;
                }
            }
        }
    }

    /// Takes the claim. Held by another invocation: asks again, a little later each time,
    /// while its lease could still end within this invocation; that covers both a concurrent
    /// invocation finishing and a crashed one's lease running out.
    async fn take(&self, key: &Key, deadline: Instant, clock: Clock) -> Result<Claim, StoreError> {
        let lease_ms = LEASE.as_millis() as i64;
        let mut pause = Duration::from_millis(50);
        loop {
            let now = clock.now_ms();
            let claim = self.store.claim(key, now, lease_ms, KEEP_SECS).await?;
            let Claim::Held { until_ms } = claim else {
                return Ok(claim);
            };
            let lease_left = Duration::from_millis(until_ms.saturating_sub(now).max(0) as u64);
            let left = deadline.saturating_duration_since(Instant::now());
            if lease_left + self.sender.timeout() + MARGIN > left {
                return Ok(claim);
            }
            tokio::time::sleep(pause.min(lease_left + Duration::from_millis(10))).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    async fn finish(&self, key: &Key, token: &str, finished: Finished) {
        match self.store.finish_claim(key, token, finished).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                claim = %key.pk,
                "notify: the lease ran out before the claim was finished; another attempt took it over"
            ),
            Err(error) => tracing::error!(
                claim = %key.pk,
                %error,
                "notify: could not mark the claim finished; it is taken over after its lease"
            ),
        }
    }

    fn metric(&self, action: &str, outcome: NotifyOutcome, now_ms: i64) {
        println!(
            "{}",
            notify_emf(&self.config.metrics_namespace, action, outcome, now_ms)
        );
    }
}

/// What the notifier did about one action for one change (`Unreadable`: a record that is not
/// a DynamoDB item, with the action `none`). Prefixed, so the webhook's alarms on `Retry` and
/// `Rejected` never count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOutcome {
    Sent,
    Previewed,
    AlreadyDone,
    Retry,
    Refused,
    Unreadable,
}

impl metrics::Outcome for NotifyOutcome {
    const ALL: &'static [Self] = &[
        Self::Sent,
        Self::Previewed,
        Self::AlreadyDone,
        Self::Retry,
        Self::Refused,
        Self::Unreadable,
    ];

    fn metric(self) -> &'static str {
        match self {
            Self::Sent => "NotifySent",
            Self::Previewed => "NotifyPreviewed",
            Self::AlreadyDone => "NotifyAlreadyDone",
            Self::Retry => "NotifyRetry",
            Self::Refused => "NotifyRefused",
            Self::Unreadable => "NotifyUnreadable",
        }
    }
}

/// The EMF JSON object for one notifier outcome of `action`.
pub fn notify_emf(
    namespace: &str,
    action: &str,
    outcome: NotifyOutcome,
    timestamp_ms: i64,
) -> serde_json::Value {
    let metrics = metrics::outcome_metrics::<NotifyOutcome>();
    let dimensions = serde_json::json!([["Action"], []]);
    let mut root = metrics::line(namespace, dimensions, metrics, timestamp_ms);
    root.insert(
        "Action".into(),
        serde_json::Value::String(action.to_owned()),
    );
    metrics::count(&mut root, outcome);
    serde_json::Value::Object(root)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_notifier_line_counts_one_outcome_for_one_action() {
        use crate::metrics::Outcome;
        let line = notify_emf("NS", "slack", NotifyOutcome::Retry, 7);
        let counted: Vec<&str> = NotifyOutcome::ALL
            .iter()
            .map(|o| o.metric())
            .filter(|o| line[*o] == json!(1))
            .collect();
        assert_eq!(counted, ["NotifyRetry"]);
        assert_eq!(line["Action"], json!("slack"));
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Action"], []])
        );
    }

    #[test]
    fn the_response_is_lambdas_partial_batch_shape() {
        let response = BatchResponse {
            batch_item_failures: vec![ItemFailure {
                item_identifier: "4421584500000000017450439091".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "4421584500000000017450439091"}]})
        );
        assert_eq!(
            serde_json::to_value(BatchResponse::default()).unwrap(),
            json!({"batchItemFailures": []})
        );
    }

    #[test]
    fn a_record_is_identified_by_its_sequence_number() {
        let record = json!({"dynamodb": {"SequenceNumber": "111"}});
        assert_eq!(sequence_number(&record), Some("111"));
        assert_eq!(sequence_number(&json!({"dynamodb": {}})), None);
        assert_eq!(
            sequence_number(&json!({"dynamodb": {"SequenceNumber": ""}})),
            None
        );
    }

    #[test]
    fn a_clock_ahead_is_ahead() {
        let ahead = Clock::ahead(Duration::from_secs(60)).now_ms();
        let now = Clock::system().now_ms();
        assert!(
            (59_000..=61_000).contains(&(ahead - now)),
            "{}",
            ahead - now
        );
    }
}
