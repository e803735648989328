//! A reconcile at scale against the test suite's fake Backend API (perf/reconcile.sh;
//! BENCHMARKS.md): 10,000 users, 200 organizations with 5 members each, copied by a backfill;
//! then 1 % of each deleted in Clerk (users with their memberships, organizations with theirs,
//! single memberships). The reconcile is timed against a floor measured in the same run (a
//! plain backfill of the same, all-stale data), its DynamoDB calls and API requests counted,
//! and the table compared with the truth item by item. Loopback and DynamoDB Local only.
//!
//! ```text
//! cargo run --release --example reconcile_scale -- [--users 10000] [--organizations 200] [--members 5]
//! ```

// A tool uses part of a shared test helper; the suite itself uses all of it.
#[allow(dead_code)]
#[path = "../tests/it/helpers/fake_clerk.rs"]
mod fake_clerk;
// DynamoDB calls by operation: the suite's own call log (this tool uses part of it).
#[allow(dead_code)]
#[path = "../tests/it/helpers/call_log.rs"]
mod call_log;
use call_log::CallLog;
#[path = "../tests/it/helpers/http.rs"]
mod http;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use clap::Parser;
use clerk_webhooks::backfill::options::Options;
use clerk_webhooks::backfill::{Backfill, Summary};
use clerk_webhooks::clerk_api::{ApiBase, ClerkApi, RetryPolicy, SecretKey};
use clerk_webhooks::store::{self, Store};
use fake_clerk::{Data, FakeClerk, KEY};
use serde_json::Value;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    #[arg(long, default_value_t = 200)]
    organizations: usize,
    /// Members per organization.
    #[arg(long, default_value_t = 5)]
    members: usize,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn run(fake: &FakeClerk, store: &Store, reconcile: bool) -> (Summary, f64) {
    let api = ClerkApi::new(
        ApiBase::parse(&fake.url).unwrap(),
        SecretKey::parse(KEY).unwrap(),
        RetryPolicy::default(),
    )
    .unwrap();
    // The floor lists everything again (`restart`), as the reconcile does.
    let options = Options {
        reconcile,
        restart: !reconcile,
        ..Options::default()
    };
    let started = Instant::now();
    let summary = Backfill::new(api, Some(store.clone()), options)
        .run()
        .await
        .unwrap();
    (summary, started.elapsed().as_secs_f64())
}

