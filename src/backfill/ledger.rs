//! A reconcile's record of the ids its listing returned and its sweep found gone: in the
//! table (`RECONCILE#{kind}#{run}`), so an invocation resumes where another stopped; in memory
//! for a dry run, which writes nothing.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;

use crate::store::{Store, StoreError};
use crate::table::encoding::{self, text};
use crate::table::{attr, Entity, Key};

/// How long a run's listed and gone ids are kept (TTL): past any resume.
const CHUNK_TTL_SECS: i64 = 14 * 24 * 60 * 60;

/// Where a run's listed and gone ids are kept: in the table, so an invocation can resume
/// where another stopped; in memory for a dry run, which writes nothing.
pub(super) enum Ledger {
    Table(Store),
    Memory(Mutex<BTreeMap<(String, String), Vec<String>>>),
}

impl Ledger {
    pub(super) async fn save(
        &self,
        key: Key,
        ids: Vec<String>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        match self {
            Self::Table(store) => {
                let expires = now_ms.div_euclid(1000) + CHUNK_TTL_SECS;
                let item = json!({
                    attr::PK: key.pk, attr::SK: key.sk,
                    attr::ENTITY: Entity::ReconcileChunk.as_str(), attr::IDS: ids,
                    crate::table::TTL_ATTRIBUTE: expires,
                });
                let item = item.as_object().expect("built as an object");
                store.put_item(&encoding::from_json(item)).await
            }
            Self::Memory(chunks) => {
                chunks
                    .lock()
                    .expect("never poisoned")
                    .insert((key.pk, key.sk), ids);
                Ok(())
            }
        }
    }

    /// Every id of the run's chunks of `part` (`LISTED`, `GONE`), in order.
    pub(super) async fn load(&self, pk: &str, part: &str) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{part}#");
        match self {
            Self::Table(store) => Ok(store
                .partition(pk)
                .await?
                .iter()
                .filter(|item| text(item, attr::SK).is_some_and(|sk| sk.starts_with(&prefix)))
                .flat_map(|item| match item.get(attr::IDS) {
                    Some(AttributeValue::L(ids)) => ids
                        .iter()
                        .filter_map(|id| id.as_s().ok().cloned())
                        .collect(),
                    _ => Vec::new(),
                })
                .collect()),
            Self::Memory(chunks) => Ok(chunks
                .lock()
                .expect("never poisoned")
                .iter()
                .filter(|((p, sk), _)| p == pk && sk.starts_with(&prefix))
                .flat_map(|(_, ids)| ids.iter().cloned())
                .collect()),
        }
    }
}
