//! The notifier's claims: one conditional `UpdateItem` takes a claim on one action for one
//! change, leased, so exactly one claimer acts; then it is finished once.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::client::{key_of, s, Store, StoreError};
use crate::table::{attr, Entity, Key, TTL_ATTRIBUTE};

/// Where the claim on one action for one change stands, once a claimer has tried to take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours until the lease ends: act, then [`Store::finish_claim`] with this token.
    Taken { token: String, attempt: u64 },
    /// Someone acted and the provider accepted it: never again.
    Done,
    /// Someone acted and the provider refused it for good: never again.
    Failed,
    /// Another claimer holds a lease until this time (ms): ask again later.
    Held { until_ms: i64 },
}

/// How a claim ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Done,
    Failed,
}

impl Store {
    /// Takes the claim at `key` for `lease_ms` from `now_ms`, if nobody holds it and nobody
    /// finished it: one conditional UpdateItem, so of any number of concurrent claimers exactly
    /// one gets it. An expired lease (a claimer that crashed between claiming and finishing)
    /// is taken over. The claim is kept `keep_secs` (TTL), past every redelivery window.
    pub async fn claim(
        &self,
        key: &Key,
        now_ms: i64,
        lease_ms: i64,
        keep_secs: i64,
    ) -> Result<Claim, StoreError> {
        let token = format!("{:016x}", crate::backoff::random_u64());
        let n = |v: i64| AttributeValue::N(v.to_string());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression(
                "SET #entity = :entity, #state = :pending, #lease = :lease, #token = :token, \
                 #ttl = :expires ADD #attempts :one",
            )
            .condition_expression(
                "attribute_not_exists(#pk) OR (#state = :pending AND #lease < :now)",
            )
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#entity", attr::ENTITY)
            .expression_attribute_names("#state", attr::STATE)
            .expression_attribute_names("#lease", attr::LEASE_UNTIL)
            .expression_attribute_names("#token", attr::CLAIM_TOKEN)
            .expression_attribute_names("#attempts", attr::ATTEMPTS)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":entity", s(Entity::Claim.as_str()))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":lease", n(now_ms.saturating_add(lease_ms)))
            .expression_attribute_values(":token", s(token.clone()))
            .expression_attribute_values(":expires", n(now_ms.div_euclid(1000) + keep_secs))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now_ms))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let number = |item: &HashMap<String, AttributeValue>, name: &str| match item.get(name) {
            Some(AttributeValue::N(v)) => v.parse::<i64>().ok(),
            _ => None,
        };
        match result {
            Ok(out) => {
                let attempt = out
                    .attributes()
                    .and_then(|item| number(item, attr::ATTEMPTS))
                    .unwrap_or(1);
                Ok(Claim::Taken {
                    token,
                    attempt: attempt as u64,
                })
            }
            Err(err) => {
                let Some(UpdateItemError::ConditionalCheckFailedException(failed)) =
                    err.as_service_error()
                else {
                    return Err(StoreError::call("UpdateItem", &err));
                };
                let held = failed.item().cloned().unwrap_or_default();
                Ok(match held.get(attr::STATE) {
                    Some(AttributeValue::S(state)) if state == "done" => Claim::Done,
                    Some(AttributeValue::S(state)) if state == "failed" => Claim::Failed,
                    _ => Claim::Held {
                        until_ms: number(&held, attr::LEASE_UNTIL).unwrap_or(now_ms),
                    },
                })
            }
        }
    }

    /// Marks a claim taken with `token` as finished. `false` when the lease was lost (it ran
    /// out and another claimer took over): the other claimer finishes it instead.
    pub async fn finish_claim(
        &self,
        key: &Key,
        token: &str,
        finished: Finished,
    ) -> Result<bool, StoreError> {
        let state = match finished {
            Finished::Done => "done",
            Finished::Failed => "failed",
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression("SET #state = :state REMOVE #lease, #token")
            .condition_expression("#state = :pending AND #token = :token")
            .expression_attribute_names("#state", attr::STATE)
            .expression_attribute_names("#lease", attr::LEASE_UNTIL)
            .expression_attribute_names("#token", attr::CLAIM_TOKEN)
            .expression_attribute_values(":state", s(state))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        conditional(result.map(|_| ()))
    }

    /// Ends the lease of a claim taken with `token` without finishing it, so the next attempt
    /// (Lambda's retry of the record) can take it at once instead of waiting for the lease.
    /// `false` when the claim was no longer ours.
    pub async fn release_claim(&self, key: &Key, token: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression("SET #lease = :ended REMOVE #token")
            .condition_expression("#state = :pending AND #token = :token")
            .expression_attribute_names("#state", attr::STATE)
            .expression_attribute_names("#lease", attr::LEASE_UNTIL)
            .expression_attribute_names("#token", attr::CLAIM_TOKEN)
            .expression_attribute_values(":ended", AttributeValue::N("0".into()))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        conditional(result.map(|_| ()))
    }
}

/// A conditional UpdateItem's result: `true` when it was made, `false` when its condition
/// failed.
fn conditional<R>(result: Result<(), SdkError<UpdateItemError, R>>) -> Result<bool, StoreError> {
    match result {
        Ok(()) => Ok(true),
        Err(err)
            if matches!(
                err.as_service_error(),
                Some(UpdateItemError::ConditionalCheckFailedException(_))
            ) =>
        {
            Ok(false)
        }
        Err(err) => Err(StoreError::call("UpdateItem", &err)),
    }
}
