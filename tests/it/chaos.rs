//! Chaos delivery: a seeded Clerk history delivered the way Svix delivers it, through a proxy
//! that breaks DynamoDB calls, must leave exactly the table the history implies.
//!
//! - Every message is delivered 1–3 times under its svix-id, each time freshly signed,
//!   reordered within a window, with many deliveries in flight across several handler
//!   instances (each with its own DynamoDB client) sharing one table.
//! - Every answer other than 200 is retried with back-off, as Svix does (compressed in time).
//! - Between the handlers and DynamoDB Local, [`FaultProxy`] resets, stalls past the SDK's
//!   timeout, or throttles a fraction of the calls, before or after forwarding them.
//! - At the end the table is compared item by item with [`history::Model`].
//!
//! Size it with the environment (defaults are CI's):
//! `CHAOS_EVENTS` (2000), `CHAOS_FAULT_RATE` (0.05), `CHAOS_SEED` (20261126),
//! `CHAOS_INSTANCES` (4), `CHAOS_IN_FLIGHT` (16). `make chaos` runs the large size.

mod history;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::fault_proxy::{dynamodb_local_addr, Fault, FaultProxy, ProxyConfig};
use crate::helpers::rng::Rng;
use crate::helpers::*;
use clerk_webhooks::table::encoding;
use history::{Expect, History};
use serde_json::Value;
use tokio::sync::Semaphore;

struct Size {
    events: usize,
    fault_rate: f64,
    seed: u64,
    instances: usize,
    in_flight: usize,
}

impl Size {
    fn from_env() -> Self {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
            std::env::var(name)
                .ok()
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{name}={v} is not valid"))
                })
                .unwrap_or(default)
        }
        Self {
            events: var("CHAOS_EVENTS", 2_000),
            fault_rate: var("CHAOS_FAULT_RATE", 0.05),
            seed: var("CHAOS_SEED", 20_261_126),
            instances: var("CHAOS_INSTANCES", 4),
            in_flight: var("CHAOS_IN_FLIGHT", 16),
        }
    }
}

/// How far a delivery may move from its message's place in the history.
const REORDER_WINDOW: u64 = 40;
/// More than this many non-2xx answers for one delivery means the message is lost.
const MAX_ATTEMPTS: u32 = 40;

/// What Svix saw for one message, over all its deliveries.
#[derive(Default)]
struct Answers {
    statuses: Vec<String>,
    retried: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_delivery_leaves_exactly_the_table_the_history_implies() {
    run(Size::from_env()).await;
}

/// At 5 % the SDK's own three attempts absorb nearly every fault. At 30 % many requests run
/// out of attempts and answer 503, so Svix's redelivery is what converges the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fault_storm_is_survived_through_svix_retries() {
    run(Size {
        events: 400,
        fault_rate: 0.3,
        seed: 30,
        ..Size::from_env()
    })
    .await;
}

async fn run(size: Size) {
    let app = TestApp::spawn().await;
    let proxy = FaultProxy::start(
        "127.0.0.1:0".parse().unwrap(),
        dynamodb_local_addr(),
        ProxyConfig {
            rate: size.fault_rate,
            seed: size.seed,
            ..ProxyConfig::clean()
        },
    )
    .await;
    let handlers: Vec<_> = (0..size.instances)
        .map(|_| Arc::new(handler_for(&proxy.endpoint(), &app.table)))
        .collect();
    let start_ms = now_secs() * 1000 - 86_400_000;
    let history = history::generate(size.seed, size.events, start_ms);
    let schedule = schedule(&history, size.seed);

    let started = Instant::now();
    let answers = deliver_all(&history, &schedule, &handlers, size.in_flight, size.seed).await;
    let took = started.elapsed();

    let items = app.scan().await;
    let mismatches = compare(&history, &answers, &items);
    let report = report(
        &size,
        &history,
        &schedule,
        &answers,
        &proxy,
        items.len(),
        took,
    ) + &format!("\nchaos: mismatches {}", mismatches.len());
    // Straight to stderr, past libtest's capture: the counts belong in CI's log.
    let _ = writeln!(std::io::stderr(), "{report}");
    assert!(
        mismatches.is_empty(),
        "{} mismatches (first 25):\n{}\n{report}",
        mismatches.len(),
        mismatches
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        size.fault_rate == 0.0 || proxy.counts().faults_total() > 0,
        "no fault was injected: the run proves nothing about faults"
    );
}

