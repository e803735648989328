//! One log line per request, with the fields an operator needs, and never a secret, an email,
//! a name, a phone number or a piece of the body.

use crate::helpers::logs::Capture;
use crate::helpers::*;
use lambda_http::http::Request as HttpRequest;
use lambda_http::Body;
use serde_json::{json, Value};

const USER: &str = "user_2NNEqL2nrIRdJ194ndJqAHwEfxC";

/// A `user.created` for [`USER`], with a name and addresses the logs must not show.
fn user_created() -> Vec<u8> {
    envelope(
        "user.created",
        1_716_883_200_005,
        user(USER, 1_716_883_200_000, "Lovelace"),
    )
}

#[tokio::test]
async fn one_json_line_per_request_without_personal_data_or_secrets() {
    // The production filter at its most verbose setting.
    let (capture, _guard) = Capture::install();

    let app = TestApp::spawn().await;
    let body = user_created();
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
    bad_payload_body["data"]["updated_at"] = json!("ada.lovelace@example.org");
    let bad_payload = serde_json::to_vec(&bad_payload_body).unwrap();
    let total = requests.len() + 2;
    for request in requests
        .into_iter()
        .chain([bad_sig, signed(&bad_payload, &msg_id())])
    {
        app.send(request).await;
    }

    let text = capture.text();
    let lines = capture.request_lines();
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

/// Regression: a function-URL event whose body is marked base64 but is not used to panic
/// inside lambda_http, with no line of ours. Now: one refused line, and none of the body.
#[tokio::test]
async fn a_body_that_is_not_base64_gives_one_refused_line() {
    let (capture, _guard) = Capture::install();
    let app = TestApp::spawn().await;
    let body = user_created();
    let headers = signed_headers(&body, &msg_id());
    let text = String::from_utf8(body).unwrap();
    let reply = app
        .send_event(&function_url_event("POST", &headers, Some(text), true))
        .await;
    assert_eq!(reply.status.as_u16(), 400);

    let lines = capture.request_lines();
    assert_eq!(lines.len(), 1, "{}", capture.text());
    let fields = &lines[0]["fields"];
    assert_eq!(fields["message"], json!("webhook refused"));
    assert_eq!(fields["error"], json!("invalid_body_encoding"));
    assert_eq!(fields["status"], json!(400));
    assert_eq!(
        fields["svix_id"],
        json!("-"),
        "an unverified id is not logged"
    );
    let text = capture.text();
    for forbidden in [
        "Lovelace",
        "example.org",
        "user_2NNEqL2nrIRdJ194ndJqAHwEfxC",
    ] {
        assert!(!text.contains(forbidden), "logged {forbidden:?}: {text}");
    }
}

/// An id without its usual prefix is applied, and said once: the field, never the id.
#[tokio::test]
async fn an_id_without_its_usual_prefix_gives_one_line_naming_the_field() {
    let (capture, _guard) = Capture::install();
    let app = TestApp::spawn().await;
    let id = "orgdm_2g7np7Hrk0SN6kj5EDMLDaKNL0S";
    let body = envelope(
        "organizationDomain.updated",
        1_716_883_500_000,
        json!({"object": "organization_domain", "id": id, "organization_id": "org_2g7np7Hrk0SN6kj5EDMLDaKNL0S",
               "name": "example.org", "enrollment_mode": "manual_invitation",
               "created_at": 1_716_883_200_000_i64, "updated_at": 1_716_883_500_000_i64}),
    );
    assert_eq!(app.deliver(&body, &msg_id()).await, "applied");
    let noted: Vec<Value> = capture
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["fields"].is_string())
        .collect();
    assert_eq!(noted.len(), 1, "{}", capture.text());
    assert_eq!(noted[0]["level"], json!("WARN"));
    assert_eq!(noted[0]["fields"]["fields"], json!("id"));
    assert_eq!(
        noted[0]["fields"]["type"],
        json!("organizationDomain.updated")
    );
    assert!(!capture.text().contains(id), "the id itself is not logged");
    assert_eq!(capture.request_lines().len(), 1);
}
