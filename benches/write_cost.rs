//! Write request units (WRU) per event type, from AWS's published sizing rules
//! (`encoding::item_size`, one WRU per started KB, twice inside a transaction, one more per KB
//! of the projected index entry) applied to the items the planner really writes, for every
//! `events/` fixture and a large user. Printed next to the same items in the earlier encoding
//! (`data` a native map, `gsi1` projecting ALL), and against two floors measured on the same
//! items:
//!
//! - the design's floor: the event record (2) + an entity under 1 KB in the transaction (2) +
//!   one index write (1) when the item has an index entry, and one per user lookup index
//!   (username, external id) the item is in;
//! - the object's floor: the same, with the entity as small as it can be and still hold the
//!   object exactly (its keys and compressed `data`, nothing else).
//!
//! Condition checks on parents (memberships, sessions, domains) are listed, not counted: they
//! cost the same in either encoding. DynamoDB Local's own `ConsumedCapacity` is not AWS's
//! figure, so nothing here asks it.
//!
//! cargo bench --bench write_cost

use clerk_webhooks::event::Event;
use clerk_webhooks::plan::Settings;
use clerk_webhooks::plan::{plan, Write};
use clerk_webhooks::table::attr::DATA;
use clerk_webhooks::table::encoding::{self, item_size, write_units, Item};
use clerk_webhooks::table::{GSI1_PROJECTED, LOOKUP_INDEXES};
use serde_json::{json, Value};

const NOW_MS: i64 = 1_716_883_300_000;

/// What one event's writes cost, by the rules above.
#[derive(Default)]
struct Cost {
    /// The entity item's size, bytes (0 when the event writes none).
    entity_bytes: usize,
    /// Transaction and index WRU.
    wru: usize,
    /// Parent condition checks in the transaction.
    checks: usize,
    /// The design's floor and the object's floor.
    floor: usize,
    object_floor: usize,
}

/// The item as the earlier encoding wrote it: `data` a native map.
fn earlier(item: &Item) -> Item {
    let mut item = item.clone();
    if let Some(text) = encoding::data_text(&item).unwrap() {
        let value: Value = serde_json::from_str(&text).unwrap();
        item.insert(
            DATA.into(),
            serde_dynamo::to_attribute_value(value).unwrap(),
        );
    }
    item
}

