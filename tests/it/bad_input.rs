//! The bad-input matrix: every class of bad request we know of, each with its HTTP status, its
//! error code, and a table left byte-for-byte as it was (checked against a seeded table).
//!
//! Most classes are HTTP requests given to the handler; the classes that only exist in the raw
//! function-URL event (a flaw the conversion to an HTTP request meets) are sent as events,
//! through the same conversion `main` runs.

use crate::helpers::*;
use base64::Engine;
use clerk_webhooks::handler::MAX_BODY_BYTES;
use clerk_webhooks::verify::SigningSecret;
use lambda_http::http::{HeaderValue, Request as HttpRequest};
use lambda_http::{Body, Request};
use serde_json::{json, Value};

const USER: &str = "user_2NNEqL2nrIRdJ194ndJqAHwEfxC";

fn good_body() -> Vec<u8> {
    envelope(
        "user.updated",
        1_716_886_800_005,
        user(USER, 1_716_886_800_000, "King"),
    )
}

/// The one clock of the matrix, in epoch seconds: requests are signed and handled at the same
/// instant, so "301 s in the future" stays 301 s however slowly the cases run.
fn matrix_now() -> i64 {
    static NOW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *NOW.get_or_init(now_secs)
}

/// A request for `body` signed with `secret`, its headers then edited by `edit`.
fn request_with(
    method: &str,
    body: Vec<u8>,
    secret: &str,
    ts_offset: i64,
    edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>),
) -> Request {
    let id = msg_id();
    let ts = matrix_now() + ts_offset;
    let sig = SigningSecret::parse(secret).unwrap().sign(&id, ts, &body);
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        ("svix-id".into(), id.into_bytes()),
        ("svix-timestamp".into(), ts.to_string().into_bytes()),
        ("svix-signature".into(), sig.into_bytes()),
    ];
    edit(&mut headers);
    let mut builder = HttpRequest::builder().method(method);
    for (name, value) in headers {
        builder = builder.header(name, HeaderValue::from_bytes(&value).unwrap());
    }
    builder.body(Body::from(body)).unwrap()
}

fn signed_body(body: Vec<u8>) -> Request {
    request_with("POST", body, SECRET, 0, |_| {})
}

