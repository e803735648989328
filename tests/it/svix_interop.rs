//! Requests signed by Svix's own npm library (`scripts/signer`, installed by `make test`)
//! must verify with ours; then the fixtures in `events/` replay a whole story through the
//! handler into DynamoDB Local.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::helpers::*;
use aws_sdk_dynamodb::types::AttributeValue;
use clerk_webhooks::config::Config;
use clerk_webhooks::verify::{SignatureHeaders, VerifyError};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request};
use serde_json::{json, Value};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct ToSign {
    secret: String,
    id: String,
    timestamp: i64,
    body: String,
}

/// Signs every request in one `node scripts/signer/svix-sign.js sign` call.
fn svix_sign(requests: &[ToSign]) -> Vec<String> {
    let signer = root().join("scripts/signer/svix-sign.js");
    assert!(
        root().join("scripts/signer/node_modules/svix").exists(),
        "Svix's npm library is not installed: run `npm ci --prefix scripts/signer` (make test does)"
    );
    let input: Vec<Value> = requests
        .iter()
        .map(|r| json!({"secret": r.secret, "id": r.id, "timestamp": r.timestamp, "body": r.body}))
        .collect();
    let mut child = Command::new("node")
        .arg(signer)
        .arg("sign")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node is needed to run Svix's library");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(&input).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the Svix signer failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn svix_request(signed: &ToSign, signature: &str) -> Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .header("svix-id", &signed.id)
        .header("svix-timestamp", signed.timestamp.to_string())
        .header("svix-signature", signature)
        .body(Body::from(signed.body.clone()))
        .unwrap()
}

#[test]
fn signatures_made_by_svix_verify_and_tampered_ones_do_not() {
    // Different secrets (with and without the prefix, several lengths), ids and bodies.
    let secrets = [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "whsec_dGhpcnR5LXR3by1ieXRlLXNlY3JldC1mb3ItdGVzdGluZyE=",
        "c2hvcnQta2V5",
    ];
    let bodies = [
        r#"{"test": 2432232314}"#.to_owned(),
        String::from_utf8(envelope(
            "user.created",
            1_716_883_200_000,
            user("user_1", 1, "Lovelace"),
        ))
        .unwrap(),
        "ünïcödé and emoji 🎉 in a body".to_owned(),
        String::new(),
    ];
    let now = now_secs();
    let mut requests = Vec::new();
    for (i, secret) in secrets.iter().enumerate() {
        for (j, body) in bodies.iter().enumerate() {
            requests.push(ToSign {
                secret: secret.to_string(),
                id: format!("msg_{i}{j}abc"),
                timestamp: now - (i * j) as i64,
                body: body.clone(),
            });
        }
    }
    let signatures = svix_sign(&requests);
    assert_eq!(signatures.len(), requests.len());
    for (r, signature) in requests.iter().zip(&signatures) {
        let verifier = Config::from_lookup(|name| match name {
            "CLERK_WEBHOOK_SIGNING_SECRET" => Some(format!(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,{}",
                r.secret
            )),
            "TABLE_NAME" => Some("t".into()),
            _ => None,
        })
        .unwrap()
        .verifier;
        let ts = r.timestamp.to_string();
        let headers = SignatureHeaders {
            msg_id: &r.id,
            timestamp: &ts,
            signatures: signature,
        };
        assert_eq!(
            verifier.verify(&headers, r.body.as_bytes(), now),
            Ok(r.id.as_str()),
            "{signature}"
        );
        let mut tampered = r.body.clone().into_bytes();
        tampered.push(b' ');
        assert_eq!(
            verifier.verify(&headers, &tampered, now),
            Err(VerifyError::NoMatchingSignature)
        );
        let other_id = SignatureHeaders {
            msg_id: "msg_other",
            ..headers
        };
        assert_eq!(
            verifier.verify(&other_id, r.body.as_bytes(), now),
            Err(VerifyError::NoMatchingSignature)
        );
    }
}

/// Every fixture in `events/`, in the order the story happened (envelope timestamp).
fn story() -> Vec<(String, Value, String)> {
    let mut events: Vec<(String, Value, String)> = std::fs::read_dir(root().join("events"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let raw = std::fs::read_to_string(&path).unwrap();
            let event: Value = serde_json::from_str(&raw).unwrap();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert_eq!(event["type"], json!(name), "{}", path.display());
            (name, event, raw)
        })
        .collect();
    events.sort_by_key(|(_, event, _)| event["timestamp"].as_i64().unwrap());
    events
}

