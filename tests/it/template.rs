//! `template.yaml` and `store::create_table` (used by scripts and tests) describe the same
//! table: read the table back from DynamoDB Local and compare it, part by part, with the
//! template's `Table` resource.

use serde_norway::Value;

use crate::helpers::template::Template;
use crate::helpers::*;

fn key_schema(keys: &[aws_sdk_dynamodb::types::KeySchemaElement]) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect()
}

fn template_key_schema(keys: &Value) -> Vec<(String, String)> {
    keys.as_sequence()
        .expect("a KeySchema list")
        .iter()
        .map(|k| {
            let field = |name: &str| k[name].as_str().unwrap().to_owned();
            (field("AttributeName"), field("KeyType"))
        })
        .collect()
}

/// The entries of a list the template builds with `!If [Condition, entry, !Ref AWS::NoValue]`
/// as a stack with every default parameter has them (the conditions used in the table's
/// lists hold by default).
fn entries(list: &Value) -> Vec<&Value> {
    list.as_sequence()
        .unwrap()
        .iter()
        .map(|entry| match entry {
            Value::Tagged(tagged) if tagged.tag == "If" => &tagged.value[1],
            entry => entry,
        })
        .collect()
}

#[tokio::test]
async fn template_yaml_declares_the_table_that_create_table_makes() {
    let client = local_client();
    let name = fresh_table_with_stream(&client).await;
    let table = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let ttl = client
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let template = Template::load();
    let declared = &template.resource("Table")["Properties"];

    assert_eq!(
        declared["BillingMode"].as_str(),
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str())
    );
    assert_eq!(
        template_key_schema(&declared["KeySchema"]),
        key_schema(table.key_schema())
    );
    let attributes = |pairs: Vec<(String, String)>| {
        let mut pairs = pairs;
        pairs.sort();
        pairs
    };
    assert_eq!(
        attributes(
            entries(&declared["AttributeDefinitions"])
                .into_iter()
                .map(|a| (
                    a["AttributeName"].as_str().unwrap().to_owned(),
                    a["AttributeType"].as_str().unwrap().to_owned()
                ))
                .collect()
        ),
        attributes(
            table
                .attribute_definitions()
                .iter()
                .map(|a| (
                    a.attribute_name().to_owned(),
                    a.attribute_type().as_str().to_owned()
                ))
                .collect()
        ),
        "AttributeDefinitions"
    );
    let mut indexes: Vec<_> = entries(&declared["GlobalSecondaryIndexes"])
        .into_iter()
        .map(|gsi| {
            (
                gsi["IndexName"].as_str().unwrap().to_owned(),
                template_key_schema(&gsi["KeySchema"]),
                gsi["Projection"]["ProjectionType"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                {
                    let mut names: Vec<String> = gsi["Projection"]["NonKeyAttributes"]
                        .as_sequence()
                        .map(|names| {
                            names
                                .iter()
                                .map(|n| n.as_str().unwrap().to_owned())
                                .collect()
                        })
                        .unwrap_or_default();
                    names.sort();
                    names
                },
            )
        })
        .collect();
    let mut created: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .map(|gsi| {
            (
                gsi.index_name().unwrap().to_owned(),
                key_schema(gsi.key_schema()),
                gsi.projection()
                    .unwrap()
                    .projection_type()
                    .unwrap()
                    .as_str()
                    .to_owned(),
                {
                    let mut names = gsi.projection().unwrap().non_key_attributes().to_vec();
                    names.sort();
                    names
                },
            )
        })
        .collect();
    indexes.sort();
    created.sort();
    assert_eq!(indexes, created, "GlobalSecondaryIndexes");
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(
        declared["TimeToLiveSpecification"]["AttributeName"].as_str(),
        ttl.attribute_name()
    );
    assert_eq!(
        declared["TimeToLiveSpecification"]["Enabled"].as_bool(),
        Some(true)
    );
    assert_eq!(
        declared["StreamSpecification"]["StreamViewType"].as_str(),
        table
            .stream_specification()
            .and_then(|s| s.stream_view_type())
            .map(|v| v.as_str()),
        "StreamSpecification"
    );
    // And the names the code uses are the ones declared.
    let names: Vec<&str> = indexes.iter().map(|index| index.0.as_str()).collect();
    let mut ours = vec![clerk_webhooks::table::GSI1];
    ours.extend(clerk_webhooks::table::LOOKUP_INDEXES.map(|index| index.name));
    ours.sort();
    assert_eq!(names, ours);
    assert_eq!(
        ttl.attribute_name(),
        Some(clerk_webhooks::table::TTL_ATTRIBUTE)
    );
}

