//! Shared test helpers: [`TestApp`] (a handler on its own fresh table in DynamoDB Local),
//! signed requests, and what the table holds.
//!
//! Every storage test runs against DynamoDB Local (`scripts/dynamodb-local.sh start`, or
//! `make test`, which starts it). Its address comes from `AWS_ENDPOINT_URL_DYNAMODB`
//! (default `http://127.0.0.1:8000`).
//!
//! Every request reaches the handler the way Lambda hands it over: as a function-URL event
//! through [`Handler::invoke_at`], so the suite runs our own event conversion too.

pub mod bus;
pub mod call_log;
pub mod calls;
pub mod emf;
pub mod fake_clerk;
pub mod fault_proxy;
pub mod http;
pub mod logs;
pub mod notify;
pub mod providers;
pub mod rng;
pub mod runtime_api;
pub mod template;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use base64::Engine;
use clerk_webhooks::config::Config;
use clerk_webhooks::function_url::FunctionUrlRequest;
use clerk_webhooks::handler::Handler;
use clerk_webhooks::store::{self, Store};
use clerk_webhooks::verify::SigningSecret;
use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::{Body, Request};
use serde_json::{json, Value};

use calls::Function;

pub const SECRET: &str = "whsec_dGVzdC1vbmx5LXNpZ25pbmcta2V5LWZvci1jbGVyaw==";

pub type Item = HashMap<String, AttributeValue>;

pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| "http://127.0.0.1:8000".into())
}

fn client_config(endpoint: &str) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
}

/// A client for `endpoint` with our production timeouts and retries, for the tests' own
/// calls. The code under test gets [`calls::client`]s, whose calls are recorded.
pub fn client_for(endpoint: &str) -> Client {
    logs::init();
    Client::from_conf(store::with_limits(client_config(endpoint)).build())
}

pub fn local_client() -> Client {
    client_for(&endpoint())
}

/// A client for DynamoDB Local whose every request `log` counts.
pub fn logged_client(log: &call_log::CallLog) -> Client {
    logs::init();
    let config = client_config(&endpoint()).interceptor(log.clone());
    Client::from_conf(store::with_limits(config).build())
}

/// A table as the contract declares it, stream included, that no other test uses.
pub async fn fresh_table_with_stream(client: &Client) -> String {
    new_table(client, true).await
}

/// Creates a table no other test uses, so tests run in parallel on one DynamoDB Local. With
/// `stream` off unless the test reads the stream: DynamoDB Local slows down with every stream
/// record it keeps (see `store::create_table_without_stream`).
async fn new_table(client: &Client, stream: bool) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if !SWEPT.swap(true, Ordering::Relaxed) {
        sweep_tables_of_finished_runs(client).await;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let table = format!(
        "t{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let created = if stream {
        clerk_webhooks::store::create_table(client, &table).await
    } else {
        clerk_webhooks::store::create_table_without_stream(client, &table).await
    };
    created.unwrap_or_else(|e| {
        panic!("cannot create a table in DynamoDB Local at {} ({e}); start it with `scripts/dynamodb-local.sh start`", endpoint())
    });
    table
}

/// Deletes the tables earlier test processes left behind (`t{pid}-…`, the process gone).
/// DynamoDB Local keeps every table in memory and slows down as they pile up: a DynamoDB
/// Local left running by `make dev` made the whole suite several times slower by its third
/// `make test`.
async fn sweep_tables_of_finished_runs(client: &Client) {
    let mut start = None;
    loop {
        let Ok(page) = client
            .list_tables()
            .set_exclusive_start_table_name(start)
            .send()
            .await
        else {
            return;
        };
        for name in page.table_names() {
            let pid = name
                .strip_prefix('t')
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<u32>().ok());
            let finished = pid.is_some_and(|pid| {
                pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            });
            if finished {
                let _ = client.delete_table().table_name(name).send().await;
            }
        }
        start = page.last_evaluated_table_name;
        if start.is_none() {
            return;
        }
    }
}

pub fn config(table: &str) -> Config {
    let table = table.to_owned();
    Config::from_lookup(|name| match name {
        "CLERK_WEBHOOK_SIGNING_SECRET" => Some(SECRET.to_owned()),
        "TABLE_NAME" => Some(table.clone()),
        _ => None,
    })
    .unwrap()
}