/// The item each type writes, as the table contract in docs/table.md describes it: an oracle
/// written apart from the planner.
fn expected_key(event_type: &str, data: &Value) -> Option<(String, String)> {
    let field = |path: &[&str]| {
        let mut v = data;
        for p in path {
            v = &v[*p];
        }
        v.as_str()
            .unwrap_or_else(|| panic!("{event_type}: no {path:?}"))
            .to_owned()
    };
    let profile = |kind: &str| Some((format!("{kind}#{}", field(&["id"])), "PROFILE".to_owned()));
    match event_type.split('.').next().unwrap() {
        "user" => profile("USER"),
        "organization" => profile("ORG"),
        "organizationMembership" => Some((
            format!("ORG#{}", field(&["organization", "id"])),
            format!("MEMBER#{}", field(&["public_user_data", "user_id"])),
        )),
        "session" => Some((
            format!("USER#{}", field(&["user_id"])),
            format!("SESSION#{}", field(&["id"])),
        )),
        "organizationInvitation" => Some((
            format!("ORG#{}", field(&["organization_id"])),
            format!("INVITATION#{}", field(&["id"])),
        )),
        "organizationDomain" => profile("DOMAIN"),
        "invitation" => profile("INVITATION"),
        "role" => profile("ROLE"),
        "permission" => profile("PERMISSION"),
        "waitlistEntry" => profile("WAITLIST"),
        "subscription" => profile("SUBSCRIPTION"),
        "subscriptionItem" => profile("SUBSCRIPTION_ITEM"),
        "paymentAttempt" => profile("PAYMENT_ATTEMPT"),
        "email" | "sms" => None,
        other => panic!("no expectation for {other}"),
    }
}

#[tokio::test]
async fn every_fixture_signed_by_svix_replays_the_whole_catalog_into_dynamodb() {
    let story = story();
    assert_eq!(story.len(), 49, "one fixture per catalog type");
    let app = TestApp::spawn().await;
    let now = now_secs();
    let requests: Vec<ToSign> = story
        .iter()
        .enumerate()
        .map(|(i, (_, _, raw))| ToSign {
            secret: SECRET.into(),
            id: format!("msg_story{i:02}"),
            timestamp: now,
            body: raw.clone(),
        })
        .collect();
    let signatures = svix_sign(&requests);

    for (((event_type, event, _), request), signature) in
        story.iter().zip(&requests).zip(&signatures)
    {
        let reply = app.send(svix_request(request, signature)).await;
        assert_eq!(reply.status, StatusCode::OK, "{event_type}: {}", reply.body);
        assert_eq!(reply.body["status"], json!("applied"), "{event_type}");
        let data = &event["data"];
        let record = app.get(&format!("EVENT#{}", request.id), "EVENT").await;
        assert_eq!(record.map(|r| s(&r, "type")), Some(event_type.clone()));
        let Some((pk, sk)) = expected_key(event_type, data) else {
            // Messages: nothing but the event record, by default.
            let text = format!("{:?}", app.scan().await);
            assert!(
                !text.contains("424242"),
                "{event_type}: a one-time code was stored"
            );
            continue;
        };
        let item = app
            .get(&pk, &sk)
            .await
            .unwrap_or_else(|| panic!("{event_type}: no {pk} / {sk}"));
        assert_eq!(
            s(&item, "last_svix_id"),
            request.id,
            "{event_type} did not write {pk} / {sk}"
        );
        if event_type.ends_with(".deleted") {
            assert_eq!(
                item.get("deleted"),
                Some(&AttributeValue::Bool(true)),
                "{event_type}"
            );
            assert!(
                !item.contains_key("data"),
                "{event_type}: a tombstone keeps data"
            );
        } else if let Some(status) = data["status"].as_str() {
            assert_eq!(s(&item, "status"), status, "{event_type}");
        }
    }

    // The end of the story.
    let user_key = "USER#user_2NNEqL2nrIRdJ194ndJqAHwEfxC";
    let org_key = "ORG#org_2NNEqL2nrIRdJ194ndJqAHwEfxD";
    assert!(
        app.partition(user_key, "SESSION#").await.is_empty(),
        "sessions went with the user"
    );
    assert!(
        app.partition(org_key, "INVITATION#").await.is_empty(),
        "invitations went with the org"
    );
    let members = app.partition(org_key, "MEMBER#").await;
    assert!(members
        .iter()
        .all(|m| m.get("deleted") == Some(&AttributeValue::Bool(true))));
    for key in [
        user_key,
        org_key,
        "DOMAIN#orgdmn_2NNEqL2nrIRdJ194ndJqAHwDOM1",
        "ROLE#role_2NNEqL2nrIRdJ194ndJqAHwROL1",
        "PERMISSION#perm_2NNEqL2nrIRdJ194ndJqAHwPRM1",
    ] {
        let item = app.get(key, "PROFILE").await.unwrap();
        assert_eq!(
            item.get("deleted"),
            Some(&AttributeValue::Bool(true)),
            "{key}"
        );
    }
    let items = app.scan().await;
    assert_eq!(
        items.iter().filter(|i| s(i, "entity") == "event").count(),
        49
    );
    let text = format!("{items:?}");
    for never in ["424242", "203.0.113"] {
        assert!(!text.contains(never), "{never} is stored");
    }

    // Svix delivering everything again changes nothing.
    for ((event_type, _, _), request) in story.iter().zip(&requests) {
        let reply = app.send(signed(request.body.as_bytes(), &request.id)).await;
        assert_eq!(reply.body["status"], json!("duplicate"), "{event_type}");
    }
    let after = app.scan().await;
    let changed: Vec<String> = after
        .iter()
        .filter(|i| !items.contains(i))
        .map(|i| format!("{} / {}", s(i, "pk"), s(i, "sk")))
        .collect();
    assert!(
        changed.is_empty() && after.len() == items.len(),
        "duplicates changed {changed:?} ({} -> {} items)",
        items.len(),
        after.len()
    );
}
