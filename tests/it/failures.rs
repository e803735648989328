//! Every way DynamoDB can fail answers 503 `{"status": "retry"}` (Svix retries) and leaves
//! the table as it was.

use std::time::{Duration, Instant};

use crate::helpers::fault_proxy::{dynamodb_local_addr, Fault, FaultProxy, ProxyConfig};
use crate::helpers::*;
use lambda_http::http::StatusCode;
use serde_json::json;
use std::net::SocketAddr;

const USER: &str = "user_2NNEqL2nrIRdJ194ndJqAHwEfxC";
const T0: i64 = 1_716_883_200_000;

fn body() -> Vec<u8> {
    envelope("user.created", T0, user(USER, T0, "Lovelace"))
}

async fn assert_retry(endpoint: &str) -> Duration {
    let h = handler_for(endpoint, "clerk-webhooks");
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

/// A proxy in front of DynamoDB Local that does `fault` to every request.
async fn always(fault: Fault) -> FaultProxy {
    let config = ProxyConfig {
        rate: 1.0,
        faults: vec![fault],
        // Longer than the whole 6 s operation timeout: this DynamoDB never answers.
        stall: Duration::from_secs(30),
        ..ProxyConfig::clean()
    };
    FaultProxy::start(any_port(), dynamodb_local_addr(), config).await
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn dynamodb_that_never_answers_is_503_before_svix_gives_up() {
    let proxy = always(Fault::StallBefore).await;
    let took = assert_retry(&proxy.endpoint()).await;
    assert!(
        took >= Duration::from_secs(2),
        "gave up after {took:?}, before one attempt timed out"
    );
}

#[tokio::test]
async fn dynamodb_throttling_is_503_after_the_sdk_retries() {
    let proxy = always(Fault::ThrottleBefore).await;
    assert_retry(&proxy.endpoint()).await;
    let counts = proxy.counts();
    assert!(counts.requests >= 2, "the SDK did not retry: {counts:?}");
    assert_eq!(counts.forwarded, 0);
}

/// The function starts while DynamoDB is unreachable: init completes, requests answer 503
/// quickly, and once DynamoDB is back the same instance applies the retry, with no restart.
#[tokio::test]
async fn dynamodb_unreachable_at_start_then_back_recovers_without_a_restart() {
    // What matters is an answer inside Svix's 15 s, not a figure: on a loaded 2-core machine
    // the SDK's back-off between refused connections once took 5.3 s here.
    const WELL_INSIDE_SVIX: Duration = Duration::from_secs(10);
    let app = TestApp::spawn().await;
    let port = std::net::TcpListener::bind(any_port())
        .unwrap()
        .local_addr()
        .unwrap(); // released at once: connections to it are refused
                   // The app's handler talks to DynamoDB Local; this one, on the same table, to the port.
    let h = handler_for(&format!("http://{port}"), &app.table);

    let started = Instant::now();
    h.warm_up().await;
    assert!(
        started.elapsed() < WELL_INSIDE_SVIX,
        "init waited {:?} for an unreachable DynamoDB",
        started.elapsed()
    );
    let (body, id) = (body(), msg_id());
    let reply = send(&h, signed(&body, &id)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        started.elapsed() < WELL_INSIDE_SVIX,
        "a refused connection took {:?} to answer",
        started.elapsed()
    );
    assert!(app.scan().await.is_empty());

    // DynamoDB comes back at the same address.
    let _proxy = FaultProxy::start(port, dynamodb_local_addr(), ProxyConfig::clean()).await;
    assert_eq!(deliver(&h, &body, &id).await, "applied");
    assert!(app.get(&format!("USER#{USER}"), "PROFILE").await.is_some());
}

#[tokio::test]
async fn a_transaction_dynamodb_rejects_applies_nothing_not_even_the_event_record() {
    let app = TestApp::spawn().await;
    app.deliver(&body(), &msg_id()).await;
    let before = app.scan().await;

    // A newer update whose `data` is over DynamoDB's 400 KB limit even compressed (600 KB of
    // random text, inside the 1 MiB body limit): the whole transaction is refused, for good.
    let mut rng = crate::helpers::rng::Rng::new(20);
    let noise: String = (0..600 * 1024)
        .map(|_| char::from(b'!' + rng.below(90) as u8))
        .collect();
    let mut huge = user(USER, T0 + 1_000, "King");
    huge["private_metadata"] = json!({ "blob": noise });
    let huge = envelope("user.updated", T0 + 1_005, huge);
    let id = msg_id();
    let reply = app.send(signed(&huge, &id)).await;
    // Not `store_unavailable`: no retry can fix it, and the operator must be told apart.
    assert_eq!(
        (reply.status, reply.body["error"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("store_rejected")),
        "{}",
        reply.body
    );
    assert_eq!(app.scan().await, before, "the table changed");
    // The retry is not mistaken for a duplicate: no event record was written.
    let reply = app.send(signed(&huge, &id)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn a_table_that_does_not_exist_is_503_not_a_crash() {
    let h = handler_for(&endpoint(), "no-such-table");
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
