//! The per-request EMF line: valid for CloudWatch, exactly one outcome counted, one line per
//! request whatever happened to it.

use crate::helpers::emf::validate;
use clerk_webhooks::metrics::{emf, Outcome, RequestMetrics, WebhookOutcome, DEFAULT_NAMESPACE};
use serde_json::json;

#[test]
fn every_outcome_makes_a_valid_emf_line() {
    for &outcome in WebhookOutcome::ALL {
        for family in [Some("user"), Some("organizationMembership"), None] {
            let line = emf(
                DEFAULT_NAMESPACE,
                &RequestMetrics {
                    family,
                    outcome,
                    unexpected_id_prefixes: 1,
                    attributes_left_out: 1,
                    duration_ms: 12.345,
                    timestamp_ms: 1_795_726_968_463,
                },
            );
            validate(&line).unwrap_or_else(|e| panic!("{outcome:?}: {e}: {line}"));
            let total: i64 = WebhookOutcome::ALL
                .iter()
                .map(|o| line[o.metric()].as_i64().unwrap())
                .sum();
            assert_eq!(total, 1);
            assert_eq!(line[outcome.metric()], json!(1));
        }
    }
}

#[test]
fn the_checker_rejects_what_cloudwatch_rejects() {
    let good = emf(
        DEFAULT_NAMESPACE,
        &RequestMetrics {
            family: Some("user"),
            outcome: WebhookOutcome::Applied,
            unexpected_id_prefixes: 0,
            attributes_left_out: 0,
            duration_ms: 1.0,
            timestamp_ms: 1,
        },
    );
    let mut no_value = good.clone();
    no_value.as_object_mut().unwrap().remove("DurationMs");
    let mut bad_unit = good.clone();
    bad_unit["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Counts");
    let mut dimension_not_string = good.clone();
    dimension_not_string["Family"] = json!(3);
    let mut no_timestamp = good.clone();
    no_timestamp["_aws"]
        .as_object_mut()
        .unwrap()
        .remove("Timestamp");
    for broken in [no_value, bad_unit, dimension_not_string, no_timestamp] {
        assert!(validate(&broken).is_err(), "{broken}");
    }
    assert_eq!(validate(&good), Ok(()));
}

/// The notifier's and the backfill's lines pass the same checker.
#[test]
fn the_notifier_and_backfill_lines_are_valid_emf_too() {
    use clerk_webhooks::backfill::{
        backfill_emf, Counts, Kind, KindSummary, ReconcileCounts, ReconcileSummary, Summary,
    };
    use clerk_webhooks::notify::notifier::{notify_emf, NotifyOutcome};
    for &outcome in NotifyOutcome::ALL {
        let line = notify_emf(DEFAULT_NAMESPACE, "welcome_email", outcome, 1);
        validate(&line).unwrap_or_else(|e| panic!("{outcome:?}: {e}: {line}"));
    }
    let kind = |kind, reconcile| KindSummary {
        kind,
        started_at: "the first user".into(),
        counts: Counts {
            seen: 10,
            written: 2,
            stale: 8,
            skipped: 0,
            pages: 1,
        },
        skipped_ids: Vec::new(),
        rate_limited: 0,
        retries: 0,
        seconds: 1.5,
        complete: true,
        reconcile,
    };
    let counts = ReconcileCounts {
        live: 10,
        candidates: 1,
        confirmed_gone: 1,
        tombstoned: 1,
        ..ReconcileCounts::default()
    };
    let summary = Summary {
        dry_run: false,
        reconcile: true,
        instance_id: "ins_1".into(),
        kinds: vec![
            kind(
                Kind::Users,
                Some(ReconcileSummary {
                    counts,
                    would_tombstone: vec![],
                }),
            ),
            kind(Kind::Organizations, None),
        ],
        seconds: 2.0,
        listed: 2,
        listed_per_second: 1.0,
        written: 2,
        written_per_second: 1.0,
        complete: true,
    };
    let lines = backfill_emf(DEFAULT_NAMESPACE, &summary, 1);
    assert_eq!(lines.len(), 2);
    for line in &lines {
        validate(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(line["Mode"], json!("reconcile"));
    }
    assert_eq!(lines[0]["BackfillTombstoned"], json!(1));
    assert_eq!(lines[1]["BackfillListed"], json!(10));
}
