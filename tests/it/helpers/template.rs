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

    /// The DynamoDB actions the function's inline policies allow, each on `table` or
    /// `table/index/<name>`. Any other form of policy (a SAM policy template, a managed
    /// policy, a Deny, a wildcard, another resource) is an error, so it cannot slip past.
    pub fn grants(&self, logical_id: &str) -> Result<BTreeSet<Grant>, String> {
        let policies = self.resource(logical_id)["Properties"]["Policies"]
            .as_sequence()
            .ok_or_else(|| format!("{logical_id} has no Policies list"))?;
        let mut grants = BTreeSet::new();
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

fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(values) => values.iter().collect(),
        Value::Null => Vec::new(),
        value => vec![value],
    }
}

/// `!GetAtt Table.Arn` is `table`; `!Sub "${Table.Arn}/index/gsi1"` is `table/index/gsi1`.
fn resource_name(value: &Value) -> Result<String, String> {
    if let Value::Tagged(tagged) = value {
        let TaggedValue { tag, value } = tagged.as_ref();
        match (tag.to_string().as_str(), value.as_str()) {
            ("!GetAtt", Some("Table.Arn")) => return Ok("table".into()),
            ("!Sub", Some(text)) => {
                if let Some(rest) = text.strip_prefix("${Table.Arn}/") {
                    if !rest.contains('*') {
                        return Ok(format!("table/{rest}"));
                    }
                }
            }
            _ => {}
        }
    }
    Err(format!(
        "a resource other than the table or its index: {value:?}"
    ))
}