fn edited(edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> Request {
    request_with("POST", good_body(), SECRET, 0, edit)
}

fn set(headers: &mut [(String, Vec<u8>)], name: &str, value: &[u8]) {
    headers.iter_mut().find(|(n, _)| n == name).unwrap().1 = value.to_vec();
}

fn drop_header(headers: &mut Vec<(String, Vec<u8>)>, name: &str) {
    headers.retain(|(n, _)| n != name);
}

/// A signed function-URL event for `good_body()` (base64-encoded, as function URLs may send
/// it), then edited.
fn event_with(edit: impl FnOnce(&mut Value)) -> Value {
    let body = good_body();
    let mut event = function_url_event(
        "POST",
        &signed_headers(&body, &msg_id()),
        Some(base64::engine::general_purpose::STANDARD.encode(&body)),
        true,
    );
    edit(&mut event);
    event
}

/// A bad request as it reaches us: already an HTTP request, or a raw function-URL event.
enum Input {
    Http(Box<Request>),
    Event(Value),
}

fn envelope_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&good_body()).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn every_bad_request_class_is_refused_with_its_status_and_code_and_writes_nothing() {
    let app = TestApp::spawn().await;
    // Seed the table so "unchanged" means something.
    app.deliver(
        &envelope(
            "user.created",
            1_716_883_200_005,
            user(USER, 1_716_883_200_000, "Lovelace"),
        ),
        &msg_id(),
    )
    .await;
    app.deliver(
        &envelope(
            "organization.created",
            1_716_883_260_005,
            organization("org_1", 1_716_883_260_000, "Acme"),
        ),
        &msg_id(),
    )
    .await;

    let cases: Vec<(&str, Request, u16, &str)> = vec![
        (
            "missing svix-id",
            edited(|h| drop_header(h, "svix-id")),
            400,
            "missing_header",
        ),
        (
            "missing svix-timestamp",
            edited(|h| drop_header(h, "svix-timestamp")),
            400,
            "missing_header",
        ),
        (
            "missing svix-signature",
            edited(|h| drop_header(h, "svix-signature")),
            400,
            "missing_header",
        ),
        (
            "empty svix-id",
            edited(|h| set(h, "svix-id", b"")),
            400,
            "invalid_header",
        ),
        (
            "empty svix-timestamp",
            edited(|h| set(h, "svix-timestamp", b"")),
            400,
            "invalid_header",
        ),
        (
            "empty svix-signature",
            edited(|h| set(h, "svix-signature", b"")),
            400,
            "invalid_header",
        ),
        (
            "signature list of spaces",
            edited(|h| set(h, "svix-signature", b"   ")),
            400,
            "invalid_header",
        ),
        // A function URL joins a repeated header into one comma-separated value, so the
        // handler sees one header that verifies against nothing. (Repeated values that do
        // reach the verifier are refused as ambiguous: verify.rs's unit tests.)
        (
            "svix-id sent twice",
            edited(|h| h.push(("svix-id".into(), b"msg_other".to_vec()))),
            401,
            "invalid_signature",
        ),
        (
            "svix-signature sent twice",
            edited(|h| h.push(("svix-signature".into(), b"v1,AAAA".to_vec()))),
            401,
            "invalid_signature",
        ),
        (
            "non-ASCII svix-id",
            edited(|h| set(h, "svix-id", "msg_é".as_bytes())),
            400,
            "invalid_header",
        ),
        (
            "non-integer timestamp",
            edited(|h| set(h, "svix-timestamp", b"yesterday")),
            400,
            "invalid_header",
        ),
        (
            "fractional timestamp",
            edited(|h| set(h, "svix-timestamp", b"1716883200.5")),
            400,
            "invalid_header",
        ),
        (
            "huge timestamp",
            edited(|h| set(h, "svix-timestamp", b"99999999999999999999999")),
            400,
            "invalid_header",
        ),
        (
            "negative timestamp",
            edited(|h| set(h, "svix-timestamp", b"-1")),
            401,
            "timestamp_out_of_tolerance",
        ),
        (
            "stale timestamp (301 s)",
            request_with("POST", good_body(), SECRET, -301, |_| {}),
            401,
            "timestamp_out_of_tolerance",
        ),
        (
            "future timestamp (301 s)",
            request_with("POST", good_body(), SECRET, 301, |_| {}),
            401,
            "timestamp_out_of_tolerance",
        ),
        (
            "only v1a entries",
            edited(|h| {
                let sig = String::from_utf8(h[2].1.clone())
                    .unwrap()
                    .replacen("v1,", "v1a,", 1);
                set(h, "svix-signature", sig.as_bytes())
            }),
            401,
            "invalid_signature",
        ),
        (
            "malformed base64 in the signature",
            edited(|h| set(h, "svix-signature", b"v1,!!!not*base64!!!")),
            401,
            "invalid_signature",
        ),
        (
            "truncated signature",
            edited(|h| {
                let sig = h[2].1[..20].to_vec();
                set(h, "svix-signature", &sig)
            }),
            401,
            "invalid_signature",
        ),
        (
            "wrong secret",
            request_with(
                "POST",
                good_body(),
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                0,
                |_| {},
            ),
            401,
            "invalid_signature",
        ),
        (
            "signature of another message id",
            edited(|h| set(h, "svix-id", b"msg_someone_else")),
            401,
            "invalid_signature",
        ),
        (
            "body changed by one byte",
            {
                let mut r = signed_body(good_body());
                let mut body = good_body();
                body[20] ^= 0x01;
                *r.body_mut() = Body::from(body);
                r
            },
            401,
            "invalid_signature",
        ),
        (
            "body re-serialised",
            {
                let mut r = signed_body(good_body());
                let pretty = serde_json::to_vec_pretty(
                    &serde_json::from_slice::<Value>(&good_body()).unwrap(),
                )
                .unwrap();
                *r.body_mut() = Body::from(pretty);
                r
            },
            401,
            "invalid_signature",
        ),
        ("empty body", signed_body(Vec::new()), 400, "invalid_json"),
        (
            "invalid UTF-8",
            signed_body(vec![b'{', 0xff, 0xfe, b'}']),
            400,
            "invalid_json",
        ),
        (
            "truncated JSON",
            signed_body(good_body()[..100].to_vec()),
            400,
            "invalid_json",
        ),
        (
            "JSON array",
            signed_body(b"[1,2,3]".to_vec()),
            400,
            "invalid_envelope",
        ),
        (
            "JSON string",
            signed_body(br#""user.created""#.to_vec()),
            400,
            "invalid_envelope",
        ),
        (
            "missing type",
            signed_body(envelope_with(|v| {
                v.as_object_mut().unwrap().remove("type");
            })),
            400,
            "invalid_envelope",
        ),
        (
            "a timestamp that is not an integer",
            signed_body(envelope_with(|v| v["timestamp"] = json!("soon"))),
            400,
            "invalid_envelope",
        ),
        (
            "data is not an object",
            signed_body(envelope_with(|v| v["data"] = json!([1]))),
            400,
            "invalid_envelope",
        ),
        (
            "timestamp is a string",
            signed_body(envelope_with(|v| v["timestamp"] = json!("now"))),
            400,
            "invalid_envelope",
        ),
        (
            "version of the wrong type",
            signed_body(envelope_with(|v| {
                v["data"]["updated_at"] = json!("ada@example.org")
            })),
            400,
            "invalid_payload",
        ),
        (
            "expiry of the wrong type",
            signed_body(envelope(
                "session.ended",
                1,
                json!({"id": "sess_1", "user_id": "user_a", "expire_at": "tomorrow"}),
            )),
            400,
            "invalid_payload",
        ),
        (
            "id too long for a key",
            signed_body(envelope_with(|v| {
                v["data"]["id"] = json!(format!("user_{}", "a".repeat(124)))
            })),
            400,
            "invalid_payload",
        ),
        (
            "id with a key separator",
            signed_body(envelope_with(|v| v["data"]["id"] = json!("user_a#b"))),
            400,
            "invalid_payload",
        ),
        (
            "membership without its user",
            signed_body(envelope(
                "organizationMembership.created",
                1,
                json!({"id": "orgmem_1", "role": "org:member", "organization": {"id": "org_1"}}),
            )),
            400,
            "invalid_payload",
        ),
        (
            "session whose user is someone else",
            signed_body(envelope(
                "session.created",
                1,
                json!({"id": "sess_1", "user_id": "user_a", "user": {"id": "user_b"}}),
            )),
            400,
            "invalid_payload",
        ),
        (
            "over-size body",
            request_with("POST", vec![b' '; MAX_BODY_BYTES + 1], SECRET, 0, |_| {}),
            413,
            "payload_too_large",
        ),
        (
            "wrong method",
            request_with("PUT", good_body(), SECRET, 0, |_| {}),
            405,
            "method_not_allowed",
        ),
    ];
    let events: Vec<(&str, Value, u16, &str)> = vec![
        (
            "isBase64Encoded body that is not base64",
            event_with(|e| e["body"] = json!("eyJkYXRhIjp7ImlkIjoi!!")),
            400,
            "invalid_body_encoding",
        ),
        (
            "isBase64Encoded body cut short",
            event_with(|e| {
                let b64 = e["body"].as_str().unwrap().to_owned();
                e["body"] = json!(b64[..b64.len() - 3]);
            }),
            400,
            "invalid_body_encoding",
        ),
        (
            "header value with a control character",
            event_with(|e| e["headers"]["user-agent"] = json!("Svix\u{7}")),
            400,
            "invalid_header",
        ),
        (
            "method that is not an HTTP token",
            event_with(|e| e["requestContext"]["http"]["method"] = json!("PO ST")),
            405,
            "method_not_allowed",
        ),
    ];
    // The same request as a valid event is applied: the events above fail for their flaw only.
    let valid = app.send_event(&event_with(|_| {})).await;
    assert_eq!(valid.body["status"], json!("applied"), "{}", valid.body);
    // "Unchanged" is checked against this seeded table.
    let before = app.scan().await;

    assert!(cases.len() + events.len() >= 40);
    let inputs = cases
        .into_iter()
        .map(|(name, request, status, code)| (name, Input::Http(Box::new(request)), status, code))
        .chain(
            events
                .into_iter()
                .map(|(name, event, status, code)| (name, Input::Event(event), status, code)),
        );
    for (name, input, status, code) in inputs {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(matrix_now() as u64);
        let reply = match input {
            Input::Http(request) => app.send_at(*request, now).await,
            Input::Event(event) => send_event_at(&app.handler, &event, now).await,
        };
        assert_eq!(reply.status.as_u16(), status, "{name}: {}", reply.body);
        assert_eq!(reply.body["error"], json!(code), "{name}: {}", reply.body);
        assert!(
            reply.body["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}"
        );
        assert_eq!(app.scan().await, before, "{name} changed the table");
    }
}

/// The other side of the matrix: payloads that once were refused by a guessed rule, though
/// nothing about them is unsafe to store. Each is applied (issue 11).
#[tokio::test]
async fn what_is_safe_to_store_is_not_refused() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, Vec<u8>, (&str, &str))> = vec![
        (
            "envelope object is not \"event\"",
            envelope_with(|v| v["object"] = json!("list")),
            ("USER#user_2NNEqL2nrIRdJ194ndJqAHwEfxC", "PROFILE"),
        ),
        (
            "no instance_id",
            envelope_with(|v| {
                v.as_object_mut().unwrap().remove("instance_id");
                v["data"]["updated_at"] = json!(1_716_886_900_000_i64);
            }),
            ("USER#user_2NNEqL2nrIRdJ194ndJqAHwEfxC", "PROFILE"),
        ),
        (
            "user id without the user_ prefix",
            envelope_with(|v| v["data"]["id"] = json!("usr_1")),
            ("USER#usr_1", "PROFILE"),
        ),
        (
            "email_addresses is not a list",
            envelope_with(|v| {
                v["data"]["id"] = json!("user_no_list");
                v["data"]["email_addresses"] = json!("ada@example.org");
            }),
            ("USER#user_no_list", "PROFILE"),
        ),
        (
            "a name of the wrong type",
            envelope_with(|v| {
                v["data"]["id"] = json!("user_numeric_name");
                v["data"]["first_name"] = json!(7);
            }),
            ("USER#user_numeric_name", "PROFILE"),
        ),
        (
            "membership without a role",
            envelope(
                "organizationMembership.created",
                1,
                json!({"id": "orgmem_1", "organization": {"id": "org_1"},
                       "public_user_data": {"user_id": "user_1"}}),
            ),
            ("ORG#org_1", "MEMBER#user_1"),
        ),
        (
            "domain with an orgdm_ id (Clerk's own example)",
            envelope(
                "organizationDomain.updated",
                1,
                json!({"id": "orgdm_2g7np7Hrk0SN6kj5EDMLDaKNL0S", "organization_id": "org_1"}),
            ),
            ("DOMAIN#orgdm_2g7np7Hrk0SN6kj5EDMLDaKNL0S", "PROFILE"),
        ),
    ];
    for (name, body, (pk, sk)) in cases {
        let reply = app.send(signed(&body, &msg_id())).await;
        assert_eq!(reply.status.as_u16(), 200, "{name}: {}", reply.body);
        assert_eq!(reply.body["status"], json!("applied"), "{name}");
        assert!(app.get(pk, sk).await.is_some(), "{name}");
    }
}
