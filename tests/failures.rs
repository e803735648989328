//! Every way DynamoDB can fail answers 503 `{"status": "retry"}` (Svix retries) and leaves
//! the table as it was.

mod common;

use std::time::{Duration, Instant};

use common::*;
use lambda_http::http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const USER: &str = "user_2NNEqL2nrIRdJ194ndJqAHwEfxC";
const T0: i64 = 1_716_883_200_000;

fn body() -> Vec<u8> {
    envelope("user.created", T0, user(USER, T0, "Lovelace"))
}

async fn assert_retry(endpoint: &str) -> Duration {
    let h = handler_for(client_for(endpoint), "clerk-webhooks");
    let started = Instant::now();
    let reply = send(&h, signed(&body(), &msg_id())).await;
    let took = started.elapsed();
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["status"], json!("retry"));
    assert_eq!(reply.body["error"], json!("store_unavailable"));
    // Well inside Svix's 15 s, so Svix sees our 503 rather than its own timeout.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    took
}

#[tokio::test]
async fn dynamodb_unreachable_is_503() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener); // nothing listens there now: connections are refused
    assert_retry(&format!("http://127.0.0.1:{port}")).await;
}

#[tokio::test]
async fn dynamodb_that_never_answers_is_503_before_svix_gives_up() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // accept and say nothing
        }
    });
    let took = assert_retry(&format!("http://127.0.0.1:{port}")).await;
    assert!(
        took >= Duration::from_secs(2),
        "gave up after {took:?}, before one attempt timed out"
    );
}

/// Answers every request the way DynamoDB does when it throttles.
async fn throttle(mut socket: TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        if buf.len() < end + 4 + length {
            continue;
        }
        buf.drain(..end + 4 + length);
        let payload = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#;
        let response = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{payload}",
            payload.len()
        );
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn dynamodb_throttling_is_503_after_the_sdk_retries() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(throttle(socket));
        }
    });
    assert_retry(&format!("http://127.0.0.1:{port}")).await;
    assert!(hits.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn a_transaction_dynamodb_rejects_applies_nothing_not_even_the_event_record() {
    let (h, client, table) = setup().await;
    deliver(&h, &body(), &msg_id()).await;
    let before = scan(&client, &table).await;

    // A newer update whose item exceeds DynamoDB's 400 KB limit: the whole transaction fails.
    let mut huge = user(USER, T0 + 1_000, "King");
    huge["private_metadata"] = json!({"blob": "x".repeat(450 * 1024)});
    let huge = envelope("user.updated", T0 + 1_005, huge);
    let id = msg_id();
    let reply = send(&h, signed(&huge, &id)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(scan(&client, &table).await, before, "the table changed");
    // The retry is not mistaken for a duplicate: no event record was written.
    let reply = send(&h, signed(&huge, &id)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_table_that_does_not_exist_is_503_not_a_crash() {
    let h = handler_for(local_client(), "no-such-table");
    let reply = send(&h, signed(&body(), &msg_id())).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("ResourceNotFound"),
        "{}",
        reply.body
    );
}
