//! A delete's cascade: once the parent's tombstone is in place, every live dependent item is
//! deleted, each with its own condition, so a tombstone written meanwhile stays.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::client::{key_only, s, Store, StoreError};
use crate::table::{attr, Dependents, GSI1};
use crate::writes::Cascade;

/// A cascade's deletes in flight at once.
const DELETE_CONCURRENCY: usize = 16;

impl Store {
    /// Deletes every live dependent item the cascade names ([`Dependents`]), page by page.
    /// Safe to re-run.
    pub async fn cascade(&self, cascade: &Cascade) -> Result<usize, StoreError> {
        let dependents = match cascade {
            Cascade::Organization { org_id } => Dependents::of_organization(org_id),
            Cascade::User { user_id } => Dependents::of_user(user_id),
        };
        let mut deleted = 0;
        for dependents in dependents {
            let query = match dependents {
                Dependents::Partition { pk, sk_prefix } => self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_values(":pk", s(pk))
                    .expression_attribute_values(":prefix", s(sk_prefix))
                    .consistent_read(true),
                // gsi1 is eventually consistent: an item written a moment before the
                // tombstone may be missed here. The parent checks stop new ones; a retry or the
                // next delete finds it.
                Dependents::Index { gsi1pk, sk_prefix } => {
                    let query = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .index_name(GSI1)
                        .expression_attribute_names("#gpk", attr::GSI1_PK)
                        .expression_attribute_values(":pk", s(gsi1pk));
                    match sk_prefix {
                        Some(prefix) => query
                            .key_condition_expression("#gpk = :pk AND begins_with(#gsk, :prefix)")
                            .expression_attribute_names("#gsk", attr::GSI1_SK)
                            .expression_attribute_values(":prefix", s(prefix)),
                        None => query.key_condition_expression("#gpk = :pk"),
                    }
                }
            };
            // Tombstones stay: they still order late events until their TTL.
            let live = query
                .filter_expression("attribute_not_exists(#deleted)")
                .projection_expression("#pk, #sk")
                .expression_attribute_names("#deleted", attr::DELETED)
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#sk", attr::SK);
            deleted += self.delete_all(live).await?;
        }
        Ok(deleted)
    }

    async fn delete_all(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<usize, StoreError> {
        let mut deleted = 0;
        let mut start_key = None;
        loop {
            let page = query
                .clone()
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| StoreError::call("Query", &e))?;
            let keys: Vec<_> = page.items().iter().map(key_only).collect();
            deleted += self.delete_unless_tombstone(keys).await?;
            start_key = page.last_evaluated_key().cloned();
            if start_key.is_none() {
                return Ok(deleted);
            }
        }
    }

    /// Deletes each of `keys` unless it has become a tombstone since the query read it: a
    /// delete event for that very item may commit between the two, and its tombstone must
    /// stay. One conditional `DeleteItem` per key, [`DELETE_CONCURRENCY`] at a time
    /// (`BatchWriteItem` cannot carry a condition). Returns how many went.
    async fn delete_unless_tombstone(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for chunk in keys.chunks(DELETE_CONCURRENCY) {
            let mut deletes = tokio::task::JoinSet::new();
            for key in chunk {
                let delete = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key.clone()))
                    .condition_expression("attribute_not_exists(#deleted)")
                    .expression_attribute_names("#deleted", attr::DELETED);
                deletes.spawn(delete.send());
            }
            while let Some(result) = deletes.join_next().await {
                match result.expect("a DeleteItem task does not panic") {
                    Ok(_) => deleted += 1,
                    Err(err)
                        if matches!(
                            err.as_service_error(),
                            Some(DeleteItemError::ConditionalCheckFailedException(_))
                        ) => {}
                    Err(err) => return Err(StoreError::call("DeleteItem", &err)),
                }
            }
        }
        Ok(deleted)
    }
}
