//! Reads a table's stream with the DynamoDB Streams API, as Lambda's event source mapping
//! does, and hands its records over in the JSON Lambda delivers. Deployed, Lambda does this;
//! here it serves the local loop (`clerk-webhooks-notify` outside Lambda, under `make dev`)
//! and the tests. DynamoDB Local serves the Streams API on its one endpoint.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde_json::{json, Value};

use super::Notifier;
use crate::store::StoreError;

/// How often the local loop asks an idle shard for new records.
const POLL: Duration = Duration::from_millis(200);
/// How often the local loop looks for new shards (DynamoDB rolls shards over now and then).
const DESCRIBE_EVERY: Duration = Duration::from_secs(10);
/// The most records one local batch holds (what `BatchSize` is to Lambda).
const BATCH_SIZE: i32 = 100;
/// What one local batch may take, as a Lambda timeout would bound it.
const LOCAL_BATCH_TIME: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the table has no stream (it needs StreamViewType NEW_AND_OLD_IMAGES)")]
    NoStream,
    #[error(transparent)]
    Call(#[from] StoreError),
}

/// A Streams client from the standard AWS environment. `AWS_ENDPOINT_URL_DYNAMODB_STREAMS`
/// names its endpoint; without it, `AWS_ENDPOINT_URL_DYNAMODB` does (DynamoDB Local serves
/// both APIs).
pub async fn streams_client_from_env() -> aws_sdk_dynamodbstreams::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let mut config = aws_sdk_dynamodbstreams::config::Builder::from(&shared);
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB_STREAMS").is_none() {
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            config = config.endpoint_url(url);
        }
    }
    aws_sdk_dynamodbstreams::Client::from_conf(config.build())
}

pub struct StreamReader {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
}

/// Where the local loop stands in one shard.
struct Shard {
    iterator: Option<String>,
    /// The last record handed over and not reported failed: where to resume after an error.
    last: Option<String>,
}

