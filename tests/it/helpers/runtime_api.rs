//! A small stand-in for the Lambda Runtime API, to run a function's real binary as Lambda
//! would: it hands out invocations (`GET /invocation/next`, with a deadline) and passes each
//! response or error the function posts back to the test.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What Lambda's environment tells a function, on `command`: this Runtime API, its name and
/// memory, JSON logs at DEBUG.
pub fn as_lambda<'c>(
    command: &'c mut std::process::Command,
    runtime: &str,
    name: &str,
) -> &'c mut std::process::Command {
    command
        .env("AWS_LAMBDA_RUNTIME_API", runtime)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "DEBUG")
}

/// The function's next `n` answers (`response` or `error`, and the body), a minute for each.
pub async fn next_answers(
    answers: &mut mpsc::UnboundedReceiver<(String, Value)>,
    n: usize,
) -> Vec<(String, Value)> {
    let mut received = Vec::new();
    for _ in 0..n {
        let answer = tokio::time::timeout(Duration::from_secs(60), answers.recv())
            .await
            .expect("the function answers")
            .expect("the stand-in is up");
        received.push(answer);
    }
    received
}

/// Hands out `invocations` (payload, seconds until the deadline) one per `next`, then never
/// answers `next` again; sends every response or error body to the test.
pub async fn runtime_api(
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
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:under-test\r\n\r\n{body}",
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
