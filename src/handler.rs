//! The HTTP entrypoint: function-URL event -> request -> verify -> decode -> plan -> store ->
//! response.
//!
//! Every status code is chosen in one place, [`Rejection::status`], for what it makes Svix do:
//! 2xx = never send this again; anything else = retry later.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::config::Config;
use crate::env::ConfigError;
use crate::event::{self, DecodeError, Event};
use crate::function_url::{self, EventError, FunctionUrlRequest};
use crate::metrics::{self, WebhookOutcome};
use crate::plan::{plan, LeftOut, Plan};
use crate::store::{Outcome, Store, StoreError};
use crate::verify::{SignatureHeaders, VerifyError};

/// Clerk payloads are a few KiB; anything this big is not one. Checked before any HMAC work.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The whole DynamoDB part of a request, cascades included, must end well inside Svix's 15 s
/// (and the function's timeout): past this it answers 503 and Svix retries.
const STORE_BUDGET: Duration = Duration::from_secs(8);

/// Why a request was not applied.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("method {0} is not allowed; webhooks are POSTed")]
    MethodNotAllowed(String),
    #[error("body is {0} bytes; the limit is {MAX_BODY_BYTES}")]
    PayloadTooLarge(usize),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("DynamoDB did not finish within {} s", STORE_BUDGET.as_secs())]
    StoreTimeout,
    /// `CLERK_INSTANCE_ID` is set and the verified event names another instance (or none).
    #[error("the event comes from {0}, not the instance CLERK_INSTANCE_ID names")]
    WrongInstance(String),
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            // 500 so Svix keeps retrying while the operator fixes the configuration.
            Self::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::MethodNotAllowed(_) | Self::Event(EventError::Method) => {
                StatusCode::METHOD_NOT_ALLOWED
            }
            Self::Event(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Verify(e) if e.is_malformed() => StatusCode::BAD_REQUEST,
            Self::Verify(_) => StatusCode::UNAUTHORIZED,
            Self::Decode(_) => StatusCode::BAD_REQUEST,
            // Signed by our endpoint's secret, but this function keeps another instance's
            // table: refused, whoever asks again.
            Self::WrongInstance(_) => StatusCode::FORBIDDEN,
            // DynamoDB refused the write as invalid: a bug of ours that no retry fixes. 500, so
            // Svix keeps the message (and retries it) while the fix is deployed.
            Self::Store(e) if e.is_permanent() => StatusCode::INTERNAL_SERVER_ERROR,
            // Transient: nothing was applied and a retry can succeed.
            Self::Store(_) | Self::StoreTimeout => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The machine-readable `error` of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "configuration_error",
            Self::MethodNotAllowed(_) | Self::Event(EventError::Method) => "method_not_allowed",
            Self::Event(EventError::BodyEncoding(_)) => "invalid_body_encoding",
            Self::Event(EventError::HeaderName | EventError::HeaderValue(_)) => "invalid_header",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::Verify(VerifyError::MissingHeader(_)) => "missing_header",
            Self::Verify(VerifyError::InvalidHeader(_) | VerifyError::InvalidTimestamp(_)) => {
                "invalid_header"
            }
            Self::Verify(VerifyError::TimestampOutOfTolerance) => "timestamp_out_of_tolerance",
            Self::Verify(VerifyError::NoMatchingSignature) => "invalid_signature",
            Self::Decode(DecodeError::InvalidJson(_)) => "invalid_json",
            Self::Decode(DecodeError::InvalidEnvelope(_)) => "invalid_envelope",
            Self::Decode(DecodeError::InvalidPayload { .. }) => "invalid_payload",
            Self::Store(e) if e.is_permanent() => "store_rejected",
            Self::Store(_) | Self::StoreTimeout => "store_unavailable",
            Self::WrongInstance(_) => "wrong_instance",
        }
    }
}

/// The result of a request that was accepted (200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Stored(Outcome),
    /// A type we do not sync, including types Clerk adds later.
    Ignored,
}

impl Accepted {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored(outcome) => outcome.as_str(),
            Self::Ignored => "ignored",
        }
    }
}

/// What a verified request was about, for the log line and the metrics.
#[derive(Debug, Default)]
pub struct RequestFacts {
    pub svix_id: Option<String>,
    pub event_type: Option<String>,
    /// The fields whose id lacks its usual prefix ([`Event::unexpected_prefixes`]).
    pub unexpected_prefixes: Vec<&'static str>,
    /// The top-level attributes left out of the items ([`Plan::left_out`]).
    pub left_out: Vec<LeftOut>,
}

/// Shared state, built once at init and borrowed by every request.
pub struct Handler {
    ready: Result<(Config, Store), ConfigError>,
}

impl Handler {
    /// A handler that still answers (500, naming the variable) when the configuration is
    /// invalid, instead of crash-looping the function.
    pub fn new(config: Result<Config, ConfigError>, client: aws_sdk_dynamodb::Client) -> Self {
        let ready = config.map(|config| {
            let store = Store::new(client, config.table_name.clone());
            (config, store)
        });
        Self { ready }
    }

