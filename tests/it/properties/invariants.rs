//! What the pure request path (verify -> decode -> plan, and `handler::prepare` around them)
//! promises for any input, as checks that panic on a violation. Shared by the stable proptest
//! suite (`tests/it/properties.rs`, run by CI) and the cargo-fuzz targets (`fuzz/`, nightly),
//! so both test the same properties; they differ only in how inputs are generated.
//!
//! Messages name the rule and the key or error, never a body: fixtures hold personal data.
#![allow(dead_code)] // each fuzz target uses a different part of this module

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use clerk_webhooks::config::Config;
use clerk_webhooks::event::{
    self, normalize_millis, BillingKind, DecodeError, Event, MessageKind, Payload,
};
use clerk_webhooks::handler::{self, RequestFacts};
use clerk_webhooks::plan::Settings;
use clerk_webhooks::plan::{self, Guard, Plan, Write};
use clerk_webhooks::table::{self, Item, Key};
use clerk_webhooks::verify::{
    SignatureHeaders, SigningSecret, Verifier, VerifyError, TOLERANCE_SECS,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Inputs: choices drawn from fuzzer or proptest bytes
// ---------------------------------------------------------------------------------------------

/// Decisions read from a byte string. Once the bytes run out every choice is 0, so any byte
/// string is a complete recipe and shrinking or mutating it stays meaningful.
pub struct Choices<'a> {
    bytes: &'a [u8],
}

impl<'a> Choices<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&first, rest)) => {
                self.bytes = rest;
                first
            }
            None => 0,
        }
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        let wide = if n > 256 {
            usize::from(u16::from_le_bytes([self.byte(), self.byte()]))
        } else {
            usize::from(self.byte())
        };
        wide % n
    }

    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    pub fn u64(&mut self) -> u64 {
        let mut raw = [0u8; 8];
        for b in &mut raw {
            *b = self.byte();
        }
        u64::from_le_bytes(raw)
    }

    pub fn i64(&mut self) -> i64 {
        self.u64() as i64
    }

    /// A number in `low..=high`.
    pub fn in_range(&mut self, low: i64, high: i64) -> i64 {
        let span = high.abs_diff(low).saturating_add(1);
        low.wrapping_add((self.u64() % span) as i64)
    }

    /// The next `n` bytes (fewer if the input ends), as a block of their own choices.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (block, rest) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = rest;
        block
    }

    /// Whatever bytes are left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    /// Up to `max` characters, weighted towards what breaks parsers, keys and redaction:
    /// quotes, backslashes, `@`, our key separator `#`, spaces, non-ASCII and controls.
    pub fn text(&mut self, max: usize) -> String {
        const ALPHABET: &[char] = &[
            'a', 'b', 'z', 'A', 'Z', '0', '1', '9', '_', '-', '.', '"', '\\', '@', '#', ' ', ',',
            ':', '/', '+', '\u{e9}', '\u{2026}', '\u{0}', '\n', '\u{7f}', '{', '}',
        ];
        let len = self.below(max + 1);
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len())])
            .collect()
    }

    /// An id with one of Clerk's prefixes, mostly well-formed.
    pub fn clerk_id(&mut self) -> String {
        const PREFIXES: &[&str] = &[
            "user_",
            "org_",
            "orgmem_",
            "sess_",
            "orginv_",
            "orgdmn_",
            "inv_",
            "role_",
            "perm_",
            "wle_",
            "ema_",
            "sms_",
            "csub_",
            "csub_item_",
            "pa_",
        ];
        let prefix = PREFIXES[self.below(PREFIXES.len())];
        let rest: String = if self.below(4) == 3 {
            self.text(12)
        } else {
            let len = 1 + self.below(130);
            (0..len)
                .map(|i| char::from(b'a' + ((i + usize::from(self.byte())) % 26) as u8))
                .collect()
        };
        format!("{prefix}{rest}")
    }
}

/// The fixtures of `events/` (one Clerk envelope per file), sorted by file name.
pub fn load_fixtures(dir: &Path) -> Vec<Value> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    let fixtures: Vec<Value> = paths
        .iter()
        .map(|path| {
            let text = std::fs::read(path).unwrap();
            serde_json::from_slice(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
        })
        .collect();
    assert!(!fixtures.is_empty(), "no fixtures in {}", dir.display());
    fixtures
}

/// Field names Clerk payloads and our planner care about: inserted or replaced by mutations.
const FIELD_NAMES: &[&str] = &[
    "id",
    "object",
    "type",
    "timestamp",
    "data",
    "instance_id",
    "updated_at",
    "created_at",
    "user_id",
    "organization_id",
    "organization",
    "public_user_data",
    "primary_email_address_id",
    "email_addresses",
    "email_address",
    "slug",
    "role",
    "permissions",
    "key",
    "user",
    "latest_activity",
    "ip_address",
    "expire_at",
    "abandon_at",
    "expires_at",
    "payer",
    "status",
    "created_at_ms",
    "deleted",
];