/// The webhook function's handler on `table`, its DynamoDB at `endpoint`.
pub fn handler_for(endpoint: &str, table: &str) -> Handler {
    Handler::new(
        Ok(config(table)),
        calls::client(Function::Webhook, endpoint),
    )
}

/// A handler on a fresh table of its own in DynamoDB Local, and a client to look at the table.
pub struct TestApp {
    pub handler: Handler,
    pub client: Client,
    pub table: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::on_table(false).await
    }

    /// A test app whose table has its stream (the notifier's tests).
    pub async fn spawn_with_stream() -> Self {
        Self::on_table(true).await
    }

    async fn on_table(stream: bool) -> Self {
        let client = local_client();
        let table = new_table(&client, stream).await;
        let handler = handler_for(&endpoint(), &table);
        Self {
            handler,
            client,
            table,
        }
    }

    /// A store on the app's table for the backfill's code (its calls recorded as the
    /// backfill function's).
    pub fn backfill_store(&self) -> Store {
        Store::new(calls::client(Function::Backfill, &endpoint()), &self.table)
    }

    /// Copies every user of `fake` into the app's table with the backfill (its calls recorded
    /// as the backfill function's).
    pub async fn backfill_users(&self, fake: &fake_clerk::FakeClerk) {
        use clerk_webhooks::backfill::options::Options;
        use clerk_webhooks::backfill::progress::Display;
        use clerk_webhooks::backfill::{Backfill, Kind};
        use clerk_webhooks::clerk_api::{ApiBase, ClerkApi, RetryPolicy, SecretKey};
        let api = ClerkApi::new(
            ApiBase::parse(&fake.url).unwrap(),
            SecretKey::parse(fake_clerk::KEY).unwrap(),
            RetryPolicy::default(),
        )
        .unwrap();
        // From the start, whatever an earlier run's checkpoint says.
        let options = Options {
            kinds: vec![Kind::Users],
            display: Display::Off,
            restart: true,
            ..Options::default()
        };
        let summary = Backfill::new(api, Some(self.backfill_store()), options)
            .run()
            .await
            .unwrap();
        assert!(summary.complete);
    }

    /// A store on the app's table for the sync function's code (its calls recorded as that
    /// function's).
    pub fn sync_store(&self) -> Store {
        Store::new(calls::client(Function::Sync, &endpoint()), &self.table)
    }

    /// A client whose calls count as the webhook function's, for tests that build their own
    /// handler or store for it.
    pub fn webhook_client(&self) -> Client {
        calls::client(Function::Webhook, &endpoint())
    }

    pub async fn send(&self, request: Request) -> Reply {
        send(&self.handler, request).await
    }

    pub async fn send_at(&self, request: Request, now: SystemTime) -> Reply {
        send_at(&self.handler, request, now).await
    }

    pub async fn send_event(&self, event: &Value) -> Reply {
        send_event(&self.handler, event).await
    }

    /// Delivers `body` under `svix_id` and returns the `status` field of a 200 answer.
    pub async fn deliver(&self, body: &[u8], svix_id: &str) -> String {
        deliver(&self.handler, body, svix_id).await
    }

    /// Delivers a fresh message of `event_type` carrying `data`; returns the `status` of the
    /// 200.
    pub async fn apply(&self, event_type: &str, timestamp_ms: i64, data: Value) -> String {
        self.deliver(&envelope(event_type, timestamp_ms, data), &msg_id())
            .await
    }

    pub async fn get(&self, pk: &str, sk: &str) -> Option<Item> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    /// Writes `item` as it is, past every rule: for items no current writer would make.
    pub async fn put(&self, item: Item) {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    /// Every item of the table, sorted by key: compare two of these to prove nothing changed.
    pub async fn scan(&self) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        items.sort_by_key(|i| (s(i, "pk"), s(i, "sk")));
        items
    }

    /// Queries `gsi1` for one partition.
    pub async fn by_gsi1(&self, gsi1pk: &str) -> Vec<Item> {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(clerk_webhooks::table::GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(gsi1pk.into()))
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }

    /// Items of one partition whose sort key starts with `prefix`.
    pub async fn partition(&self, pk: &str, prefix: &str) -> Vec<Item> {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
            .expression_attribute_values(":p", AttributeValue::S(prefix.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }
}

/// One of this package's binaries (`env!("CARGO_BIN_EXE_…")`) on `table` in DynamoDB Local,
/// with nothing else from the environment.
pub fn local_binary(path: &str, table: &str) -> std::process::Command {
    let mut command = std::process::Command::new(path);
    command
        .env_clear()
        .env("TABLE_NAME", table)
        .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local");
    command
}

/// An item as the encoding before gzip'd `data` wrote it: `data` a native map.
pub fn earlier_form(mut item: Item, data: &Value) -> Item {
    item.insert(
        "data".into(),
        serde_dynamo::to_attribute_value(data).unwrap(),
    );
    item
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A function-URL request signed with [`SECRET`] by our own signer (interoperability with
/// Svix's libraries is proven separately in `svix_interop.rs`).
pub fn signed(body: &[u8], svix_id: &str) -> Request {
    signed_at(body, svix_id, now_secs())
}

/// As [`signed`], with `svix-timestamp` = `ts` (seconds).
pub fn signed_at(body: &[u8], svix_id: &str, ts: i64) -> Request {
    let secret = SigningSecret::parse(SECRET).unwrap();
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("https://example.lambda-url.us-east-1.on.aws/")
        .header("content-type", "application/json")
        .header("svix-id", svix_id)
        .header("svix-timestamp", ts.to_string())
        .header("svix-signature", secret.sign(svix_id, ts, body))
        .body(Body::from(body.to_vec()))
        .unwrap()
}

/// A Clerk envelope around `data`.
pub fn envelope(event_type: &str, timestamp_ms: i64, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "data": data, "instance_id": "ins_2NNEqL2nrIRdJ194ndJqAHwEfxF", "object": "event",
        "timestamp": timestamp_ms, "type": event_type,
        "event_attributes": {"http_request": {"client_ip": "203.0.113.9", "user_agent": "tests"}}
    }))
    .unwrap()
}

