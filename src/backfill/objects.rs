//! A Backend API object -> the [`Plan`] its `*.created` webhook would produce. Pure.
//!
//! Clerk's Backend API `User`, `Organization` and `OrganizationMembership` objects have the
//! shape of the matching webhooks' `data`, so the object goes through the webhook path's own
//! decoding ([`Event::from_data`]: routing, id checks) and planner ([`plan_backfill`]): the
//! same item, version, guard and parent checks, without an event record.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::kind::Kind;
use crate::event::{is_key_safe, text_at, Event};
use crate::plan::Settings;
use crate::plan::{plan_backfill, plan_reconcile, plan_sync, Plan};

/// An object the webhook path would refuse too; the run counts it and goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The object's id when it has one of the form Clerk uses (ids are not personal data).
    pub id: Option<String>,
    /// Field names only, never values (see `event::redact`).
    pub reason: String,
}

/// Which run copies: the item's `source` says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copier {
    Backfill,
    Reconcile,
    /// A sync on demand (`crate::sync`) copies one object the same way.
    Sync,
}

/// An object ready to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub plan: Plan,
    /// The object's id when it is shaped like a Clerk id: what a skip names.
    pub id: Option<String>,
    /// As [`Event::unexpected_prefixes`]: copied all the same.
    pub unexpected_prefixes: Vec<&'static str>,
}