/// A fixture changed by up to six structural mutations: retyped, fields replaced, removed,
/// added, or `data` swapped with another fixture's (none for all-zero choices). Reaches the
/// typed payload errors and odd plans that byte-level mutation of JSON seldom reaches.
pub fn mutated_fixture(fixtures: &[Value], choices: &mut Choices) -> Value {
    let mut doc = fixtures[choices.below(fixtures.len())].clone();
    for _ in 0..choices.below(7) {
        match choices.below(6) {
            // Retyped, or another fixture's data, when the envelope is still an object.
            kind @ (0 | 1) => {
                let field = ["type", "data"][kind];
                let other = &fixtures[choices.below(fixtures.len())];
                if let (Value::Object(map), Some(value)) = (&mut doc, other.get(field)) {
                    map.insert(field.to_owned(), value.clone());
                }
            }
            2 => {
                if let Value::Object(map) = pick(&mut doc, choices) {
                    if !map.is_empty() {
                        let key = map.keys().nth(choices.below(map.len())).unwrap().clone();
                        map.remove(&key);
                    }
                }
            }
            3 => {
                let name = if choices.flag() {
                    FIELD_NAMES[choices.below(FIELD_NAMES.len())].to_owned()
                } else {
                    choices.text(8)
                };
                let value = new_value(choices);
                if let Value::Object(map) = pick(&mut doc, choices) {
                    map.insert(name, value);
                }
            }
            _ => {
                let value = new_value(choices);
                *pick(&mut doc, choices) = value;
            }
        }
    }
    doc
}

/// A node reached by a random walk from `node`: mostly deep, sometimes the root.
fn pick<'v>(mut node: &'v mut Value, choices: &mut Choices) -> &'v mut Value {
    loop {
        let len = match node {
            Value::Object(map) => map.len(),
            Value::Array(items) => items.len(),
            _ => 0,
        };
        if len == 0 || choices.below(5) == 0 {
            return node;
        }
        let index = choices.below(len);
        node = match node {
            Value::Object(map) => map.values_mut().nth(index).unwrap(),
            Value::Array(items) => &mut items[index],
            _ => unreachable!("only containers have children"),
        };
    }
}

/// A JSON value of any type, weighted towards boundaries: the seconds/milliseconds cut-over,
/// the ends of i64, numbers that are not integers, Clerk-shaped ids and awkward strings.
fn new_value(choices: &mut Choices) -> Value {
    const NUMBERS: &[i64] = &[
        0,
        1,
        -1,
        99_999_999_999,
        100_000_000_000,
        -100_000_000_000,
        1_716_883_200,
        1_716_883_200_000,
        i64::MAX,
        i64::MIN,
        i64::MAX / 1000,
        i64::MIN / 1000,
    ];
    match choices.below(12) {
        0 => Value::Null,
        1 => Value::Bool(choices.flag()),
        2 => json!(NUMBERS[choices.below(NUMBERS.len())]),
        3 => json!(choices.i64()),
        4 => json!(u64::MAX - u64::from(choices.byte())),
        5 => json!([1.5, -0.0, 1e300, f64::MIN_POSITIVE][choices.below(4)]),
        6 | 7 => Value::String(choices.text(24)),
        8 => Value::String(choices.clerk_id()),
        9 => json!([]),
        10 => json!({}),
        _ => json!({"id": choices.clerk_id(), "user_id": choices.clerk_id()}),
    }
}

/// Settings as `Config` can produce them: TTLs of 1 to 3650 days.
pub fn settings(choices: &mut Choices) -> Settings {
    const DAY: i64 = 86_400;
    Settings {
        event_secs: choices.in_range(1, 3650) * DAY,
        tombstone_secs: choices.in_range(1, 3650) * DAY,
        message_metadata: choices.flag(),
    }
}

/// A clock reading from 1970 to the end of year 9999, in milliseconds.
pub fn now_millis(choices: &mut Choices) -> i64 {
    choices.in_range(0, 253_402_300_799_999)
}

