//! The HTTP contract: every refusal's status, error code and JSON body, and that a refused
//! request writes nothing. Runs the real handler on a fresh DynamoDB Local table.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::helpers::*;
use base64::Engine;
use clerk_webhooks::handler::{Handler, MAX_BODY_BYTES};
use clerk_webhooks::verify::SigningSecret;
use lambda_http::http::{header, Request as HttpRequest, StatusCode};
use lambda_http::{Body, Request};
use serde_json::json;

const USER: &str = "user_2NNEqL2nrIRdJ194ndJqAHwEfxC";

fn user_body() -> Vec<u8> {
    envelope(
        "user.created",
        1_716_883_200_005,
        user(USER, 1_716_883_200_000, "Lovelace"),
    )
}

fn request(method: &str, headers: &[(&str, String)], body: Body) -> Request {
    let mut builder = HttpRequest::builder()
        .method(method)
        .uri("https://fn.lambda-url.us-east-1.on.aws/");
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(body).unwrap()
}

fn signature_headers(body: &[u8], id: &str, ts: i64) -> Vec<(&'static str, String)> {
    let sig = SigningSecret::parse(SECRET).unwrap().sign(id, ts, body);
    vec![
        ("svix-id", id.to_owned()),
        ("svix-timestamp", ts.to_string()),
        ("svix-signature", sig),
    ]
}

/// Sends `request` and checks the refusal: status, error code, a message, and no write.
async fn assert_refused(app: &TestApp, request: Request, status: StatusCode, code: &str) {
    assert_refused_at(app, request, SystemTime::now(), status, code).await;
}

/// As [`assert_refused`], with the handler's clock at `now`.
async fn assert_refused_at(
    app: &TestApp,
    request: Request,
    now: SystemTime,
    status: StatusCode,
    code: &str,
) {
    let reply = app.send_at(request, now).await;
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error"], json!(code), "{}", reply.body);
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        reply.body
    );
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    assert!(
        app.scan().await.is_empty(),
        "a refused request wrote to the table"
    );
}

#[tokio::test]
async fn only_post_is_allowed() {
    let app = TestApp::spawn().await;
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let body = user_body();
        let req = request(
            method,
            &signature_headers(&body, &msg_id(), now_secs()),
            Body::from(body),
        );
        let reply = app.send(req).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(reply.headers[header::ALLOW], "POST");
        assert_eq!(reply.body["error"], json!("method_not_allowed"));
    }
    assert!(app.scan().await.is_empty());
}

#[tokio::test]
async fn a_body_over_one_mib_is_refused_before_any_signature_work() {
    let app = TestApp::spawn().await;
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    // No signature headers at all: 413 must come first.
    assert_refused(
        &app,
        request("POST", &[], Body::from(big)),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
}

#[tokio::test]
async fn malformed_signature_headers_are_400() {
    let app = TestApp::spawn().await;
    let body = user_body();
    let good = signature_headers(&body, &msg_id(), now_secs());
    for missing in 0..3 {
        let headers: Vec<_> = good
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != missing)
            .map(|(_, h)| h.clone())
            .collect();
        assert_refused(
            &app,
            request("POST", &headers, Body::from(body.clone())),
            StatusCode::BAD_REQUEST,
            "missing_header",
        )
        .await;
    }
    let mut bad_ts = good.clone();
    bad_ts[1].1 = "yesterday".into();
    assert_refused(
        &app,
        request("POST", &bad_ts, Body::from(body.clone())),
        StatusCode::BAD_REQUEST,
        "invalid_header",
    )
    .await;
    let mut empty = good.clone();
    empty[0].1 = String::new();
    assert_refused(
        &app,
        request("POST", &empty, Body::from(body)),
        StatusCode::BAD_REQUEST,
        "invalid_header",
    )
    .await;
}

#[tokio::test]
async fn bad_signatures_and_stale_timestamps_are_401() {
    let app = TestApp::spawn().await;
    let body = user_body();
    let id = msg_id();
    // Signed with another secret.
    let other = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let ts = now_secs();
    // The handler's clock is pinned to the signing time: a second that ticks between signing
    // and verifying must not move a 301 s offset inside the 300 s tolerance.
    let now = UNIX_EPOCH + Duration::from_secs(ts as u64);
    let headers = vec![
        ("svix-id", id.clone()),
        ("svix-timestamp", ts.to_string()),
        ("svix-signature", other.sign(&id, ts, &body)),
    ];
    assert_refused_at(
        &app,
        request("POST", &headers, Body::from(body.clone())),
        now,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
    )
    .await;
    // Body changed after signing.
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let req = request(
        "POST",
        &signature_headers(&body, &id, ts),
        Body::from(tampered),
    );
    assert_refused_at(
        &app,
        req,
        now,
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
    )
    .await;
    // Correctly signed, but 301 s old / 301 s ahead.
    for offset in [-301, 301] {
        let req = request(
            "POST",
            &signature_headers(&body, &id, ts + offset),
            Body::from(body.clone()),
        );
        assert_refused_at(
            &app,
            req,
            now,
            StatusCode::UNAUTHORIZED,
            "timestamp_out_of_tolerance",
        )
        .await;
    }
}

