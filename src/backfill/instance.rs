//! Which Clerk instance the table mirrors, so a backfill or a reconcile with another
//! instance's key (a development key against a production table) refuses to start before it
//! writes anything.
//!
//! The table learns its instance from the first backfill or reconcile: `GET /v1/instance` for
//! its key, recorded as `INSTANCE` / `INSTANCE` ([`crate::table::Key::instance`]). Never from a
//! webhook alone: Clerk's Dashboard test events may carry example values (`ins_123`). Until it
//! is bound, the event records' `instance_id`s are the evidence: a key whose instance none of
//! them names is refused.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::table::{attr, Entity, Item, Key};

/// What to do about the instance of the key, before anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Binding {
    /// The table is bound to this instance already.
    Bound,
    /// Nothing says otherwise: record the key's instance (unless dry-running).
    Bind,
}

/// Why a run refused to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WrongInstance {
    #[error(
        "CLERK_SECRET_KEY belongs to instance {key}, but this table mirrors {table} (recorded by \
         an earlier backfill or reconcile): nothing was written. Use {table}'s key, or another table"
    )]
    Bound { key: String, table: String },
    #[error(
        "CLERK_SECRET_KEY belongs to instance {key}, but the table's webhooks come from {}: nothing \
         was written. Use that instance's key, or another table",
        webhooks.iter().cloned().collect::<Vec<_>>().join(", ")
    )]
    Webhooks {
        key: String,
        webhooks: BTreeSet<String>,
    },
}

/// Decides from the key's instance, the instance the table is bound to (if any), and the
/// instances its event records name (read only while it is unbound).
pub(crate) fn decide(
    key: &str,
    bound: Option<&str>,
    webhooks: &BTreeSet<String>,
) -> Result<Binding, WrongInstance> {
    match bound {
        Some(table) if table == key => Ok(Binding::Bound),
        Some(table) => Err(WrongInstance::Bound {
            key: key.to_owned(),
            table: table.to_owned(),
        }),
        // Test events may name an example instance beside the real one: refuse only when
        // none of the webhooks names the key's.
        None if !webhooks.is_empty() && !webhooks.contains(key) => Err(WrongInstance::Webhooks {
            key: key.to_owned(),
            webhooks: webhooks.clone(),
        }),
        None => Ok(Binding::Bind),
    }
}

/// The item that binds the table to `instance_id`.
pub(crate) fn item(instance_id: &str, bound_by: &str, now_ms: i64) -> Item {
    let key = Key::instance();
    match json!({
        attr::PK: key.pk, attr::SK: key.sk, attr::ENTITY: Entity::Instance.as_str(),
        attr::INSTANCE_ID: instance_id, attr::BOUND_BY: bound_by, attr::BOUND_AT: now_ms,
    }) {
        Value::Object(map) => crate::table::encoding::from_json(&map),
        _ => unreachable!("built as an object"),
    }
}

/// The instance a stored binding names.
pub(crate) fn bound_instance(item: &Item) -> Option<&str> {
    crate::table::encoding::text(item, attr::INSTANCE_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_bound_table_accepts_only_its_instance() {
        assert_eq!(
            decide("ins_a", Some("ins_a"), &set(&[])),
            Ok(Binding::Bound)
        );
        let refused = decide("ins_dev", Some("ins_prod"), &set(&["ins_dev"])).unwrap_err();
        assert_eq!(
            refused,
            WrongInstance::Bound {
                key: "ins_dev".into(),
                table: "ins_prod".into()
            }
        );
        assert!(refused.to_string().contains("nothing was written"));
    }

    #[test]
    fn an_unbound_table_goes_by_its_webhooks() {
        // No webhooks yet: bind.
        assert_eq!(decide("ins_a", None, &set(&[])), Ok(Binding::Bind));
        // The key's instance among them (beside a Dashboard test event's example id): bind.
        assert_eq!(
            decide("ins_a", None, &set(&["ins_123", "ins_a"])),
            Ok(Binding::Bind)
        );
        // Webhooks from another instance only: refuse, naming them.
        let refused = decide("ins_dev", None, &set(&["ins_prod"])).unwrap_err();
        assert!(
            refused.to_string().contains("come from ins_prod"),
            "{refused}"
        );
    }

    #[test]
    fn the_binding_item_reads_back() {
        let item = item("ins_a", "reconcile", 5);
        assert_eq!(bound_instance(&item), Some("ins_a"));
        assert_eq!(Key::of(&item), Some(Key::instance()));
    }
}