/// A svix id as it reaches the planner: verified headers are visible ASCII, so `#` and
/// everything else printable may occur.
pub fn svix_id(choices: &mut Choices) -> String {
    if choices.flag() {
        format!("msg_{}", choices.text(28))
    } else {
        let len = 1 + choices.below(40);
        (0..len)
            .map(|_| char::from(b'!' + choices.below(94) as u8))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------------

/// The configured secrets of every case: two, as during a rotation. The same in the fuzz
/// targets and the property tests, so a saved fuzz input replays the same way in both.
pub fn configured_secrets() -> Vec<SigningSecret> {
    vec![
        secret_for(b"fuzz-secret-one"),
        secret_for(b"fuzz-secret-two"),
    ]
}

/// A secret for arbitrary key bytes (at least one), in Svix's `whsec_` form.
pub fn secret_for(key: &[u8]) -> SigningSecret {
    let key = if key.is_empty() { &[0u8][..] } else { key };
    SigningSecret::parse(&format!("whsec_{}", BASE64.encode(key))).expect("a valid secret")
}

/// The verifier against an oracle written from the scheme, not from the code: a request is
/// accepted exactly when its timestamp is an integer within the tolerance of `now` and one
/// space-separated entry is the `v1,<base64>` signature of some secret (base64 is canonical:
/// exactly one text encodes the 32 bytes).
pub fn check_verify(secrets: &[SigningSecret], headers: &HeaderMap, body: &[u8], now: i64) {
    let parsed = SignatureHeaders::from_headers(headers);
    check_header_rules(headers, &parsed);
    let Ok(parsed) = parsed else { return };
    let verifier = Verifier::new(secrets.to_vec());
    let result = verifier.verify(&parsed, body, now);
    let expected = match parsed.timestamp.parse::<i64>() {
        Err(_) => Err(VerifyError::InvalidTimestamp("svix-timestamp")),
        Ok(ts) if ts.abs_diff(now) > TOLERANCE_SECS as u64 => {
            Err(VerifyError::TimestampOutOfTolerance)
        }
        Ok(ts) => {
            let accepted = secrets.iter().any(|secret| {
                let good = secret.sign(parsed.msg_id, ts, body);
                parsed.signatures.split(' ').any(|entry| entry == good)
            });
            if accepted {
                Ok(parsed.msg_id)
            } else {
                Err(VerifyError::NoMatchingSignature)
            }
        }
    };
    assert_eq!(result, expected, "verifier and oracle disagree");
    if let Err(error) = result {
        assert_eq!(
            error.is_malformed(),
            matches!(error, VerifyError::InvalidTimestamp(_)),
            "only an unparsable timestamp is malformed once the headers are read"
        );
    }
}

const SIGNATURE_HEADERS: [(&str, &str); 3] = [
    ("svix-id", "webhook-id"),
    ("svix-timestamp", "webhook-timestamp"),
    ("svix-signature", "webhook-signature"),
];

/// `svix-*` wins, `webhook-*` is the fallback; a value is trimmed, one header only, non-empty
/// visible ASCII or spaces. Errors name the header they are about.
fn check_header_rules(headers: &HeaderMap, parsed: &Result<SignatureHeaders, VerifyError>) {
    // The one header each field comes from: svix-* if present, else webhook-*.
    let source = |(primary, fallback): (&str, &str)| {
        let values: Vec<&HeaderValue> = headers.get_all(primary).iter().collect();
        if values.is_empty() {
            headers.get_all(fallback).iter().collect()
        } else {
            values
        }
    };
    let usable = |values: &[&HeaderValue]| -> Option<String> {
        let [only] = values else { return None };
        let text = only.to_str().ok()?.trim();
        let visible = text.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        (!text.is_empty() && visible).then(|| text.to_owned())
    };
    match parsed {
        Ok(h) => {
            for (field, names) in [h.msg_id, h.timestamp, h.signatures]
                .into_iter()
                .zip(SIGNATURE_HEADERS)
            {
                assert_eq!(
                    Some(field.to_owned()),
                    usable(&source(names)),
                    "{} was read from the wrong header",
                    names.0
                );
            }
        }
        Err(VerifyError::MissingHeader(label)) => {
            let names = SIGNATURE_HEADERS.iter().find(|n| n.0 == *label).unwrap();
            assert!(source(*names).is_empty(), "{label} is present");
        }
        Err(VerifyError::InvalidHeader(label)) => {
            let names = SIGNATURE_HEADERS.iter().find(|n| n.0 == *label).unwrap();
            assert_eq!(usable(&source(*names)), None, "{label} is usable");
        }
        Err(other) => panic!("reading headers cannot fail with {other:?}"),
    }
}

/// Our own signature verifies within the tolerance, and fails when one body bit, the id or
/// the timestamp changes, or the clock is one second past the tolerance.
pub fn check_round_trip(
    key: &[u8],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    skew: i64,
    flip: usize,
) {
    let secret = secret_for(key);
    let verifier = Verifier::new(vec![secret.clone()]);
    let skew = skew.clamp(-TOLERANCE_SECS, TOLERANCE_SECS);
    let now = timestamp.saturating_add(skew);
    let ts_text = timestamp.to_string();
    let signature = secret.sign(msg_id, timestamp, body);
    let sig_headers = SignatureHeaders {
        msg_id,
        timestamp: &ts_text,
        signatures: &signature,
    };
    assert_eq!(verifier.verify(&sig_headers, body, now), Ok(msg_id));

    // Among other entries, including other schemes, it still verifies.
    let listed = format!("v1a,{} v1,x {signature} v2,y", &signature[3..]);
    let listed_headers = SignatureHeaders {
        signatures: &listed,
        ..sig_headers
    };
    assert_eq!(verifier.verify(&listed_headers, body, now), Ok(msg_id));

    if !body.is_empty() {
        let mut tampered = body.to_vec();
        tampered[flip % body.len()] ^= 1 << (flip % 8);
        assert_eq!(
            verifier.verify(&sig_headers, &tampered, now),
            Err(VerifyError::NoMatchingSignature),
            "a flipped body bit still verifies"
        );
    }
    let other_id = format!("{msg_id}x");
    let other = SignatureHeaders {
        msg_id: &other_id,
        ..sig_headers
    };
    assert_eq!(
        verifier.verify(&other, body, now),
        Err(VerifyError::NoMatchingSignature)
    );
    if let Some(next) = timestamp.checked_add(1) {
        let next_text = next.to_string();
        let moved = SignatureHeaders {
            timestamp: &next_text,
            ..sig_headers
        };
        assert_eq!(
            verifier.verify(&moved, body, next),
            Err(VerifyError::NoMatchingSignature),
            "the signature does not cover the timestamp"
        );
    }
    if let Some(late) = timestamp.checked_add(TOLERANCE_SECS + 1) {
        assert_eq!(
            verifier.verify(&sig_headers, body, late),
            Err(VerifyError::TimestampOutOfTolerance)
        );
    }

    // The same request through real headers, when the id is a header value as sent.
    let id_is_header = !msg_id.is_empty()
        && msg_id.trim() == msg_id
        && msg_id.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if id_is_header {
        let mut map = HeaderMap::new();
        map.insert("svix-id", HeaderValue::from_str(msg_id).unwrap());
        map.insert(
            "webhook-timestamp",
            HeaderValue::from_str(&ts_text).unwrap(),
        );
        map.insert("svix-signature", HeaderValue::from_str(&signature).unwrap());
        let parsed = SignatureHeaders::from_headers(&map).unwrap();
        assert_eq!(verifier.verify(&parsed, body, now), Ok(msg_id));
    }
}

/// Headers from choices. All-zero choices give the three `svix-*` headers of a request
/// signed with `secret` at `now`; other choices move the timestamp, use the `webhook-*`
/// names, leave a header out, repeat it, garble it or bury the signature among other
/// entries, so every branch of the verifier is reached from a valid request.
pub fn fuzzed_headers(
    choices: &mut Choices,
    secret: &SigningSecret,
    body: &[u8],
    now: i64,
) -> HeaderMap {
    const SKEWS: [i64; 7] = [0, 1, -1, TOLERANCE_SECS, -TOLERANCE_SECS, 301, -301];
    let msg_id = svix_id(choices);
    let timestamp = match choices.below(8) {
        7 => choices.i64(),
        k => now.saturating_add(SKEWS[k]),
    };
    let good = secret.sign(&msg_id, timestamp, body);
    let timestamp_text = match choices.below(8) {
        7 => format!("{}{timestamp}", [" ", "+", "0", "1", "-"][choices.below(5)]),
        _ => timestamp.to_string(),
    };
    let signatures = match choices.below(8) {
        0..=3 => good.clone(),
        4 => {
            let junk = choices.text(50);
            let others = [junk.as_str(), "v2,abc", &good[..good.len() - 4], "v1,"];
            let mut list: Vec<&str> = (0..1 + choices.below(4))
                .map(|_| others[choices.below(others.len())])
                .collect();
            list.insert(choices.below(list.len() + 1), good.as_str());
            list.join(" ")
        }
        5 => good.replacen("v1,", "v1a,", 1),
        6 => format!("v1,{}", BASE64.encode(choices.take(32))),
        _ => choices.text(60),
    };
    let mut map = HeaderMap::new();
    let mut append = |name: &'static str, value: &[u8]| {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(HeaderName::from_static(name), value);
        }
    };
    for ((primary, fallback), right) in SIGNATURE_HEADERS.into_iter().zip([
        msg_id.as_bytes(),
        timestamp_text.as_bytes(),
        signatures.as_bytes(),
    ]) {
        match choices.below(8) {
            0..=3 => append(primary, right),
            4 => append(fallback, right),
            5 => {}
            6 => {
                append(primary, right);
                append([primary, fallback][choices.below(2)], right);
            }
            _ => {
                let garbled: Vec<u8> = (0..choices.below(48)).map(|_| choices.byte()).collect();
                append([primary, fallback][choices.below(2)], &garbled);
                if choices.flag() {
                    append(fallback, right);
                }
            }
        }
    }
    map
}

