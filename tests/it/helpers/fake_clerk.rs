//! A fake of Clerk's Backend API on loopback, for the backfill's tests and benchmark
//! (`examples/fake_clerk.rs` serves it on a port).
//!
//! It serves the list endpoints the backfill reads, with the paging of the OpenAPI file
//! (`backend-api-openapi-2026-05-12.yml`): `GET /v1/users` (a JSON array; `limit`, `offset`,
//! `starting_after`, `order_by`, default `-created_at`), `GET /v1/users/count`,
//! `GET /v1/organizations` and `GET /v1/organization_memberships` (`{data, total_count}`;
//! `limit`, `offset`, `order_by`), and the lookups the reconcile and the sync make:
//! `GET /v1/users/{id}`, `GET /v1/organizations/{id}`,
//! `GET /v1/users/{id}/organization_memberships` and
//! `GET /v1/organizations/{id}/memberships?user_id=…`. `limit` above 500 is a 422, a missing or wrong
//! `Authorization: Bearer` a 401, as on the real API. Objects follow the `User`,
//! `Organization` and `OrganizationMembership` schemas, with emails and phone numbers in them
//! so tests can check they never reach a log.
//!
//! Faults are injected per endpoint and page (1-based, from `offset` or the cursor's position
//! and `limit`): 429 with or without `Retry-After`, any 5xx, a slow answer, or no answer at all.
//! Plain HTTP/1.1 on a tokio `TcpListener`, keep-alive included; no server crate needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub const KEY: &str = "sk_test_fAkEcLeRkSeCrEtKeY0123456789abcdefABCDEF";
/// The instance the key belongs to (`GET /v1/instance`), unless a test says otherwise: the
/// one the suite's webhook envelopes name (`helpers::envelope`).
pub const INSTANCE: &str = "ins_2NNEqL2nrIRdJ194ndJqAHwEfxF";
/// 2023-11-14T22:13:20Z: the first object's `created_at`.
pub const T0: i64 = 1_700_000_000_000;

pub const USERS: &str = "/v1/users";
pub const USER_COUNT: &str = "/v1/users/count";
pub const ORGANIZATIONS: &str = "/v1/organizations";
pub const MEMBERSHIPS: &str = "/v1/organization_memberships";
pub const INSTANCE_PATH: &str = "/v1/instance";

/// What the fake instance holds, each list in creation order (oldest first).
#[derive(Debug, Clone, Default)]
pub struct Data {
    pub users: Vec<Value>,
    pub organizations: Vec<Value>,
    pub memberships: Vec<Value>,
    /// Objects (by id) the list endpoints leave out while their lookups still find them: a
    /// listing that missed an object, as an offset page that shifts under a reader can.
    pub unlisted: std::collections::HashSet<String>,
}

impl Data {
    /// `users` users, `orgs` organizations, and `members` memberships in each organization
    /// (users taken round-robin).
    pub fn generate(users: usize, orgs: usize, members: usize) -> Self {
        let users_list: Vec<Value> = (0..users).map(user).collect();
        let organizations: Vec<Value> = (0..orgs).map(organization).collect();
        let mut memberships = Vec::new();
        for (o, org) in organizations.iter().enumerate() {
            for m in 0..members.min(users) {
                let u = (o * members + m) % users;
                memberships.push(membership(org, &users_list[u], memberships.len()));
            }
        }
        Self {
            users: users_list,
            organizations,
            memberships,
            unlisted: Default::default(),
        }
    }

    /// Deletes the user with this id in Clerk, and their memberships.
    pub fn delete_user(&mut self, id: &str) {
        self.users.retain(|u| u["id"] != json!(id));
        self.memberships
            .retain(|m| m["public_user_data"]["user_id"] != json!(id));
    }

    /// Deletes the organization with this id in Clerk, and its memberships.
    pub fn delete_organization(&mut self, id: &str) {
        self.organizations.retain(|o| o["id"] != json!(id));
        self.memberships
            .retain(|m| m["organization"]["id"] != json!(id));
    }

