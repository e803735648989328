//! One CloudWatch Embedded Metric Format (EMF) line per request. EMF is a JSON log line that
//! CloudWatch Logs turns into metrics, so no SDK call and no extra crate are needed.
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

/// The outcome metrics, in the order they are declared. `StoreRejected`: DynamoDB refused
/// the write as invalid, which no retry fixes (a 500; alarmed on its own).
pub const OUTCOMES: [&str; 7] = [
    "Applied",
    "Duplicate",
    "Stale",
    "Ignored",
    "Rejected",
    "Retry",
    "StoreRejected",
];

/// What one request did, for its metric line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestMetrics<'a> {
    /// Event family, or `None` when the request was refused before it was verified and decoded.
    pub family: Option<&'a str>,
    /// One of [`OUTCOMES`].
    pub outcome: &'static str,
    /// How many of the event's ids lack their usual prefix.
    pub unexpected_id_prefixes: usize,
    /// How many top-level attributes were left out of the items.
    pub attributes_left_out: usize,
    pub duration_ms: f64,
    pub timestamp_ms: i64,
}

/// The EMF JSON object for one request.
pub fn emf(namespace: &str, m: &RequestMetrics<'_>) -> Value {
    let mut metrics: Vec<Value> = OUTCOMES
        .iter()
        .map(|name| json!({"Name": name, "Unit": "Count"}))
        .collect();
    metrics.push(json!({"Name": UNEXPECTED_ID_PREFIX, "Unit": "Count"}));
    metrics.push(json!({"Name": ATTRIBUTE_LEFT_OUT, "Unit": "Count"}));
    metrics.push(json!({"Name": "DurationMs", "Unit": "Milliseconds"}));
    // Per family, and once more without a dimension: the total that alarms watch.
    let mut root = line(namespace, json!([["Family"], []]), metrics, m.timestamp_ms);
    // Families come from verified Clerk types; cap the length so a dimension stays valid.
    let family: String = m.family.unwrap_or("none").chars().take(64).collect();
    root.insert("Family".into(), Value::String(family));
    for name in OUTCOMES {
        root.insert(name.into(), json!(u8::from(name == m.outcome)));
    }
    root.insert(UNEXPECTED_ID_PREFIX.into(), json!(m.unexpected_id_prefixes));
    root.insert(ATTRIBUTE_LEFT_OUT.into(), json!(m.attributes_left_out));
    root.insert("DurationMs".into(), json!(m.duration_ms));
    Value::Object(root)
}

/// An EMF line's `_aws` part: which of its fields are metrics, under which dimensions. The
/// caller adds the dimensions' and the metrics' values.
fn line(
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

/// The notifier's outcomes, one per action it considered for a change (`Unreadable`: a
/// record that is not a DynamoDB item, with the action `none`). Prefixed, so the webhook's
/// alarms on `Retry` and `Rejected` never count them.
pub const NOTIFY_OUTCOMES: [&str; 6] = [
    "NotifySent",
    "NotifyPreviewed",
    "NotifyAlreadyDone",
    "NotifyRetry",
    "NotifyRefused",
    "NotifyUnreadable",
];

/// The EMF JSON object for one notifier outcome (one of [`NOTIFY_OUTCOMES`]) of `action`.
pub fn notify_emf(namespace: &str, action: &str, outcome: &str, timestamp_ms: i64) -> Value {
    let metrics: Vec<Value> = NOTIFY_OUTCOMES
        .iter()
        .map(|name| json!({"Name": name, "Unit": "Count"}))
        .collect();
    let mut root = line(namespace, json!([["Action"], []]), metrics, timestamp_ms);
    root.insert("Action".into(), Value::String(action.to_owned()));
    for name in NOTIFY_OUTCOMES {
        root.insert(name.into(), json!(u8::from(name == outcome)));
    }
    Value::Object(root)
}

/// The backfill's numbers, per kind (`Listed` the objects read, `Copied` those written).
pub const BACKFILL_METRICS: [&str; 8] = [
    "BackfillListed",
    "BackfillCopied",
    "BackfillStale",
    "BackfillCandidates",
    "BackfillConfirmedGone",
    "BackfillUnconfirmed",
    "BackfillTombstoned",
    "BackfillRefused",
];

/// One EMF line per kind of a backfill or reconcile run (`Mode` = `backfill` or `reconcile`),
/// so a dashboard shows the last run's numbers. A reconcile reports its run's totals.
pub fn backfill_emf(
    namespace: &str,
    summary: &crate::backfill::Summary,
    timestamp_ms: i64,
) -> Vec<Value> {
    let mode = if summary.reconcile {
        "reconcile"
    } else {
        "backfill"
    };
    let metrics: Vec<Value> = BACKFILL_METRICS
        .iter()
        .map(|name| json!({"Name": name, "Unit": "Count"}))
        .chain(std::iter::once(
            json!({"Name": "BackfillSeconds", "Unit": "Seconds"}),
        ))
        .collect();
    summary
        .kinds
        .iter()
        .map(|k| {
            let r = k.reconcile.clone().unwrap_or_default();
            let values = [
                k.seen,
                k.written,
                k.stale,
                r.counts.candidates,
                r.counts.confirmed_gone,
                r.counts.unconfirmed,
                r.counts.tombstoned,
                r.counts.refused,
            ];
            let dimensions = json!([["Mode", "Kind"], ["Mode"]]);
            let mut root = line(namespace, dimensions, metrics.clone(), timestamp_ms);
            root.insert("Mode".into(), json!(mode));
            root.insert("Kind".into(), json!(k.kind.as_str()));
            for (name, value) in BACKFILL_METRICS.iter().zip(values) {
                root.insert((*name).into(), json!(value));
            }
            root.insert("BackfillSeconds".into(), json!(k.seconds));
            Value::Object(root)
        })
        .collect()
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
                outcome: "Stale",
                unexpected_id_prefixes: 2,
                attributes_left_out: 0,
                duration_ms: 3.5,
                timestamp_ms: 1,
            },
        );
        let counted: Vec<&str> = OUTCOMES
            .iter()
            .copied()
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
    fn a_notifier_line_counts_one_outcome_for_one_action() {
        let line = notify_emf("NS", "slack", "NotifyRetry", 7);
        let counted: Vec<&str> = NOTIFY_OUTCOMES
            .iter()
            .copied()
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
    fn refusals_before_decoding_have_family_none() {
        let line = emf(
            DEFAULT_NAMESPACE,
            &RequestMetrics {
                family: None,
                outcome: "Rejected",
                unexpected_id_prefixes: 0,
                attributes_left_out: 0,
                duration_ms: 0.1,
                timestamp_ms: 1,
            },
        );
        assert_eq!(line["Family"], json!("none"));
    }
}
