//! Routing on the envelope `type`, and the id checks of each type's payload.

use serde::de::DeserializeOwned;

use super::data::Data;
use super::error::{invalid, message, redact, DecodeError};
use super::ids::*;
use super::payload::*;

/// Checks the ids of one event as they are read, and notes the fields whose prefix is off.
pub(super) struct IdCheck<'a> {
    pub(super) event_type: &'a str,
    pub(super) unexpected_prefixes: Vec<&'static str>,
}

impl IdCheck<'_> {
    /// An id that becomes part of a key: refused unless [`is_key_safe`]; its prefix is only
    /// noted.
    fn key(&mut self, field: &'static str, id: &str, prefix: &str) -> Result<(), DecodeError> {
        if !is_key_safe(id) {
            return Err(invalid(
                self.event_type,
                &format!(
                    "{field} cannot be part of a key (1 to {MAX_ID_BYTES} letters, digits or _)"
                ),
            ));
        }
        self.prefix(field, id, prefix);
        Ok(())
    }

    /// An id kept as an attribute only: any string will do; its prefix is noted.
    fn prefix(&mut self, field: &'static str, id: &str, prefix: &str) {
        if !id.starts_with(prefix) {
            self.unexpected_prefixes.push(field);
        }
    }

    fn typed<T: DeserializeOwned>(&self, data: &Data) -> Result<T, DecodeError> {
        data.typed()
            .map_err(|e| invalid(self.event_type, &redact(&message(&e))))
    }

    /// `{object, id, deleted}`.
    fn deleted(&mut self, data: &Data, prefix: &str) -> Result<DeletedObject, DecodeError> {
        let deleted: DeletedObject = self.typed(data)?;
        self.key("id", &deleted.id, prefix)?;
        Ok(deleted)
    }
}