/// The handler's answer, read back from the function-URL response.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

pub async fn send(handler: &Handler, request: Request) -> Reply {
    send_at(handler, request, SystemTime::now()).await
}

/// As [`send`], with the handler's clock pinned to `now`. The request travels as the
/// function-URL event Lambda would make of it ([`event_of`]).
pub async fn send_at(handler: &Handler, request: Request, now: SystemTime) -> Reply {
    send_event_at(handler, &event_of(request), now).await
}

/// The function-URL event Lambda makes of `request`: header names lower-case, a repeated
/// header joined into one comma-separated value, a body that is not UTF-8 in base64.
pub fn event_of(request: Request) -> Value {
    let (parts, body) = request.into_parts();
    let mut headers: BTreeMap<&str, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(name.as_str())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let headers: Vec<(&str, String)> = headers.into_iter().collect();
    let (body, is_base64_encoded) = match body {
        Body::Empty => (None, false),
        Body::Text(text) => (Some(text), false),
        Body::Binary(bytes) => match String::from_utf8(bytes) {
            Ok(text) => (Some(text), false),
            Err(e) => (
                Some(base64::engine::general_purpose::STANDARD.encode(e.into_bytes())),
                true,
            ),
        },
        _ => unreachable!("a test body is empty, text or bytes"),
    };
    function_url_event(parts.method.as_str(), &headers, body, is_base64_encoded)
}

/// A function-URL (payload format 2.0) event, as Lambda hands it to the runtime.
pub fn function_url_event(
    method: &str,
    headers: &[(&str, String)],
    body: Option<String>,
    is_base64_encoded: bool,
) -> Value {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), json!(value)))
        .collect();
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": headers,
        "requestContext": {"accountId": "anonymous", "apiId": "fn", "domainName": "fn.lambda-url.us-east-1.on.aws",
            "domainPrefix": "fn", "http": {"method": method, "path": "/", "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.9", "userAgent": "Svix-Webhooks/1.0"}, "requestId": "r", "routeKey": "$default",
            "stage": "$default", "time": "26/Nov/2026:20:00:00 +0000", "timeEpoch": 0},
        "body": body,
        "isBase64Encoded": is_base64_encoded
    })
}

/// The signature headers of `body` under `svix_id`, signed now with [`SECRET`].
pub fn signed_headers(body: &[u8], svix_id: &str) -> Vec<(&'static str, String)> {
    let ts = now_secs();
    vec![
        ("content-type", "application/json".to_owned()),
        ("svix-id", svix_id.to_owned()),
        ("svix-timestamp", ts.to_string()),
        (
            "svix-signature",
            SigningSecret::parse(SECRET)
                .unwrap()
                .sign(svix_id, ts, body),
        ),
    ]
}

