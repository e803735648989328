//! One log line per request, with the fields an operator needs, and never a secret, an email,
//! a name, a phone number or a piece of the body.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use lambda_http::http::Request as HttpRequest;
use lambda_http::Body;
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const USER: &str = "user_2NNEqL2nrIRdJ194ndJqAHwEfxC";

#[tokio::test]
async fn one_json_line_per_request_without_personal_data_or_secrets() {
    let capture = Capture::default();
    let writer = capture.clone();
    // The production filter at its most verbose setting.
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry()
        .with(clerk_webhooks::logging::filter(
            tracing_subscriber::filter::LevelFilter::TRACE,
        ))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(move || writer.clone()),
        );
    let _guard = tracing::subscriber::set_default(subscriber);

    let (h, _client, _table) = setup().await;
    let body = envelope(
        "user.created",
        1_716_883_200_005,
        user(USER, 1_716_883_200_000, "Lovelace"),
    );
    let id = msg_id();
    let requests = vec![
        signed(&body, &id), // applied
        signed(&body, &id), // duplicate
        signed(
            &envelope(
                "somethingNew.happened",
                1,
                json!({"id": "sess_1", "user_id": USER}),
            ),
            &msg_id(),
        ), // ignored
        HttpRequest::builder()
            .method("GET")
            .body(Body::Empty)
            .unwrap(), // 405
        HttpRequest::builder()
            .method("POST")
            .header("svix-id", "msg_x")
            .body(Body::from(body.clone()))
            .unwrap(), // 400
    ];
    let mut bad_sig = signed(&body, &msg_id());
    bad_sig
        .headers_mut()
        .insert("svix-signature", "v1,AAAA".parse().unwrap());
    let mut bad_payload_body: Value = serde_json::from_slice(&body).unwrap();
    bad_payload_body["data"]["email_addresses"] = json!("ada.lovelace@example.org");
    let bad_payload = serde_json::to_vec(&bad_payload_body).unwrap();
    let total = requests.len() + 2;
    for request in requests
        .into_iter()
        .chain([bad_sig, signed(&bad_payload, &msg_id())])
    {
        send(&h, request).await;
    }

    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &Value| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("webhook "))
        })
        .collect();
    assert_eq!(lines.len(), total, "one line per request:\n{text}");
    let outcomes: Vec<&str> = lines
        .iter()
        .map(|l| l["fields"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "applied",
            "duplicate",
            "ignored",
            "rejected",
            "rejected",
            "rejected",
            "rejected"
        ]
    );
    let first = &lines[0]["fields"];
    assert_eq!(first["svix_id"], json!(id));
    assert_eq!(first["type"], json!("user.created"));
    assert_eq!(first["status"], json!(200));
    assert!(first["duration_ms"].is_number());
    assert_eq!(lines[6]["fields"]["error"], json!("invalid_payload"));

    // Nothing personal or secret in any line the requests produced, SDK lines included.
    let secret_key = SECRET.trim_start_matches("whsec_");
    for forbidden in [
        "example.org",
        "example.com",
        "Lovelace",
        "Ada",
        "+1555",
        "5555550100",
        secret_key,
        "img.clerk.com",
        "\"pro\"",
    ] {
        if let Some(line) = text.lines().find(|l| l.contains(forbidden)) {
            panic!(
                "a log line contains {forbidden:?}: {}",
                &line[..line.len().min(600)]
            );
        }
    }
}
