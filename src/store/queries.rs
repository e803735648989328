//! The reader's calls (`crate::read`): one query of the table or of an index, followed to its
//! last page, and items fetched by key in batches.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::client::{key_of, s, Store, StoreError};
use crate::table::{Item, Key};

/// `BatchGetItem` takes at most 100 keys.
const BATCH_GET_KEYS: usize = 100;
/// Rounds of `UnprocessedKeys` (DynamoDB's answer to throttling inside a batch) before the
/// read fails; each waits a little longer.
const BATCH_GET_ROUNDS: u32 = 8;

/// One key condition: `{pk attribute} = value`, optionally `begins_with({sk attribute}, prefix)`.
#[derive(Debug, Clone, Copy)]
pub struct KeyCondition<'a> {
    /// `None`: the table; else the index's name.
    pub index: Option<&'a str>,
    pub pk: (&'a str, &'a str),
    pub sk_prefix: Option<(&'a str, &'a str)>,
}

impl Store {
    /// Every item the condition selects, page after page, in sort-key order. Reads of the
    /// table are strongly consistent; an index can only be read eventually consistent.
    pub async fn query_all(&self, condition: KeyCondition<'_>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start_key = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(condition.index.map(str::to_owned))
                .consistent_read(condition.index.is_none())
                .expression_attribute_names("#pk", condition.pk.0)
                .expression_attribute_values(":pk", s(condition.pk.1))
                .set_exclusive_start_key(start_key);
            request = match condition.sk_prefix {
                Some((name, prefix)) => request
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", name)
                    .expression_attribute_values(":prefix", s(prefix)),
                None => request.key_condition_expression("#pk = :pk"),
            };
            let page = request
                .send()
                .await
                .map_err(|e| StoreError::call("Query", &e))?;
            items.extend(page.items().iter().cloned());
            start_key = page.last_evaluated_key().cloned();
            if start_key.is_none() {
                return Ok(items);
            }
        }
    }

    /// The items with these keys (strongly consistent), in the order of `keys`; a key with no
    /// item is left out. 100 keys a call; keys DynamoDB leaves unprocessed are asked again.
    pub async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            let mut pending: Vec<HashMap<String, AttributeValue>> =
                chunk.iter().map(key_of).collect();
            let mut round = 0;
            while !pending.is_empty() {
                round += 1;
                if round > BATCH_GET_ROUNDS {
                    return Err(StoreError::Call {
                        operation: "BatchGetItem",
                        detail: format!("{} keys still unprocessed", pending.len()),
                    });
                }
                if round > 1 {
                    tokio::time::sleep(Duration::from_millis(25 << round.min(6))).await;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .expect("keys are set");
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| StoreError::call("BatchGetItem", &e))?;
                for item in out
                    .responses
                    .into_iter()
                    .flatten()
                    .flat_map(|(_, items)| items)
                {
                    if let Some(key) = Key::of(&item) {
                        found.insert((key.pk, key.sk), item);
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut tables| tables.remove(&self.table))
                    .map(|left| left.keys)
                    .unwrap_or_default();
            }
        }
        Ok(keys
            .iter()
            .filter_map(|key| found.remove(&(key.pk.clone(), key.sk.clone())))
            .collect())
    }
}