/// Sends a raw function-URL event the way the runtime does: JSON bytes deserialised into
/// [`FunctionUrlRequest`], then [`Handler::invoke_at`], the path `main` runs.
pub async fn send_event(handler: &Handler, event: &Value) -> Reply {
    send_event_at(handler, event, SystemTime::now()).await
}

/// As [`send_event`], with the handler's clock pinned to `now`.
pub async fn send_event_at(handler: &Handler, event: &Value, now: SystemTime) -> Reply {
    logs::init();
    let bytes = serde_json::to_vec(event).unwrap();
    let event: FunctionUrlRequest =
        serde_json::from_slice(&bytes).expect("any JSON object is a FunctionUrlRequest");
    let response = handler.invoke_at(event, now).await;
    assert!(!response.is_base64_encoded, "every answer is JSON text");
    let body = response.body.expect("every answer has a body");
    Reply {
        status: StatusCode::from_u16(response.status_code as u16).unwrap(),
        headers: response.headers,
        body: serde_json::from_slice(body.as_ref()).expect("every answer is JSON"),
    }
}

/// Delivers `body` under `svix_id` and returns the `status` field of a 200 answer.
pub async fn deliver(handler: &Handler, body: &[u8], svix_id: &str) -> String {
    let reply = send(handler, signed(body, svix_id)).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "unexpected answer {}",
        reply.body
    );
    reply.body["status"].as_str().unwrap().to_owned()
}

/// A string attribute, or "" when absent.
pub fn s(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => String::new(),
    }
}

/// A number attribute.
pub fn n(item: &Item, name: &str) -> i64 {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().unwrap(),
        other => panic!("{name} is not a number: {other:?}"),
    }
}

// --- realistic payloads (shapes from Clerk's OpenAPI; see events/) ---

pub fn user(id: &str, updated_at: i64, last_name: &str) -> Value {
    json!({
        "object": "user", "id": id, "username": "ada", "first_name": "Ada", "last_name": last_name,
        "image_url": "https://img.clerk.com/ada", "has_image": true, "external_id": null,
        "primary_email_address_id": "idn_primary",
        "email_addresses": [
            {"object": "email_address", "id": "idn_secondary", "email_address": "ada@example.com",
             "verification": {"status": "verified", "strategy": "email_code"}, "linked_to": []},
            {"object": "email_address", "id": "idn_primary", "email_address": format!("Ada.{id}@Example.org"),
             "verification": {"status": "verified", "strategy": "email_code"}, "linked_to": []}
        ],
        "phone_numbers": [{"object": "phone_number", "id": "idn_phone", "phone_number": "+15555550100"}],
        "public_metadata": {"plan": "pro"}, "private_metadata": {"stripe": "cus_1"}, "unsafe_metadata": {},
        "banned": false, "locked": false, "last_sign_in_at": null,
        "created_at": 1716883200000_i64, "updated_at": updated_at
    })
}

pub fn organization(id: &str, updated_at: i64, name: &str) -> Value {
    json!({
        "object": "organization", "id": id, "name": name, "slug": format!("slug-{id}"),
        "image_url": "https://img.clerk.com/org", "has_image": true, "members_count": 1,
        "max_allowed_memberships": 5, "admin_delete_enabled": true,
        "public_metadata": {"tier": "gold"}, "private_metadata": {},
        "created_by": "user_creator", "created_at": 1716883200000_i64, "updated_at": updated_at
    })
}

pub fn membership(org_id: &str, user_id: &str, updated_at: i64, role: &str) -> Value {
    json!({
        "object": "organization_membership", "id": format!("orgmem_{}{}", &org_id[4..], &user_id[5..]),
        "role": role, "role_name": "Member", "permissions": ["org:sys_memberships:read"],
        "public_metadata": {}, "private_metadata": {},
        "organization": organization(org_id, 1716883200000, "Acme"),
        "public_user_data": {"user_id": user_id, "first_name": "Ada", "last_name": "Lovelace",
                             "image_url": "https://img.clerk.com/ada", "has_image": true,
                             "identifier": "ada@example.org", "username": "ada"},
        "created_at": 1716883200000_i64, "updated_at": updated_at
    })
}

pub fn deleted(object: &str, id: &str) -> Value {
    json!({"object": object, "id": id, "deleted": true})
}

/// A unique message id per call.
pub fn msg_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("msg_{nanos}x{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}
