//! Requests signed by Svix's own npm library (`scripts/signer`, installed by `make test`)
//! must verify with ours; then the fixtures in `events/` replay a whole story through the
//! handler into DynamoDB Local.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use aws_sdk_dynamodb::types::AttributeValue;
use clerk_webhooks::config::Config;
use clerk_webhooks::verify::{SignatureHeaders, VerifyError};
use common::*;
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

/// The fixtures in the order the story happened.
const STORY: [(&str, &str); 10] = [
    ("user.created", "applied"),
    ("organization.created", "applied"),
    ("organizationMembership.created", "applied"),
    ("user.updated", "applied"),
    ("organization.updated", "applied"),
    ("organizationMembership.updated", "applied"),
    ("session.created", "ignored"),
    ("organizationMembership.deleted", "applied"),
    ("organization.deleted", "applied"),
    ("user.deleted", "applied"),
];

fn fixture(event_type: &str) -> String {
    let path: PathBuf = root().join("events").join(format!("{event_type}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn every_fixture_signed_by_svix_replays_the_story_into_dynamodb() {
    let (h, client, table) = setup().await;
    let now = now_secs();
    let requests: Vec<ToSign> = STORY
        .iter()
        .enumerate()
        .map(|(i, (t, _))| ToSign {
            secret: SECRET.into(),
            id: format!("msg_story{i}"),
            timestamp: now,
            body: fixture(t),
        })
        .collect();
    let signatures = svix_sign(&requests);

    let user_key = "USER#user_2NNEqL2nrIRdJ194ndJqAHwEfxC";
    let org_key = "ORG#org_2NNEqL2nrIRdJ194ndJqAHwEfxD";
    for (((event_type, expected), request), signature) in
        STORY.iter().zip(&requests).zip(&signatures)
    {
        let reply = send(&h, svix_request(request, signature)).await;
        assert_eq!(reply.status, StatusCode::OK, "{event_type}: {}", reply.body);
        assert_eq!(reply.body["status"], json!(expected), "{event_type}");
        if *event_type == "organizationMembership.updated" {
            let m = get(
                &client,
                &table,
                org_key,
                "MEMBER#user_2NNEqL2nrIRdJ194ndJqAHwEfxC",
            )
            .await
            .unwrap();
            assert_eq!(s(&m, "role"), "org:admin");
            let u = get(&client, &table, user_key, "PROFILE").await.unwrap();
            assert_eq!(s(&u, "last_name"), "King");
            assert_eq!(
                s(&u, "email"),
                "ada.lovelace@example.org",
                "the primary email, not the first"
            );
        }
    }
    // Replaying the whole story again changes nothing: every message is a duplicate.
    let before = scan(&client, &table).await;
    for ((event_type, expected), request) in STORY.iter().zip(&requests) {
        let reply = send(&h, signed(request.body.as_bytes(), &request.id)).await;
        let again = if *expected == "ignored" {
            "ignored"
        } else {
            "duplicate"
        };
        assert_eq!(reply.body["status"], json!(again), "{event_type}");
    }
    assert_eq!(scan(&client, &table).await, before);

    // The end state: two tombstones, no membership, nine event records.
    let items = scan(&client, &table).await;
    let entities: Vec<(String, String, bool)> = items
        .iter()
        .filter(|i| s(i, "entity") != "event")
        .map(|i| {
            (
                s(i, "pk"),
                s(i, "sk"),
                i.get("deleted") == Some(&AttributeValue::Bool(true)),
            )
        })
        .collect();
    assert_eq!(
        entities,
        [
            (org_key.into(), "PROFILE".into(), true),
            (user_key.into(), "PROFILE".into(), true)
        ]
    );
    assert_eq!(
        items.iter().filter(|i| s(i, "entity") == "event").count(),
        9
    );
}