fn text(item: &BTreeMap<String, AttributeValue>, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    clerk_webhooks::logging::init_stderr();
    let calls = CallLog::default();
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let config = aws_sdk_dynamodb::config::Builder::from(&shared).interceptor(calls.clone());
    let client = aws_sdk_dynamodb::Client::from_conf(store::with_limits(config).build());
    let table = format!("clerk-webhooks-reconcile-scale-{}", now_ms());
    clerk_webhooks::store::create_table_without_stream(&client, &table)
        .await
        .unwrap();
    let store = Store::new(client.clone(), &table);
    let data = Data::generate(args.users, args.organizations, args.members);
    let fake = FakeClerk::start(data).await;

    let (copied, copy_secs) = run(&fake, &store, false).await;
    eprintln!(
        "backfill: {} objects written in {copy_secs:.1} s",
        copied.written
    );
    calls.take();
    let (_, floor_secs) = run(&fake, &store, false).await;
    let floor_calls = calls.take();
    eprintln!("floor, the same backfill again from the start (all stale): {floor_secs:.1} s");

    // 1 % of each kind deleted in Clerk.
    let mut ghosts = BTreeMap::<&str, BTreeSet<String>>::new();
    fake.edit(|data| {
        let users: Vec<String> = data
            .users
            .iter()
            .step_by(100)
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect();
        let orgs: Vec<String> = data
            .organizations
            .iter()
            .step_by(100)
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect();
        for id in &users {
            data.delete_user(id);
        }
        for id in &orgs {
            data.delete_organization(id);
        }
        let members: Vec<(String, String)> = data
            .memberships
            .iter()
            .step_by(100)
            .map(|m| {
                (
                    m["organization"]["id"].as_str().unwrap().to_owned(),
                    m["public_user_data"]["user_id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect();
        for (org, user) in &members {
            data.delete_membership(org, user);
        }
        ghosts.insert("users", users.into_iter().collect());
        ghosts.insert("organizations", orgs.into_iter().collect());
        ghosts.insert(
            "memberships",
            members
                .into_iter()
                .map(|(o, u)| format!("{o}#{u}"))
                .collect(),
        );
    });
    fake.forget_seen();
    calls.take();
    let (summary, secs) = run(&fake, &store, true).await;
    let reconcile_calls = calls.take();
    let requests = fake.seen();

    println!("{summary}");
    println!();
    println!(
        "reconcile: {secs:.1} s; the floor (the same listing as a plain backfill): {floor_secs:.1} s; ratio {:.2}",
        secs / floor_secs
    );
    let count = |f: &dyn Fn(&str) -> bool| requests.iter().filter(|r| f(&r.path)).count();
    println!(
        "Backend API requests: {} in all; list pages: users {}, organizations {}, memberships {}; \
         lookups: users {}, organizations {}, a user's memberships {}",
        requests.len(),
        count(&|p| p == fake_clerk::USERS),
        count(&|p| p == fake_clerk::ORGANIZATIONS),
        count(&|p| p == fake_clerk::MEMBERSHIPS),
        count(&|p| p.starts_with("/v1/users/user_") && !p.ends_with("/organization_memberships")),
        count(&|p| p.starts_with("/v1/organizations/")),
        count(&|p| p.ends_with("/organization_memberships")),
    );
    println!("DynamoDB calls, reconcile: {reconcile_calls:?}");
    println!("DynamoDB calls, floor:     {floor_calls:?}");

    // The table against the truth: every object Clerk has is live, every ghost a tombstone
    // (or, for what a ghost's cascade took, absent), nothing else.
    let truth = fake.data();
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(&table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(
            page.items()
                .iter()
                .map(|i| i.clone().into_iter().collect::<BTreeMap<_, _>>()),
        );
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    let mut mismatches = Vec::new();
    let mut live: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut dead: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for item in &items {
        let (kind, identity) = match text(item, "entity").as_str() {
            "user" => ("users", text(item, "id")),
            "organization" => ("organizations", text(item, "id")),
            "membership" => (
                "memberships",
                format!("{}#{}", text(item, "org_id"), text(item, "user_id")),
            ),
            _ => continue,
        };
        let deleted = matches!(item.get("deleted"), Some(AttributeValue::Bool(true)));
        if deleted {
            if text(item, "source") != "reconcile" {
                mismatches.push(format!(
                    "{kind} {identity}: a tombstone not by the reconcile"
                ));
            }
            dead.entry(kind).or_default().insert(identity);
        } else {
            live.entry(kind).or_default().insert(identity);
        }
    }
    let ids = |list: &[Value], f: &dyn Fn(&Value) -> String| {
        list.iter().map(f).collect::<BTreeSet<String>>()
    };
    let expected_live = [
        (
            "users",
            ids(&truth.users, &|u| u["id"].as_str().unwrap().to_owned()),
        ),
        (
            "organizations",
            ids(&truth.organizations, &|o| {
                o["id"].as_str().unwrap().to_owned()
            }),
        ),
        (
            "memberships",
            ids(&truth.memberships, &|m| {
                format!(
                    "{}#{}",
                    m["organization"]["id"].as_str().unwrap(),
                    m["public_user_data"]["user_id"].as_str().unwrap()
                )
            }),
        ),
    ];
    for (kind, expected) in &expected_live {
        let have = live.remove(kind).unwrap_or_default();
        for missing in expected.difference(&have) {
            mismatches.push(format!("{kind} {missing}: live in Clerk, not in the table"));
        }
        for extra in have.difference(expected) {
            mismatches.push(format!(
                "{kind} {extra}: live in the table, gone from Clerk"
            ));
        }
    }
    for kind in ["users", "organizations"] {
        let have = dead.remove(kind).unwrap_or_default();
        if have != ghosts[kind] {
            mismatches.push(format!(
                "{kind}: tombstones {} of {} ghosts",
                have.len(),
                ghosts[kind].len()
            ));
        }
    }
    // A membership ghost is a tombstone unless its user's or organization's cascade took it.
    let member_tombstones = dead.remove("memberships").unwrap_or_default();
    for extra in member_tombstones.difference(&ghosts["memberships"]) {
        mismatches.push(format!("memberships {extra}: a tombstone that is no ghost"));
    }
    println!(
        "table vs truth: {} users, {} organizations, {} memberships live; tombstones: {} users, {} organizations, {} memberships; {} mismatches",
        expected_live[0].1.len(),
        expected_live[1].1.len(),
        expected_live[2].1.len(),
        ghosts["users"].len(),
        ghosts["organizations"].len(),
        member_tombstones.len(),
        mismatches.len()
    );
    for m in mismatches.iter().take(20) {
        println!("  {m}");
    }
    let _ = client.delete_table().table_name(&table).send().await;
}
