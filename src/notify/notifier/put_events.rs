//! The batch's change events onto EventBridge, each once: claimed like the other actions (one
//! claim per event, keyed by its `change_id`), put ten a call, and each entry finished by its
//! own answer. Only the records of events that must be tried again are reported.

use std::time::Instant;

use super::{Clock, NotifyOutcome, Ready, MARGIN};
use crate::notify::change_event::ChangeEvent;
use crate::notify::config::BusDelivery;
use crate::notify::event_bus::{EntryAnswer, MAX_ENTRIES};
use crate::store::{Claim, Finished};
use crate::table::Key;

/// The name of the action in claims, logs and metrics.
pub const EVENT_ACTION: &str = "event_bridge";

/// An event whose claim this invocation holds.
struct Taken {
    record: String,
    event: ChangeEvent,
    key: Key,
    token: String,
}

impl Ready {
    /// Puts `events` (each with its record's sequence number); returns the records to report.
    pub(super) async fn put_events(
        &self,
        events: Vec<(String, ChangeEvent)>,
        deadline: Instant,
        clock: Clock,
    ) -> Vec<String> {
        let Some(settings) = &self.config.events else {
            return Vec::new();
        };
        let mut retry: Vec<String> = Vec::new();
        let mut taken = Vec::new();
        for (record, event) in events {
            if retry.contains(&record) {
                // The record comes again anyway; its other events with it.
                continue;
            }
            let change = event.detail.change_id.as_str();
            let key = Key::claim(EVENT_ACTION, change);
            match self.take(&key, deadline, clock).await {
                Ok(Claim::Taken { token, .. }) => taken.push(Taken {
                    record,
                    event,
                    key,
                    token,
                }),
                Ok(Claim::Done | Claim::Failed) => {
                    tracing::debug!(action = EVENT_ACTION, change, "notify: already done");
                    self.metric(EVENT_ACTION, NotifyOutcome::AlreadyDone, clock.now_ms());
                }
                Ok(Claim::Held { .. }) => {
                    tracing::warn!(
                        action = EVENT_ACTION,
                        change,
                        "notify retry: another invocation holds the claim"
                    );
                    self.metric(EVENT_ACTION, NotifyOutcome::Retry, clock.now_ms());
                    retry.push(record);
                }
                Err(error) => {
                    tracing::warn!(action = EVENT_ACTION, change, %error, "notify retry: could not claim");
                    self.metric(EVENT_ACTION, NotifyOutcome::Retry, clock.now_ms());
                    retry.push(record);
                }
            }
        }
        let bus = match &settings.delivery {
            BusDelivery::Put { bus } => bus,
            BusDelivery::Preview => {
                for t in &taken {
                    let detail = &t.event.detail;
                    tracing::info!(
                        action = EVENT_ACTION,
                        detail_type = t.event.detail_type.as_str(),
                        change = detail.change_id.as_str(),
                        id = detail.id.as_str(),
                        changed = ?detail.changed,
                        "notify preview: would put the event (ids only; set EVENT_BUS_NAME to put it)"
                    );
                    self.finish(&t.key, &t.token, Finished::Done).await;
                    self.metric(EVENT_ACTION, NotifyOutcome::Previewed, clock.now_ms());
                }
                return retry;
            }
        };
        for chunk in taken.chunks(MAX_ENTRIES) {
            let left = deadline.saturating_duration_since(Instant::now());
            let answers = match &self.event_bus {
                _ if left < self.sender.timeout() + MARGIN => Err("out of time".to_owned()),
                None => Err("no EventBridge client".to_owned()),
                Some(client) => {
                    let events: Vec<&ChangeEvent> = chunk.iter().map(|t| &t.event).collect();
                    client
                        .put(bus, &settings.source, &events)
                        .await
                        .map_err(|e| e.to_string())
                }
            };
            let answers = match answers {
                Ok(answers) => answers,
                Err(error) => {
                    tracing::warn!(
                        action = EVENT_ACTION,
                        events = chunk.len(),
                        error = error.as_str(),
                        "notify retry: the events are handed back to Lambda"
                    );
                    for t in chunk {
                        self.hand_back(t, clock, &mut retry).await;
                    }
                    continue;
                }
            };
            for (t, answer) in chunk.iter().zip(answers) {
                let change = t.event.detail.change_id.as_str();
                match answer {
                    EntryAnswer::Put => {
                        self.finish(&t.key, &t.token, Finished::Done).await;
                        tracing::info!(action = EVENT_ACTION, change, "notify sent");
                        self.metric(EVENT_ACTION, NotifyOutcome::Sent, clock.now_ms());
                    }
                    EntryAnswer::Refused { code } => {
                        self.finish(&t.key, &t.token, Finished::Failed).await;
                        tracing::error!(
                            action = EVENT_ACTION, change, code = code.as_str(),
                            "notify refused: permanent, not retried (check EVENT_SOURCE and the bus's permissions)"
                        );
                        self.metric(EVENT_ACTION, NotifyOutcome::Refused, clock.now_ms());
                    }
                    EntryAnswer::Retry { code } => {
                        tracing::warn!(
                            action = EVENT_ACTION,
                            change,
                            code = code.as_str(),
                            "notify retry: the entry failed; its record is handed back to Lambda"
                        );
                        self.hand_back(t, clock, &mut retry).await;
                    }
                }
            }
        }
        retry
    }

    /// Ends the claim's lease at once (so Lambda's retry can take it) and reports the record.
    async fn hand_back(&self, t: &Taken, clock: Clock, retry: &mut Vec<String>) {
        if let Err(error) = self.store.release_claim(&t.key, &t.token).await {
            tracing::warn!(action = EVENT_ACTION, change = t.event.detail.change_id.as_str(), %error, "notify: could not end the lease early");
        }
        self.metric(EVENT_ACTION, NotifyOutcome::Retry, clock.now_ms());
        if !retry.contains(&t.record) {
            retry.push(t.record.clone());
        }
    }
}