    /// Removes one member from one organization in Clerk.
    pub fn delete_membership(&mut self, org_id: &str, user_id: &str) {
        self.memberships.retain(|m| {
            m["organization"]["id"] != json!(org_id)
                || m["public_user_data"]["user_id"] != json!(user_id)
        });
    }
}

pub fn user_id(i: usize) -> String {
    format!("user_2bQfAkE{i:016}")
}

pub fn org_id(i: usize) -> String {
    format!("org_2bQfAkE{i:016}")
}

pub fn email(i: usize) -> String {
    format!("Ada.Lovelace{i}@Example.org")
}

/// A `User` of the Backend API schema: every required field, realistic values.
pub fn user(i: usize) -> Value {
    let created = T0 + i as i64 * 60_000;
    let email_address = json!({
        "id": format!("idn_2bQeMa{i:016}"), "object": "email_address", "email_address": email(i),
        "reserved": false, "linked_to": [], "matches_sso_connection": false,
        "verification": {"object": "verification_otp", "status": "verified", "strategy": "email_code",
                         "attempts": 1, "expire_at": created + 600_000},
        "created_at": created, "updated_at": created
    });
    let phone_number = json!({
        "id": format!("idn_2bQpHo{i:016}"), "object": "phone_number", "phone_number": format!("+1555{i:07}"),
        "reserved_for_second_factor": false, "default_second_factor": false, "reserved": false,
        "verification": {"object": "verification_otp", "status": "verified", "strategy": "phone_code",
                         "attempts": 1, "expire_at": created + 600_000},
        "linked_to": [], "backup_codes": null, "created_at": created, "updated_at": created
    });
    let mut user = json!({
        "id": user_id(i), "object": "user", "external_id": null,
        "primary_email_address_id": format!("idn_2bQeMa{i:016}"),
        "primary_phone_number_id": format!("idn_2bQpHo{i:016}"),
        "primary_web3_wallet_id": null,
        "username": format!("ada{i}"), "first_name": "Ada", "last_name": "Lovelace", "locale": "en-GB",
        "profile_image_url": "https://www.gravatar.com/avatar?d=mp",
        "image_url": "https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9", "has_image": false,
        "public_metadata": {"plan": "pro"}, "private_metadata": {"stripe_customer": format!("cus_{i}")},
        "unsafe_metadata": {},
        "email_addresses": [email_address], "phone_numbers": [phone_number],
        "web3_wallets": [], "passkeys": [], "password_enabled": true, "two_factor_enabled": false
    });
    let rest = json!({
        "totp_enabled": false, "backup_code_enabled": false, "mfa_enabled_at": null, "mfa_disabled_at": null,
        "password_last_updated_at": created,
        "external_accounts": [], "saml_accounts": [], "enterprise_accounts": [],
        "last_sign_in_at": created + 3_600_000, "banned": false, "locked": false, "deprovisioned": false,
        "lockout_expires_in_seconds": null, "verification_attempts_remaining": 100,
        "updated_at": created + 1_000, "created_at": created,
        "delete_self_enabled": true, "create_organization_enabled": true, "create_organizations_limit": null,
        "last_active_at": created + 3_600_000, "legal_accepted_at": null, "bypass_client_trust": false
    });
    if let (Some(user), Value::Object(rest)) = (user.as_object_mut(), rest) {
        user.extend(rest);
    }
    user
}

/// An `Organization` of the Backend API schema.
pub fn organization(i: usize) -> Value {
    let created = T0 + 30_000 + i as i64 * 60_000;
    json!({
        "object": "organization", "id": org_id(i), "name": format!("Acme {i}"), "slug": format!("acme-{i}"),
        "image_url": "https://img.clerk.com/eyJ0eXBlIjoib3JnIn0", "has_image": false, "members_count": 2,
        "max_allowed_memberships": 5, "admin_delete_enabled": true,
        "public_metadata": {"tier": "gold"}, "private_metadata": {},
        "created_by": user_id(0), "created_at": created, "updated_at": created + 2_000,
        "last_active_at": created, "role_set_key": null
    })
}

