//! How a Clerk object becomes DynamoDB attribute values, and back: the one encoding every
//! writer (webhook, backfill, reconcile) and every reader (notifier, reconcile, `make scan`)
//! uses.
//!
//! - **`data`**, the whole object, is the JSON text Clerk sent, gzip-compressed, in a Binary
//!   attribute. Any JSON fits (any depth, any number, any key) and decoding gives back
//!   exactly the bytes Clerk sent. gzip rather than zstd: every language's standard library
//!   reads it (`zlib.gunzipSync`, `gzip.decompress`, `gunzip`), and on Clerk's payloads it
//!   compresses as well as zstd's default level (BENCHMARKS.md, "Write cost and the item encoding").
//! - **Top-level attributes** (`email`, names, `public_metadata`, …) are native DynamoDB
//!   values, converted from Clerk's exact JSON text by [`attribute`], which refuses what
//!   DynamoDB cannot hold exactly ([`Unfit`]) so the planner can leave that field out
//!   instead of failing the write.
//! - Items written before this encoding hold `data` as a native map; [`data_text`] reads
//!   both.

use std::collections::HashMap;
use std::io::{Read, Write};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::attr::DATA;
use crate::json::RawObject;

/// One item as DynamoDB stores it.
pub type Item = HashMap<String, AttributeValue>;

/// An item as JSON ([`to_json`]), for bookkeeping items and readers that want one value.
pub type JsonItem = Map<String, Value>;

/// How deep an attribute's maps and lists may nest, a top-level map or list being 1: DynamoDB
/// allows 32 levels counting the item itself. Pinned against DynamoDB Local by
/// `tests/it/encoding.rs`.
pub const MAX_DEPTH: usize = 31;
/// DynamoDB's number precision, in significant digits.
const MAX_DIGITS: usize = 38;
/// The largest item DynamoDB stores, names and values together.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Why a JSON value cannot be a native DynamoDB attribute. Names the rule, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unfit {
    #[error("nested deeper than DynamoDB's 32 levels")]
    TooDeep,
    #[error("a number DynamoDB cannot hold (over 38 digits, or beyond 1E-130..1E+126)")]
    Number,
    #[error("an empty map key")]
    EmptyKey,
    /// JSON allows `\ud800` alone; a DynamoDB string is UTF-8 and cannot hold it.
    #[error("a string with an unpaired surrogate escape")]
    Text,
    #[error("the item would exceed DynamoDB's 400 KB")]
    TooLarge,
}

impl Unfit {
    /// A short label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooDeep => "too_deep",
            Self::Number => "number",
            Self::EmptyKey => "empty_key",
            Self::Text => "text",
            Self::TooLarge => "too_large",
        }
    }
}

/// The native attribute value of one JSON value, exactly as its text says (numbers keep
/// every digit), or why DynamoDB cannot hold it.
///
/// Reads the text with `serde_json`'s raw values, one level at a time, so no depth of input
/// can exhaust the stack: the walk stops at [`MAX_DEPTH`].
pub fn attribute(json: &RawValue) -> Result<AttributeValue, Unfit> {
    attribute_at(json, 1)
}

fn attribute_at(json: &RawValue, depth: usize) -> Result<AttributeValue, Unfit> {
    let text = json.get();
    // The text is valid JSON (serde_json produced the raw value), so its first byte says
    // what it is.
    Ok(match text.as_bytes().first() {
        Some(b'{') => {
            if depth > MAX_DEPTH {
                return Err(Unfit::TooDeep);
            }
            // Fails only on a key with an unpaired surrogate escape.
            let map = RawObject::parse(text).ok_or(Unfit::Text)?.0;
            let mut out = HashMap::with_capacity(map.len());
            for (key, value) in map {
                if key.is_empty() {
                    return Err(Unfit::EmptyKey);
                }
                out.insert(key, attribute_at(&value, depth + 1)?);
            }
            AttributeValue::M(out)
        }
        Some(b'[') => {
            if depth > MAX_DEPTH {
                return Err(Unfit::TooDeep);
            }
            let list: Vec<Box<RawValue>> =
                serde_json::from_str(text).expect("a raw array is an array");
            AttributeValue::L(
                list.iter()
                    .map(|v| attribute_at(v, depth + 1))
                    .collect::<Result<_, _>>()?,
            )
        }
        Some(b'"') => AttributeValue::S(serde_json::from_str(text).map_err(|_| Unfit::Text)?),
        Some(b't') => AttributeValue::Bool(true),
        Some(b'f') => AttributeValue::Bool(false),
        Some(b'n') => AttributeValue::Null(true),
        _ => {
            if !fits_number(text) {
                return Err(Unfit::Number);
            }
            AttributeValue::N(text.to_owned())
        }
    })
}

