//! One fake for the notifier's providers on loopback ([`FakeProvider`]), playing either's
//! public API contract ([`Provider`]):
//!
//! - Resend: `POST /emails` as Resend documents it: `Authorization: Bearer` (401
//!   `missing_api_key`, 403 `invalid_api_key`), a `User-Agent` (403 without one), the `from`,
//!   `to`, `subject` and `html` fields (422 `validation_error`), `200 {"id"}`, and
//!   `Idempotency-Key` (1-256 characters, else 400 `invalid_idempotency_key`): the same key
//!   with the same body within the window answers the first response without sending again;
//!   with another body 409 `invalid_idempotent_request`; while the first is in flight 409
//!   `concurrent_idempotent_requests`. Error bodies are `{"statusCode", "name", "message"}`.
//! - Slack: an incoming webhook, `POST /services/T…/B…/…` with `{"text"}`: `200 ok`;
//!   another path 404 `no_service`; no text 400 `no_text`.
//!
//! Failures are injected per request, in order: any status (with the provider's error body
//! for it), 429 with or without `Retry-After`, or a slow answer.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// The Resend key the fake accepts (a test value in Resend's `re_` format).
pub const RESEND_KEY: &str = "re_FaKeTeStKeY_9f8e7d6c5b4a3210ZyXwVuTs";
/// The Slack webhook path the fake accepts: the part of the URL that is the credential.
pub const SLACK_PATH: &str = "/services/T0FAKE000/B0FAKE000/FaKeSlAcKhOoKsEcReT0123";

/// One request as a fake received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// When the whole request had arrived.
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// An answer to send back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    pub body: String,
    pub delay: Duration,
}

/// An injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// This status, with the provider's error body for it.
    Status(u16),
    /// 429, with `Retry-After: {secs}` when given.
    TooManyRequests(Option<u64>),
    /// The normal answer, after this long.
    Slow(Duration),
}

/// A plain HTTP/1.1 server on an ephemeral loopback port (keep-alive included), answering
/// each request with `answer`.
pub(crate) struct Loopback {
    pub(crate) url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Loopback {
    /// Serves `answer` on an ephemeral loopback port until dropped.
    pub(crate) async fn start<F, Fut>(answer: F) -> Self
    where
        F: Fn(Received) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let answer = Arc::new(answer);
        let server = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(serve(stream, Arc::clone(&answer)));
                while connections.try_join_next().is_some() {}
            }
        });
        Self { url, server }
    }
}

