//! What the sync rules may vary, beside the rules themselves: how long event records and
//! tombstones live, and whether message metadata is kept. `config` reads them from the
//! environment (`EVENT_TTL_DAYS`, `TOMBSTONE_TTL_DAYS`, `STORE_MESSAGE_METADATA`).

/// Svix retries for about 27 hours and dashboard replays reuse the message id, so event
/// records must outlive both by a wide margin.
pub(crate) const DEFAULT_EVENT_TTL_DAYS: u32 = 30;
/// How long a deleted object's tombstone blocks late events for it.
pub(crate) const DEFAULT_TOMBSTONE_TTL_DAYS: u32 = 90;

pub(crate) const SECS_PER_DAY: i64 = 24 * 60 * 60;

/// What the sync rules may vary: how long items live, in seconds (DynamoDB TTL is epoch
/// seconds), and whether message metadata is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub event_secs: i64,
    pub tombstone_secs: i64,
    pub message_metadata: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            event_secs: i64::from(DEFAULT_EVENT_TTL_DAYS) * SECS_PER_DAY,
            tombstone_secs: i64::from(DEFAULT_TOMBSTONE_TTL_DAYS) * SECS_PER_DAY,
            message_metadata: false,
        }
    }
}