/// Whether a JSON number's text is a number DynamoDB stores exactly: at most 38 significant
/// digits, and zero or a magnitude from 1E-130 up to (not including) 1E+126.
pub fn fits_number(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, "0"),
    };
    // Saturates: an exponent too long for an i64 is out of range whatever the digits.
    let exponent: i64 = match exponent.strip_prefix('+').unwrap_or(exponent).parse() {
        Ok(e) => e,
        Err(_) => return mantissa.bytes().all(|b| b == b'0' || b == b'.'),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let Some(first) = digits.iter().position(|&d| d != b'0') else {
        return true; // zero, however written
    };
    let last = digits
        .iter()
        .rposition(|&d| d != b'0')
        .expect("a non-zero digit");
    if last - first + 1 > MAX_DIGITS {
        return false;
    }
    // The value is 0.d1d2… × 10^magnitude, with d1 the first significant digit.
    let magnitude = (int.len() as i64 - first as i64).saturating_add(exponent);
    // 1E-130 is 0.1 × 10^-129; 1E+126 is 0.1 × 10^127.
    (-129..=126).contains(&magnitude)
}

/// `data`'s stored form: the JSON text, gzip-compressed.
pub fn encode_data(json: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 3 + 32),
        flate2::Compression::default(),
    );
    gz.write_all(json.as_bytes())
        .expect("writing to a Vec cannot fail");
    gz.finish().expect("writing to a Vec cannot fail")
}

/// Why an item's `data` could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("data is not gzip-compressed UTF-8 JSON text")]
    NotGzip,
    #[error("data is neither a binary nor a map attribute")]
    UnknownForm,
}

/// The JSON text of an item's `data`, from either form: gzip in a Binary attribute (today's
/// encoding), or a native map (items written before it). `None` when the item has no
/// `data` (tombstones, bookkeeping items).
pub fn data_text(item: &Item) -> Result<Option<String>, DataError> {
    match item.get(DATA) {
        None => Ok(None),
        Some(AttributeValue::B(blob)) => {
            let mut text = String::new();
            flate2::read::GzDecoder::new(blob.as_ref())
                .read_to_string(&mut text)
                .map_err(|_| DataError::NotGzip)?;
            Ok(Some(text))
        }
        Some(map @ AttributeValue::M(_)) => {
            let value: Value = serde_dynamo::from_attribute_value(map.clone())
                .map_err(|_| DataError::UnknownForm)?;
            Ok(Some(value.to_string()))
        }
        Some(_) => Err(DataError::UnknownForm),
    }
}

/// The item as JSON, `data` decoded (either form) into a JSON value: for readers that want
/// one value (tests, `make scan`). Numbers follow `serde_json` (an f64 past 2^53); for the
/// exact text, use [`data_text`].
pub fn to_json(item: &Item) -> Result<JsonItem, DataError> {
    let mut json = Map::new();
    for (name, value) in item {
        let value = if name == DATA {
            let text = data_text(item)?.expect("data is present");
            serde_json::from_str(&text).map_err(|_| DataError::NotGzip)?
        } else {
            serde_dynamo::from_attribute_value(value.clone()).map_err(|_| DataError::UnknownForm)?
        };
        json.insert(name.clone(), value);
    }
    Ok(json)
}

/// An item from JSON whose values DynamoDB holds as they are (keys, strings, small numbers,
/// flags): bookkeeping items and tests. Entity items go through [`attribute`].
pub fn from_json(json: &JsonItem) -> Item {
    serde_dynamo::to_item(json).expect("a JSON map converts to an item")
}

/// A string attribute's value.
pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name)? {
        AttributeValue::S(s) => Some(s),
        _ => None,
    }
}

/// A number attribute's value, when it is an integer.
pub fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name)? {
        AttributeValue::N(n) => n.parse().ok(),
        _ => None,
    }
}

/// A boolean attribute's value.
pub fn flag(item: &Item, name: &str) -> Option<bool> {
    match item.get(name)? {
        AttributeValue::Bool(b) => Some(*b),
        _ => None,
    }
}

/// The size DynamoDB bills an item at, by AWS's published rules: each attribute name's UTF-8
/// length plus its value's size (strings by UTF-8 length, binaries by length, numbers about
/// one byte per two significant digits plus one, 1 byte for a boolean or null, and 3 bytes
/// plus 1 per element for maps and lists, map keys counted as names).
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| attribute_size(name, value))
        .sum()
}

/// One attribute's share of [`item_size`]: its name and its value.
pub fn attribute_size(name: &str, value: &AttributeValue) -> usize {
    name.len() + value_size(value)
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| k.len() + value_size(v) + 1)
                .sum::<usize>()
        }
        AttributeValue::L(list) => 3 + list.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

