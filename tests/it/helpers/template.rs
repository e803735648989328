//! The suite's one reader of `template.yaml`, on `serde_norway` (CloudFormation's short-form
//! tags such as `!GetAtt` and `!Sub` arrive as tagged values).

use std::collections::BTreeSet;

use serde_norway::value::TaggedValue;
use serde_norway::Value;

use super::calls::Grant;

pub struct Template(Value);

impl Template {
    /// The project's `template.yaml`.
    pub fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
        Self::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        serde_norway::from_str(text)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    /// The resource with this logical id (`Null` if there is none).
    pub fn resource(&self, logical_id: &str) -> &Value {
        &self.0["Resources"][logical_id]
    }

    /// Every `AWS::Serverless::Function`: its logical id and the binary it is built from
    /// (`Metadata.BuildProperties.Binary`).
    pub fn functions(&self) -> Vec<(String, String)> {
        let resources = self.0["Resources"].as_mapping().expect("Resources");
        resources
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
            .map(|(id, r)| {
                let id = id.as_str().unwrap().to_owned();
                let binary = r["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{id} names no Binary"))
                    .to_owned();
                (id, binary)
            })
            .collect()
    }

    /// The actions the function's inline policies allow, each on `table`,
    /// `table/index/<name>`, `table/stream/*` or another resource of the template. Any other form of policy (a SAM policy template, a managed
    /// policy, a Deny, a wildcard, another resource) is an error, so it cannot slip past.
    pub fn grants(&self, logical_id: &str) -> Result<BTreeSet<Grant>, String> {
        let policies = self.resource(logical_id)["Properties"]["Policies"]
            .as_sequence()
            .ok_or_else(|| format!("{logical_id} has no Policies list"))?;
        let mut grants = BTreeSet::new();
        // A policy added only under a condition (`!If [Condition, policy, !Ref AWS::NoValue]`)
        // counts as granted: the check is against the most the function can have.
        let policies = policies.iter().map(|policy| match policy {
            Value::Tagged(tagged) if tagged.tag == "If" => &tagged.value[1],
            policy => policy,
        });
        for policy in policies {
            let statements = policy["Statement"].as_sequence().ok_or_else(|| {
                format!("{logical_id}: a policy that is not an inline Statement list: {policy:?}")
            })?;
            for statement in statements {
                if statement["Effect"].as_str() != Some("Allow") {
                    return Err(format!("{logical_id}: a statement that is not Allow"));
                }
                let resources = one_or_many(&statement["Resource"])
                    .into_iter()
                    .map(resource_name)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("{logical_id}: {e}"))?;
                for action in one_or_many(&statement["Action"]) {
                    let action = action.as_str().ok_or("an action that is not a string")?;
                    if action.contains('*') {
                        return Err(format!("{logical_id}: wildcard action {action}"));
                    }
                    for resource in &resources {
                        grants.insert((action.to_owned(), resource.clone()));
                    }
                }
            }
        }
        Ok(grants)
    }
}

impl Template {
    /// The notifier's event source mapping's filter patterns (JSON), in order, as deployed
    /// without an event bus.
    pub fn notify_filters(&self) -> Vec<serde_json::Value> {
        self.notify_filters_with(false)
    }

    /// The same, with `EventBusName` set (`HasEventBus`) or not: the filters under `!If`
    /// are the bus's.
    pub fn notify_filters_with(&self, event_bus: bool) -> Vec<serde_json::Value> {
        self.resource("NotifyEventSourceMapping")["Properties"]["FilterCriteria"]["Filters"]
            .as_sequence()
            .expect("NotifyEventSourceMapping has filters")
            .iter()
            .filter_map(|f| match f {
                Value::Tagged(tagged) if tagged.tag == "If" => {
                    assert_eq!(tagged.value[0].as_str(), Some("HasEventBus"));
                    event_bus.then_some(&tagged.value[1])
                }
                f => Some(f),
            })
            .map(|f| serde_json::from_str(f["Pattern"].as_str().unwrap()).unwrap())
            .collect()
    }
}

/// Whether a Lambda event filter `pattern` lets `record` (Lambda's JSON) through, for the part
/// of the filter syntax the template uses: nested objects, lists of literal values, and
/// `{"exists": false}`.
pub fn filter_matches(pattern: &serde_json::Value, value: Option<&serde_json::Value>) -> bool {
    use serde_json::Value as Json;
    match pattern {
        Json::Object(fields) => fields
            .iter()
            .all(|(name, inner)| filter_matches(inner, value.and_then(|v| v.get(name)))),
        Json::Array(options) => options.iter().any(|option| match option {
            Json::Object(test) if test.get("exists") == Some(&Json::Bool(false)) => value.is_none(),
            Json::Object(test) if test.get("exists") == Some(&Json::Bool(true)) => value.is_some(),
            Json::Object(_) => panic!("a filter test this reader does not know: {option}"),
            literal => value == Some(literal),
        }),
        other => panic!("a filter pattern must be objects and lists: {other}"),
    }
}

fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(values) => values.iter().collect(),
        Value::Null => Vec::new(),
        value => vec![value],
    }
}

/// `!GetAtt Table.Arn` is `table`; `!Sub "${Table.Arn}/index/gsi1"` is `table/index/gsi1`;
/// `!Sub "${Table.Arn}/stream/*"` is `table/stream/*` (the table's streams: the one wildcard
/// allowed, as AWS's own policy for a stream consumer has it); `!GetAtt NotifyFailures.Arn`
/// is `NotifyFailures` (another resource of the template, by its logical id); the event bus
/// `EventBusName` names is `event-bus`.
fn resource_name(value: &Value) -> Result<String, String> {
    if let Value::Tagged(tagged) = value {
        let TaggedValue { tag, value } = tagged.as_ref();
        match (tag.to_string().as_str(), value.as_str()) {
            ("!GetAtt", Some("Table.Arn")) => return Ok("table".into()),
            ("!GetAtt", Some(other)) => {
                if let Some(id) = other.strip_suffix(".Arn") {
                    if id.chars().all(|c| c.is_ascii_alphanumeric()) {
                        return Ok(id.to_owned());
                    }
                }
            }
            // The bus: by name, or the ARN as given (`!If [EventBusIsArn, !Ref …, !Sub …]`).
            ("!If", _)
                if value[0].as_str() == Some("EventBusIsArn")
                    && resource_name(&value[2]).as_deref() == Ok("event-bus") =>
            {
                return Ok("event-bus".into());
            }
            ("!Sub", Some(
                "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}",
            )) => return Ok("event-bus".into()),
            ("!Sub", Some(text)) => {
                if let Some(rest) = text.strip_prefix("${Table.Arn}/") {
                    if !rest.contains('*') || rest == "stream/*" {
                        return Ok(format!("table/{rest}"));
                    }
                }
            }
            _ => {}
        }
    }
    Err(format!(
        "a resource other than the table, its index, its streams or a resource of the template: {value:?}"
    ))
}
