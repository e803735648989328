//! Svix / Standard Webhooks signature verification.
//!
//! Pure: no I/O, and the clock is an argument, so every rule here is unit-tested with fixed
//! vectors. The scheme: `base64(HMAC-SHA256(key, "{id}.{timestamp}.{raw body}"))`, sent as one
//! or more space-separated `v1,<base64>` entries; any matching `v1` entry from any configured
//! secret accepts the request.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderName};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far `svix-timestamp` may lie from now, in either direction (inclusive).
pub const TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// Why a request's signature was refused. The handler maps these to 400 (malformed) or 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("header {0} is empty, repeated or not visible ASCII")]
    InvalidHeader(&'static str),
    #[error("header {0} is not an integer Unix timestamp")]
    InvalidTimestamp(&'static str),
    #[error("timestamp is more than {TOLERANCE_SECS} s away from now")]
    TimestampOutOfTolerance,
    #[error("no signature matches any configured secret")]
    NoMatchingSignature,
}

impl VerifyError {
    /// Malformed headers are the sender's bug (400); a well-formed request that fails the
    /// check is unauthenticated (401).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Self::MissingHeader(_) | Self::InvalidHeader(_) | Self::InvalidTimestamp(_)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a signing secret is empty")]
    Empty,
    #[error("a signing secret is not valid base64 after its whsec_ prefix")]
    NotBase64,
}

/// One HMAC key, ready to use. `Debug` never shows the key.
#[derive(Clone)]
pub struct SigningSecret {
    // The keyed HMAC state is computed once; each verification clones it.
    mac: HmacSha256,
}

impl SigningSecret {
    /// Parses a Svix secret: an optional `whsec_` prefix, then standard padded base64.
    /// No minimum length: real Svix secrets can be shorter than the spec's 24 bytes.
    pub fn parse(secret: &str) -> Result<Self, SecretError> {
        let encoded = secret.trim();
        let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
        if encoded.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = BASE64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        let mac = HmacSha256::new_from_slice(&key).expect("HMAC accepts keys of any length");
        Ok(Self { mac })
    }

    /// The raw 32-byte HMAC-SHA256 of `{id}.{timestamp}.{body}`.
    pub(crate) fn sign_raw(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(decimal(timestamp, &mut [0u8; 20]));
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// The `v1,<base64>` entry a sender puts in `svix-signature`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            BASE64.encode(self.sign_raw(msg_id, timestamp, body))
        )
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

/// The three signature headers of one request, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureHeaders<'a> {
    pub msg_id: &'a str,
    pub timestamp: &'a str,
    pub signatures: &'a str,
}

// Pre-parsed names: looking a header up by `&str` parses the name on every call, which was
// the largest cost of verifying a 1 KiB body after the HMAC itself (see BENCHMARKS.md).
const SVIX_ID: HeaderName = HeaderName::from_static("svix-id");
const SVIX_TIMESTAMP: HeaderName = HeaderName::from_static("svix-timestamp");
const SVIX_SIGNATURE: HeaderName = HeaderName::from_static("svix-signature");
const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

impl<'a> SignatureHeaders<'a> {
    /// Reads `svix-*` headers, falling back to `webhook-*` per header, as Svix's libraries do.
    pub fn from_headers(headers: &'a HeaderMap) -> Result<Self, VerifyError> {
        Ok(Self {
            msg_id: header(headers, &SVIX_ID, &WEBHOOK_ID, "svix-id")?,
            timestamp: header(
                headers,
                &SVIX_TIMESTAMP,
                &WEBHOOK_TIMESTAMP,
                "svix-timestamp",
            )?,
            signatures: header(
                headers,
                &SVIX_SIGNATURE,
                &WEBHOOK_SIGNATURE,
                "svix-signature",
            )?,
        })
    }
}

fn header<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    fallback: &HeaderName,
    label: &'static str,
) -> Result<&'a str, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let first = match values.next() {
        Some(value) => value,
        None => {
            values = headers.get_all(fallback).iter();
            values.next().ok_or(VerifyError::MissingHeader(label))?
        }
    };
    // A repeated signature header is ambiguous: refuse it rather than pick one.
    if values.next().is_some() {
        return Err(VerifyError::InvalidHeader(label));
    }
    let value = first
        .to_str()
        .map_err(|_| VerifyError::InvalidHeader(label))?
        .trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(VerifyError::InvalidHeader(label));
    }
    Ok(value)
}

/// Checks requests against every configured secret (several while one is being rotated).
#[derive(Clone, Debug)]
pub struct Verifier {
    secrets: Vec<SigningSecret>,
}

impl Verifier {
    pub fn new(secrets: Vec<SigningSecret>) -> Self {
        Self { secrets }
    }

