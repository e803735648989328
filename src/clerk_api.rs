//! A small client for the list endpoints of Clerk's Backend API that the backfill reads.
//!
//! What the real API needs from a long-running reader:
//! - the secret key as a bearer token, never printed (not by `Debug`, not in errors or logs);
//! - a timeout on every request (connect, headers and body together);
//! - `429 Too Many Requests` waited out for as long as `Retry-After` says, without counting it
//!   as a failure;
//! - 5xx, timeouts and connection failures retried with jittered exponential back-off, up to
//!   a number of attempts; any other 4xx fails at once (retrying cannot fix it).
//!
//! HTTP is the project's one client ([`crate::http_client`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use http::{StatusCode, Uri};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::backoff;
use crate::env::{ConfigError, Env};
use crate::http_client;

pub(crate) const SECRET_KEY_VAR: &str = "CLERK_SECRET_KEY";
pub(crate) const API_URL_VAR: &str = "CLERK_API_URL";
/// Clerk's production Backend API; the `/v1/…` paths are appended to it.
pub(crate) const DEFAULT_API_URL: &str = "https://api.clerk.com";
/// The Backend API's largest `limit`.
pub(crate) const MAX_PAGE_SIZE: u32 = 500;
/// Far above a 500-object page (a user is a few KiB), far below what could hurt a Lambda.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Clerk's secret key (`sk_live_…` / `sk_test_…`). Neither `Debug` nor `Display` shows it; it
/// leaves this type only as the value of an `Authorization` header marked sensitive.
#[derive(Clone)]
pub struct SecretKey(Arc<str>);

impl SecretKey {
    /// Errors name the variable, never the value.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let value = value.trim();
        let invalid = |reason: &str| ConfigError::Invalid {
            var: SECRET_KEY_VAR,
            reason: reason.into(),
        };
        if !value.starts_with("sk_") {
            return Err(invalid(
                "expected a Clerk secret key (sk_live_… or sk_test_…), not a publishable key or a webhook secret",
            ));
        }
        if value.len() < 8 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("not a well-formed key"));
        }
        Ok(Self(value.into()))
    }

    fn bearer(&self) -> HeaderValue {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.0))
            .expect("parse() allows only visible ASCII");
        value.set_sensitive(true);
        value
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(redacted)")
    }
}

/// Where the Backend API is: `https://api.clerk.com` unless `CLERK_API_URL` says otherwise.
/// Plain `http://` is accepted for loopback only, so the key never crosses a network in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBase(String);