#[tokio::test]
async fn the_webhook_header_names_are_accepted_too() {
    let app = TestApp::spawn().await;
    let body = user_body();
    let headers: Vec<_> = signature_headers(&body, &msg_id(), now_secs())
        .into_iter()
        .map(|(name, v)| {
            (
                match name {
                    "svix-id" => "webhook-id",
                    "svix-timestamp" => "webhook-timestamp",
                    _ => "webhook-signature",
                },
                v,
            )
        })
        .collect();
    let reply = app.send(request("POST", &headers, Body::from(body))).await;
    assert_eq!(
        (reply.status, reply.body["status"].clone()),
        (StatusCode::OK, json!("applied"))
    );
}

#[tokio::test]
async fn a_base64_encoded_body_is_verified_on_its_decoded_bytes() {
    let app = TestApp::spawn().await;
    let body = user_body();
    // What a function URL hands over with isBase64Encoded, through the conversion main runs.
    let event = function_url_event(
        "POST",
        &signed_headers(&body, &msg_id()),
        Some(base64::engine::general_purpose::STANDARD.encode(&body)),
        true,
    );
    let reply = app.send_event(&event).await;
    assert_eq!(
        (reply.status, reply.body["status"].clone()),
        (StatusCode::OK, json!("applied")),
        "{}",
        reply.body
    );
    assert!(app.get(&format!("USER#{USER}"), "PROFILE").await.is_some());
}

/// Regression: lambda_http's conversion panicked on this event (a function error, 502, the
/// Errors alarm, and no line of ours). Now it is a 400 like any bad request, and nothing is
/// written.
#[tokio::test]
async fn a_body_marked_base64_that_is_not_base64_is_400_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let body = user_body();
    let headers = signed_headers(&body, &msg_id());
    let text = String::from_utf8(body).unwrap();
    let event = function_url_event("POST", &headers, Some(text.clone()), true);
    let reply = app.send_event(&event).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.body["error"], json!("invalid_body_encoding"));
    assert!(reply.body["message"].as_str().unwrap().contains("base64"));
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    assert!(app.scan().await.is_empty());
    // The same text, not marked base64, is the body that was signed: applied.
    let reply = app
        .send_event(&function_url_event("POST", &headers, Some(text), false))
        .await;
    assert_eq!(reply.body["status"], json!("applied"), "{}", reply.body);
}

#[tokio::test]
async fn verified_but_unusable_bodies_are_400() {
    let app = TestApp::spawn().await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"{\"object\": \"event\", \"type\": ".to_vec(),
            "invalid_json",
        ),
        (vec![0xff, 0xfe, b'{'], "invalid_json"),
        (b"[]".to_vec(), "invalid_envelope"),
        (
            br#"{"object":"event","timestamp":1716883200000,"instance_id":"ins_1","data":{}}"#
                .to_vec(),
            "invalid_envelope",
        ),
        (
            envelope("user.created", 1, json!({"first_name": "Ada"})),
            "invalid_payload",
        ),
        (
            envelope(
                "organizationMembership.created",
                1,
                json!({"id": "orgmem_1", "role": "org:member"}),
            ),
            "invalid_payload",
        ),
        (
            envelope("user.deleted", 1, json!({"id": "not-a-user-id"})),
            "invalid_payload",
        ),
    ];
    for (body, code) in cases {
        let req = request(
            "POST",
            &signature_headers(&body, &msg_id(), now_secs()),
            Body::from(body),
        );
        assert_refused(&app, req, StatusCode::BAD_REQUEST, code).await;
    }
}

#[tokio::test]
async fn unknown_types_are_ignored_with_200_and_write_nothing() {
    let app = TestApp::spawn().await;
    for event_type in [
        "somethingNew.happened",
        "user.merged",
        "organizationSomething.created",
        "invitationish.created",
    ] {
        let body = envelope(
            event_type,
            1_716_883_200_000,
            json!({"id": "x_1", "object": "whatever"}),
        );
        assert_eq!(
            app.deliver(&body, &msg_id()).await,
            "ignored",
            "{event_type}"
        );
    }
    assert!(app.scan().await.is_empty());
}

#[tokio::test]
async fn invalid_configuration_answers_500_naming_the_variable() {
    let config = clerk_webhooks::config::Config::from_lookup(|name| {
        (name == "TABLE_NAME").then(|| "t".to_owned())
    });
    let h = Handler::new(config, local_client());
    let body = user_body();
    let reply = send(
        &h,
        request(
            "POST",
            &signature_headers(&body, &msg_id(), now_secs()),
            Body::from(body),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body["error"], json!("configuration_error"));
    assert!(reply.body["message"]
        .as_str()
        .unwrap()
        .contains("CLERK_WEBHOOK_SIGNING_SECRET"));
}

#[tokio::test]
async fn the_clock_decides_tolerance() {
    let app = TestApp::spawn().await;
    let body = user_body();
    let ts = 1_614_265_330;
    let req = request(
        "POST",
        &signature_headers(&body, &msg_id(), ts),
        Body::from(body),
    );
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(ts as u64 + 300);
    let reply = app.send_at(req, at).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}
