//! The backfill binary as a Lambda: the real executable under a small stand-in for the Lambda
//! Runtime API, invoked by hand twice. The first invocation is close to its deadline, copies
//! one page and answers `complete: false`; the second resumes from the checkpoint and
//! finishes.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::fake_clerk::{user_id, Data, FakeClerk, KEY};
use crate::helpers::runtime_api::runtime_api;
use crate::helpers::*;
use serde_json::{json, Value};

#[tokio::test]
async fn invoked_by_hand_it_stops_before_its_deadline_and_resumes_on_the_next_invocation() {
    let fake = FakeClerk::start(Data::generate(25, 0, 0)).await;
    let app = TestApp::spawn().await;
    let payload = json!({"only": ["users"], "page_size": 10});
    // 30 s left is under the one-minute margin: one page, then stop.
    let (runtime, mut answers) = runtime_api(vec![(payload.clone(), 30), (payload, 900)]).await;

    let log_path = std::env::temp_dir().join(format!(
        "clerk-webhooks-backfill-lambda-{}.log",
        std::process::id()
    ));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut lambda = Command::new(env!("CARGO_BIN_EXE_clerk-webhooks-backfill"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &runtime)
        .env("AWS_LAMBDA_FUNCTION_NAME", "backfill")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("CLERK_SECRET_KEY", KEY)
        .env("CLERK_API_URL", &fake.url)
        .env("TABLE_NAME", &app.table)
        .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut received = Vec::new();
    for _ in 0..2 {
        let answer = tokio::time::timeout(Duration::from_secs(60), answers.recv())
            .await
            .expect("the function answers")
            .unwrap();
        received.push(answer);
    }
    let [(kind, first), (kind2, second)]: [(String, Value); 2] = received.try_into().unwrap();
    let _ = lambda.kill();
    let _ = lambda.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(
        (kind.as_str(), kind2.as_str()),
        ("response", "response"),
        "{log}"
    );

    assert_eq!(first["complete"], json!(false), "{first}");
    assert_eq!(first["kinds"][0]["written"], json!(10));
    assert_eq!(first["kinds"][0]["started_at"], json!("the first user"));
    assert_eq!(second["complete"], json!(true), "{second}");
    assert_eq!(second["kinds"][0]["written"], json!(15));
    assert_eq!(
        second["kinds"][0]["started_at"],
        json!(format!("after {}", user_id(9)))
    );
    assert_eq!(
        app.scan()
            .await
            .iter()
            .filter(|i| s(i, "entity") == "user")
            .count(),
        25
    );
    assert!(
        log.contains("stopping before the deadline; invoke again to continue"),
        "{log}"
    );
    assert!(
        !log.contains(KEY.trim_start_matches("sk_test_")),
        "the key is never logged"
    );
    assert!(!log.to_lowercase().contains("example.org"), "{log}");
    // Kept only when an assertion fails, to read.
    let _ = std::fs::remove_file(&log_path);
}