// ---------------------------------------------------------------------------------------------
// decode
// ---------------------------------------------------------------------------------------------

/// Decoding never panics; a decoded event agrees with the body and carries only ids that are
/// safe as keys; an error never quotes the body.
/// The signed delivery time (`svix-timestamp`, ms) bodies are decoded with: the event's time
/// when the envelope has no `timestamp`.
pub const SIGNED_AT_MS: i64 = 1_716_883_260_000;

pub fn check_decode(body: &[u8]) -> Option<Event> {
    check_decode_signed_at(body, SIGNED_AT_MS)
}

/// [`check_decode`] of a delivery signed at `signed_at_ms`: the time an envelope without
/// `timestamp` is given.
pub fn check_decode_signed_at(body: &[u8], signed_at_ms: i64) -> Option<Event> {
    match Event::decode(body, signed_at_ms) {
        Ok(event) => {
            check_event(&event, body, signed_at_ms);
            Some(event)
        }
        Err(error) => {
            check_decode_error(&error);
            None
        }
    }
}

fn check_event(event: &Event, body: &[u8], signed_at_ms: i64) {
    // The envelope's fields as their exact texts: any depth of `data` reads.
    let envelope: std::collections::HashMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_slice(body).expect("a decoded body is a JSON object");
    let field = |name: &str| envelope.get(name).map(|raw| raw.get());
    let event_type: String = serde_json::from_str(field("type").expect("a type")).unwrap();
    assert_eq!(event_type, event.event_type);
    assert!(!event.event_type.is_empty());
    assert_eq!(
        field("data"),
        Some(event.data.text()),
        "data is kept byte for byte"
    );
    assert!(event.data.text().starts_with('{'));
    match field("timestamp").and_then(|t| serde_json::from_str::<Option<i64>>(t).unwrap()) {
        Some(timestamp) => {
            assert!(event.timestamp_in_envelope);
            assert_eq!(event.timestamp_ms, normalize_millis(timestamp));
        }
        None => {
            assert!(!event.timestamp_in_envelope);
            assert_eq!(
                event.timestamp_ms, signed_at_ms,
                "no timestamp: the signed time"
            );
        }
    }

    let family = event::family(&event.event_type);
    let deleted = event.event_type.ends_with(".deleted");
    let (families, is_delete): (&[&str], bool) = match &event.payload {
        Payload::Unhandled => return,
        Payload::UserUpserted(_) => (&["user"], false),
        Payload::UserDeleted(_) => (&["user"], true),
        Payload::OrganizationUpserted(_) => (&["organization"], false),
        Payload::OrganizationDeleted(_) => (&["organization"], true),
        Payload::MembershipUpserted(_) => (&["organizationMembership"], false),
        Payload::MembershipDeleted(_) => (&["organizationMembership"], true),
        Payload::SessionUpserted(s) => {
            if let Some(user) = &s.user {
                assert_eq!(user.id, s.user_id, "a session's user is its own user");
            }
            (&["session"], false)
        }
        Payload::OrganizationInvitationUpserted(_) => (&["organizationInvitation"], false),
        Payload::DomainUpserted(_) => (&["organizationDomain"], false),
        Payload::DomainDeleted(_) => (&["organizationDomain"], true),
        Payload::InvitationUpserted(_) => (&["invitation"], false),
        Payload::RoleUpserted(_) => (&["role"], false),
        Payload::RoleDeleted(_) => (&["role"], true),
        Payload::PermissionUpserted(_) => (&["permission"], false),
        Payload::PermissionDeleted(_) => (&["permission"], true),
        Payload::WaitlistEntryUpserted(_) => (&["waitlistEntry"], false),
        Payload::BillingUpserted(b) => {
            let family = match b.kind {
                BillingKind::Subscription => "subscription",
                BillingKind::SubscriptionItem => "subscriptionItem",
                BillingKind::PaymentAttempt => "paymentAttempt",
            };
            // Every status of a billing family is synced, `.deleted` ones included.
            assert_eq!(event::family(&event.event_type), family);
            return check_ids(&event.payload);
        }
        Payload::MessageSent(m) => match m.kind {
            MessageKind::Email => (&["email"], false),
            MessageKind::Sms => (&["sms"], false),
        },
    };
    assert!(
        families.contains(&family),
        "{} routed to {:?}",
        event.event_type,
        payload_name(&event.payload)
    );
    assert_eq!(
        is_delete, deleted,
        "{} is routed as a delete",
        event.event_type
    );
    check_ids(&event.payload);
}