pub(super) fn route(ids: &mut IdCheck, data: &Data) -> Result<Payload, DecodeError> {
    let event_type = ids.event_type;
    let payload = match event_type {
        "user.created" | "user.updated" => {
            let user: User = ids.typed(data)?;
            ids.key("id", &user.id, USER_PREFIX)?;
            Payload::UserUpserted(user)
        }
        "user.deleted" => Payload::UserDeleted(ids.deleted(data, USER_PREFIX)?),
        "organization.created" | "organization.updated" => {
            let org: Organization = ids.typed(data)?;
            ids.key("id", &org.id, ORG_PREFIX)?;
            Payload::OrganizationUpserted(org)
        }
        "organization.deleted" => Payload::OrganizationDeleted(ids.deleted(data, ORG_PREFIX)?),
        "organizationMembership.created"
        | "organizationMembership.updated"
        | "organizationMembership.deleted" => {
            let m: Membership = ids.typed(data)?;
            ids.prefix("id", &m.id, MEMBERSHIP_PREFIX);
            ids.key("organization.id", &m.organization.id, ORG_PREFIX)?;
            ids.key(
                "public_user_data.user_id",
                &m.public_user_data.user_id,
                USER_PREFIX,
            )?;
            if event_type.ends_with(".deleted") {
                Payload::MembershipDeleted(m)
            } else {
                Payload::MembershipUpserted(m)
            }
        }
        "session.created" | "session.pending" | "session.ended" | "session.removed"
        | "session.revoked" => {
            let session: Session = ids.typed(data)?;
            ids.key("id", &session.id, SESSION_PREFIX)?;
            ids.key("user_id", &session.user_id, USER_PREFIX)?;
            if let Some(user) = &session.user {
                // The session goes under USER#{user_id} and the copy under USER#{user.id}:
                // when they disagree one of the two keys is wrong, and nothing says which.
                if user.id != session.user_id {
                    return Err(invalid(event_type, "user.id differs from user_id"));
                }
            }
            Payload::SessionUpserted(session)
        }
        "organizationInvitation.created"
        | "organizationInvitation.accepted"
        | "organizationInvitation.revoked" => {
            let inv: OrganizationInvitation = ids.typed(data)?;
            ids.key("id", &inv.id, ORG_INVITATION_PREFIX)?;
            ids.key("organization_id", &inv.organization_id, ORG_PREFIX)?;
            Payload::OrganizationInvitationUpserted(inv)
        }
        "organizationDomain.created" | "organizationDomain.updated" => {
            let domain: Domain = ids.typed(data)?;
            ids.key("id", &domain.id, DOMAIN_PREFIX)?;
            ids.key("organization_id", &domain.organization_id, ORG_PREFIX)?;
            Payload::DomainUpserted(domain)
        }
        "organizationDomain.deleted" => Payload::DomainDeleted(ids.deleted(data, DOMAIN_PREFIX)?),
        "invitation.created" | "invitation.accepted" | "invitation.revoked" => {
            let inv: Invitation = ids.typed(data)?;
            ids.key("id", &inv.id, INVITATION_PREFIX)?;
            Payload::InvitationUpserted(inv)
        }
        "role.created" | "role.updated" => {
            let role: Role = ids.typed(data)?;
            ids.key("id", &role.id, ROLE_PREFIX)?;
            Payload::RoleUpserted(role)
        }
        "role.deleted" => Payload::RoleDeleted(ids.deleted(data, ROLE_PREFIX)?),
        "permission.created" | "permission.updated" => {
            let permission: Permission = ids.typed(data)?;
            ids.key("id", &permission.id, PERMISSION_PREFIX)?;
            Payload::PermissionUpserted(permission)
        }
        "permission.deleted" => Payload::PermissionDeleted(ids.deleted(data, PERMISSION_PREFIX)?),
        "waitlistEntry.created" | "waitlistEntry.updated" => {
            let entry: WaitlistEntry = ids.typed(data)?;
            ids.key("id", &entry.id, WAITLIST_PREFIX)?;
            Payload::WaitlistEntryUpserted(entry)
        }
        "email.created" | "sms.created" => {
            let (kind, prefix) = if event_type == "email.created" {
                (MessageKind::Email, EMAIL_PREFIX)
            } else {
                (MessageKind::Sms, SMS_PREFIX)
            };
            let metadata: MessageMetadata = ids.typed(data)?;
            // MESSAGE#{id} with STORE_MESSAGE_METADATA; checked whatever the setting, so that
            // turning it on changes what is stored, never what is accepted.
            ids.key("id", &metadata.id, prefix)?;
            if let Some(user_id) = &metadata.user_id {
                ids.key("user_id", user_id, USER_PREFIX)?;
            }
            Payload::MessageSent(Message { kind, metadata })
        }
        _ => match billing_kind(event_type) {
            Some(kind) => {
                let object: BillingObject = ids.typed(data)?;
                ids.key("id", &object.id, kind.id_prefix())?;
                if let Some(payer) = &object.payer {
                    if let Some(id) = payer.user_id.as_deref().filter(|id| !id.is_empty()) {
                        ids.key("payer.user_id", id, USER_PREFIX)?;
                    }
                    if let Some(id) = payer.organization_id.as_deref().filter(|id| !id.is_empty()) {
                        ids.key("payer.organization_id", id, ORG_PREFIX)?;
                    }
                }
                Payload::BillingUpserted(Billing { kind, object })
            }
            None => Payload::Unhandled,
        },
    };
    Ok(payload)
}

/// Billing families have many status events (`subscriptionItem.pastDue`, …), and Clerk adds
/// more: any type of these families is synced the same way.
fn billing_kind(event_type: &str) -> Option<BillingKind> {
    match event_type.split_once('.')?.0 {
        "subscription" => Some(BillingKind::Subscription),
        "subscriptionItem" => Some(BillingKind::SubscriptionItem),
        "paymentAttempt" => Some(BillingKind::PaymentAttempt),
        _ => None,
    }
}
