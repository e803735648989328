//! Plain reads and writes: the warm-up, single items (the backfill's checkpoint, the
//! instance binding), a partition, and the reconcile's scans.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::client::{key_of, s, Store, StoreError};
use crate::table::{attr, Entity, Item, Key};

impl Store {
    /// One cheap read (an item that never exists) so the connection, TLS session and
    /// credentials are ready before the first webhook. Called once at init.
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, s("WARMUP"))
            .key(attr::SK, s("WARMUP"))
            .projection_expression("#pk")
            .expression_attribute_names("#pk", attr::PK)
            .send()
            .await
            .map_err(|e| StoreError::call("GetItem", &e))?;
        Ok(())
    }

    /// Reads one item (strongly consistent), as JSON. For the backfill's checkpoint.
    pub async fn get_item(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::call("GetItem", &e))?;
        Ok(out.item)
    }

    /// Writes one item unconditionally. For the backfill's checkpoint, which only the backfill
    /// writes; never for entity items, which go through [`Store::apply`] and its guards.
    pub async fn put_item(&self, item: &Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item.clone()))
            .send()
            .await
            .map_err(|e| StoreError::call("PutItem", &e))?;
        Ok(())
    }

    /// Writes `item` only if no item has its key. `false` when one had (another run bound the
    /// table first).
    pub async fn put_if_absent(&self, item: &Item) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item.clone()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(StoreError::call("PutItem", &err)),
        }
    }

    /// Every item of partition `pk`, in sort-key order (strongly consistent).
    pub async fn partition(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        self.query_all(super::KeyCondition {
            index: None,
            pk: (attr::PK, pk),
            sk_prefix: None,
        })
        .await
    }

    /// One page of the live items whose `entity` is `entity`, with the `attributes` named:
    /// the items (each with `pk` and `sk`) and where the next page starts (`None` at the end).
    /// A whole-table scan, for the reconcile's sweep.
    pub async fn scan_live(
        &self,
        entity: Entity,
        attributes: &[&str],
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut request = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("#entity = :entity AND attribute_not_exists(#deleted)")
            .expression_attribute_names("#entity", attr::ENTITY)
            .expression_attribute_names("#deleted", attr::DELETED)
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":entity", s(entity.as_str()))
            .consistent_read(true)
            .set_exclusive_start_key(start);
        let mut projection = vec!["#pk".to_owned(), "#sk".to_owned()];
        for (i, name) in attributes.iter().enumerate() {
            // Some names (`version`, `data`) are DynamoDB reserved words.
            let placeholder = format!("#a{i}");
            request = request.expression_attribute_names(&placeholder, *name);
            projection.push(placeholder);
        }
        let page = request
            .projection_expression(projection.join(", "))
            .send()
            .await
            .map_err(|e| StoreError::call("Scan", &e))?;
        Ok((page.items().to_vec(), page.last_evaluated_key().cloned()))
    }

    /// The instances the event records name (`instance_id`), from up to `max_pages` scan
    /// pages (a page is up to 1 MB of items): evidence of where the table's webhooks come
    /// from, while no backfill has bound it.
    pub async fn webhook_instances(
        &self,
        max_pages: usize,
    ) -> Result<BTreeSet<String>, StoreError> {
        let mut found = BTreeSet::new();
        let mut start_key = None;
        for _ in 0..max_pages {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#entity = :event AND attribute_exists(#instance)")
                .expression_attribute_names("#entity", attr::ENTITY)
                .expression_attribute_names("#instance", attr::INSTANCE_ID)
                .expression_attribute_values(":event", s(Entity::Event.as_str()))
                .projection_expression("#instance")
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| StoreError::call("Scan", &e))?;
            found.extend(page.items().iter().filter_map(
                |item| match item.get(attr::INSTANCE_ID) {
                    Some(AttributeValue::S(id)) => Some(id.clone()),
                    _ => None,
                },
            ));
            start_key = page.last_evaluated_key().cloned();
            if start_key.is_none() {
                break;
            }
        }
        Ok(found)
    }
}