fn payload_name(payload: &Payload) -> String {
    let debug = format!("{payload:?}");
    debug.split('(').next().unwrap_or_default().to_owned()
}

/// Every id that becomes part of a key is safe as one ([`event::is_key_safe`]: 1 to 128
/// letters, digits or `_`), so no crafted id can contain our `#` separator and alias another
/// key. Prefixes are not checked: Clerk's ids need not carry the one we expect.
fn check_ids(payload: &Payload) {
    let ids: Vec<&str> = match payload {
        Payload::UserUpserted(u) => vec![&u.id],
        Payload::UserDeleted(d)
        | Payload::OrganizationDeleted(d)
        | Payload::DomainDeleted(d)
        | Payload::RoleDeleted(d)
        | Payload::PermissionDeleted(d) => vec![&d.id],
        Payload::OrganizationUpserted(o) => vec![&o.id],
        // The membership's own id is an attribute, not part of its key.
        Payload::MembershipUpserted(m) | Payload::MembershipDeleted(m) => {
            vec![&m.organization.id, &m.public_user_data.user_id]
        }
        Payload::SessionUpserted(s) => vec![&s.id, &s.user_id],
        Payload::OrganizationInvitationUpserted(i) => vec![&i.id, &i.organization_id],
        Payload::DomainUpserted(d) => vec![&d.id, &d.organization_id],
        Payload::InvitationUpserted(i) => vec![&i.id],
        Payload::RoleUpserted(r) => vec![&r.id],
        Payload::PermissionUpserted(p) => vec![&p.id],
        Payload::WaitlistEntryUpserted(w) => vec![&w.id],
        Payload::BillingUpserted(b) => {
            let mut ids = vec![b.object.id.as_str()];
            ids.extend(b.payer_id());
            ids
        }
        Payload::MessageSent(m) => {
            let mut ids = vec![m.metadata.id.as_str()];
            ids.extend(m.metadata.user_id.as_deref());
            ids
        }
        Payload::Unhandled => vec![],
    };
    for id in ids {
        assert!(
            event::is_key_safe(id),
            "an id of {} bytes is not safe as a key",
            id.len()
        );
    }
}

/// serde quotes the offending value (`invalid type: string "…", expected i64`), with Rust's
/// debug escaping; the decoder promises to cut quoted values out (error texts reach logs and
/// responses). What is left is our text, field names in backticks and numbers: never an `@`
/// (an email), a backslash (an escape inside a value), and at most one `"…"`, since serde
/// names one offending value per error.
pub fn check_decode_error(error: &DecodeError) {
    let text = match error {
        // serde_json's syntax errors name a position, never input (and one of them quotes
        // a range with backslashes: `control character (\u0000-\u001F) found`).
        DecodeError::InvalidJson(text) => {
            assert!(!text.contains(['"', '@']), "a JSON error quotes the body");
            return;
        }
        // The decoder's own envelope messages; any other is serde's, redacted.
        DecodeError::InvalidEnvelope(text)
            if [
                "not a JSON object",
                "type is empty",
                "data is not an object",
            ]
            .contains(&text.as_str()) =>
        {
            return
        }
        DecodeError::InvalidEnvelope(text) => text,
        DecodeError::InvalidPayload { event_type, reason } => {
            // Only routed types (`family.action`) get as far as their payload.
            assert_ne!(event::family(event_type), event_type.as_str());
            assert_eq!(
                error.to_string(),
                format!("{event_type} data is not usable: {reason}")
            );
            reason
        }
    };
    assert_redacted(text);
}