impl StreamReader {
    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        streams: aws_sdk_dynamodbstreams::Client,
        table: impl Into<String>,
    ) -> Self {
        Self {
            dynamodb,
            streams,
            table: table.into(),
        }
    }

    async fn stream_arn(&self) -> Result<String, StreamError> {
        let described = self
            .dynamodb
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| StoreError::call("DescribeTable", &e))?;
        described
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or(StreamError::NoStream)
    }

    async fn shard_ids(&self, arn: &str) -> Result<Vec<String>, StreamError> {
        let described = self
            .streams
            .describe_stream()
            .stream_arn(arn)
            .send()
            .await
            .map_err(|e| StoreError::call("DescribeStream", &e))?;
        Ok(described
            .stream_description
            .map(|d| d.shards.unwrap_or_default())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| s.shard_id)
            .collect())
    }

    async fn iterator(
        &self,
        arn: &str,
        shard: &str,
        position: ShardIteratorType,
        sequence_number: Option<&str>,
    ) -> Result<Option<String>, StreamError> {
        let out = self
            .streams
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard)
            .shard_iterator_type(position)
            .set_sequence_number(sequence_number.map(str::to_owned))
            .send()
            .await
            .map_err(|e| StoreError::call("GetShardIterator", &e))?;
        Ok(out.shard_iterator)
    }

    /// One page of a shard: its records in Lambda's JSON, and the next iterator (`None` once
    /// a closed shard is read to its end).
    async fn page(
        &self,
        arn: &str,
        iterator: String,
    ) -> Result<(Vec<Value>, Option<String>), StreamError> {
        let page = self
            .streams
            .get_records()
            .shard_iterator(iterator)
            .limit(BATCH_SIZE)
            .send()
            .await
            .map_err(|e| StoreError::call("GetRecords", &e))?;
        let records = page
            .records()
            .iter()
            .map(|r| lambda_record(r, arn))
            .collect();
        Ok((records, page.next_shard_iterator))
    }

    /// Every record the stream holds now, oldest first, shard by shard, in Lambda's JSON.
    pub async fn read_all(&self) -> Result<Vec<Value>, StreamError> {
        let arn = self.stream_arn().await?;
        let mut all = Vec::new();
        for shard in self.shard_ids(&arn).await? {
            let mut iterator = self
                .iterator(&arn, &shard, ShardIteratorType::TrimHorizon, None)
                .await?;
            // An open shard always hands back a next iterator: stop at the first empty page.
            while let Some(current) = iterator {
                let (records, next) = self.page(&arn, current).await?;
                if records.is_empty() {
                    break;
                }
                all.extend(records);
                iterator = next;
            }
        }
        Ok(all)
    }

    /// Follows the stream from its oldest record, forever, as Lambda's event source mapping
    /// would: each page goes to `notifier` as Lambda's event (`{"Records": [...]}`) with
    /// [`LOCAL_BATCH_TIME`] to answer; the shard is then read again from the first record it
    /// reported, after a pause that grows. (From the oldest record: the claims make seeing a
    /// change again harmless.)
    pub async fn follow(&self, notifier: &Notifier) -> Result<(), StreamError> {
        let arn = self.stream_arn().await?;
        let mut shards: HashMap<String, Shard> = HashMap::new();
        let mut finished: HashSet<String> = HashSet::new();
        let mut described: Option<Instant> = None;
        let mut retry_pause = Duration::from_secs(1);
        loop {
            if described.is_none_or(|at| at.elapsed() >= DESCRIBE_EVERY) {
                for id in self.shard_ids(&arn).await? {
                    if !shards.contains_key(&id) && !finished.contains(&id) {
                        let iterator = self
                            .iterator(&arn, &id, ShardIteratorType::TrimHorizon, None)
                            .await?;
                        shards.insert(
                            id,
                            Shard {
                                iterator,
                                last: None,
                            },
                        );
                    }
                }
                described = Some(Instant::now());
            }
            let mut busy = false;
            for (id, shard) in shards.iter_mut() {
                let Some(iterator) = shard.iterator.take() else {
                    continue;
                };
                let (records, next) = match self.page(&arn, iterator).await {
                    Ok(page) => page,
                    Err(error) => {
                        // An expired iterator, or DynamoDB Local restarting: start again after
                        // the last record handed over.
                        tracing::warn!(%error, "notify: reading the stream failed; resuming");
                        tokio::time::sleep(retry_pause).await;
                        shard.iterator = match &shard.last {
                            Some(last) => {
                                self.iterator(
                                    &arn,
                                    id,
                                    ShardIteratorType::AfterSequenceNumber,
                                    Some(last),
                                )
                                .await?
                            }
                            None => {
                                self.iterator(&arn, id, ShardIteratorType::TrimHorizon, None)
                                    .await?
                            }
                        };
                        continue;
                    }
                };
                if records.is_empty() {
                    shard.iterator = next;
                    continue;
                }
                busy = true;
                let numbers: Vec<String> = records
                    .iter()
                    .filter_map(|r| r["dynamodb"]["SequenceNumber"].as_str().map(str::to_owned))
                    .collect();
                let event = json!({ "Records": records });
                let failed: Vec<String> = match notifier
                    .invoke(&event, Instant::now() + LOCAL_BATCH_TIME)
                    .await
                {
                    Ok(response) => response.failed().into_iter().map(str::to_owned).collect(),
                    Err(error) => {
                        tracing::error!(%error, "notify: the batch failed");
                        numbers.clone()
                    }
                };
                match failed.iter().min_by_key(|s| (s.len(), s.as_str())) {
                    None => {
                        shard.last = numbers.last().cloned();
                        shard.iterator = next;
                        retry_pause = Duration::from_secs(1);
                    }
                    Some(first_failed) => {
                        tracing::warn!(
                            failed = failed.len(),
                            retry_in_ms = retry_pause.as_millis() as u64,
                            "notify: records failed; reading them again"
                        );
                        tokio::time::sleep(retry_pause).await;
                        retry_pause = (retry_pause * 2).min(Duration::from_secs(30));
                        shard.iterator = self
                            .iterator(
                                &arn,
                                id,
                                ShardIteratorType::AtSequenceNumber,
                                Some(first_failed),
                            )
                            .await?;
                    }
                }
            }
            shards.retain(|id, shard| {
                let open = shard.iterator.is_some();
                if !open {
                    finished.insert(id.clone());
                }
                open
            });
            if !busy {
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// One SDK record as Lambda's event JSON: `eventName`, and `dynamodb` with
/// `ApproximateCreationDateTime` (epoch seconds), `Keys`, `NewImage` and `OldImage` as
/// DynamoDB JSON (`{"S": ...}`), `SequenceNumber`, `SizeBytes` and `StreamViewType`; TTL
/// removals carry `userIdentity`.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let image =
        |image: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
            image.map(|image| {
                let item = serde_dynamo::Item::from(image.clone());
                serde_json::to_value(item).unwrap_or(Value::Null)
            })
        };
    let mut dynamodb = serde_json::Map::new();
    if let Some(stream) = record.dynamodb() {
        if let Some(at) = stream.approximate_creation_date_time() {
            dynamodb.insert("ApproximateCreationDateTime".into(), json!(at.secs()));
        }
        for (name, value) in [
            ("Keys", image(stream.keys.as_ref())),
            ("NewImage", image(stream.new_image.as_ref())),
            ("OldImage", image(stream.old_image.as_ref())),
        ] {
            if let Some(value) = value {
                dynamodb.insert(name.into(), value);
            }
        }
        dynamodb.insert("SequenceNumber".into(), json!(stream.sequence_number()));
        dynamodb.insert("SizeBytes".into(), json!(stream.size_bytes()));
        dynamodb.insert(
            "StreamViewType".into(),
            json!(stream.stream_view_type().map(|t| t.as_str())),
        );
    }
    let mut out = json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": record.event_source(),
        "awsRegion": record.aws_region(),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    });
    if let Some(identity) = record.user_identity() {
        out["userIdentity"] = json!({
            "type": identity.r#type(),
            "principalId": identity.principal_id(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodbstreams::primitives::DateTime;
    use aws_sdk_dynamodbstreams::types::{
        AttributeValue, OperationType, StreamRecord, StreamViewType,
    };

    use super::*;

    /// The conversion gives the shape of AWS's own example of a DynamoDB Streams event for
    /// Lambda (an INSERT with its keys and new image), and the notifier reads it back.
    #[test]
    fn an_sdk_record_becomes_lambdas_json() {
        let s = |v: &str| AttributeValue::S(v.into());
        let stream = StreamRecord::builder()
            .approximate_creation_date_time(DateTime::from_secs(1_479_499_740))
            .keys("Id", AttributeValue::N("101".into()))
            .new_image("Message", s("New item!"))
            .new_image("Id", AttributeValue::N("101".into()))
            .sequence_number("111")
            .size_bytes(26)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .build();
        let record = Record::builder()
            .event_id("1")
            .event_name(OperationType::Insert)
            .event_version("1.0")
            .event_source("aws:dynamodb")
            .aws_region("us-east-1")
            .dynamodb(stream)
            .build();
        let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-12-03T00:00:00.000";
        assert_eq!(
            lambda_record(&record, arn),
            json!({
                "eventID": "1", "eventName": "INSERT", "eventVersion": "1.0",
                "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_479_499_740,
                    "Keys": {"Id": {"N": "101"}},
                    "NewImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
                    "SequenceNumber": "111", "SizeBytes": 26,
                    "StreamViewType": "NEW_AND_OLD_IMAGES"
                },
                "eventSourceARN": arn
            })
        );
    }
}