fn number_size(text: &str) -> usize {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let significant = match digits.iter().position(|&d| d != b'0') {
        Some(first) => {
            let last = digits.iter().rposition(|&d| d != b'0').unwrap_or(first);
            last - first + 1
        }
        None => 1,
    };
    significant.div_ceil(2) + 1
}

/// Write request units for one write of an item of `bytes`: one per started KB.
pub fn write_units(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn numbers_fit_by_digits_and_magnitude_not_by_how_they_are_written() {
        for ok in [
            "0",
            "-0",
            "0.000",
            "0e999999999999999999999",
            "1",
            "-1",
            "1e125",
            "9.9999999999999999999999999999999999999e125",
            "1e-130",
            "1E-130",
            "0.0001e-126",
            "12345678901234567890123456789012345678",
            "1234567890123456789012345678901234567800000",
            "-0.00000000000000000000000000000000000000000012345",
        ] {
            assert!(fits_number(ok), "{ok}");
        }
        for bad in [
            "1e126",
            "1e300",
            "1e-131",
            "1e-200",
            "0.01e-129",
            "123456789012345678901234567890123456789",
            "1.23456789012345678901234567890123456789",
            "1e99999999999999999999999",
        ] {
            assert!(!fits_number(bad), "{bad}");
        }
    }

    #[test]
    fn values_convert_exactly_or_say_why_not() {
        let av = attribute(&raw(
            r#"{"a":[1,"x",true,null,{"b":12345678901234567890123}]}"#,
        ))
        .unwrap();
        let AttributeValue::M(map) = av else { panic!() };
        let AttributeValue::L(list) = &map["a"] else {
            panic!()
        };
        assert_eq!(list[0], AttributeValue::N("1".into()));
        assert_eq!(list[1], AttributeValue::S("x".into()));
        let AttributeValue::M(inner) = &list[4] else {
            panic!()
        };
        assert_eq!(
            inner["b"],
            AttributeValue::N("12345678901234567890123".into())
        );

        assert_eq!(attribute(&raw(r#"{"":1}"#)), Err(Unfit::EmptyKey));
        assert_eq!(attribute(&raw(r#"{"a":[1e300]}"#)), Err(Unfit::Number));
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(attribute(&raw(&deep(MAX_DEPTH))).is_ok());
        assert_eq!(attribute(&raw(&deep(MAX_DEPTH + 1))), Err(Unfit::TooDeep));
        // Far past serde_json's own recursion limit of 128: still an answer, not a crash.
        assert_eq!(attribute(&raw(&deep(100_000))), Err(Unfit::TooDeep));
        assert_eq!(
            attribute(&raw(r#""caf\u00e9""#)),
            Ok(AttributeValue::S("café".into()))
        );
        assert_eq!(attribute(&raw(r#"{"a":"\ud800"}"#)), Err(Unfit::Text));
        assert_eq!(attribute(&raw(r#"{"\ud800":1}"#)), Err(Unfit::Text));
    }

    #[test]
    fn data_round_trips_byte_for_byte_and_old_maps_still_read() {
        let text = r#"{"id":"user_1", "n": 1e300, "deep":[[[[[]]]]], "":{"k":1.50}}"#;
        let mut item = Item::new();
        item.insert(DATA.into(), AttributeValue::B(encode_data(text).into()));
        assert_eq!(data_text(&item).unwrap().as_deref(), Some(text));

        let old = serde_json::json!({"id": "user_1", "n": 2});
        item.insert(DATA.into(), serde_dynamo::to_attribute_value(&old).unwrap());
        let back: Value = serde_json::from_str(&data_text(&item).unwrap().unwrap()).unwrap();
        assert_eq!(back, old);
        assert_eq!(to_json(&item).unwrap()[DATA], old);

        item.insert(DATA.into(), AttributeValue::B(b"not gzip".to_vec().into()));
        assert_eq!(data_text(&item), Err(DataError::NotGzip));
        assert_eq!(data_text(&Item::new()), Ok(None));
    }

    #[test]
    fn sizes_follow_the_published_rules() {
        let item: Item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("USER#u".into())),
            ("n".to_owned(), AttributeValue::N("12345".into())),
            ("b".to_owned(), AttributeValue::Bool(true)),
            (
                "m".to_owned(),
                AttributeValue::M(HashMap::from([(
                    "k".to_owned(),
                    AttributeValue::S("vv".into()),
                )])),
            ),
        ]);
        // pk 2+6, n 1+(3+1), b 1+1, m 1+(3 + 1+2+1)
        assert_eq!(item_size(&item), 8 + 5 + 2 + 8);
        assert_eq!(write_units(0), 1);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
    }
}