/// See [`check_decode_error`].
pub fn assert_redacted(text: &str) {
    if let Some(leak) = redaction_leak(text) {
        panic!("an error message quotes part of the body: {leak}");
    }
}

/// What in `text` shows that part of a value was left in, if anything. Never the text itself
/// when it holds an `@`, so a failure does not print an email address.
pub fn redaction_leak(text: &str) -> Option<String> {
    let outside_backticks: String = text
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, part)| part)
        .collect();
    let redactions = outside_backticks.matches("\"\u{2026}\"").count();
    let rest = outside_backticks.replace("\"\u{2026}\"", "");
    if redactions <= 1 && !rest.contains(['"', '\\', '@']) {
        return None;
    }
    let shown = if rest.contains('@') {
        "<holds an @>"
    } else {
        text
    };
    Some(format!("{redactions} redactions in {shown}"))
}

// ---------------------------------------------------------------------------------------------
// plan
// ---------------------------------------------------------------------------------------------

/// Attributes a tombstone may hold: keys, version, times and identifiers; nothing personal.
const TOMBSTONE_ATTRIBUTES: &[&str] = &[
    "pk",
    "sk",
    "entity",
    "id",
    "deleted",
    "version",
    "deleted_at",
    "expires_at",
    "last_svix_id",
    // `reconcile` on the reconcile's tombstones.
    "source",
    "org_id",
    "user_id",
];

/// Attributes a message item may hold: never the recipient, subject, body or codes.
const MESSAGE_ATTRIBUTES: &[&str] = &[
    "pk",
    "sk",
    "entity",
    "id",
    "last_svix_id",
    "source",
    "user_id",
    "slug",
    "status",
    "created_at",
    "expires_at",
    "version",
    "gsi1pk",
    "gsi1sk",
];

const EVENT_RECORD_ATTRIBUTES: &[&str] = &[
    "pk",
    "sk",
    "entity",
    "type",
    "event_timestamp",
    "received_at",
    "expires_at",
    // The envelope's instance, when it is an id (what a backfill's key is checked against).
    "instance_id",
];

/// The planner's rules for any decoded event, svix id, settings and clock: see each assert.
pub fn check_plan(event: &Event, svix_id: &str, settings: &Settings, now_ms: i64) -> Option<Plan> {
    let planned = plan::plan(event, svix_id, settings, now_ms);
    let Some(p) = &planned else {
        assert_eq!(
            event.payload,
            Payload::Unhandled,
            "a synced type planned nothing"
        );
        return None;
    };
    assert_ne!(event.payload, Payload::Unhandled, "an unsynced type wrote");
    let ts = event.timestamp_ms;

    // writes[0]: the idempotency record, keyed by the svix id, holding no payload.
    let Write::RecordEvent(record) = &p.writes[0] else {
        panic!("the first write is not the event record")
    };
    assert_eq!(Key::of(record), Some(Key::event(svix_id)));
    let record = &json_of(record);
    assert_eq!(record["pk"], format!("EVENT#{svix_id}").as_str());
    assert_eq!(record["type"], event.event_type.as_str());
    assert_eq!(record["event_timestamp"], ts);
    assert_eq!(record["received_at"], now_ms);
    assert_eq!(
        record["expires_at"],
        now_ms.div_euclid(1000) + settings.event_secs
    );
    assert_attributes_within(record, EVENT_RECORD_ATTRIBUTES, "event record");
    assert_eq!(
        p.writes
            .iter()
            .filter(|w| matches!(w, Write::RecordEvent(_)))
            .count(),
        1,
        "one event record"
    );

    for write in &p.writes[1..] {
        match write {
            Write::RecordEvent(_) => unreachable!("counted above"),
            Write::Put { item, version, .. } | Write::Refresh { item, version } => {
                check_entity_key(item);
                let item = &json_of(item);
                assert_eq!(item["version"], *version, "the item carries its version");
                assert_eq!(item["last_svix_id"], svix_id);
                if !item.contains_key("deleted") {
                    assert_eq!(item["source"], "webhook", "a live item says who wrote it");
                }
                assert_eq!(
                    item.contains_key("gsi1pk"),
                    item.contains_key("gsi1sk"),
                    "gsi1 keys come in pairs"
                );
                for gsi in ["gsi1pk", "gsi1sk"] {
                    if let Some(value) = item.get(gsi) {
                        let text = value.as_str().expect("a string index key");
                        let (kind, rest) = text.split_once('#').expect("KIND#value");
                        assert!(is_kind(kind) && !rest.is_empty(), "{gsi} {kind}#<empty>");
                    }
                }
            }
            Write::RequireNotDeleted(key) => {
                assert_eq!(key.sk, table::PROFILE_SK);
                // A parent is an organization or a user, whatever prefix Clerk gave its id
                // (issue 11: an unexpected prefix is noted, not refused).
                let (kind, id) = key.pk.split_once('#').expect("KIND#id");
                assert!(matches!(kind, "ORG" | "USER"), "a parent check on {kind}");
                assert!(event::is_key_safe(id), "a parent key with an unsafe id");
            }
        }
    }

    // Which guard, parents and cascade each type gets is plan_for's rule table, tested in
    // src/plan/tests.rs and against DynamoDB Local; here, what holds for any input: a
    // tombstone keeps only identifiers, yields only to newer versions and is never older
    // than its event; a session keeps no user and no IP address; message items hold no
    // content; only deletes cascade.
    for write in &p.writes[1..] {
        let Write::Put {
            item,
            version,
            guard,
        } = write
        else {
            continue;
        };
        let item = &json_of(item);
        if item.contains_key("deleted") {
            assert_eq!(
                *guard,
                Guard::Newer,
                "a tombstone yields only to newer versions"
            );
            if event.timestamp_in_envelope {
                assert!(*version >= ts, "a delete is never older than its event");
            }
            assert_eq!(item["deleted"], true);
            assert_eq!(item["deleted_at"], ts);
            assert_eq!(
                item["expires_at"],
                now_ms.div_euclid(1000) + settings.tombstone_secs
            );
            assert_attributes_within(item, TOMBSTONE_ATTRIBUTES, "tombstone");
        } else if item["entity"] == "session" {
            let data = &item["data"];
            assert!(data.get("user").is_none(), "the user has its own item");
            assert!(
                data.get("latest_activity")
                    .and_then(|a| a.get("ip_address"))
                    .is_none(),
                "the IP address is not kept"
            );
        } else if matches!(item["entity"].as_str(), Some("email" | "sms")) {
            assert!(
                settings.message_metadata,
                "messages are not kept unless opted in"
            );
            assert_attributes_within(item, MESSAGE_ATTRIBUTES, "message item");
        } else {
            assert!(item.contains_key("data"), "an entity keeps its data");
        }
    }
    let deletes = p
        .writes
        .iter()
        .any(|w| matches!(w, Write::Put { item, .. } if item.contains_key("deleted")));
    assert!(p.cascade.is_none() || deletes, "only deletes cascade");
    planned
}

