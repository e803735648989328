//! The backfill binary as a Lambda: the real executable under a small stand-in for the Lambda
//! Runtime API, invoked by hand twice. The first invocation is close to its deadline, copies
//! one page and answers `complete: false`; the second resumes from the checkpoint and
//! finishes.

use std::collections::VecDeque;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::helpers::fake_clerk::{user_id, Data, FakeClerk, KEY};
use crate::helpers::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Hands out `invocations` (payload, seconds until the deadline) one per `next`, then never
/// answers `next` again; sends every response or error body to the test.
async fn runtime_api(
    invocations: Vec<(Value, u64)>,
) -> (String, mpsc::UnboundedReceiver<(String, Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let queue = Arc::new(Mutex::new(VecDeque::from(invocations)));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (queue, tx) = (Arc::clone(&queue), tx.clone());
            n += 1;
            tokio::spawn(connection(stream, queue, tx, n));
        }
    });
    (addr, rx)
}

async fn connection(
    mut stream: TcpStream,
    queue: Arc<Mutex<VecDeque<(Value, u64)>>>,
    tx: mpsc::UnboundedSender<(String, Value)>,
    connection: usize,
) {
    let mut buffer = Vec::new();
    let mut served = 0;
    loop {
        let head_end = loop {
            if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
        buffer.drain(..head_end);
        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0);
        while buffer.len() < length {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buffer.drain(..length).collect();
        if path.ends_with("/invocation/next") {
            let next = queue.lock().unwrap().pop_front();
            let Some((payload, secs)) = next else {
                std::future::pending::<()>().await;
                return;
            };
            served += 1;
            let deadline =
                SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(secs);
            let body = payload.to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 lambda-runtime-aws-request-id: req-{connection}-{served}\r\n\
                 lambda-runtime-deadline-ms: {}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:backfill\r\n\r\n{body}",
                body.len(),
                deadline.as_millis()
            );
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        } else {
            let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let kind = if path.ends_with("/response") {
                "response"
            } else {
                "error"
            };
            let _ = tx.send((kind.to_owned(), value));
            let reply = "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
            if stream.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

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