    /// Opens the DynamoDB connection during init, so the first webhook after a cold start does
    /// not pay for it (unless `DYNAMODB_WARM_UP=false`). A failure is only logged: requests will
    /// connect on their own.
    pub async fn warm_up(&self) {
        let Ok((config, store)) = &self.ready else {
            return;
        };
        if !config.warm_up {
            return;
        }
        let started = Instant::now();
        match store.warm_up().await {
            Ok(()) => tracing::info!(
                duration_ms = started.elapsed().as_millis() as u64,
                "DynamoDB connection warmed up"
            ),
            Err(error) => {
                tracing::warn!(%error, "DynamoDB warm-up failed; the first request will connect")
            }
        }
    }

    /// What `main` runs for every invocation: the function-URL event in, the function-URL
    /// response out. A malformed event is refused like any other bad request: one log line,
    /// one metric, a JSON answer.
    pub async fn invoke(&self, event: FunctionUrlRequest) -> ApiGatewayV2httpResponse {
        self.invoke_at(event, SystemTime::now()).await
    }

    /// As [`Handler::invoke`], with the clock passed in (tests and benchmarks).
    pub async fn invoke_at(
        &self,
        event: FunctionUrlRequest,
        now: SystemTime,
    ) -> ApiGatewayV2httpResponse {
        let started = Instant::now();
        let request = event.into_request().map_err(Rejection::from);
        function_url::response(self.respond(started, request, now).await)
    }

    async fn respond(
        &self,
        started: Instant,
        request: Result<Request, Rejection>,
        now: SystemTime,
    ) -> Response<Body> {
        let mut facts = RequestFacts::default();
        let result = match request {
            Ok(request) => self.process(&request, now, &mut facts).await,
            Err(rejection) => Err(rejection),
        };
        let duration_ms = started.elapsed().as_micros() as f64 / 1000.0;
        self.emit_metrics(&result, &facts, duration_ms, now);
        let svix_id = facts.svix_id.as_deref().unwrap_or("-");
        let event_type = facts.event_type.as_deref().unwrap_or("-");
        if !facts.unexpected_prefixes.is_empty() {
            // Field names only: the ids themselves are not logged here.
            let fields = facts.unexpected_prefixes.join(",");
            tracing::warn!(
                svix_id,
                r#type = event_type,
                fields,
                "ids without the prefix Clerk usually gives them; not refused for it"
            );
        }
        if !facts.left_out.is_empty() {
            // Field names and the rule each broke: never the values.
            let fields = facts
                .left_out
                .iter()
                .map(|l| format!("{}:{}", l.field, l.why.as_str()))
                .collect::<Vec<_>>()
                .join(",");
            tracing::warn!(
                svix_id,
                r#type = event_type,
                fields,
                "values DynamoDB cannot hold natively left out of the top-level attributes; kept in data"
            );
        }
        match result {
            Ok(accepted) => {
                tracing::info!(
                    svix_id,
                    r#type = event_type,
                    outcome = accepted.as_str(),
                    status = 200,
                    duration_ms,
                    "webhook accepted"
                );
                json_response(StatusCode::OK, json!({"status": accepted.as_str()}))
            }
            Err(rejection) => {
                let status = rejection.status();
                let code = rejection.code();
                let message = rejection.to_string();
                if status.is_server_error() {
                    tracing::error!(svix_id, r#type = event_type, outcome = "retry",
                        status = status.as_u16(), error = code, reason = %message, duration_ms,
                        "webhook not applied");
                    let body = json!({"status": "retry", "error": code, "message": message});
                    json_response(status, body)
                } else {
                    tracing::warn!(svix_id, r#type = event_type, outcome = "rejected",
                        status = status.as_u16(), error = code, reason = %message, duration_ms,
                        "webhook refused");
                    let mut response =
                        json_response(status, json!({"error": code, "message": message}));
                    if status == StatusCode::METHOD_NOT_ALLOWED {
                        response
                            .headers_mut()
                            .insert(header::ALLOW, "POST".parse().unwrap());
                    }
                    response
                }
            }
        }
    }