/// An item as JSON, `data` decoded: what the checks read.
fn json_of(item: &Item) -> serde_json::Map<String, Value> {
    table::encoding::to_json(item).expect("a planned item reads back")
}

fn assert_attributes_within(item: &serde_json::Map<String, Value>, allowed: &[&str], what: &str) {
    let extra: BTreeSet<&str> = item
        .keys()
        .map(String::as_str)
        .filter(|name| !allowed.contains(name))
        .collect();
    assert!(extra.is_empty(), "{what} holds {extra:?}");
}

fn is_kind(kind: &str) -> bool {
    !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
}

/// An entity's key is `KIND#<safe id>` / `PROFILE` or `KIND#<safe id>`: exactly one `#` per
/// part, so two different objects never share a key.
fn check_entity_key(item: &Item) {
    let key = Key::of(item).expect("an item has string pk and sk");
    for (name, part) in [("pk", &key.pk), ("sk", &key.sk)] {
        if name == "sk" && part == table::PROFILE_SK {
            continue;
        }
        let (kind, id) = part.split_once('#').unwrap_or_else(|| {
            panic!("{name} is not KIND#id");
        });
        assert!(is_kind(kind), "{name} kind {kind:?}");
        assert!(event::is_key_safe(id), "{name} of {kind} has an unsafe id");
    }
}

// ---------------------------------------------------------------------------------------------
// prepare: the whole pure request path
// ---------------------------------------------------------------------------------------------

/// A configuration with two secrets (as during a rotation) and the given settings.
pub fn config_with(secrets: Vec<SigningSecret>, settings: Settings) -> Config {
    Config {
        verifier: Verifier::new(secrets),
        table_name: "clerk".into(),
        settings,
        metrics_namespace: "ClerkWebhooks".into(),
        warm_up: false,
        instance_id: None,
    }
}

/// `prepare` refuses bad input with a 4xx, never a 5xx (Svix would retry the same bytes for
/// days), keeps the svix id only once verified, never refuses a verified body that decodes,
/// and plans exactly what `plan::plan` does. Returns whether the request became a plan.
pub fn check_prepare(
    config: &Config,
    method: Method,
    headers: HeaderMap,
    body: Vec<u8>,
    now_ms: i64,
) -> bool {
    let mut request = http::Request::builder()
        .method(method.clone())
        .uri("https://example.lambda-url.us-east-1.on.aws/")
        .body(lambda_http::Body::from(body.clone()))
        .unwrap();
    *request.headers_mut() = headers.clone();
    let now = UNIX_EPOCH + Duration::from_millis(now_ms as u64);
    let mut context = RequestFacts::default();
    let result = handler::prepare(config, &request, now, &mut context);

    if let Err(rejection) = &result {
        assert!(
            rejection.status().is_client_error(),
            "bad input answered {}",
            rejection.status()
        );
        assert!(!rejection.code().is_empty());
    }
    // Only a verified id is kept (it is logged): whatever came before it failed or not.
    if let Some(kept) = context.svix_id.as_deref() {
        let parsed = SignatureHeaders::from_headers(&headers).expect("kept after verifying");
        let verified = config
            .verifier
            .verify(&parsed, &body, now_ms.div_euclid(1000));
        assert_eq!(verified.ok(), Some(kept), "an unverified id was kept");
    }
    match result {
        Ok(planned) => {
            let svix_id = context
                .svix_id
                .as_deref()
                .expect("a plan has a verified id");
            // Decoded as the handler did: with the delivery's verified svix-timestamp.
            let signed_at_ms = SignatureHeaders::from_headers(&headers)
                .ok()
                .and_then(|h| h.timestamp.parse::<i64>().ok())
                .expect("a planned request has a verified timestamp")
                .saturating_mul(1000);
            let event =
                check_decode_signed_at(&body, signed_at_ms).expect("a planned body decodes");
            assert_eq!(
                context.event_type.as_deref(),
                Some(event.event_type.as_str())
            );
            let expected = check_plan(&event, svix_id, &config.settings, now_ms);
            assert_eq!(planned, expected, "prepare planned something else");
            planned.is_some()
        }
        // The status and code were checked above. Once the body decoded, nothing refuses it.
        Err(rejection) => {
            assert!(
                context.event_type.is_none(),
                "a verified, decodable request was refused: {rejection}"
            );
            false
        }
    }
}

