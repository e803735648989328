//! Puts change events ([`super::change_event`]) on an EventBridge bus: one `PutEvents` call
//! for up to ten, and each entry's answer read on its own. `PutEvents` answers 200 even when
//! some entries failed (`FailedEntryCount`, and an `ErrorCode` on each failed entry), so
//! success is per entry: only the failed ones are tried again.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use super::change_event::ChangeEvent;

/// `PutEvents` takes at most ten entries.
pub const MAX_ENTRIES: usize = 10;

/// What became of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryAnswer {
    Put,
    /// Throttled or an internal failure: the same entry can succeed later.
    Retry {
        code: String,
    },
    /// The entry itself is refused (its detail, its source): no retry can fix it.
    Refused {
        code: String,
    },
}

/// The call failed as a whole (connection, timeout, throttling of the call, permissions):
/// nothing is known to be put.
#[derive(Debug, thiserror::Error)]
#[error("EventBridge PutEvents failed: {0}")]
pub struct PutError(String);

/// Per attempt and per call: an event waits in the notifier's batch, so a hung EventBridge
/// must turn into a retry well within the invocation.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(3_000);
const OPERATION_TIMEOUT: Duration = Duration::from_millis(8_000);

#[derive(Debug, Clone)]
pub struct EventBus {
    client: Client,
}

impl EventBus {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// A client on the standard AWS environment (`AWS_ENDPOINT_URL_EVENTBRIDGE` for a local
    /// one; `store::shared_config`), with our timeouts.
    pub fn from_shared(shared: &aws_config::SdkConfig) -> Self {
        Self::new(Client::from_conf(
            with_limits(aws_sdk_eventbridge::config::Builder::from(shared)).build(),
        ))
    }

    /// Puts `events` (at most [`MAX_ENTRIES`]) on `bus` with `source`: each entry's answer,
    /// in order.
    pub async fn put(
        &self,
        bus: &str,
        source: &str,
        events: &[&ChangeEvent],
    ) -> Result<Vec<EntryAnswer>, PutError> {
        debug_assert!(events.len() <= MAX_ENTRIES);
        let entries = events
            .iter()
            .map(|event| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(bus)
                    .source(source)
                    .detail_type(&event.detail_type)
                    .detail(event.detail_json())
                    .build()
            })
            .collect();
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            // Never the request, which holds the details.
            .map_err(|e| PutError(crate::store::describe(&e, "EventBridge")))?;
        let results = out.entries();
        Ok((0..events.len())
            .map(|i| match results.get(i) {
                Some(entry) => match entry.error_code() {
                    None if entry.event_id().is_some() => EntryAnswer::Put,
                    None => EntryAnswer::Retry {
                        code: "NoEventId".into(),
                    },
                    Some(code) => classify(code),
                },
                // Fewer results than entries: unknown, so not put.
                None => EntryAnswer::Retry {
                    code: "NoResult".into(),
                },
            })
            .collect())
    }
}

/// An entry's `ErrorCode`: the ones that name the entry itself are permanent.
pub fn classify(code: &str) -> EntryAnswer {
    const PERMANENT: [&str; 4] = [
        "MalformedDetail",
        "InvalidArgument",
        "NotAuthorizedForSourceException",
        "ValidationException",
    ];
    let code = code.to_owned();
    match PERMANENT.contains(&code.as_str()) {
        true => EntryAnswer::Refused { code },
        false => EntryAnswer::Retry { code },
    }
}

fn with_limits(
    config: aws_sdk_eventbridge::config::Builder,
) -> aws_sdk_eventbridge::config::Builder {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    config
        .timeout_config(timeouts)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_naming_its_own_fault_is_refused_and_the_rest_retried() {
        assert_eq!(
            classify("MalformedDetail"),
            EntryAnswer::Refused {
                code: "MalformedDetail".into()
            }
        );
        for code in ["InternalFailure", "ThrottlingException", "SomethingNew"] {
            assert!(
                matches!(classify(code), EntryAnswer::Retry { .. }),
                "{code}"
            );
        }
    }
}