async fn serve<F, Fut>(mut stream: TcpStream, answer: Arc<F>)
where
    F: Fn(Received) -> Fut,
    Fut: Future<Output = Answer>,
{
    let mut buffer = Vec::new();
    while let Ok(Some(message)) = super::http::read_message(&mut stream, &mut buffer).await {
        let head_end = message
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(message.len());
        let head = String::from_utf8_lossy(&message[..head_end]).into_owned();
        let body = message.get(head_end + 4..).unwrap_or_default().to_vec();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_owned();
        let path = first.next().unwrap_or("/").to_owned();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let reply = answer(Received {
            method,
            path,
            headers,
            body,
            at: Instant::now(),
        })
        .await;
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        let mut head = format!(
            "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
            reply.status,
            reply.content_type,
            reply.body.len()
        );
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(reply.body.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

fn json_answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        content_type: "application/json",
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

/// Resend's error body.
fn resend_error(status: u16, name: &str, message: &str) -> Answer {
    json_answer(
        status,
        json!({"statusCode": status, "name": name, "message": message}),
    )
}

/// Which provider a fake plays: what it accepts, what its refusals look like, whether it keeps
/// idempotency keys. Everything else (faults, the record of requests) is the same for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Resend's `POST /emails`: bearer key, `User-Agent`, `Idempotency-Key`, JSON errors.
    Resend,
    /// A Slack incoming webhook at [`SLACK_PATH`]: the URL is the credential, plain-text codes.
    Slack,
}

impl Provider {
    /// The answer to a request this provider refuses before looking at faults, if it does.
    fn refusal(self, request: &Received) -> Option<Answer> {
        match self {
            Self::Resend => resend_refusal(request),
            Self::Slack => slack_refusal(request),
        }
    }

    /// An injected status, with this provider's body for it.
    fn error(self, status: u16) -> Answer {
        match self {
            Self::Resend => {
                let name = match status {
                    400 | 422 => "validation_error",
                    401 => "missing_api_key",
                    403 => "invalid_api_key",
                    _ => "internal_server_error",
                };
                resend_error(status, name, "Injected failure.")
            }
            Self::Slack => {
                let code = match status {
                    404 => "channel_not_found",
                    410 => "channel_is_archived",
                    403 => "action_prohibited",
                    400 => "invalid_payload",
                    _ => "internal_error",
                };
                slack_text(status, code)
            }
        }
    }

    fn rate_limited(self) -> Answer {
        match self {
            Self::Resend => resend_error(429, "rate_limit_exceeded", "Too many requests."),
            Self::Slack => slack_text(429, "rate_limited"),
        }
    }

    /// The answer to the `n`th request it takes.
    fn accepted(self, n: usize) -> Answer {
        match self {
            Self::Resend => json_answer(
                200,
                json!({ "id": format!("4ef9a417-02e9-4d39-ad75-{n:012}") }),
            ),
            Self::Slack => slack_text(200, "ok"),
        }
    }
}

#[derive(Default)]
struct State {
    faults: VecDeque<Fault>,
    received: Vec<Received>,
    /// What the provider took (emails sent, messages posted): request bodies, in order.
    accepted: Vec<Value>,
    /// Resend: idempotency key -> (the body it was first used with, its answer, or `None`
    /// while in flight).
    keys: HashMap<String, (Vec<u8>, Option<Answer>)>,
}

/// A provider's fake on a loopback port: Resend's or Slack's public contract, with
/// injectable failures.
pub struct FakeProvider {
    /// Where to send: Resend's base URL, or Slack's whole webhook URL (it holds the
    /// credential).
    pub url: String,
    state: Arc<Mutex<State>>,
    _server: Loopback,
}

impl FakeProvider {
    pub async fn start(provider: Provider) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let server =
            Loopback::start(move |request| answer(provider, Arc::clone(&shared), request)).await;
        let url = match provider {
            Provider::Resend => server.url.clone(),
            Provider::Slack => format!("{}{SLACK_PATH}", server.url),
        };
        Self {
            url,
            state,
            _server: server,
        }
    }

    /// The next requests get these failures, one each, in order.
    pub fn inject(&self, faults: &[Fault]) {
        self.state
            .lock()
            .unwrap()
            .faults
            .extend(faults.iter().copied());
    }

    /// What the provider took (the emails sent, the messages posted), in order.
    pub fn accepted(&self) -> Vec<Value> {
        self.state.lock().unwrap().accepted.clone()
    }

    /// Every request received, whatever its answer.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

/// One request: recorded, checked as the provider checks it, then a fault if one is
/// injected; Resend's idempotency keys; then taken.
async fn answer(provider: Provider, state: Arc<Mutex<State>>, request: Received) -> Answer {
    state.lock().unwrap().received.push(request.clone());
    if let Some(refusal) = provider.refusal(&request) {
        return refusal;
    }
    let fault = state.lock().unwrap().faults.pop_front();
    let mut delay = Duration::ZERO;
    match fault {
        Some(Fault::Status(status)) => return provider.error(status),
        Some(Fault::TooManyRequests(after)) => {
            let mut answer = provider.rate_limited();
            if let Some(secs) = after {
                answer.headers.push(("retry-after", secs.to_string()));
            }
            return answer;
        }
        Some(Fault::Slow(by)) => delay = by,
        None => {}
    }
    let body = request.json();
    if provider == Provider::Slack {
        // Slack posts at once and answers late.
        let mut state = state.lock().unwrap();
        state.accepted.push(body);
        return Answer {
            delay,
            ..provider.accepted(state.accepted.len())
        };
    }
    let key = request.header("idempotency-key").map(str::to_owned);
    if let Some(key) = &key {
        let mut state = state.lock().unwrap();
        match state.keys.get(key) {
            Some((first, _)) if *first != request.body => {
                return resend_error(
                    409,
                    "invalid_idempotent_request",
                    "Same idempotency key, another payload.",
                );
            }
            Some((_, None)) => {
                return resend_error(
                    409,
                    "concurrent_idempotent_requests",
                    "The first request is still in progress.",
                );
            }
            Some((_, Some(answer))) => return answer.clone(),
            None => {
                state.keys.insert(key.clone(), (request.body.clone(), None));
            }
        }
    }
    // A slow answer: the first request holds its key meanwhile, and the email is sent even
    // when the client has given up waiting.
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut state = state.lock().unwrap();
    state.accepted.push(body);
    let answer = provider.accepted(state.accepted.len());
    if let Some(key) = &key {
        state
            .keys
            .insert(key.clone(), (request.body.clone(), Some(answer.clone())));
    }
    answer
}

/// What Resend refuses whatever else happens: another endpoint, no `User-Agent`, a missing or
/// wrong key, an invalid email, an idempotency key out of bounds.
fn resend_refusal(request: &Received) -> Option<Answer> {
    if request.method != "POST" || request.path != "/emails" {
        return Some(resend_error(
            404,
            "not_found",
            "The requested endpoint does not exist.",
        ));
    }
    if request.header("user-agent").is_none_or(str::is_empty) {
        return Some(resend_error(
            403,
            "invalid_access",
            "A User-Agent header is required.",
        ));
    }
    match request.header("authorization") {
        None => {
            return Some(resend_error(
                401,
                "missing_api_key",
                "Missing API key in the authorization header.",
            ))
        }
        Some(value) if value != format!("Bearer {RESEND_KEY}") => {
            return Some(resend_error(403, "invalid_api_key", "API key is invalid."))
        }
        Some(_) => {}
    }
    let body = request.json();
    let text = |field: &str| body[field].as_str().is_some_and(|s| !s.is_empty());
    let to_ok = match &body["to"] {
        Value::String(to) => to.contains('@'),
        Value::Array(to) => {
            (1..=50).contains(&to.len())
                && to
                    .iter()
                    .all(|a| a.as_str().is_some_and(|a| a.contains('@')))
        }
        _ => false,
    };
    if !(text("from") && text("subject") && (text("html") || text("text")) && to_ok) {
        return Some(resend_error(
            422,
            "validation_error",
            "Invalid `to` field or a missing required field.",
        ));
    }
    match request.header("idempotency-key") {
        Some(key) if !(1..=256).contains(&key.len()) => Some(resend_error(
            400,
            "invalid_idempotency_key",
            "The key must be between 1-256 chars.",
        )),
        _ => None,
    }
}

/// What a Slack webhook refuses: another path, a body that is not an object with text.
fn slack_refusal(request: &Received) -> Option<Answer> {
    if request.method != "POST" || request.path != SLACK_PATH {
        return Some(slack_text(404, "no_service"));
    }
    let body = request.json();
    if !body.is_object() {
        return Some(slack_text(400, "invalid_payload"));
    }
    if body["text"].as_str().is_none_or(str::is_empty) {
        return Some(slack_text(400, "no_text"));
    }
    None
}

fn slack_text(status: u16, code: &str) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        content_type: "text/html",
        body: code.to_owned(),
        delay: Duration::ZERO,
    }
}