/// A request from choices; all-zero choices give a POST of the raw remaining bytes, signed
/// with the first secret. Returns (method, headers, body, now in ms).
pub fn fuzzed_request(
    choices: &mut Choices,
    fixtures: &[Value],
    secrets: &[SigningSecret],
) -> (Method, HeaderMap, Vec<u8>, i64) {
    let method = match choices.below(16) {
        14 => Method::GET,
        15 => Method::PUT,
        _ => Method::POST,
    };
    let now_ms = match choices.below(4) {
        3 => now_millis(choices),
        _ => 1_716_883_200_000 + choices.in_range(0, 86_400_000),
    };
    let signer = match choices.below(8) {
        7 => secret_for(choices.take(8)),
        k => secrets[k % secrets.len()].clone(),
    };
    let from_fixture = choices.flag();
    // A fixed-size block for the headers, so the rest of the input can be the body.
    let mut header_choices = Choices::new(choices.take(64));
    let body = if from_fixture {
        serde_json::to_vec(&mutated_fixture(fixtures, choices)).unwrap()
    } else {
        choices.rest().to_vec()
    };
    let headers = fuzzed_headers(&mut header_choices, &signer, &body, now_ms.div_euclid(1000));
    (method, headers, body, now_ms)
}

// ---------------------------------------------------------------------------------------------
// Whole cases: how each fuzz target reads its input (fuzz/seed.sh writes seeds to match)
// ---------------------------------------------------------------------------------------------

/// What one case did: the body it used, and whether it got through (the signature accepted,
/// the event planned, the request prepared into a plan).
pub struct Ran {
    pub body: Vec<u8>,
    pub accepted: bool,
}

/// The fixtures' day (2024-05-28), in seconds: the `verify` target's clock.
pub const VERIFY_NOW: i64 = 1_716_883_200;

/// `verify`: one mode byte. Even: 64 bytes of header choices (signer, id, timestamp, which
/// headers), then the body, checked against the oracle at [`VERIFY_NOW`]. Odd: key length,
/// key, id, timestamp, skew and the bit to flip, then the body, for a round trip.
pub fn run_verify(data: &[u8], secrets: &[SigningSecret]) -> Ran {
    let mut choices = Choices::new(data);
    if choices.flag() {
        let key_len = 1 + choices.below(64);
        let key = choices.take(key_len).to_vec();
        let msg_id = choices.text(40);
        let timestamp = choices.i64();
        let skew = choices.in_range(-TOLERANCE_SECS, TOLERANCE_SECS);
        let flip = choices.below(1 << 16);
        let body = choices.rest();
        check_round_trip(&key, &msg_id, timestamp, body, skew, flip);
        Ran {
            body: body.to_vec(),
            accepted: true,
        }
    } else {
        let mut header_choices = Choices::new(choices.take(64));
        let signer = &secrets[header_choices.below(secrets.len())];
        let body = choices.rest();
        let headers = fuzzed_headers(&mut header_choices, signer, body, VERIFY_NOW);
        check_verify(secrets, &headers, body, VERIFY_NOW);
        let accepted = SignatureHeaders::from_headers(&headers).is_ok_and(|h| {
            Verifier::new(secrets.to_vec())
                .verify(&h, body, VERIFY_NOW)
                .is_ok()
        });
        Ran {
            body: body.to_vec(),
            accepted,
        }
    }
}

/// `plan`: one mode byte, 48 bytes of parameters (settings, clock, svix id), then the body
/// (even mode) or the choices of a mutated fixture (odd mode). Decodes, then plans.
pub fn run_plan(data: &[u8], fixtures: &[Value]) -> Ran {
    let mut choices = Choices::new(data);
    let mutated = choices.flag();
    let mut parameters = Choices::new(choices.take(48));
    let body = if mutated {
        serde_json::to_vec(&mutated_fixture(fixtures, &mut choices)).unwrap()
    } else {
        choices.rest().to_vec()
    };
    let settings = settings(&mut parameters);
    let now_ms = now_millis(&mut parameters);
    let svix_id = svix_id(&mut parameters);
    let planned = check_decode(&body)
        .and_then(|event| check_plan(&event, &svix_id, &settings, now_ms))
        .is_some();
    Ran {
        body,
        accepted: planned,
    }
}

/// `prepare`: settings, then a request from [`fuzzed_request`], through `handler::prepare`.
pub fn run_prepare(data: &[u8], fixtures: &[Value], secrets: &[SigningSecret]) -> Ran {
    let mut choices = Choices::new(data);
    let config = config_with(secrets.to_vec(), settings(&mut choices));
    let (method, headers, body, now_ms) = fuzzed_request(&mut choices, fixtures, secrets);
    let accepted = check_prepare(&config, method, headers, body.clone(), now_ms);
    Ran { body, accepted }
}