/// The order of deliveries: message indices, each 1–3 times, moved within the window.
fn schedule(history: &History, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed ^ 0x5EED);
    let mut slots: Vec<(u64, u64, usize)> = Vec::new();
    for i in 0..history.messages.len() {
        let copies = rng.between(1, 3);
        let mut at = i as u64;
        for _ in 0..copies {
            at += rng.below(REORDER_WINDOW);
            slots.push((at, rng.next_u64(), i));
        }
    }
    slots.sort_unstable();
    slots.into_iter().map(|(_, _, i)| i).collect()
}

async fn deliver_all(
    history: &History,
    schedule: &[usize],
    handlers: &[Arc<clerk_webhooks::handler::Handler>],
    in_flight: usize,
    seed: u64,
) -> Vec<Answers> {
    let answers: Arc<Vec<Mutex<Answers>>> = Arc::new(
        (0..history.messages.len())
            .map(|_| Mutex::new(Answers::default()))
            .collect(),
    );
    let gate = Arc::new(Semaphore::new(in_flight));
    let mut tasks = tokio::task::JoinSet::new();
    for (n, &i) in schedule.iter().enumerate() {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let message = &history.messages[i];
        let (body, svix_id) = (message.body.clone(), message.svix_id.clone());
        let handlers = handlers.to_vec();
        let answers = answers.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let mut rng = Rng::new(seed ^ (n as u64).wrapping_mul(0x9E37_79B9));
            for attempt in 0..MAX_ATTEMPTS {
                // Each attempt may land on any instance, signed afresh.
                let handler = rng.pick(&handlers);
                let reply = send(handler, signed(&body, &svix_id)).await;
                if reply.status.is_success() {
                    let status = reply.body["status"].as_str().unwrap_or("?").to_owned();
                    answers[i].lock().unwrap().statuses.push(status);
                    return;
                }
                assert_eq!(
                    reply.status, 503,
                    "{svix_id}: only DynamoDB trouble may refuse a good message: {}",
                    reply.body
                );
                answers[i].lock().unwrap().retried += 1;
                // Svix backs off for seconds to hours; the same shape, in milliseconds.
                let backoff = (10u64 << attempt.min(6)).min(500);
                tokio::time::sleep(Duration::from_millis(backoff + rng.below(backoff))).await;
            }
            panic!("{svix_id} was never accepted after {MAX_ATTEMPTS} attempts: lost");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a delivery panicked");
    }
    Arc::try_unwrap(answers)
        .ok()
        .unwrap()
        .into_iter()
        .map(|a| a.into_inner().unwrap())
        .collect()
}

