//! CloudWatch Embedded Metric Format (EMF): a JSON log line that CloudWatch Logs turns into
//! metrics, so no SDK call and no extra crate are needed. This module holds the line's shared
//! envelope ([`line`]) and typed outcomes ([`Outcome`]), and the webhook's own line; the
//! notifier's and the backfill's are beside them (`notify::notifier`, `backfill::summary`).
//!
//! Every request counts 1 in exactly one of the outcome metrics and reports its duration,
//! with one low-cardinality dimension: the event family (`user`, `session`, …), or `none` when
//! the request was refused before its type was known. `UnexpectedIdPrefix` counts the ids of
//! the event that lack the prefix Clerk usually gives them (applied all the same).

use serde_json::{json, Map, Value};

/// The CloudWatch namespace when `METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "ClerkWebhooks";

/// The metric counting ids without their usual prefix (see `event::Event::unexpected_prefixes`).
pub(crate) const UNEXPECTED_ID_PREFIX: &str = "UnexpectedIdPrefix";

/// The metric counting top-level attributes left out because DynamoDB cannot hold their value
/// natively (see `plan::Plan::left_out`); the value stays in `data`.
pub(crate) const ATTRIBUTE_LEFT_OUT: &str = "AttributeLeftOut";

/// What one unit of a function's work came to: each variant is one metric, and a line counts 1
/// in exactly one of them. The metric's name is the variant's, in one place, so a name that
/// matches no outcome cannot be written.
pub trait Outcome: Copy + PartialEq + 'static {
    /// Every outcome, in the order the metrics are declared.
    const ALL: &'static [Self];
    /// The CloudWatch metric that counts this outcome.
    fn metric(self) -> &'static str;
}

/// The `Metrics` declarations of every outcome of `O`.
pub(crate) fn outcome_metrics<O: Outcome>() -> Vec<Value> {
    O::ALL
        .iter()
        .map(|o| json!({"Name": o.metric(), "Unit": "Count"}))
        .collect()
}

/// Sets every outcome's value on `root`: 1 for `outcome`, 0 for the others.
pub(crate) fn count<O: Outcome>(root: &mut Map<String, Value>, outcome: O) {
    for &o in O::ALL {
        root.insert(o.metric().into(), json!(u8::from(o == outcome)));
    }
}

/// What one webhook request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    Applied,
    Duplicate,
    Stale,
    Ignored,
    /// A 4xx: refused, and Svix retries it in vain.
    Rejected,
    /// A 5xx a retry can fix (DynamoDB throttling or unreachable, the configuration).
    Retry,
    /// DynamoDB refused the write as invalid: a 500 no retry fixes, alarmed on its own.
    StoreRejected,
}

impl Outcome for WebhookOutcome {
    const ALL: &'static [Self] = &[
        Self::Applied,
        Self::Duplicate,
        Self::Stale,
        Self::Ignored,
        Self::Rejected,
        Self::Retry,
        Self::StoreRejected,
    ];

    fn metric(self) -> &'static str {
        match self {
            Self::Applied => "Applied",
            Self::Duplicate => "Duplicate",
            Self::Stale => "Stale",
            Self::Ignored => "Ignored",
            Self::Rejected => "Rejected",
            Self::Retry => "Retry",
            Self::StoreRejected => "StoreRejected",
        }
    }
}

/// What one request did, for its metric line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestMetrics<'a> {
    /// Event family, or `None` when the request was refused before it was verified and decoded.
    pub family: Option<&'a str>,
    pub outcome: WebhookOutcome,
    /// How many of the event's ids lack their usual prefix.
    pub unexpected_id_prefixes: usize,
    /// How many top-level attributes were left out of the items.
    pub attributes_left_out: usize,
    pub duration_ms: f64,
    pub timestamp_ms: i64,
}

/// The EMF JSON object for one request.
pub fn emf(namespace: &str, m: &RequestMetrics<'_>) -> Value {
    let mut metrics = outcome_metrics::<WebhookOutcome>();
    metrics.push(json!({"Name": UNEXPECTED_ID_PREFIX, "Unit": "Count"}));
    metrics.push(json!({"Name": ATTRIBUTE_LEFT_OUT, "Unit": "Count"}));
    metrics.push(json!({"Name": "DurationMs", "Unit": "Milliseconds"}));
    // Per family, and once more without a dimension: the total that alarms watch.
    let mut root = line(namespace, json!([["Family"], []]), metrics, m.timestamp_ms);
    // Families come from verified Clerk types; cap the length so a dimension stays valid.
    let family: String = m.family.unwrap_or("none").chars().take(64).collect();
    root.insert("Family".into(), Value::String(family));
    count(&mut root, m.outcome);
    root.insert(UNEXPECTED_ID_PREFIX.into(), json!(m.unexpected_id_prefixes));
    root.insert(ATTRIBUTE_LEFT_OUT.into(), json!(m.attributes_left_out));
    root.insert("DurationMs".into(), json!(m.duration_ms));
    Value::Object(root)
}

/// An EMF line's `_aws` part: which of its fields are metrics, under which dimensions. The
/// caller adds the dimensions' and the metrics' values.
pub(crate) fn line(
    namespace: &str,
    dimensions: Value,
    metrics: Vec<Value>,
    timestamp_ms: i64,
) -> Map<String, Value> {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimensions,
                "Metrics": metrics,
            }],
        }),
    );
    root
}

/// Writes the line to stdout, where Lambda ships it to CloudWatch Logs as is.
pub fn emit(namespace: &str, m: &RequestMetrics<'_>) {
    println!("{}", emf(namespace, m));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_outcome_counts() {
        let line = emf(
            "NS",
            &RequestMetrics {
                family: Some("user"),
                outcome: WebhookOutcome::Stale,
                unexpected_id_prefixes: 2,
                attributes_left_out: 0,
                duration_ms: 3.5,
                timestamp_ms: 1,
            },
        );
        let counted: Vec<&str> = WebhookOutcome::ALL
            .iter()
            .map(|o| o.metric())
            .filter(|o| line[*o] == json!(1))
            .collect();
        assert_eq!(counted, ["Stale"]);
        assert_eq!(line["Family"], json!("user"));
        assert_eq!(line["DurationMs"], json!(3.5));
        assert_eq!(line[UNEXPECTED_ID_PREFIX], json!(2));
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            json!("NS")
        );
    }

    #[test]
    fn refusals_before_decoding_have_family_none() {
        let line = emf(
            DEFAULT_NAMESPACE,
            &RequestMetrics {
                family: None,
                outcome: WebhookOutcome::Rejected,
                unexpected_id_prefixes: 0,
                attributes_left_out: 0,
                duration_ms: 0.1,
                timestamp_ms: 1,
            },
        );
        assert_eq!(line["Family"], json!("none"));
    }
}
