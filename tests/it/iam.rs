//! The IAM policy in `template.yaml` grants each function exactly what its code asks DynamoDB
//! to do, on its table and index, and nothing else.
//!
//! Three lists must agree:
//! - [`EXPECTED`], written here by hand, so that a change to a function's permissions shows
//!   in review;
//! - each function's policy in `template.yaml`;
//! - what the functions' code was seen asking for while the whole suite ran: the clients the
//!   suite hands to the handler and the backfill record every request's IAM actions
//!   (`helpers/calls.rs`). scripts/test.sh runs [`what_the_suite_called_is_what_the_template_grants`]
//!   once every other test has finished.
//!
//! Both ways: an action the code calls but the policy lacks is an `AccessDenied` in production;
//! an action the policy grants but no test ever saw called is privilege nobody needs (or a
//! path no test reaches). The binaries' own `main`s add no calls of their own beyond the
//! handler's warm-up, which the failure tests run.

use std::collections::{BTreeMap, BTreeSet};

use crate::helpers::calls::{self, Grant};
use crate::helpers::template::Template;

/// Each function's DynamoDB permissions, by binary.
const EXPECTED: &[(&str, &[(&str, &str)])] = &[
    (
        "clerk-webhooks",
        &[
            // A transaction's checks (idempotency, parents alive).
            ("dynamodb:ConditionCheckItem", "table"),
            // Cascades: one conditional delete per dependent.
            ("dynamodb:DeleteItem", "table"),
            // The init warm-up.
            ("dynamodb:GetItem", "table"),
            // A transaction's puts.
            ("dynamodb:PutItem", "table"),
            // Cascades: a deleted parent's partition, and its entries in gsi1.
            ("dynamodb:Query", "table"),
            ("dynamodb:Query", "table/index/gsi1"),
        ],
    ),
    (
        "clerk-webhooks-backfill",
        &[
            // A copy's transaction: its parent checks and its put.
            ("dynamodb:ConditionCheckItem", "table"),
            // A reconcile tombstone's cascade: one conditional delete per dependent.
            ("dynamodb:DeleteItem", "table"),
            // The checkpoint and the instance binding: read at the start.
            ("dynamodb:GetItem", "table"),
            // The checkpoint after each page, the reconcile's records, the binding.
            ("dynamodb:PutItem", "table"),
            // The reconcile's records of a run; a cascade's partition and gsi1 entries.
            ("dynamodb:Query", "table"),
            ("dynamodb:Query", "table/index/gsi1"),
            // The reconcile's sweep; the first run's look at the event records' instances.
            ("dynamodb:Scan", "table"),
        ],
    ),
    (
        "clerk-webhooks-sync",
        &[
            // A copy's transaction: its parent checks and its put.
            ("dynamodb:ConditionCheckItem", "table"),
            // The object read before and after a sync.
            ("dynamodb:GetItem", "table"),
            ("dynamodb:PutItem", "table"),
        ],
    ),
    (
        "clerk-webhooks-notify",
        &[
            // Claims: taken, finished and released by conditional updates.
            ("dynamodb:UpdateItem", "table"),
            // Lambda's event source mapping reads the stream for the function ([`by_lambda`]).
            ("dynamodb:DescribeStream", "table/stream/*"),
            ("dynamodb:GetRecords", "table/stream/*"),
            ("dynamodb:GetShardIterator", "table/stream/*"),
            ("dynamodb:ListStreams", "table/stream/*"),
            // ...and reports what it gave up on to the on-failure queue.
            ("sqs:SendMessage", "NotifyFailures"),
            // The change events, with EventBusName: on that bus only.
            ("events:PutEvents", "event-bus"),
        ],
    ),
];

/// Grants that Lambda itself uses on the function's behalf (its event source mapping reading
/// the stream, and its on-failure destination), not the function's code: no test can see
/// the code call them, so the comparison with what the suite called leaves them out.
fn by_lambda((action, resource): &Grant) -> bool {
    resource.starts_with("table/stream/") || action.starts_with("sqs:")
}

fn expected() -> BTreeMap<String, BTreeSet<Grant>> {
    EXPECTED
        .iter()
        .map(|(binary, grants)| {
            let grants = grants
                .iter()
                .map(|(action, resource)| (action.to_string(), resource.to_string()))
                .collect();
            (binary.to_string(), grants)
        })
        .collect()
}

/// Every function of `template` and its grants, by binary.
fn granted(template: &Template) -> Result<BTreeMap<String, BTreeSet<Grant>>, String> {
    template
        .functions()
        .into_iter()
        .map(|(id, binary)| Ok((binary, template.grants(&id)?)))
        .collect()
}