/// Every difference between the table and the model, and every broken delivery rule.
fn compare(history: &History, answers: &[Answers], items: &[Item]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut events = BTreeSet::new();
    let mut entities = BTreeMap::new();
    for item in items {
        let json = Value::Object(encoding::to_json(item).expect("items convert to JSON"));
        let (pk, sk) = (s(item, "pk"), s(item, "sk"));
        match pk.strip_prefix("EVENT#") {
            Some(svix_id) => {
                events.insert(svix_id.to_owned());
            }
            None => {
                entities.insert((pk, sk), json);
            }
        }
    }

    // Exactly once: one `applied` at most, and the event record exists exactly when the
    // message was applied (a stale message never leaves one).
    for (message, answer) in history.messages.iter().zip(answers) {
        let id = &message.svix_id;
        let count = |s: &str| answer.statuses.iter().filter(|a| *a == s).count();
        let (applied, duplicate, stale) = (count("applied"), count("duplicate"), count("stale"));
        if applied + duplicate + stale != answer.statuses.len() {
            problems.push(format!("{id}: unexpected answers {:?}", answer.statuses));
        }
        if applied > 1 {
            problems.push(format!("{id}: applied {applied} times"));
        }
        if stale > 0 && applied + duplicate > 0 {
            problems.push(format!(
                "{id}: both stale and applied: {:?}",
                answer.statuses
            ));
        }
        if (applied + duplicate > 0) != events.contains(id) {
            problems.push(format!(
                "{id} ({}): answers {:?} but event record present = {}",
                message.event_type,
                answer.statuses,
                events.contains(id)
            ));
        }
    }
    let known: BTreeSet<&str> = history
        .messages
        .iter()
        .map(|m| m.svix_id.as_str())
        .collect();
    for id in &events {
        if !known.contains(id.as_str()) {
            problems.push(format!("event record for unknown message {id}"));
        }
    }

    // Item by item.
    for (key, expect) in &history.model.items {
        let item = entities.remove(key);
        if let Some(problem) = check(expect, item.as_ref()) {
            problems.push(format!("{} / {}: {problem}", key.0, key.1));
        }
    }
    for ((pk, sk), item) in entities {
        problems.push(format!(
            "{pk} / {sk}: in the table but not in the model (deleted = {})",
            item.get("deleted").is_some()
        ));
    }
    problems
}

fn check(expect: &Expect, item: Option<&Value>) -> Option<String> {
    let version = |item: &Value| item["version"].as_i64();
    let svix_id = |item: &Value| item["last_svix_id"].as_str().unwrap_or("").to_owned();
    let deleted = |item: &Value| item["deleted"] == Value::Bool(true);
    match (expect, item) {
        (Expect::GoneOrTombstone { .. }, None) => None,
        (_, None) => Some(format!("missing; expected {expect:?}")),
        (
            Expect::Live {
                version: v,
                svix_ids,
                data,
            },
            Some(item),
        ) => {
            if deleted(item) {
                Some(format!("a tombstone; expected live at version {v}"))
            } else if version(item) != Some(*v) {
                Some(format!("version {:?}, expected {v}", version(item)))
            } else if !svix_ids.contains(&svix_id(item)) {
                Some(format!(
                    "last_svix_id {}, expected one of {svix_ids:?}",
                    svix_id(item)
                ))
            } else if &item["data"] != data {
                Some(format!("data differs at version {v}"))
            } else {
                None
            }
        }
        (
            Expect::Tombstone {
                version: v,
                svix_id: id,
            },
            Some(item),
        ) => {
            if !deleted(item) {
                Some(format!(
                    "live at version {:?}; expected a tombstone",
                    version(item)
                ))
            } else if version(item) != Some(*v) || svix_id(item) != *id {
                Some(format!(
                    "tombstone {:?} by {}, expected {v} by {id}",
                    version(item),
                    svix_id(item)
                ))
            } else if item.get("data").is_some() {
                Some("a tombstone that kept its data".into())
            } else {
                None
            }
        }
        (Expect::GoneOrTombstone { versions }, Some(item)) => {
            if !deleted(item) {
                Some("live, but its organization or user was deleted: resurrected".into())
            } else if !version(item).is_some_and(|v| versions.contains(&v)) {
                Some(format!(
                    "tombstone at {:?}, not one of the deletes {versions:?}",
                    version(item)
                ))
            } else {
                None
            }
        }
    }
}

