//! `template.yaml` and `store::create_table` (used by scripts and tests) describe the same
//! table: read the table back from DynamoDB Local and find each part of it in the template.

mod common;

use common::*;

/// The template with all whitespace removed, so indentation does not matter.
fn template() -> String {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    text.split_whitespace().collect()
}

fn key_schema(keys: &[aws_sdk_dynamodb::types::KeySchemaElement]) -> String {
    let mut out = String::from("KeySchema:");
    for k in keys {
        out.push_str(&format!(
            "-AttributeName:{}KeyType:{}",
            k.attribute_name(),
            k.key_type().as_str()
        ));
    }
    out
}

#[tokio::test]
async fn template_yaml_declares_the_table_that_create_table_makes() {
    let client = local_client();
    let name = fresh_table(&client).await;
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
    let template = template();

    let mut expected = vec![
        format!(
            "BillingMode:{}",
            table
                .billing_mode_summary()
                .unwrap()
                .billing_mode()
                .unwrap()
                .as_str()
        ),
        key_schema(table.key_schema()),
    ];
    for a in table.attribute_definitions() {
        expected.push(format!(
            "-AttributeName:{}AttributeType:{}",
            a.attribute_name(),
            a.attribute_type().as_str()
        ));
    }
    for gsi in table.global_secondary_indexes() {
        expected.push(format!(
            "-IndexName:{}{}Projection:ProjectionType:{}",
            gsi.index_name().unwrap(),
            key_schema(gsi.key_schema()),
            gsi.projection()
                .unwrap()
                .projection_type()
                .unwrap()
                .as_str()
        ));
    }
    let ttl = ttl.time_to_live_description().unwrap();
    expected.push(format!(
        "TimeToLiveSpecification:AttributeName:{}Enabled:true",
        ttl.attribute_name().unwrap()
    ));

    for part in expected {
        assert!(template.contains(&part), "template.yaml lacks {part}");
    }
    let declared = template.matches("AttributeType:").count();
    assert_eq!(
        declared,
        table.attribute_definitions().len(),
        "template.yaml declares other attributes"
    );
}
