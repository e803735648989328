//! Clerk's ids: which are safe as part of a key, and the prefixes they usually carry.

/// The prefixes Clerk's ids usually carry. Informative only: an id without its prefix is
/// applied and counted (see [`Event::unexpected_prefixes`]).
pub(crate) const USER_PREFIX: &str = "user_";
pub(crate) const ORG_PREFIX: &str = "org_";
pub(crate) const MEMBERSHIP_PREFIX: &str = "orgmem_";
pub(crate) const SESSION_PREFIX: &str = "sess_";
pub(crate) const ORG_INVITATION_PREFIX: &str = "orginv_";
pub(crate) const DOMAIN_PREFIX: &str = "orgdmn_";
pub(crate) const INVITATION_PREFIX: &str = "inv_";
pub(crate) const ROLE_PREFIX: &str = "role_";
pub(crate) const PERMISSION_PREFIX: &str = "perm_";
pub(crate) const WAITLIST_PREFIX: &str = "wle_";
pub(crate) const EMAIL_PREFIX: &str = "ema_";
pub(crate) const SMS_PREFIX: &str = "sms_";

/// The longest id we put in a key. Clerk's are about 30 bytes; DynamoDB allows 1,024 for a
/// sort key and 2,048 for a partition key, so with our `KIND#` prefixes this stays far inside.
pub(crate) const MAX_ID_BYTES: usize = 128;

/// Whether `id` is safe as part of a key: 1 to [`MAX_ID_BYTES`] ASCII letters, digits or `_`,
/// the characters Clerk's ids use. So no id holds our `#` separator (which would let a crafted
/// id alias another item's key), a control character or whitespace.
pub fn is_key_safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