    fn emit_metrics(
        &self,
        result: &Result<Accepted, Rejection>,
        facts: &RequestFacts,
        duration_ms: f64,
        now: SystemTime,
    ) {
        let outcome = match result {
            Ok(Accepted::Stored(Outcome::Applied)) => WebhookOutcome::Applied,
            Ok(Accepted::Stored(Outcome::Duplicate)) => WebhookOutcome::Duplicate,
            Ok(Accepted::Stored(Outcome::Stale)) => WebhookOutcome::Stale,
            Ok(Accepted::Ignored) => WebhookOutcome::Ignored,
            Err(Rejection::Store(e)) if e.is_permanent() => WebhookOutcome::StoreRejected,
            // Svix retries every non-2xx; 5xx are the ones a retry can fix.
            Err(r) if r.status().is_server_error() => WebhookOutcome::Retry,
            Err(_) => WebhookOutcome::Rejected,
        };
        let namespace = match &self.ready {
            Ok((config, _)) => config.metrics_namespace.as_str(),
            Err(_) => metrics::DEFAULT_NAMESPACE,
        };
        let timestamp_ms = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        let family = facts.event_type.as_deref().map(event::family);
        metrics::emit(
            namespace,
            &metrics::RequestMetrics {
                family,
                outcome,
                unexpected_id_prefixes: facts.unexpected_prefixes.len(),
                attributes_left_out: facts.left_out.len(),
                duration_ms,
                timestamp_ms,
            },
        );
    }

    async fn process(
        &self,
        request: &Request,
        now: SystemTime,
        facts: &mut RequestFacts,
    ) -> Result<Accepted, Rejection> {
        let (config, store) = self.ready.as_ref().map_err(|e| e.clone())?;
        let Some(plan) = prepare(config, request, now, facts)? else {
            return Ok(Accepted::Ignored);
        };
        let outcome = tokio::time::timeout(STORE_BUDGET, store.apply(&plan))
            .await
            .map_err(|_| Rejection::StoreTimeout)??;
        Ok(Accepted::Stored(outcome))
    }
}

/// Everything a request needs before DynamoDB: method, size, signature, decoding and the plan
/// (`None` for a type we do not sync). Pure, so it is tested and benchmarked without a network.
pub fn prepare(
    config: &Config,
    request: &Request,
    now: SystemTime,
    facts: &mut RequestFacts,
) -> Result<Option<Plan>, Rejection> {
    if request.method() != Method::POST {
        return Err(Rejection::MethodNotAllowed(request.method().to_string()));
    }
    // lambda_http has already decoded an `isBase64Encoded` body: these are the raw bytes.
    let body: &[u8] = request.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(Rejection::PayloadTooLarge(body.len()));
    }
    let headers = SignatureHeaders::from_headers(request.headers())?;
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let svix_id = config
        .verifier
        .verify(&headers, body, now.as_secs() as i64)?;
    // Only a verified id is logged: before that it is anyone's input.
    facts.svix_id = Some(svix_id.to_owned());
    // Verified, so an integer: the event's time when the envelope has no `timestamp`.
    let signed_at_ms = headers
        .timestamp
        .parse::<i64>()
        .unwrap_or(0)
        .saturating_mul(1000);
    let event = Event::decode(body, signed_at_ms)?;
    facts.event_type = Some(event.event_type.clone());
    facts.unexpected_prefixes = event.unexpected_prefixes.clone();
    if let Some(pinned) = &config.instance_id {
        if event.instance_id.as_ref() != Some(pinned) {
            // An instance id is no secret and no personal data; anything else is not shown.
            let from = match event.instance_id.as_deref() {
                Some(id) if crate::event::is_key_safe(id) => format!("instance {id}"),
                Some(_) => "an instance_id that is not an id".to_owned(),
                None => "no instance (no instance_id)".to_owned(),
            };
            return Err(Rejection::WrongInstance(from));
        }
    }
    let plan = plan(&event, svix_id, &config.settings, now.as_millis() as i64);
    if let Some(plan) = &plan {
        facts.left_out = plan.left_out.clone();
    }
    Ok(plan)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("static parts are valid")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::function_url::tests::event;

    #[test]
    fn flaws_that_lambda_http_panics_or_fails_on_are_rejections() {
        let cases: Vec<(FunctionUrlRequest, StatusCode, &str)> = vec![
            (
                event(|e| e["body"] = json!("not base64!")),
                StatusCode::BAD_REQUEST,
                "invalid_body_encoding",
            ),
            (
                event(|e| e["body"] = json!("eyJhIjoxfQ")), // unpadded
                StatusCode::BAD_REQUEST,
                "invalid_body_encoding",
            ),
            (
                event(|e| e["headers"]["svix-id"] = json!("msg_1\u{1}")),
                StatusCode::BAD_REQUEST,
                "invalid_header",
            ),
            (
                event(|e| e["headers"]["bad name"] = json!("x")),
                StatusCode::BAD_REQUEST,
                "invalid_header",
            ),
            (
                event(|e| e["requestContext"]["http"]["method"] = json!("PO ST")),
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            ),
        ];
        for (event, status, code) in cases {
            let rejection = Rejection::from(event.into_request().unwrap_err());
            assert_eq!(
                (rejection.status(), rejection.code()),
                (status, code),
                "{rejection}"
            );
        }
        // The message names the header, never its value.
        let err = event(|e| e["headers"]["svix-id"] = json!("secret\u{1}"))
            .into_request()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "header svix-id has a value that HTTP does not allow"
        );
    }
}