    /// Accepts the request if its timestamp is within tolerance of `now_secs` and any `v1`
    /// entry equals the HMAC of any secret. Returns the message id on success.
    pub fn verify<'a>(
        &self,
        headers: &SignatureHeaders<'a>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<&'a str, VerifyError> {
        let timestamp: i64 = headers
            .timestamp
            .parse()
            .map_err(|_| VerifyError::InvalidTimestamp("svix-timestamp"))?;
        if timestamp.abs_diff(now_secs) > TOLERANCE_SECS as u64 {
            return Err(VerifyError::TimestampOutOfTolerance);
        }
        for secret in &self.secrets {
            let expected = secret.sign_raw(headers.msg_id, timestamp, body);
            // Fold over every entry without short-circuiting: the comparison leaks neither
            // which entry matched nor how many bytes did. Entries are decoded again per
            // secret (44 base64 characters each) rather than collected: no allocation.
            let matched = headers
                .signatures
                .split(' ')
                .filter_map(parse_v1_entry)
                .fold(subtle::Choice::from(0), |acc, c| acc | c.ct_eq(&expected));
            if bool::from(matched) {
                return Ok(headers.msg_id);
            }
        }
        Err(VerifyError::NoMatchingSignature)
    }
}

/// `n` in decimal, written into `buf` (no allocation on the request path).
fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut rest = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// `v1,<base64 of 32 bytes>` -> the bytes. Other versions (`v1a`, `v2`, …) and malformed
/// entries are skipped, not errors: a rotation or a new scheme must not break us.
fn parse_v1_entry(entry: &str) -> Option<[u8; 32]> {
    let encoded = entry.strip_prefix("v1,")?;
    let mut out = [0u8; 32];
    match BASE64.decode_slice(encoded, &mut out) {
        Ok(32) => Some(out),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const GOOD: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const OTHER: &str = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";

    fn verifier(secret: &str) -> Verifier {
        Verifier::new(vec![SigningSecret::parse(secret).unwrap()])
    }

    fn check(
        signatures: &str,
        ts: &str,
        body: &[u8],
        now: i64,
    ) -> Result<&'static str, VerifyError> {
        let sigs: &'static str = Box::leak(signatures.to_owned().into_boxed_str());
        let ts: &'static str = Box::leak(ts.to_owned().into_boxed_str());
        let headers = SignatureHeaders {
            msg_id: MSG_ID,
            timestamp: ts,
            signatures: sigs,
        };
        verifier(SECRET).verify(&headers, body, now)
    }

    #[test]
    fn official_vector_one_passes() {
        assert_eq!(check(GOOD, "1614265330", BODY, TS), Ok(MSG_ID));
    }

    #[test]
    fn official_vector_two_passes() {
        let headers = SignatureHeaders {
            msg_id: "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            timestamp: "1649367553",
            signatures: "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        };
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let v = verifier("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
        assert!(v.verify(&headers, body, 1649367553).is_ok());
    }

    #[test]
    fn sign_reproduces_the_official_vector() {
        let secret = SigningSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(MSG_ID, TS, BODY), GOOD);
    }

    #[test]
    fn official_must_fail_cases() {
        for bad in [
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
            "v1,",
            "v1,g0hM9",
            OTHER,
        ] {
            assert_eq!(
                check(bad, "1614265330", BODY, TS),
                Err(VerifyError::NoMatchingSignature),
                "{bad} must fail"
            );
        }
    }

    #[test]
    fn timestamp_changed_by_one_second_fails() {
        assert_eq!(
            check(GOOD, "1614265331", BODY, TS),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            check(GOOD, "1614265329", BODY, TS),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn any_matching_v1_among_many_passes() {
        let list =
            format!("{OTHER} v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {GOOD} {OTHER}");
        assert_eq!(check(&list, "1614265330", BODY, TS), Ok(MSG_ID));
    }

    #[test]
    fn right_signature_under_another_version_fails() {
        let v2 = GOOD.replacen("v1,", "v2,", 1);
        let v1a = GOOD.replacen("v1,", "v1a,", 1);
        assert_eq!(
            check(&v2, "1614265330", BODY, TS),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            check(&v1a, "1614265330", BODY, TS),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn body_changed_by_one_byte_fails() {
        let body = br#"{"test": 2432232315}"#;
        assert_eq!(
            check(GOOD, "1614265330", body, TS),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn tolerance_is_300_seconds_inclusive_both_ways() {
        let secret = SigningSecret::parse(SECRET).unwrap();
        let now = 1_800_000_000;
        for (offset, ok) in [
            (-300, true),
            (300, true),
            (-301, false),
            (301, false),
            (0, true),
        ] {
            let ts = now + offset;
            let sig = secret.sign(MSG_ID, ts, BODY);
            let result = check(&sig, &ts.to_string(), BODY, now);
            if ok {
                assert_eq!(result, Ok(MSG_ID), "offset {offset}");
            } else {
                assert_eq!(
                    result,
                    Err(VerifyError::TimestampOutOfTolerance),
                    "offset {offset}"
                );
            }
        }
    }

    #[test]
    fn non_integer_timestamps_are_malformed() {
        for ts in ["", "abc", "1614265330.5", "99999999999999999999999"] {
            let err = check(GOOD, ts, BODY, TS).unwrap_err();
            assert_eq!(
                err,
                VerifyError::InvalidTimestamp("svix-timestamp"),
                "{ts:?}"
            );
            assert!(err.is_malformed());
        }
    }

    #[test]
    fn any_configured_secret_may_verify() {
        let other = SigningSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let v = Verifier::new(vec![other, SigningSecret::parse(SECRET).unwrap()]);
        let headers = SignatureHeaders {
            msg_id: MSG_ID,
            timestamp: "1614265330",
            signatures: GOOD,
        };
        assert_eq!(v.verify(&headers, BODY, TS), Ok(MSG_ID));
    }

    #[test]
    fn wrong_secret_fails() {
        let v = verifier("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
        let headers = SignatureHeaders {
            msg_id: MSG_ID,
            timestamp: "1614265330",
            signatures: GOOD,
        };
        assert_eq!(
            v.verify(&headers, BODY, TS),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn secret_prefix_is_optional_and_empty_secrets_are_rejected() {
        let bare = SigningSecret::parse(SECRET.trim_start_matches("whsec_")).unwrap();
        assert_eq!(bare.sign(MSG_ID, TS, BODY), GOOD);
        assert_eq!(SigningSecret::parse("").unwrap_err(), SecretError::Empty);
        assert_eq!(
            SigningSecret::parse("whsec_").unwrap_err(),
            SecretError::Empty
        );
        assert_eq!(
            SigningSecret::parse("whsec_!!!").unwrap_err(),
            SecretError::NotBase64
        );
    }

    #[test]
    fn timestamps_are_signed_as_plain_decimal() {
        for n in [0, 7, 1614265330, -42, i64::MAX, i64::MIN] {
            assert_eq!(decimal(n, &mut [0u8; 20]), n.to_string().as_bytes());
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let secret = SigningSecret::parse(SECRET).unwrap();
        let shown = format!("{secret:?} {:?}", Verifier::new(vec![secret.clone()]));
        assert!(!shown.contains("MfKQ9r8G"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    fn headers_of(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn svix_headers_win_and_webhook_headers_are_the_fallback() {
        let map = headers_of(&[
            ("svix-id", "msg_a"),
            ("webhook-id", "msg_b"),
            ("webhook-timestamp", "1"),
            ("svix-signature", "v1,x"),
        ]);
        let h = SignatureHeaders::from_headers(&map).unwrap();
        assert_eq!(
            h,
            SignatureHeaders {
                msg_id: "msg_a",
                timestamp: "1",
                signatures: "v1,x"
            }
        );
    }

    #[test]
    fn missing_empty_repeated_and_non_ascii_headers_are_malformed() {
        let full = [
            ("svix-id", "msg_a"),
            ("svix-timestamp", "1"),
            ("svix-signature", "v1,x"),
        ];
        for drop in 0..3 {
            let pairs: Vec<_> = full
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != drop)
                .map(|(_, p)| *p)
                .collect();
            let err = SignatureHeaders::from_headers(&headers_of(&pairs)).unwrap_err();
            assert_eq!(err, VerifyError::MissingHeader(full[drop].0));
        }
        let empty = headers_of(&[
            ("svix-id", ""),
            ("svix-timestamp", "1"),
            ("svix-signature", "v1,x"),
        ]);
        assert_eq!(
            SignatureHeaders::from_headers(&empty).unwrap_err(),
            VerifyError::InvalidHeader("svix-id")
        );
        let repeated = headers_of(&[
            ("svix-id", "msg_a"),
            ("svix-timestamp", "1"),
            ("svix-signature", "v1,x"),
            ("svix-signature", "v1,y"),
        ]);
        assert_eq!(
            SignatureHeaders::from_headers(&repeated).unwrap_err(),
            VerifyError::InvalidHeader("svix-signature")
        );
        let mut non_ascii = headers_of(&[("svix-timestamp", "1"), ("svix-signature", "v1,x")]);
        non_ascii.insert(
            "svix-id",
            http::HeaderValue::from_bytes("msg_é".as_bytes()).unwrap(),
        );
        assert_eq!(
            SignatureHeaders::from_headers(&non_ascii).unwrap_err(),
            VerifyError::InvalidHeader("svix-id")
        );
    }
}
