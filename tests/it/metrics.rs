//! The per-request EMF line: valid for CloudWatch, exactly one outcome counted, one line per
//! request whatever happened to it.

use crate::helpers::emf::validate;
use clerk_webhooks::metrics::{emf, RequestMetrics, DEFAULT_NAMESPACE, OUTCOMES};
use serde_json::json;

#[test]
fn every_outcome_makes_a_valid_emf_line() {
    for outcome in OUTCOMES {
        for family in [Some("user"), Some("organizationMembership"), None] {
            let line = emf(
                DEFAULT_NAMESPACE,
                &RequestMetrics {
                    family,
                    outcome,
                    unexpected_id_prefixes: 1,
                    duration_ms: 12.345,
                    timestamp_ms: 1_795_726_968_463,
                },
            );
            validate(&line).unwrap_or_else(|e| panic!("{outcome}: {e}: {line}"));
            let total: i64 = OUTCOMES.iter().map(|o| line[*o].as_i64().unwrap()).sum();
            assert_eq!(total, 1);
            assert_eq!(line[outcome], json!(1));
        }
    }
}

#[test]
fn the_checker_rejects_what_cloudwatch_rejects() {
    let good = emf(
        DEFAULT_NAMESPACE,
        &RequestMetrics {
            family: Some("user"),
            outcome: "Applied",
            unexpected_id_prefixes: 0,
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