/// The plan for one object. Its version is the object's `updated_at`: a backfilled copy
/// never claims to be newer than the state it was read in. An object without one is skipped
/// rather than versioned by the clock, which would outrank genuine later webhooks.
pub fn prepare(
    kind: Kind,
    object: &RawValue,
    settings: &Settings,
    now_ms: i64,
    by: Copier,
) -> Result<Prepared, Skip> {
    // Only something shaped like a Clerk id is kept for the log line.
    let id = text_at(object, &["id"]).filter(|id| is_key_safe(id));
    let skip = |reason: String| Skip {
        id: id.clone(),
        reason,
    };
    #[derive(Deserialize)]
    struct Version {
        updated_at: i64,
    }
    let updated_at = serde_json::from_str::<Version>(object.get())
        .map_err(|_| skip("no numeric updated_at to version it with".into()))?
        .updated_at;
    let event =
        Event::from_data(kind.event_type(), updated_at, object).map_err(|e| skip(e.to_string()))?;
    let plan = match by {
        Copier::Backfill => plan_backfill(&event, settings, now_ms),
        Copier::Reconcile => plan_reconcile(&event, settings, now_ms),
        Copier::Sync => plan_sync(&event, settings, now_ms),
    };
    Ok(Prepared {
        plan: plan.expect("the *.created types are synced"),
        id,
        unexpected_prefixes: event.unexpected_prefixes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, Guard, Write};
    use crate::table::Key;
    use aws_sdk_dynamodb::types::AttributeValue;
    use serde_json::{json, Value};

    fn raw(value: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&value).unwrap()
    }

    const NOW: i64 = 1_760_000_000_000;

    /// Shapes from the Backend API schemas (`User`, `Organization`, `OrganizationMembership`).
    fn api_user() -> Value {
        json!({"object": "user", "id": "user_2x", "username": null, "first_name": "Ada",
               "last_name": "Lovelace", "image_url": "https://img.clerk.com/x", "has_image": true,
               "primary_email_address_id": "idn_1", "primary_phone_number_id": null,
               "primary_web3_wallet_id": null, "password_enabled": true, "two_factor_enabled": false,
               "totp_enabled": false, "backup_code_enabled": false,
               "email_addresses": [{"object": "email_address", "id": "idn_1", "email_address": "Ada@Example.org",
                                    "reserved": false, "linked_to": [], "created_at": 1, "updated_at": 1,
                                    "verification": {"status": "verified", "strategy": "email_code"}}],
               "phone_numbers": [], "web3_wallets": [], "passkeys": [], "external_accounts": [],
               "saml_accounts": [], "enterprise_accounts": [], "public_metadata": {}, "external_id": null,
               "last_sign_in_at": null, "banned": false, "locked": false, "lockout_expires_in_seconds": null,
               "verification_attempts_remaining": 100, "created_at": 1_700_000_000_000_i64,
               "updated_at": 1_700_000_500_000_i64, "delete_self_enabled": true,
               "create_organization_enabled": true, "last_active_at": null, "mfa_enabled_at": null,
               "mfa_disabled_at": null, "legal_accepted_at": null})
    }

    fn api_membership() -> Value {
        json!({"object": "organization_membership", "id": "orgmem_1", "role": "org:member",
               "permissions": [], "public_metadata": {}, "created_at": 1_700_000_000_000_i64,
               "updated_at": 1_700_000_600_000_i64,
               "organization": {"object": "organization", "id": "org_1", "name": "Acme", "slug": "acme",
                                "has_image": false, "max_allowed_memberships": 5, "admin_delete_enabled": true,
                                "public_metadata": {}, "created_at": 1, "updated_at": 1},
               "public_user_data": {"user_id": "user_2x", "first_name": "Ada", "last_name": null,
                                    "profile_image_url": null, "image_url": "x", "has_image": false}})
    }

    #[test]
    fn a_user_becomes_what_user_created_would_write_versioned_by_updated_at() {
        let p = prepare(
            Kind::Users,
            &raw(api_user()),
            &Settings::default(),
            NOW,
            Copier::Backfill,
        )
        .unwrap()
        .plan;
        assert_eq!(p.writes.len(), 1, "no event record");
        let Write::Put {
            item,
            version,
            guard,
        } = &p.writes[0]
        else {
            panic!()
        };
        assert_eq!(*version, 1_700_000_500_000);
        assert_eq!(*guard, Guard::NewerAndNotDeleted);
        let text = |name| crate::table::encoding::text(item, name);
        assert_eq!(text("pk"), Some("USER#user_2x"));
        assert_eq!(text("gsi1pk"), Some("EMAIL#ada@example.org"));
        assert_eq!(text("source"), Some("backfill"));
        // Identical to the webhook's item apart from who wrote it.
        let event = Event::from_data("user.created", 1_700_000_500_000, &raw(api_user())).unwrap();
        let webhook = plan(&event, "msg_1", &Settings::default(), NOW).unwrap();
        let Write::Put { item: theirs, .. } = &webhook.writes[1] else {
            panic!()
        };
        let mut theirs = theirs.clone();
        theirs.remove("last_svix_id");
        theirs.insert("source".into(), AttributeValue::S("backfill".into()));
        assert_eq!(item, &theirs);
    }

    #[test]
    fn a_membership_checks_its_organization_and_user_are_not_deleted() {
        let p = prepare(
            Kind::Memberships,
            &raw(api_membership()),
            &Settings::default(),
            NOW,
            Copier::Backfill,
        )
        .unwrap()
        .plan;
        assert_eq!(
            p.writes[1..],
            [
                Write::RequireNotDeleted(Key::organization("org_1")),
                Write::RequireNotDeleted(Key::user("user_2x"))
            ]
        );
        let Write::Put { version, guard, .. } = &p.writes[0] else {
            panic!()
        };
        assert_eq!((*version, *guard), (1_700_000_600_000, Guard::Newer));
    }

    #[test]
    fn objects_the_webhook_path_would_refuse_are_skipped_with_a_reason_and_no_values() {
        let mut no_version = api_user();
        no_version.as_object_mut().unwrap().remove("updated_at");
        let skip = prepare(
            Kind::Users,
            &raw(no_version),
            &Settings::default(),
            NOW,
            Copier::Backfill,
        )
        .unwrap_err();
        assert_eq!(skip.id.as_deref(), Some("user_2x"));
        assert!(skip.reason.contains("updated_at"), "{}", skip.reason);

        // The Backend API schema does not require public_user_data; without it there is no key.
        let mut anonymous = api_membership();
        anonymous
            .as_object_mut()
            .unwrap()
            .remove("public_user_data");
        let skip = prepare(
            Kind::Memberships,
            &raw(anonymous),
            &Settings::default(),
            NOW,
            Copier::Backfill,
        )
        .unwrap_err();
        assert!(skip.reason.contains("public_user_data"), "{}", skip.reason);

        let mut bad = api_user();
        bad["id"] = json!("ada@example.org");
        bad["email_addresses"] = json!("ada@example.org");
        let skip = prepare(
            Kind::Users,
            &raw(bad),
            &Settings::default(),
            NOW,
            Copier::Backfill,
        )
        .unwrap_err();
        assert!(!skip.reason.contains("example.org"), "{}", skip.reason);
        assert_eq!(skip.id, None, "not an id: not logged");
    }

    #[test]
    fn an_id_without_its_usual_prefix_is_copied_and_noted() {
        let mut odd = api_membership();
        odd["organization"]["id"] = json!("o_1");
        let prepared = prepare(
            Kind::Memberships,
            &raw(odd),
            &Settings::default(),
            NOW,
            Copier::Backfill,
        )
        .unwrap();
        assert_eq!(prepared.unexpected_prefixes, ["organization.id"]);
        assert_eq!(
            prepared.plan.writes[1],
            Write::RequireNotDeleted(Key::organization("o_1"))
        );
    }
}
