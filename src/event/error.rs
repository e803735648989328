//! Why a verified body was refused, and the care taken that no message quotes a value.

/// Why a verified body was refused (all 400: retrying the same bytes cannot help).
///
/// A verified payload is refused only when storing it would be unsafe or meaningless: an id
/// that cannot be part of a key, a version or an expiry of the wrong type, a parent the key
/// needs that is missing. Every other field is read leniently: a value of an unexpected type
/// reads as absent, and the object is stored as Clerk sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body is not a Clerk event: {0}")]
    InvalidEnvelope(String),
    #[error("{event_type} data is not usable: {reason}")]
    InvalidPayload { event_type: String, reason: String },
}

pub(super) fn invalid(event_type: &str, reason: &str) -> DecodeError {
    DecodeError::InvalidPayload {
        event_type: event_type.to_owned(),
        reason: reason.to_owned(),
    }
}

/// serde_json's message without its " at line 1 column 42": the reason, not where in the
/// body it was.
pub(super) fn message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) if e.line() > 0 => text[..at].to_owned(),
        _ => text,
    }
}

/// serde quotes the offending value (`invalid type: string "jane@…"`); error messages go to
/// logs and responses, so quoted values are cut out. Field names use backticks and stay.
/// serde writes the value with Rust's debug escaping: inside it, `\"` and `\\` are part of
/// the value, not its end (found by the `plan` fuzz target).
pub(super) fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in message.chars() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
        } else if c == '"' {
            out.push_str("\"…\"");
            quoted = true;
        } else {
            out.push(c);
        }
    }
    out
}
