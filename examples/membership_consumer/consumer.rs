//! What the example consumer does with one change event: the seed's membership example, a
//! team-member record and a workspace record per membership, removed on its deletion, kept in
//! a table of the consumer's own (`pk` / `sk`, like ours).
//!
//! EventBridge delivers at least once and in no particular order, so every write is guarded by
//! the event's `version` (Clerk's `updated_at`): an older event never overwrites a newer one,
//! and a deletion leaves a small tombstone, so a late `created` cannot bring the member back.
//! A repeated event (the same `change_id`) finds its version already there and changes nothing.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde_json::Value;

/// One record to write: present (`role` set) or removed (a tombstone), at `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub pk: String,
    pub sk: String,
    pub version: i64,
    /// `None`: removed.
    pub role: Option<String>,
}

/// The writes one event (EventBridge's envelope: `detail-type`, `detail`) asks for.
pub fn writes_for(event: &Value) -> Vec<Write> {
    let detail = &event["detail"];
    let (Some(org), Some(user), Some(version)) = (
        detail["org_id"].as_str(),
        detail["user_id"].as_str(),
        detail["version"].as_i64(),
    ) else {
        return Vec::new();
    };
    let role = match event["detail-type"].as_str() {
        // The ids-only detail has no role: the team record says "member" until a role change
        // (or EVENT_DETAIL=attributes, whose `new` has it).
        Some("organizationMembership.created" | "organizationMembership.role_changed") => Some(
            detail["new"]["role"]
                .as_str()
                .unwrap_or("member")
                .to_owned(),
        ),
        Some("organizationMembership.deleted") => None,
        _ => return Vec::new(),
    };
    vec![
        Write {
            pk: format!("TEAM#{org}"),
            sk: format!("MEMBER#{user}"),
            version,
            role: role.clone(),
        },
        Write {
            pk: format!("WORKSPACE#{user}"),
            sk: format!("ORG#{org}"),
            version,
            role,
        },
    ]
}

/// Applies `writes` to `table`, each only over an older version (or nothing).
pub async fn apply(client: &Client, table: &str, writes: &[Write]) -> Result<(), String> {
    for write in writes {
        let mut item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(write.pk.clone())),
            ("sk".to_owned(), AttributeValue::S(write.sk.clone())),
            (
                "version".to_owned(),
                AttributeValue::N(write.version.to_string()),
            ),
        ]);
        match &write.role {
            Some(role) => item.insert("role".into(), AttributeValue::S(role.clone())),
            None => item.insert("deleted".into(), AttributeValue::Bool(true)),
        };
        let result = client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#v) OR #v < :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", AttributeValue::N(write.version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => {}
            // Already at this version or a newer one: a repeat, or an older event late.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(e) => return Err(format!("DynamoDB PutItem failed: {e}")),
        }
    }
    Ok(())
}