/// An `OrganizationMembership` of the Backend API schema, with `public_user_data`.
pub fn membership(org: &Value, user: &Value, n: usize) -> Value {
    let created = T0 + 45_000 + n as i64 * 1_000;
    let email = user["email_addresses"][0]["email_address"].clone();
    json!({
        "id": format!("orgmem_2bQfAkE{n:016}"), "object": "organization_membership",
        "role": "org:member", "role_name": "Member", "permissions": ["org:sys_memberships:read"],
        "public_metadata": {}, "private_metadata": {},
        "organization": org,
        "public_user_data": {
            "user_id": user["id"], "first_name": user["first_name"], "last_name": user["last_name"],
            "profile_image_url": user["profile_image_url"], "image_url": user["image_url"],
            "has_image": false, "identifier": email, "username": user["username"]
        },
        "created_at": created, "updated_at": created + 500
    })
}

/// An injected answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// 429, with `Retry-After: {secs}` when given.
    TooManyRequests(Option<u64>),
    /// Any status, with a Clerk error body.
    Status(u16),
    /// The normal answer, after this long.
    Slow(Duration),
    /// Never answers (until the fake is dropped).
    Hang,
}

#[derive(Debug, Clone)]
struct Fault {
    path: String,
    page: usize,
    reply: Reply,
    times: u32,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub query: HashMap<String, String>,
    /// 1-based page of a list request.
    pub page: Option<usize>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    data: Mutex<Data>,
    faults: Mutex<Vec<Fault>>,
    seen: Mutex<Vec<Seen>>,
    instance: Mutex<String>,
}

pub struct FakeClerk {
    pub url: String,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeClerk {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeClerk {
    /// Serves `data` on an ephemeral loopback port.
    pub async fn start(data: Data) -> Self {
        Self::bind("127.0.0.1:0", data).await
    }

    pub async fn bind(addr: &str, data: Data) -> Self {
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the fake Clerk API");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            data: Mutex::new(data),
            instance: Mutex::new(INSTANCE.to_owned()),
            ..State::default()
        });
        let shared = Arc::clone(&state);
        let server = tokio::spawn(async move {
            // Dropping the set (when the server task is aborted) ends every connection too.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(serve(stream, Arc::clone(&shared)));
                while connections.try_join_next().is_some() {}
            }
        });
        Self { url, state, server }
    }

    /// The next `times` requests for `page` of `path` get `reply`.
    pub fn inject(&self, path: &str, page: usize, reply: Reply, times: u32) {
        self.state.faults.lock().unwrap().push(Fault {
            path: path.to_owned(),
            page,
            reply,
            times,
        });
    }

    pub fn clear_faults(&self) {
        self.state.faults.lock().unwrap().clear();
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn forget_seen(&self) {
        self.state.seen.lock().unwrap().clear();
    }

    /// Changes what the instance holds (an object updated or deleted between two runs).
    pub fn edit(&self, f: impl FnOnce(&mut Data)) {
        f(&mut self.state.data.lock().unwrap());
    }

    /// What the instance holds now.
    pub fn data(&self) -> Data {
        self.state.data.lock().unwrap().clone()
    }

    /// Makes the key belong to another instance (`GET /v1/instance`).
    pub fn set_instance(&self, id: &str) {
        *self.state.instance.lock().unwrap() = id.to_owned();
    }
}