impl ApiBase {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::Invalid {
            var: API_URL_VAR,
            reason: reason.into(),
        };
        let uri: Uri = value.trim().parse().map_err(|_| invalid("not a URL"))?;
        let host = uri.host().ok_or_else(|| invalid("no host"))?;
        let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1");
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            Some("http") => return Err(invalid("plain http is only allowed on loopback")),
            _ => return Err(invalid("expected an https:// URL")),
        }
        if uri.query().is_some() {
            return Err(invalid("must not have a query"));
        }
        // Accept the API root with or without the version, as Clerk's SDKs and its OpenAPI
        // `servers` entry (`https://api.clerk.com/v1`) write it.
        let path = uri.path().trim_end_matches('/');
        let path = path.strip_suffix("/v1").unwrap_or(path);
        let authority = uri.authority().expect("a URL with a host has an authority");
        Ok(Self(format!(
            "{}://{authority}{path}",
            uri.scheme_str().expect("checked above")
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ApiBase {
    fn default() -> Self {
        Self(DEFAULT_API_URL.into())
    }
}

/// Where the Backend API is and the key to it, as every caller reads them: `CLERK_SECRET_KEY`
/// (required) and `CLERK_API_URL` (default: Clerk's).
pub fn settings<L: Fn(&str) -> Option<String>>(
    env: &Env<L>,
) -> Result<(ApiBase, SecretKey), ConfigError> {
    let key = SecretKey::parse(&env.require(SECRET_KEY_VAR)?)?;
    let base = match env.get(API_URL_VAR) {
        Some(url) => ApiBase::parse(&url)?,
        None => ApiBase::default(),
    };
    Ok((base, key))
}

/// Timeouts and retry limits. The defaults suit the real API; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// One request, from connecting to the last byte of the body.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Attempts per request when it fails (5xx, timeout, connection): the first try included.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Consecutive `429`s on one request before giving up. They are not failures, but a key
    /// that is throttled forever should still end the run.
    pub max_rate_limit_waits: u32,
    /// The longest `Retry-After` honoured as given; longer ones are cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_attempts: 8,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            max_rate_limit_waits: 100,
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// Running totals across all requests, read by the progress display.
#[derive(Debug, Default)]
pub(crate) struct ApiStats {
    pub requests: AtomicU64,
    /// `429`s waited out.
    pub rate_limited: AtomicU64,
    /// Failed attempts that were retried (5xx, timeouts, connection failures).
    pub retries: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Clerk refused {SECRET_KEY_VAR} ({status}): check the key and that it belongs to this instance")]
    Unauthorized { status: u16 },
    #[error("Clerk answered {status} to GET {path}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        status: u16,
        path: String,
        /// Clerk's machine-readable error code, never its message (which may quote input).
        code: Option<String>,
    },
    #[error("GET {path} still failing after {attempts} attempts: {last}")]
    GaveUp {
        path: String,
        attempts: u32,
        last: String,
    },
    #[error("GET {path} was rate-limited {waits} times in a row")]
    RateLimited { path: String, waits: u32 },
    /// The caller's deadline ([`ClerkApi::until`]) comes before the next attempt could:
    /// `retry_after` is what Clerk asked to wait, when it was rate limiting.
    #[error("GET {path} cannot finish within the caller's time budget{}", retry_after.map(|d| format!(" (Clerk asked to wait {} ms)", d.as_millis())).unwrap_or_default())]
    OutOfTime {
        path: String,
        retry_after: Option<Duration>,
    },
    #[error("unexpected answer to GET {path}: {reason}")]
    Unexpected { path: String, reason: String },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// One page of a list endpoint. Each object is its exact JSON text: no depth, number or key
/// that Clerk stores can fail the page.
#[derive(Debug, Clone)]
pub struct Page {
    pub objects: Vec<Box<RawValue>>,
    /// `total_count` where the endpoint returns one (organizations, memberships).
    pub total_count: Option<u64>,
}

#[derive(Clone)]
pub struct ClerkApi {
    http: reqwest::Client,
    base: ApiBase,
    key: SecretKey,
    policy: RetryPolicy,
    stats: Arc<ApiStats>,
    /// When set ([`ClerkApi::until`]), no wait or attempt runs past it.
    deadline: Option<tokio::time::Instant>,
}

impl fmt::Debug for ClerkApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClerkApi")
            .field("base", &self.base)
            .field("key", &self.key)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl ClerkApi {
    pub fn new(base: ApiBase, key: SecretKey, policy: RetryPolicy) -> Result<Self, ApiError> {
        let http = http_client::client(
            policy.connect_timeout,
            concat!("clerk-webhooks-backfill/", env!("CARGO_PKG_VERSION")),
        )
        .map_err(|e| ApiError::Tls(e.to_string()))?;
        Ok(Self {
            http,
            base,
            key,
            policy,
            stats: Arc::default(),
            deadline: None,
        })
    }

    /// This client for one caller who needs an answer by `deadline`: a `Retry-After` or a
    /// back-off that would end past it fails at once with [`ApiError::OutOfTime`] instead of
    /// sleeping, and no attempt outlives it. Shares the connections and the totals.
    pub fn until(&self, deadline: tokio::time::Instant) -> Self {
        Self {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// `Err(OutOfTime)` when waiting `wait` would end past the deadline.
    fn check_budget(&self, path: &str, wait: Duration, rate_limited: bool) -> Result<(), ApiError> {
        match self.deadline {
            Some(deadline) if tokio::time::Instant::now() + wait >= deadline => {
                Err(ApiError::OutOfTime {
                    path: path.into(),
                    retry_after: rate_limited.then_some(wait),
                })
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn stats(&self) -> &Arc<ApiStats> {
        &self.stats
    }

    /// `GET /v1/users`, oldest first, the page after the user `starting_after`.
    pub async fn users(&self, limit: u32, starting_after: Option<&str>) -> Result<Page, ApiError> {
        let body = self
            .get("/v1/users", &users_query(limit, starting_after))
            .await?;
        match serde_json::from_str(&body) {
            Ok(objects) => Ok(Page {
                objects,
                total_count: None,
            }),
            Err(_) => Err(unexpected("/v1/users", "not a JSON array")),
        }
    }

    /// `GET /v1/users/count`: how many users a full run will copy (for the progress bar).
    pub(crate) async fn user_count(&self) -> Result<u64, ApiError> {
        #[derive(Deserialize)]
        struct Count {
            total_count: u64,
        }
        let body = self.get("/v1/users/count", &[]).await?;
        serde_json::from_str::<Count>(&body)
            .map(|c| c.total_count)
            .map_err(|_| unexpected("/v1/users/count", "no total_count"))
    }

    /// `GET /v1/organizations`, oldest first, from `offset`.
    pub async fn organizations(&self, limit: u32, offset: u64) -> Result<Page, ApiError> {
        self.list("/v1/organizations", limit, offset).await
    }

    /// `GET /v1/organization_memberships`: every membership of the instance, oldest first.
    pub async fn memberships(&self, limit: u32, offset: u64) -> Result<Page, ApiError> {
        self.list("/v1/organization_memberships", limit, offset)
            .await
    }

    /// `GET /v1/instance`: the id (`ins_…`) of the instance the key belongs to.
    pub async fn instance(&self) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct Instance {
            id: String,
        }
        let path = "/v1/instance";
        let body = self.get(path, &[]).await?;
        serde_json::from_str::<Instance>(&body)
            .ok()
            .map(|i| i.id)
            .filter(|id| crate::event::is_key_safe(id))
            .ok_or_else(|| unexpected(path, "no instance id"))
    }

    /// `GET /v1/users/{id}`: the user, or `None` when Clerk answers 404 (deleted, or never
    /// existed).
    pub async fn user(&self, user_id: &str) -> Result<Option<Box<RawValue>>, ApiError> {
        self.lookup(&format!("/v1/users/{user_id}")).await
    }

    /// `GET /v1/organizations/{id}`, or `None` on a 404.
    pub async fn organization(&self, org_id: &str) -> Result<Option<Box<RawValue>>, ApiError> {
        self.lookup(&format!("/v1/organizations/{org_id}")).await
    }

    /// `GET /v1/organizations/{id}/memberships?user_id=…`: the user's membership of the
    /// organization, or `None` when there is none (or the organization is gone: 404).
    pub async fn membership(
        &self,
        org_id: &str,
        user_id: &str,
    ) -> Result<Option<Box<RawValue>>, ApiError> {
        let path = format!("/v1/organizations/{org_id}/memberships");
        let query = [("user_id", user_id.to_owned()), ("limit", "1".to_owned())];
        #[derive(Deserialize)]
        struct List {
            data: Vec<Box<RawValue>>,
        }
        match self.get(&path, &query).await {
            Ok(body) => {
                let list: List =
                    serde_json::from_str(&body).map_err(|_| unexpected(&path, "no data array"))?;
                Ok(list.data.into_iter().next())
            }
            Err(ApiError::Status { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `GET /v1/users/{id}/organization_memberships`, every page: the user's memberships, or
    /// `None` when the user is gone (404).
    pub async fn user_memberships(
        &self,
        user_id: &str,
    ) -> Result<Option<Vec<Box<RawValue>>>, ApiError> {
        let path = format!("/v1/users/{user_id}/organization_memberships");
        let mut all = Vec::new();
        loop {
            let page = match self.list(&path, MAX_PAGE_SIZE, all.len() as u64).await {
                Ok(page) => page,
                Err(ApiError::Status { status: 404, .. }) => return Ok(None),
                Err(error) => return Err(error),
            };
            let last = page.objects.len() < MAX_PAGE_SIZE as usize;
            all.extend(page.objects);
            if last {
                return Ok(Some(all));
            }
        }
    }

    /// A GET of one object: `None` on a 404, anything else as [`Self::get`] has it.
    async fn lookup(&self, path: &str) -> Result<Option<Box<RawValue>>, ApiError> {
        match self.get(path, &[]).await {
            Ok(body) if body.trim_start().starts_with('{') => Ok(Some(
                RawValue::from_string(body).expect("checked as JSON by classify"),
            )),
            Ok(_) => Err(unexpected(path, "not a JSON object")),
            Err(ApiError::Status { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `{data, total_count}` endpoints, paged with `limit` and `offset`.
    async fn list(&self, path: &str, limit: u32, offset: u64) -> Result<Page, ApiError> {
        #[derive(Deserialize)]
        struct List {
            data: Vec<Box<RawValue>>,
            #[serde(default)]
            total_count: Option<Box<RawValue>>,
        }
        let body = self.get(path, &offset_query(limit, offset)).await?;
        if !body.trim_start().starts_with('{') {
            return Err(unexpected(path, "not a JSON object"));
        }
        let list: List =
            serde_json::from_str(&body).map_err(|_| unexpected(path, "no data array"))?;
        // A total that is not a count is no reason to lose the page.
        let total_count = list
            .total_count
            .and_then(|t| serde_json::from_str::<u64>(t.get()).ok());
        Ok(Page {
            objects: list.data,
            total_count,
        })
    }

    /// One GET, retried as the module documentation says.
    /// The body of a successful answer is valid JSON, returned as its text.
    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<String, ApiError> {
        let request = self
            .request(path, query)
            .map_err(|_| unexpected(path, "cannot build the URL"))?;
        let policy = &self.policy;
        let (mut failures, mut waits) = (0u32, 0u32);
        loop {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let attempt = request.try_clone().expect("a GET has no streaming body");
            let timeout = match self.deadline {
                Some(deadline) => policy
                    .request_timeout
                    .min(deadline.saturating_duration_since(tokio::time::Instant::now())),
                None => policy.request_timeout,
            };
            let verdict = match tokio::time::timeout(timeout, self.once(attempt)).await {
                Err(_) => Verdict::Retry {
                    reason: format!("no answer within {timeout:?}"),
                    at_least: Duration::ZERO,
                },
                Ok(Err(reason)) => Verdict::Retry {
                    reason,
                    at_least: Duration::ZERO,
                },
                Ok(Ok((status, retry_after, body))) => {
                    classify(status, retry_after.as_deref(), &body, policy)
                }
            };
            match verdict {
                Verdict::Done(value) => return Ok(value),
                Verdict::Fail { status, code } => {
                    return Err(match status {
                        401 | 403 => ApiError::Unauthorized { status },
                        _ => ApiError::Status {
                            status,
                            path: path.into(),
                            code,
                        },
                    })
                }
                Verdict::RateLimited { wait } => {
                    waits += 1;
                    if waits > policy.max_rate_limit_waits {
                        return Err(ApiError::RateLimited {
                            path: path.into(),
                            waits: waits - 1,
                        });
                    }
                    self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    let retry_after = wait.is_some();
                    let wait = wait.unwrap_or_else(|| {
                        backoff::jittered(waits, policy.backoff_base, policy.backoff_cap)
                    });
                    self.check_budget(path, wait, true)?;
                    tracing::info!(
                        path,
                        wait_ms = wait.as_millis() as u64,
                        retry_after,
                        "rate-limited by Clerk (429); waiting, then asking again"
                    );
                    tokio::time::sleep(wait).await;
                }
                Verdict::Retry { reason, at_least } => {
                    failures += 1;
                    if failures >= policy.max_attempts {
                        return Err(ApiError::GaveUp {
                            path: path.into(),
                            attempts: failures,
                            last: reason,
                        });
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let wait = backoff::jittered(failures, policy.backoff_base, policy.backoff_cap)
                        .max(at_least);
                    self.check_budget(path, wait, false)?;
                    tracing::warn!(
                        path,
                        attempt = failures,
                        wait_ms = wait.as_millis() as u64,
                        reason = reason.as_str(),
                        "Clerk API request failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// The GET of `path` with `query`, the key and `Accept` set.
    fn request(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::Request, reqwest::Error> {
        self.http
            .get(format!("{}{path}", self.base.as_str()))
            .query(query)
            .header(AUTHORIZATION, self.key.bearer())
            .header(ACCEPT, "application/json")
            .build()
    }

    /// One attempt: status, `Retry-After` and the body, or why the exchange failed.
    async fn once(
        &self,
        request: reqwest::Request,
    ) -> Result<(u16, Option<String>, Vec<u8>), String> {
        let mut response = self.http.execute(request).await.map_err(|e| {
            if e.is_connect() {
                "could not connect".to_owned()
            } else {
                "the connection failed".to_owned()
            }
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| "the response body was cut off".to_owned())?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err("the response body was too large".to_owned());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, retry_after, body))
    }
}

/// What to do with one answer. Pure, so every branch is unit-tested.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// A success with a JSON body (checked without building it, so any depth passes).
    Done(String),
    /// `429`: wait (as `Retry-After` says, else back off) and ask again; not a failure.
    RateLimited { wait: Option<Duration> },
    /// A failure worth retrying; `at_least` honours a 503's `Retry-After`.
    Retry { reason: String, at_least: Duration },
    /// Retrying cannot help.
    Fail { status: u16, code: Option<String> },
}

fn classify(status: u16, retry_after: Option<&str>, body: &[u8], policy: &RetryPolicy) -> Verdict {
    let wait = retry_after
        .and_then(http_client::retry_after)
        .map(|d| d.min(policy.max_retry_after));
    match StatusCode::from_u16(status) {
        Ok(s) if s.is_success() => match serde_json::from_slice::<&RawValue>(body) {
            Ok(json) => Verdict::Done(json.get().to_owned()),
            // A 200 that is not JSON is a broken answer (a proxy, a cut-off body): ask again.
            Err(_) => Verdict::Retry {
                reason: format!("{status} with a body that is not JSON"),
                at_least: Duration::ZERO,
            },
        },
        Ok(StatusCode::TOO_MANY_REQUESTS) => Verdict::RateLimited { wait },
        Ok(s) if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => Verdict::Retry {
            reason: format!("answered {status}"),
            at_least: wait.unwrap_or_default(),
        },
        _ => Verdict::Fail {
            status,
            code: error_code(body),
        },
    }
}

/// The first `errors[].code` of a Clerk error body: safe to log, unlike its messages.
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = value.get("errors")?.get(0)?.get("code")?.as_str()?;
    code.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        .then(|| code.to_owned())
}

fn unexpected(path: &str, reason: &str) -> ApiError {
    ApiError::Unexpected {
        path: path.into(),
        reason: reason.into(),
    }
}

/// Users in creation order, oldest first, after the cursor. `order_by=created_at` (an
/// implied `+`) is one of the orderings the spec allows `starting_after` with; oldest first
/// means users created during the run are appended, never shifted under the cursor.
pub(crate) fn users_query(limit: u32, starting_after: Option<&str>) -> Vec<(&'static str, String)> {
    let mut query = vec![
        ("limit", limit.to_string()),
        ("order_by", "created_at".to_owned()),
    ];
    if let Some(cursor) = starting_after {
        query.push(("starting_after", cursor.to_owned()));
    }
    query
}

/// Offset pages, oldest first for the same reason as [`users_query`].
pub(crate) fn offset_query(limit: u32, offset: u64) -> Vec<(&'static str, String)> {
    vec![
        ("limit", limit.to_string()),
        ("offset", offset.to_string()),
        ("order_by", "created_at".to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    #[test]
    fn the_secret_key_is_checked_and_never_shown() {
        let key = SecretKey::parse(" sk_test_abcdefghijklmnop ").unwrap();
        assert_eq!(format!("{key:?}"), "SecretKey(redacted)");
        let header = key.bearer();
        assert!(header.is_sensitive());
        assert_eq!(header.to_str().unwrap(), "Bearer sk_test_abcdefghijklmnop");
        assert!(!format!("{header:?}").contains("abcdefghijklmnop"));
        for bad in ["whsec_abc123456", "pk_test_abcdefgh", "sk_a b c d e", "sk_"] {
            let err = SecretKey::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("CLERK_SECRET_KEY is invalid"), "{err}");
            assert!(!err.contains(bad.trim()), "{err}");
        }
    }

    #[test]
    fn the_api_base_is_https_or_loopback_and_loses_its_version() {
        let ok = [
            ("https://api.clerk.com", "https://api.clerk.com"),
            ("https://api.clerk.com/", "https://api.clerk.com"),
            ("https://api.clerk.com/v1", "https://api.clerk.com"),
            (
                "https://proxy.example.org/clerk/v1/",
                "https://proxy.example.org/clerk",
            ),
            ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
            ("http://localhost:9/", "http://localhost:9"),
        ];
        for (given, base) in ok {
            assert_eq!(ApiBase::parse(given).unwrap().as_str(), base, "{given}");
        }
        for bad in [
            "http://api.clerk.com",
            "ftp://api.clerk.com",
            "api.clerk.com",
            "https://api.clerk.com/?x=1",
            "",
        ] {
            let err = ApiBase::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("CLERK_API_URL is invalid"), "{bad}: {err}");
        }
        assert_eq!(ApiBase::default().as_str(), DEFAULT_API_URL);
    }

    #[test]
    fn queries_page_oldest_first_and_carry_the_key() {
        let api = ClerkApi::new(
            ApiBase::parse("http://127.0.0.1:9/v1").unwrap(),
            SecretKey::parse("sk_test_0123456789").unwrap(),
            policy(),
        )
        .unwrap();
        let url = |path: &str, query: &[(&str, String)]| {
            api.request(path, query).unwrap().url().to_string()
        };
        assert_eq!(
            url("/v1/users", &users_query(500, None)),
            "http://127.0.0.1:9/v1/users?limit=500&order_by=created_at"
        );
        assert_eq!(
            url("/v1/users", &users_query(10, Some("user_2x"))),
            "http://127.0.0.1:9/v1/users?limit=10&order_by=created_at&starting_after=user_2x"
        );
        assert_eq!(
            url("/v1/organizations", &offset_query(100, 300)),
            "http://127.0.0.1:9/v1/organizations?limit=100&offset=300&order_by=created_at"
        );
        assert_eq!(
            url("/v1/users", &[("q", "a+b c/é".into())]),
            "http://127.0.0.1:9/v1/users?q=a%2Bb+c%2F%C3%A9"
        );
        assert_eq!(
            url("/v1/users/count", &[]),
            "http://127.0.0.1:9/v1/users/count"
        );
        let request = api.request("/v1/users", &[]).unwrap();
        let authorization = &request.headers()[AUTHORIZATION];
        assert_eq!(authorization, "Bearer sk_test_0123456789");
        assert!(authorization.is_sensitive(), "never printed by Debug");
        assert!(!format!("{request:?}").contains("0123456789"));
    }

    #[test]
    fn success_is_json_or_a_retry() {
        assert_eq!(
            classify(200, None, br#"[{"id":"user_1"}]"#, &policy()),
            Verdict::Done(r#"[{"id":"user_1"}]"#.into())
        );
        assert!(matches!(
            classify(200, None, b"<html>", &policy()),
            Verdict::Retry { .. }
        ));
    }

    #[test]
    fn too_many_requests_waits_as_told_and_is_not_a_failure() {
        assert_eq!(
            classify(429, Some("3"), b"{}", &policy()),
            Verdict::RateLimited {
                wait: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(
            classify(429, None, b"", &policy()),
            Verdict::RateLimited { wait: None }
        );
        assert_eq!(
            classify(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"), b"", &policy()),
            Verdict::RateLimited { wait: None },
            "an HTTP date falls back to back-off"
        );
        assert_eq!(
            classify(429, Some("86400"), b"", &policy()),
            Verdict::RateLimited {
                wait: Some(Duration::from_secs(120))
            },
            "capped"
        );
    }

    #[test]
    fn server_errors_and_408_are_retried_other_4xx_fail() {
        for status in [500, 502, 503, 504, 408] {
            assert!(
                matches!(
                    classify(status, None, b"", &policy()),
                    Verdict::Retry { .. }
                ),
                "{status}"
            );
        }
        let Verdict::Retry { at_least, .. } = classify(503, Some("2"), b"", &policy()) else {
            panic!()
        };
        assert_eq!(at_least, Duration::from_secs(2));
        let body = br#"{"errors":[{"message":"jane@example.org is bad","long_message":"x","code":"form_param_format_invalid"}]}"#;
        assert_eq!(
            classify(422, None, body, &policy()),
            Verdict::Fail {
                status: 422,
                code: Some("form_param_format_invalid".into())
            }
        );
        assert_eq!(
            classify(401, None, b"not json", &policy()),
            Verdict::Fail {
                status: 401,
                code: None
            }
        );
    }

    #[test]
    fn errors_never_carry_clerk_messages() {
        let err = ApiError::Status {
            status: 422,
            path: "/v1/users".into(),
            code: error_code(br#"{"errors":[{"message":"a@b.c","code":"bad <x>"}]}"#),
        };
        assert_eq!(err.to_string(), "Clerk answered 422 to GET /v1/users");
        assert_eq!(
            ApiError::Unauthorized { status: 401 }.to_string(),
            "Clerk refused CLERK_SECRET_KEY (401): check the key and that it belongs to this instance"
        );
    }
}
