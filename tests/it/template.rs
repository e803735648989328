//! `template.yaml` and `table::create_table` (used by scripts and tests) describe the same
//! table: read the table back from DynamoDB Local and find each part of it in the template.

use crate::helpers::*;

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

/// Records the DynamoDB operation of every request the SDK sends (`X-Amz-Target`).
#[derive(Debug, Clone, Default)]
struct Operations(std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>);

impl aws_sdk_dynamodb::config::Intercept for Operations {
    fn name(&self) -> &'static str {
        "Operations"
    }
    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        self.0.lock().unwrap().insert(operation);
        Ok(())
    }
}

/// The `- dynamodb:…` actions of one resource's policy in template.yaml.
fn policy_actions(resource: &str) -> std::collections::BTreeSet<String> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    let header = format!("  {resource}:");
    text.lines()
        .skip_while(|l| *l != header)
        .skip(1)
        // Up to the next resource: a line indented by exactly two spaces.
        .take_while(|l| !l.starts_with("  ") || l.starts_with("   "))
        .filter_map(|l| l.trim().strip_prefix("- dynamodb:"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_backfill_function_may_do_exactly_what_the_backfill_calls() {
    use crate::helpers::fake_clerk::{Data, FakeClerk, KEY};
    use clerk_webhooks::backfill::{options::Options, Backfill};
    use clerk_webhooks::clerk_api::{ApiBase, ClerkApi, SecretKey};

    // Everything a run can do: write, find a newer item, meet a deleted parent, checkpoint.
    let operations = Operations::default();
    let config = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "tests",
        ))
        .interceptor(operations.clone());
    let client = aws_sdk_dynamodb::Client::from_conf(config.build());
    let table = fresh_table(&client).await;
    operations.0.lock().unwrap().clear();
    let fake = FakeClerk::start(Data::generate(12, 3, 2)).await;
    let store = clerk_webhooks::store::Store::new(client.clone(), &table);
    let api = || {
        ClerkApi::new(
            ApiBase::parse(&fake.url).unwrap(),
            SecretKey::parse(KEY).unwrap(),
            Default::default(),
        )
        .unwrap()
    };
    let options = Options {
        page_size: 5,
        ..Options::default()
    };
    Backfill::new(api(), Some(store.clone()), options.clone())
        .run()
        .await
        .unwrap();
    let again = Options {
        restart: true,
        ..options
    };
    Backfill::new(api(), Some(store), again)
        .run()
        .await
        .unwrap();

    // IAM authorises a transaction item by item: its Puts as PutItem, its checks as
    // ConditionCheckItem.
    let mut needed = std::collections::BTreeSet::new();
    for operation in operations.0.lock().unwrap().iter() {
        match operation.as_str() {
            "TransactWriteItems" => needed.extend(["PutItem".into(), "ConditionCheckItem".into()]),
            other => {
                needed.insert(other.to_owned());
            }
        }
    }
    assert_eq!(
        policy_actions("BackfillFunction"),
        needed,
        "template.yaml's BackfillFunction policy"
    );
    assert!(
        policy_actions("WebhookFunction").contains("Query"),
        "the parser reads policies"
    );
    let cargo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    assert!(template().contains("Binary:clerk-webhooks-backfill"));
    assert!(cargo.contains("name = \"clerk-webhooks-backfill\""));
}