async fn serve(mut stream: TcpStream, state: Arc<State>) {
    // The head and the body go out in two writes: without this, Nagle's algorithm holds the
    // body until the client's delayed ACK of the head, about 40 ms per answer.
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::new();
    // GET requests have no body: the head is the whole message.
    while let Ok(Some(message)) = super::http::read_message(&mut stream, &mut buffer).await {
        let head = String::from_utf8_lossy(&message).into_owned();
        let mut lines = head.split("\r\n");
        let target = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("/")
            .to_owned();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let close = headers
            .get("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), parse_query(q)),
            None => (target.clone(), HashMap::new()),
        };
        let authorized = headers.get("authorization").map(String::as_str)
            == Some(format!("Bearer {KEY}").as_str());
        let (status, extra, body) = answer(&state, &path, &query, authorized).await;
        let response = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n",
            reason(status),
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err()
            || stream.write_all(body.as_bytes()).await.is_err()
            || close
        {
            return;
        }
    }
}

async fn answer(
    state: &State,
    path: &str,
    query: &HashMap<String, String>,
    authorized: bool,
) -> (u16, String, String) {
    let record = |page: Option<usize>, status: u16| {
        state.seen.lock().unwrap().push(Seen {
            path: path.to_owned(),
            query: query.clone(),
            page,
            status,
        });
    };
    if !authorized {
        record(None, 401);
        return (
            401,
            String::new(),
            error("authentication_invalid", "Invalid authentication"),
        );
    }
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10);
    if !(1..=500).contains(&limit) {
        record(None, 422);
        return (
            422,
            String::new(),
            error("form_param_value_invalid", "limit"),
        );
    }
    if path == INSTANCE_PATH {
        record(None, 200);
        let id = state.instance.lock().unwrap().clone();
        let body = json!({"object": "instance", "id": id, "environment_type": "production",
                          "allowed_origins": null, "workspace_id": null});
        return (200, String::new(), body.to_string());
    }
    // GET /v1/users/{id}, /v1/organizations/{id}, /v1/users/{id}/organization_memberships
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // GET /v1/organizations/{id}/memberships?user_id=…: the sync's membership lookup.
    if let ["v1", "organizations", org_id, "memberships"] = segments.as_slice() {
        let fault = take_fault(state, path, 1);
        if let Some(answer) = fault_answer(fault, &record, 1).await {
            return answer;
        }
        let data = state.data.lock().unwrap();
        if !data.organizations.iter().any(|o| o["id"] == json!(org_id)) {
            record(Some(1), 404);
            return (404, String::new(), error("resource_not_found", "not found"));
        }
        let theirs: Vec<Value> = data
            .memberships
            .iter()
            .filter(|m| m["organization"]["id"] == json!(org_id))
            .filter(|m| {
                query
                    .get("user_id")
                    .is_none_or(|u| m["public_user_data"]["user_id"] == json!(u))
            })
            .cloned()
            .collect();
        record(Some(1), 200);
        let page: Vec<Value> = theirs.iter().take(limit).cloned().collect();
        let body = json!({"data": page, "total_count": theirs.len()});
        return (200, String::new(), body.to_string());
    }
    let lookup = match segments.as_slice() {
        ["v1", "users", id] if *id != "count" => Some(("users", *id, false)),
        ["v1", "organizations", id] => Some(("organizations", *id, false)),
        ["v1", "users", id, "organization_memberships"] => Some(("users", *id, true)),
        _ => None,
    };
    if let Some((collection, id, memberships_of)) = lookup {
        let fault = take_fault(state, path, 1);
        if let Some(answer) = fault_answer(fault, &record, 1).await {
            return answer;
        }
        let data = state.data.lock().unwrap();
        let list = if collection == "users" {
            &data.users
        } else {
            &data.organizations
        };
        let Some(object) = list.iter().find(|o| o["id"] == json!(id)).cloned() else {
            record(Some(1), 404);
            return (404, String::new(), error("resource_not_found", "not found"));
        };
        record(Some(1), 200);
        if !memberships_of {
            return (200, String::new(), object.to_string());
        }
        let mine: Vec<Value> = data
            .memberships
            .iter()
            .filter(|m| m["public_user_data"]["user_id"] == json!(id))
            .cloned()
            .collect();
        let offset: usize = query
            .get("offset")
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        let page: Vec<Value> = mine.iter().skip(offset).take(limit).cloned().collect();
        let body = json!({"data": page, "total_count": mine.len()});
        return (200, String::new(), body.to_string());
    }
    let list = |data: &Data| -> Option<Vec<Value>> {
        let mut list = match path {
            USERS => data.users.clone(),
            ORGANIZATIONS => data.organizations.clone(),
            MEMBERSHIPS => data.memberships.clone(),
            _ => return None,
        };
        list.retain(|o| {
            o["id"]
                .as_str()
                .is_none_or(|id| !data.unlisted.contains(id))
        });
        // The API's default order is newest first.
        let ascending = matches!(
            query.get("order_by").map(String::as_str),
            Some("created_at" | "+created_at")
        );
        list.sort_by_key(|o| o["created_at"].as_i64());
        if !ascending {
            list.reverse();
        }
        Some(list)
    };
    let (body, page) = {
        let data = state.data.lock().unwrap();
        if path == USER_COUNT {
            // One "page": faults are injected for page 1.
            let body = json!({"object": "total_count", "total_count": data.users.len()});
            (body.to_string(), 1)
        } else {
            let Some(list) = list(&data) else {
                record(None, 404);
                return (404, String::new(), error("resource_not_found", "not found"));
            };
            let offset: usize = query
                .get("offset")
                .and_then(|o| o.parse().ok())
                .unwrap_or(0);
            let start = match query.get("starting_after") {
                Some(cursor) => match list.iter().position(|o| o["id"] == json!(cursor)) {
                    Some(i) => i + 1,
                    None => {
                        record(None, 422);
                        return (
                            422,
                            String::new(),
                            error("form_param_value_invalid", "starting_after"),
                        );
                    }
                },
                None => offset,
            };
            let page_objects: Vec<Value> = list.iter().skip(start).take(limit).cloned().collect();
            let body = if path == USERS {
                Value::Array(page_objects)
            } else {
                json!({"data": page_objects, "total_count": list.len()})
            };
            (body.to_string(), start / limit + 1)
        }
    };
    let fault = take_fault(state, path, page);
    if let Some(answer) = fault_answer(fault, &record, page).await {
        return answer;
    }
    record(Some(page), 200);
    (200, String::new(), body)
}

