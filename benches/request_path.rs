//! The whole non-I/O path of a request: parse the function-URL event, verify, decode the
//! envelope, build the write plan. Reported next to the verify floor for the same body.
//!
//! cargo bench --bench request_path

use std::hint::black_box;
use std::time::SystemTime;

use clerk_webhooks::config::Config;
use clerk_webhooks::function_url::FunctionUrlRequest;
use clerk_webhooks::handler::{prepare, RequestFacts};
use clerk_webhooks::verify::SigningSecret;
use criterion::{criterion_group, criterion_main, Criterion};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The function-URL (payload format 2.0) event Lambda would hand over, as JSON text.
fn function_url_event(body: &str, now: i64) -> String {
    let signature = SigningSecret::parse(SECRET)
        .unwrap()
        .sign("msg_bench", now, body.as_bytes());
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/json", "svix-id": "msg_bench",
                    "svix-timestamp": now.to_string(), "svix-signature": signature,
                    "user-agent": "Svix-Webhooks/1.24.0", "host": "abc.lambda-url.us-east-1.on.aws"},
        "requestContext": {"accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc", "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.9", "userAgent": "Svix-Webhooks/1.24.0"}, "requestId": "r",
            "routeKey": "$default", "stage": "$default", "time": "26/Nov/2026:20:00:00 +0000", "timeEpoch": 0},
        "body": body, "isBase64Encoded": false
    })
    .to_string()
}

fn request_path(c: &mut Criterion) {
    let now = SystemTime::now();
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let config = Config::from_lookup(|name| match name {
        "CLERK_WEBHOOK_SIGNING_SECRET" => Some(SECRET.into()),
        "TABLE_NAME" => Some("bench".into()),
        _ => None,
    })
    .unwrap();
    let key = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        SECRET.trim_start_matches("whsec_"),
    )
    .unwrap();
    let mut group = c.benchmark_group("request_path");
    for event_type in ["user.created", "organizationMembership.created"] {
        let path = format!("{}/events/{event_type}.json", env!("CARGO_MANIFEST_DIR"));
        let body = std::fs::read_to_string(path).unwrap();
        let event = function_url_event(&body, now_secs);
        let ts = now_secs.to_string();
        group.bench_function(format!("floor_hmac/{event_type}"), |b| {
            b.iter(|| {
                let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
                mac.update(b"msg_bench.");
                mac.update(ts.as_bytes());
                mac.update(b".");
                mac.update(black_box(body.as_bytes()));
                black_box(mac.finalize().into_bytes())
            })
        });
        group.bench_function(format!("parse_verify_decode_plan/{event_type}"), |b| {
            b.iter(|| {
                let event: FunctionUrlRequest = serde_json::from_str(black_box(&event)).unwrap();
                let request = event.into_request().unwrap();
                let plan = prepare(&config, &request, now, &mut RequestFacts::default()).unwrap();
                black_box(plan.expect("a synced type"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, request_path);
criterion_main!(benches);
