//! Creates the table the contract describes (`crate::table`): for local development and the
//! tests; deployments create it with `template.yaml`, and a test checks the two agree.

use aws_sdk_dynamodb::Client;

use super::client::StoreError;
use crate::table::attr::{GSI1_PK, GSI1_SK, PK, SK};
use crate::table::{GSI1, GSI1_PROJECTED, LOOKUP_INDEXES, TTL_ATTRIBUTE};

/// Creates the table (the same as `template.yaml`; a test checks they agree): on-demand, with `gsi1`, the user lookup indexes, TTL and the stream. An existing table is left as it is. For local
/// development and the tests; deployments create it with `template.yaml`.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    create(client, table, true).await
}

/// [`create_table`] without the stream, for tests and benchmarks that never read it:
/// DynamoDB Local slows down with every stream record it keeps, deleted tables' included
/// (measured: the chaos tests took 54 s, then 206 s, then 445 s on one DynamoDB Local with
/// streams; 49, 38 and 41 s without).
pub async fn create_table_without_stream(client: &Client, table: &str) -> Result<(), StoreError> {
    create(client, table, false).await
}

async fn create(client: &Client, table: &str, stream: bool) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
        TimeToLiveSpecification,
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("name and type are set")
    };
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .expect("name and type are set")
    };
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key(GSI1_PK, KeyType::Hash))
        .key_schema(key(GSI1_SK, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(
                    GSI1_PROJECTED.iter().map(|a| (*a).to_owned()).collect(),
                ))
                .build(),
        )
        .build()
        .expect("name, keys and projection are set");
    let mut request = client
        .create_table()
        .table_name(table)
        .attribute_definitions(attribute(PK))
        .attribute_definitions(attribute(SK))
        .attribute_definitions(attribute(GSI1_PK))
        .attribute_definitions(attribute(GSI1_SK))
        .key_schema(key(PK, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range))
        .global_secondary_indexes(gsi);
    for lookup in LOOKUP_INDEXES {
        let index = GlobalSecondaryIndex::builder()
            .index_name(lookup.name)
            .key_schema(key(lookup.key, KeyType::Hash))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .expect("name, key and projection are set");
        request = request
            .attribute_definitions(attribute(lookup.key))
            .global_secondary_indexes(index);
    }
    let created = request
        .billing_mode(BillingMode::PayPerRequest)
        .set_stream_specification(stream.then(|| {
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .expect("enabled is set")
        }))
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            return Ok(())
        }
        Err(e) => return Err(StoreError::call("CreateTable", &e)),
    }
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(TTL_ATTRIBUTE)
        .build()
        .expect("name and flag are set");
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| StoreError::call("UpdateTimeToLive", &e))?;
    Ok(())
}