/// The next injected reply for `page` of `path`, if any is left.
fn take_fault(state: &State, path: &str, page: usize) -> Option<Reply> {
    let mut faults = state.faults.lock().unwrap();
    faults
        .iter_mut()
        .find(|f| f.path == path && f.page == page && f.times > 0)
        .map(|f| {
            f.times -= 1;
            f.reply
        })
}

/// The answer an injected reply makes (`None`: answer normally, after a slow reply's delay).
async fn fault_answer(
    fault: Option<Reply>,
    record: &impl Fn(Option<usize>, u16),
    page: usize,
) -> Option<(u16, String, String)> {
    match fault? {
        Reply::TooManyRequests(after) => {
            record(Some(page), 429);
            let extra = after
                .map(|s| format!("retry-after: {s}\r\n"))
                .unwrap_or_default();
            Some((429, extra, error("too_many_requests", "Too many requests")))
        }
        Reply::Status(status) => {
            record(Some(page), status);
            Some((status, String::new(), error("internal_clerk_error", "Oops")))
        }
        Reply::Hang => {
            record(Some(page), 0);
            std::future::pending::<()>().await;
            unreachable!()
        }
        Reply::Slow(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
    }
}

/// Clerk's error body (`ClerkErrors`).
fn error(code: &str, message: &str) -> String {
    json!({"errors": [{"message": message, "long_message": message, "code": code}],
           "clerk_trace_id": "0123456789abcdef"})
    .to_string()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect()
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