fn report(
    size: &Size,
    history: &History,
    schedule: &[usize],
    answers: &[Answers],
    proxy: &FaultProxy,
    items: usize,
    took: Duration,
) -> String {
    let mut outcome: BTreeMap<&str, usize> = BTreeMap::new();
    for answer in answers {
        for status in &answer.statuses {
            *outcome.entry(status.as_str()).or_default() += 1;
        }
    }
    let retried: u32 = answers.iter().map(|a| a.retried).sum();
    let counts = proxy.counts();
    let faults: Vec<String> = Fault::ALL
        .iter()
        .zip(counts.faults)
        .map(|(fault, n)| format!("{fault:?} {n}"))
        .collect();
    format!(
        "chaos: seed {} | {} events, {} deliveries, {} instances, {} in flight, fault rate {}\n\
         chaos: answers {outcome:?}; 503s retried {retried}\n\
         chaos: DynamoDB calls {} ({} forwarded), faults {} [{}]\n\
         chaos: {} model keys, {items} items in the table, {:.1} s",
        size.seed,
        history.messages.len(),
        schedule.len(),
        size.instances,
        size.in_flight,
        size.fault_rate,
        counts.requests,
        counts.forwarded,
        counts.faults_total(),
        faults.join(", "),
        history.model.items.len(),
        took.as_secs_f64()
    )
}

/// The oracle bites: after a clean in-order delivery the comparison is empty, and each kind of
/// damage to the table (a resurrected user, a changed version, a lost event record, an item
/// nothing wrote) is reported at its key.
#[tokio::test]
async fn the_comparison_reports_every_kind_of_damage() {
    use aws_sdk_dynamodb::types::AttributeValue;

    let app = TestApp::spawn().await;
    let history = history::generate(7, 300, now_secs() * 1000 - 86_400_000);
    let mut answers = Vec::new();
    for message in &history.messages {
        let status = app.deliver(&message.body, &message.svix_id).await;
        answers.push(Answers {
            statuses: vec![status],
            retried: 0,
        });
    }
    let clean = compare(&history, &answers, &app.scan().await);
    assert!(clean.is_empty(), "in-order delivery: {clean:#?}");

    let key_of = |wanted: fn(&Expect) -> bool| {
        let (key, _) = history
            .model
            .items
            .iter()
            .find(|(_, expect)| wanted(expect))
            .expect("the history has one");
        key.clone()
    };
    let tombstone = key_of(|e| matches!(e, Expect::Tombstone { .. }));
    let live = key_of(|e| matches!(e, Expect::Live { .. }));
    let put = |item: Item| {
        app.client
            .put_item()
            .table_name(&app.table)
            .set_item(Some(item))
            .send()
    };
    let mut stored = app.get(&live.0, &live.1).await.unwrap();

    // A live copy where the model has a tombstone.
    let mut resurrected = stored.clone();
    resurrected.insert("pk".into(), AttributeValue::S(tombstone.0.clone()));
    resurrected.insert("sk".into(), AttributeValue::S(tombstone.1.clone()));
    put(resurrected).await.unwrap();
    // A version the history never reached.
    stored.insert("version".into(), AttributeValue::N("1".into()));
    put(stored.clone()).await.unwrap();
    // An item no event wrote.
    stored.insert("pk".into(), AttributeValue::S("USER#user_nobody".into()));
    put(stored).await.unwrap();
    // A lost event record.
    let first = &history.messages[0].svix_id;
    app.client
        .delete_item()
        .table_name(&app.table)
        .key("pk", AttributeValue::S(format!("EVENT#{first}")))
        .key("sk", AttributeValue::S("EVENT".into()))
        .send()
        .await
        .unwrap();

    let found = compare(&history, &answers, &app.scan().await);
    let mentions = |text: &str| found.iter().filter(|p| p.contains(text)).count();
    assert_eq!(found.len(), 4, "{found:#?}");
    assert_eq!(
        mentions(&format!("{} / {}: live", tombstone.0, tombstone.1)),
        1
    );
    assert_eq!(
        mentions(&format!("{} / {}: version Some(1)", live.0, live.1)),
        1
    );
    assert_eq!(
        mentions("USER#user_nobody / PROFILE: in the table but not in the model"),
        1
    );
    assert_eq!(mentions(&format!("{first} (")), 1);
}
