//! The envelope: the verified body read as exact text, its fields checked, and the event it
//! carries routed.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::data::Data;
use super::error::{invalid, message, redact, DecodeError};
use super::payload::{lenient, Payload};
use super::route::{route, IdCheck};

/// A decoded, routed Clerk event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_type: String,
    /// When the event happened, Unix milliseconds (10-digit second values are normalised):
    /// the envelope's `timestamp`, or, for deliveries from before Clerk added it, the signed
    /// `svix-timestamp` (see [`Event::timestamp_in_envelope`]).
    pub timestamp_ms: i64,
    /// Whether `timestamp_ms` is Clerk's own `timestamp`. Clerk's envelopes had none until
    /// at least mid-2024; then it is the signed delivery time, later than the event itself.
    pub timestamp_in_envelope: bool,
    pub payload: Payload,
    /// The whole `data` object, exactly as Clerk sent it, kept to store verbatim.
    pub data: Data,
    /// The fields (`id`, `organization.id`, …) whose id lacks the prefix Clerk usually gives
    /// it (`user_`, `org_`, …). Prefixes are not a contract (Clerk's own examples use both
    /// `orgdmn_` and `orgdm_`), so the event is applied all the same; the handler counts it
    /// and logs the field names, never the values.
    pub unexpected_prefixes: Vec<&'static str>,
    /// The envelope's `instance_id`: which Clerk instance sent it (`None` for an object read
    /// from the Backend API, or an envelope without a usable one).
    pub instance_id: Option<String>,
}

/// The envelope fields we need. `object` (always `"event"`) is not read; `instance_id` is
/// read leniently: it is kept on the event record and checked against `CLERK_INSTANCE_ID`,
/// but no key depends on it.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    event_type: String,
    /// Orders deletes and versions upserts without `updated_at`. Absent from Clerk's older
    /// deliveries; strict when present.
    #[serde(default)]
    timestamp: Option<i64>,
    data: Box<RawValue>,
    #[serde(default, deserialize_with = "lenient")]
    instance_id: Option<String>,
}

/// Clerk documents milliseconds, but some examples carry 10-digit seconds. Anything below
/// 10^11 (which as milliseconds would be 1973) is taken as seconds. `unsigned_abs`: the
/// magnitude of `i64::MIN` does not fit an i64 (found by the `plan` fuzz target).
pub fn normalize_millis(t: i64) -> i64 {
    if t.unsigned_abs() < 100_000_000_000 {
        t.saturating_mul(1000)
    } else {
        t
    }
}

impl Event {
    /// Parses the raw (verified) body and routes it on `type`. `signed_at_ms` is the
    /// delivery's verified `svix-timestamp`: the event's time when the envelope has no
    /// `timestamp` (Clerk's deliveries before mid-2024).
    pub fn decode(body: &[u8], signed_at_ms: i64) -> Result<Self, DecodeError> {
        // The whole body is checked as JSON first (without building it: any depth passes), so
        // a syntax error anywhere is `invalid_json`, whatever the envelope's fields say.
        let raw: &RawValue =
            serde_json::from_slice(body).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
        if !raw.get().starts_with('{') {
            return Err(DecodeError::InvalidEnvelope("not a JSON object".into()));
        }
        let envelope: Envelope = serde_json::from_str(raw.get())
            .map_err(|e| DecodeError::InvalidEnvelope(redact(&message(&e))))?;
        if envelope.event_type.is_empty() {
            return Err(DecodeError::InvalidEnvelope("type is empty".into()));
        }
        let data = Data::parse(envelope.data)
            .ok_or_else(|| DecodeError::InvalidEnvelope("data is not an object".into()))?;
        let (timestamp_ms, in_envelope) = match envelope.timestamp {
            Some(t) => (normalize_millis(t), true),
            None => (signed_at_ms, false),
        };
        let mut event = Self::routed(envelope.event_type, timestamp_ms, data)?;
        event.timestamp_in_envelope = in_envelope;
        event.instance_id = envelope.instance_id;
        Ok(event)
    }

    /// The event a `event_type` webhook carrying `data` at `timestamp_ms` would be, routed and
    /// checked exactly as a delivered one. For objects read from Clerk's Backend API, which
    /// have the shape of the matching webhook's `data`.
    pub(crate) fn from_data(
        event_type: &str,
        timestamp_ms: i64,
        data: &RawValue,
    ) -> Result<Self, DecodeError> {
        let data =
            Data::parse(data.to_owned()).ok_or_else(|| invalid(event_type, "not a JSON object"))?;
        Self::routed(event_type.to_owned(), normalize_millis(timestamp_ms), data)
    }

    fn routed(event_type: String, timestamp_ms: i64, data: Data) -> Result<Self, DecodeError> {
        let mut ids = IdCheck {
            event_type: &event_type,
            unexpected_prefixes: Vec::new(),
        };
        let payload = route(&mut ids, &data)?;
        let unexpected_prefixes = ids.unexpected_prefixes;
        Ok(Self {
            event_type,
            timestamp_ms,
            timestamp_in_envelope: true,
            payload,
            data,
            unexpected_prefixes,
            instance_id: None,
        })
    }
}

/// The part of an event type before the dot (`user`, `organizationMembership`, …): a
/// low-cardinality label for metrics.
pub fn family(event_type: &str) -> &str {
    event_type.split('.').next().unwrap_or(event_type)
}