/// Each function of the template is built from a binary Cargo.toml declares.
#[test]
fn every_function_is_built_from_a_binary_of_this_package() {
    let cargo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let functions = Template::load().functions();
    assert_eq!(functions.len(), 4, "{functions:?}");
    for (id, binary) in functions {
        assert!(
            cargo.contains(&format!("name = \"{binary}\"")),
            "{id} is built from {binary}, which Cargo.toml does not declare"
        );
    }
}

/// The dashboard's body is JSON written inside YAML, joined from parts: resolved both ways
/// (with and without the notifier) it must parse, with every widget in place.
#[test]
fn the_dashboard_body_is_json_with_and_without_the_notifier() {
    use serde_norway::value::TaggedValue;
    /// `!Join ["", [...]]`, `!Sub "..."` (every `${...}` made `x`) and `!If [cond, a, b]`.
    fn resolve(value: &Value, notifier: bool) -> String {
        match value {
            Value::String(text) => text.clone(),
            Value::Tagged(tagged) => {
                let TaggedValue { tag, value } = tagged.as_ref();
                match tag.to_string().as_str() {
                    "!Sub" => {
                        let text = value.as_str().expect("a !Sub string");
                        let mut out = String::new();
                        let mut rest = text;
                        while let Some(start) = rest.find("${") {
                            out.push_str(&rest[..start]);
                            let end = rest[start..].find('}').expect("a closed ${}") + start;
                            out.push('x');
                            rest = &rest[end + 1..];
                        }
                        out.push_str(rest);
                        out
                    }
                    "!If" => {
                        let branches = value.as_sequence().expect("!If [cond, a, b]");
                        resolve(&branches[if notifier { 1 } else { 2 }], notifier)
                    }
                    "!Join" => {
                        let parts = value.as_sequence().expect("!Join [sep, parts]");
                        let separator = parts[0].as_str().unwrap_or("");
                        parts[1]
                            .as_sequence()
                            .expect("the parts")
                            .iter()
                            .map(|part| resolve(part, notifier))
                            .collect::<Vec<_>>()
                            .join(separator)
                    }
                    other => panic!("a tag the dashboard should not need: {other}"),
                }
            }
            other => panic!("not a string or a function: {other:?}"),
        }
    }
    let template = Template::load();
    let body = &template.resource("Dashboard")["Properties"]["DashboardBody"];
    for (notifier, widgets) in [(false, 5), (true, 7)] {
        let json = resolve(body, notifier);
        let parsed: serde_json::Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("notifier {notifier}: {e}\n{json}"));
        assert_eq!(parsed["widgets"].as_array().unwrap().len(), widgets);
    }
}

/// docs/table.md lists every `entity` value a reader meets, and only those: the table
/// contract's [`Entity`] names them in code.
#[test]
fn the_docs_list_of_entities_is_the_table_contracts() {
    use clerk_webhooks::table::Entity;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/table.md");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text
        .find("**`entity`.** One of")
        .expect("docs/table.md has the entity bullet");
    let rest = &text[start + "**`entity`.**".len()..];
    let bullet = &rest[..rest.find("\n- ").unwrap_or(rest.len())];
    let documented: Vec<&str> = bullet.split('`').skip(1).step_by(2).collect();
    let named: Vec<&str> = Entity::ALL.iter().map(|e| e.as_str()).collect();
    assert_eq!(documented, named);
}
