//! A fault-injecting HTTP/1.1 proxy in front of DynamoDB Local.
//!
//! It reads each request the SDK sends, then at a configured rate (the same for every request,
//! decided by a seeded generator) does one of the [`Fault`]s instead of a clean round trip.
//! The `*After` faults forward the request first, so DynamoDB applies it while the client sees
//! a failure: the case that makes a retried write meet its own earlier success.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::http::read_message;
use super::rng::Rng;

/// What the proxy does to a request instead of a clean round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Reset the client's connection; DynamoDB never sees the request.
    ResetBefore,
    /// Forward, let DynamoDB answer, then reset the client's connection.
    ResetAfter,
    /// Hold the request past the SDK's attempt timeout, then close; never forwarded.
    StallBefore,
    /// Forward, then hold DynamoDB's answer past the SDK's attempt timeout and close.
    StallAfter,
    /// Answer `ThrottlingException` without forwarding.
    ThrottleBefore,
    /// Forward, then answer `ThrottlingException` instead of DynamoDB's answer.
    ThrottleAfter,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::ResetBefore,
        Fault::ResetAfter,
        Fault::StallBefore,
        Fault::StallAfter,
        Fault::ThrottleBefore,
        Fault::ThrottleAfter,
    ];

    fn forwards_first(self) -> bool {
        matches!(
            self,
            Fault::ResetAfter | Fault::StallAfter | Fault::ThrottleAfter
        )
    }
}

/// How many requests the proxy saw, and what it did to them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProxyCounts {
    pub requests: u64,
    pub forwarded: u64,
    /// Indexed like [`Fault::ALL`].
    pub faults: [u64; 6],
}

impl ProxyCounts {
    pub fn faults_total(&self) -> u64 {
        self.faults.iter().sum()
    }
}

struct Shared {
    upstream: SocketAddr,
    rate: f64,
    faults: Vec<Fault>,
    stall: Duration,
    rng: Mutex<Rng>,
    requests: AtomicU64,
    forwarded: AtomicU64,
    faults_seen: [AtomicU64; 6],
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

pub struct ProxyConfig {
    /// The fraction of requests that get a fault, 0.0 to 1.0.
    pub rate: f64,
    /// The faults to choose from, uniformly.
    pub faults: Vec<Fault>,
    /// How long a stall holds a request: longer than the SDK's 2 s attempt timeout.
    pub stall: Duration,
    pub seed: u64,
}

impl ProxyConfig {
    pub fn clean() -> Self {
        Self {
            rate: 0.0,
            faults: Fault::ALL.to_vec(),
            stall: Duration::from_millis(2_500),
            seed: 1,
        }
    }
}

impl FaultProxy {
    /// Listens on `listen` (port 0 for any) and forwards to `upstream`.
    pub async fn start(listen: SocketAddr, upstream: SocketAddr, config: ProxyConfig) -> Self {
        let listener = TcpListener::bind(listen)
            .await
            .expect("bind the fault proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream,
            rate: config.rate,
            faults: config.faults,
            stall: config.stall,
            rng: Mutex::new(Rng::new(config.seed)),
            requests: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            faults_seen: Default::default(),
        });
        let state = shared.clone();
        let accept_loop = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = serve(client, &state).await;
                });
            }
        });
        Self {
            addr,
            shared,
            accept_loop,
        }
    }

    /// `http://…` for the SDK's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn counts(&self) -> ProxyCounts {
        let s = &self.shared;
        ProxyCounts {
            requests: s.requests.load(Ordering::Relaxed),
            forwarded: s.forwarded.load(Ordering::Relaxed),
            faults: std::array::from_fn(|i| s.faults_seen[i].load(Ordering::Relaxed)),
        }
    }
}

/// The address DynamoDB Local listens on, from `AWS_ENDPOINT_URL_DYNAMODB`.
pub fn dynamodb_local_addr() -> SocketAddr {
    let endpoint = super::endpoint();
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .replace("localhost", "127.0.0.1");
    host.parse()
        .unwrap_or_else(|e| panic!("{endpoint} is not http://ip:port: {e}"))
}

impl Shared {
    fn choose(&self) -> Option<Fault> {
        let mut rng = self.rng.lock().unwrap();
        if self.faults.is_empty() || !rng.chance(self.rate) {
            return None;
        }
        Some(self.faults[rng.below(self.faults.len() as u64) as usize])
    }

    fn count(&self, fault: Fault) {
        let i = Fault::ALL.iter().position(|f| *f == fault).unwrap();
        self.faults_seen[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// One client connection: requests in, one at a time (HTTP/1.1 keep-alive, no pipelining).
async fn serve(mut client: TcpStream, state: &Shared) -> std::io::Result<()> {
    let mut upstream: Option<TcpStream> = None;
    let mut from_client = Vec::new();
    let mut from_upstream = Vec::new();
    loop {
        let Some(request) = read_message(&mut client, &mut from_client).await? else {
            return Ok(());
        };
        state.requests.fetch_add(1, Ordering::Relaxed);
        let fault = state.choose();
        if let Some(fault) = fault {
            state.count(fault);
        }
        let response = if fault.is_none_or(Fault::forwards_first) {
            let server = match upstream.as_mut() {
                Some(server) => server,
                None => upstream.insert(TcpStream::connect(state.upstream).await?),
            };
            server.write_all(&request).await?;
            let Some(response) = read_message(server, &mut from_upstream).await? else {
                return Ok(());
            };
            state.forwarded.fetch_add(1, Ordering::Relaxed);
            Some(response)
        } else {
            None
        };
        match fault {
            None => client.write_all(&response.unwrap()).await?,
            Some(Fault::ResetBefore | Fault::ResetAfter) => {
                reset(client);
                return Ok(());
            }
            Some(Fault::StallBefore | Fault::StallAfter) => {
                tokio::time::sleep(state.stall).await;
                return Ok(());
            }
            Some(Fault::ThrottleBefore | Fault::ThrottleAfter) => {
                client.write_all(throttled_response().as_bytes()).await?
            }
        }
    }
}

/// DynamoDB's answer when it throttles, as the SDK parses it.
pub fn throttled_response() -> String {
    let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#;
    format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Closes with RST rather than FIN: linger 0 makes the kernel drop the connection at once.
fn reset(stream: TcpStream) {
    #[allow(deprecated)] // linger 0 never blocks, which is the concern behind the deprecation
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}