/// Where `actual` differs from `expected`, function by function, both ways.
fn differences(
    what: &str,
    expected: &BTreeMap<String, BTreeSet<Grant>>,
    actual: &BTreeMap<String, BTreeSet<Grant>>,
) -> Vec<String> {
    let mut out = Vec::new();
    let binaries: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    let none = BTreeSet::new();
    for binary in binaries {
        let (want, have) = (
            expected.get(binary).unwrap_or(&none),
            actual.get(binary).unwrap_or(&none),
        );
        for grant in want.difference(have) {
            out.push(format!("{binary}: {what} lacks {} on {}", grant.0, grant.1));
        }
        for grant in have.difference(want) {
            out.push(format!(
                "{binary}: {what} has {} on {}, which EXPECTED does not",
                grant.0, grant.1
            ));
        }
    }
    out
}

#[test]
fn template_grants_each_function_exactly_the_expected_actions() {
    let granted = granted(&Template::load()).unwrap();
    let differences = differences("template.yaml", &expected(), &granted);
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
#[ignore = "scripts/test.sh runs it once the whole suite has recorded its calls"]
fn what_the_suite_called_is_what_the_template_grants() {
    let dir =
        calls::iam_dir().expect("CLERK_WEBHOOKS_IAM_DIR names where the suite recorded its calls");
    let mut called: BTreeMap<String, BTreeSet<Grant>> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = |field: &str| line[field].as_str().unwrap().to_owned();
            called
                .entry(text("function"))
                .or_default()
                .insert((text("action"), text("resource")));
        }
    }
    let mut by_code = expected();
    for grants in by_code.values_mut() {
        grants.retain(|grant| !by_lambda(grant));
    }
    let differences = differences("what the suite called", &by_code, &called);
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn each_kind_of_request_needs_its_own_actions() {
    use serde_json::json;
    let needed = |operation: &str, body: serde_json::Value| -> Vec<String> {
        calls::needed(operation, &body)
            .into_iter()
            .map(|(action, resource)| format!("{action} {resource}"))
            .collect()
    };
    let transaction = json!({"TransactItems": [
        {"ConditionCheck": {"TableName": "t"}}, {"Put": {"TableName": "t"}},
        {"Delete": {"TableName": "t"}}, {"Update": {"TableName": "t"}}, {"Put": {"TableName": "t"}}
    ]});
    assert_eq!(
        needed("TransactWriteItems", transaction),
        [
            "dynamodb:ConditionCheckItem table",
            "dynamodb:DeleteItem table",
            "dynamodb:PutItem table",
            "dynamodb:UpdateItem table"
        ]
    );
    assert_eq!(
        needed("Query", json!({"TableName": "t", "IndexName": "gsi1"})),
        ["dynamodb:Query table/index/gsi1"]
    );
    assert_eq!(
        needed("Query", json!({"TableName": "t"})),
        ["dynamodb:Query table"]
    );
    assert_eq!(
        needed("BatchWriteItem", json!({"RequestItems": {"t": []}})),
        ["dynamodb:BatchWriteItem table"]
    );
}

/// The check would catch a policy that drifted: one action fewer, one more, a wildcard, a
/// resource beyond the table, or a policy in a form the reader does not understand.
#[test]
fn a_missing_an_extra_or_a_wildcard_action_is_caught() {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    let check = |edited: String| -> Vec<String> {
        match Template::parse(&edited).and_then(|t| granted(&t)) {
            Ok(granted) => differences("template.yaml", &expected(), &granted),
            Err(error) => vec![error],
        }
    };
    assert!(
        check(template.clone()).is_empty(),
        "the template as it is passes"
    );
    let edits: [(&str, &str, &str); 7] = [
        ("a missing action", "                - dynamodb:Query\n", ""),
        ("an extra action", "                - dynamodb:Query\n", "                - dynamodb:Query\n                - dynamodb:Scan\n"),
        ("a wildcard", "                - dynamodb:Query\n", "                - dynamodb:*\n"),
        ("another resource", "                - !Sub \"${Table.Arn}/index/gsi1\"\n", "                - !Sub \"${Table.Arn}/index/*\"\n"),
        ("a SAM policy template", "      Policies:\n        - Statement:", "      Policies:\n        - DynamoDBCrudPolicy:\n            TableName: !Ref Table\n        - Statement:"),
        ("another table's streams", "              Resource: !Sub \"${Table.Arn}/stream/*\"\n", "              Resource: \"*\"\n"),
        ("another queue", "              Resource: !GetAtt NotifyFailures.Arn\n", "              Resource: !GetAtt OtherQueue.Arn\n"),
    ];
    for (name, from, to) in edits {
        assert!(
            template.contains(from),
            "{name}: the template changed, update this test"
        );
        let found = check(template.replacen(from, to, 1));
        assert!(!found.is_empty(), "{name} went unnoticed");
    }
}