/// The index entry as `gsi1` projects it: both keys of the table and of the index, and
/// [`GSI1_PROJECTED`]; or the whole item (`ALL`).
fn index_entry(item: &Item, all: bool) -> Item {
    item.iter()
        .filter(|(name, _)| {
            all || ["pk", "sk", "gsi1pk", "gsi1sk"].contains(&name.as_str())
                || GSI1_PROJECTED.contains(&name.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The smallest item that still holds the object exactly: keys and compressed `data`.
fn minimal(item: &Item) -> Item {
    item.iter()
        .filter(|(name, _)| ["pk", "sk", DATA].contains(&name.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn cost(event: &Event, earlier_encoding: bool) -> Cost {
    let planned = plan(
        event,
        "msg_2jJ7cW4q5ZLz1Lq9fYqkVwN3Xyz",
        &Settings::default(),
        NOW_MS,
    )
    .expect("a synced type");
    let mut cost = Cost::default();
    let mut indexed = false;
    for write in &planned.writes {
        let item = match write {
            Write::RecordEvent(item) => {
                cost.wru += 2 * write_units(item_size(item));
                cost.floor += 2;
                cost.object_floor += 2;
                continue;
            }
            Write::Put { item, .. } | Write::Refresh { item, .. } => item,
            Write::RequireNotDeleted(_) => {
                cost.checks += 1;
                continue;
            }
        };
        let item = if earlier_encoding {
            earlier(item)
        } else {
            item.clone()
        };
        let size = item_size(&item);
        if cost.entity_bytes == 0 {
            cost.entity_bytes = size;
        }
        cost.wru += 2 * write_units(size);
        cost.floor += 2;
        cost.object_floor += 2 * write_units(item_size(&minimal(&item)));
        if item.contains_key("gsi1pk") {
            cost.wru += write_units(item_size(&index_entry(&item, earlier_encoding)));
            indexed = true;
        }
        // The sparse, keys-only user lookup indexes: the table's keys and the index's key.
        for lookup in LOOKUP_INDEXES {
            if item.contains_key(lookup.key) {
                let entry: Item = item
                    .iter()
                    .filter(|(name, _)| ["pk", "sk", lookup.key].contains(&name.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                cost.wru += write_units(item_size(&entry));
                cost.floor += 1;
                cost.object_floor += 1;
            }
        }
    }
    if indexed {
        cost.floor += 1;
        cost.object_floor += 1;
    }
    cost
}

/// `user.updated` with what a long-lived account gathers: ten more addresses, five external
/// accounts, and metadata in all three fields (2, 4 and 4 KB).
fn large_user() -> Vec<u8> {
    let path = format!("{}/events/user.updated.json", env!("CARGO_MANIFEST_DIR"));
    let mut body: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let data = &mut body["data"];
    let first = data["email_addresses"][0].clone();
    for i in 0..10 {
        let mut address = first.clone();
        address["id"] = json!(format!("idn_2g7np7Hrk0SN6kj5EDMLDaK{i:05}"));
        address["email_address"] = json!(format!("example.{i}@work{i}.example.org"));
        data["email_addresses"]
            .as_array_mut()
            .unwrap()
            .push(address);
    }
    let accounts: Vec<Value> = (0..5)
        .map(|i| {
            json!({"object": "external_account", "id": format!("eac_2g7np7Hrk0SN6kj5EDMLDa{i:04}"),
                   "provider": "oauth_google", "identification_id": format!("idn_{i:027}"),
                   "provider_user_id": format!("1{i:020}"), "approved_scopes": "email profile openid",
                   "email_address": format!("example.{i}@gmail.com"), "first_name": "Example",
                   "last_name": "Example", "image_url": "https://img.clerk.com/xxxxxx",
                   "username": null, "public_metadata": {}, "label": null,
                   "verification": {"status": "verified", "strategy": "oauth_google",
                                    "attempts": null, "expire_at": 1_716_883_200_000_i64}})
        })
        .collect();
    data["external_accounts"] = json!(accounts);
    let metadata = |bytes: usize, seed: u64| {
        let mut map = serde_json::Map::new();
        let mut n = seed;
        while serde_json::to_string(&map).unwrap().len() < bytes {
            n = n
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            map.insert(
                format!("setting_{}", map.len()),
                json!({"enabled": n.is_multiple_of(2), "value": format!("{:x}", n >> 20), "updated": 1_716_000_000 + (n % 1000) as i64}),
            );
        }
        Value::Object(map)
    };
    data["public_metadata"] = metadata(2 * 1024, 1);
    data["private_metadata"] = metadata(4 * 1024, 2);
    data["unsafe_metadata"] = metadata(4 * 1024, 3);
    serde_json::to_vec(&body).unwrap()
}

fn main() {
    let dir = format!("{}/events", env!("CARGO_MANIFEST_DIR"));
    let mut fixtures: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".json")?
                .to_owned();
            Some((name, std::fs::read(&path).ok()?))
        })
        .collect();
    fixtures.sort();
    fixtures.push(("a large user (user.updated, 24 KB)".into(), large_user()));
    println!(
        "| event | entity item before → after | WRU before | WRU after | floor | after ÷ floor | object's floor | after ÷ object's floor | parent checks |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut worst = 0.0f64;
    for (name, body) in fixtures {
        let Ok(event) = Event::decode(&body, NOW_MS) else {
            continue;
        };
        if plan(&event, "msg_x", &Settings::default(), NOW_MS).is_none() {
            continue;
        }
        let (before, after) = (cost(&event, true), cost(&event, false));
        let ratio = after.wru as f64 / after.floor as f64;
        let object_ratio = after.wru as f64 / after.object_floor as f64;
        worst = worst.max(object_ratio);
        println!(
            "| {name} | {} → {} B | {} | **{}** | {} | {ratio:.2}× | {} | {object_ratio:.2}× | {} |",
            before.entity_bytes,
            after.entity_bytes,
            before.wru,
            after.wru,
            after.floor,
            after.object_floor,
            after.checks
        );
    }
    println!("\nworst after ÷ object's floor: {worst:.2}×");
    compression();
}

/// gzip's size and CPU at levels 1, 6 (the one `encode_data` uses) and 9 on `user.created`'s
/// `data`, against copying the same bytes (the floor of any encoding that keeps the text).
fn compression() {
    use std::hint::black_box;
    use std::io::Write;
    use std::time::Instant;
    let path = format!("{}/events/user.created.json", env!("CARGO_MANIFEST_DIR"));
    let body: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let text = body["data"].to_string();
    let per_call = |f: &dyn Fn() -> usize| {
        let rounds = 2_000;
        let started = Instant::now();
        let mut bytes = 0;
        for _ in 0..rounds {
            bytes = black_box(f());
        }
        (started.elapsed().as_secs_f64() * 1e6 / rounds as f64, bytes)
    };
    let (floor, _) = per_call(&|| black_box(text.as_bytes().to_vec()).len());
    println!(
        "\n`data` of user.created: {} B of JSON; copying it: {floor:.2} µs",
        text.len()
    );
    println!("| gzip level | bytes | encode µs | × copy |");
    println!("| --- | ---: | ---: | ---: |");
    for level in [1, 6, 9] {
        let (micros, bytes) = per_call(&|| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            gz.write_all(text.as_bytes()).unwrap();
            gz.finish().unwrap().len()
        });
        println!(
            "| {level} | {bytes} | {micros:.1} | {:.0}× |",
            micros / floor
        );
    }
    let mut item = Item::new();
    item.insert(
        DATA.into(),
        aws_sdk_dynamodb::types::AttributeValue::B(encoding::encode_data(&text).into()),
    );
    let (micros, _) = per_call(&|| encoding::data_text(&item).unwrap().unwrap().len());
    println!("decode (gunzip, level 6): {micros:.1} µs");
}
