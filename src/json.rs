//! JSON read as exact text: an object's entries each kept as its own raw text, one level at a
//! time. No depth of nesting can exhaust the stack, and no number loses a digit, because
//! nothing below the level asked for is ever built. Used by the event decoder (`data` kept
//! byte for byte) and the item encoding (attributes converted from the exact text).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A JSON object's entries in their order, each value as its exact text. Serializes back the
/// same way: the values' texts are written unchanged.
#[derive(Debug, Clone)]
pub(crate) struct RawObject(pub(crate) Vec<(String, Box<RawValue>)>);

impl RawObject {
    /// `None` unless `text` is a JSON object (or a key has an unpaired surrogate escape,
    /// which a Rust string cannot hold).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The value of `key` (the last, if the object names it twice, as JSON readers do).
    pub(crate) fn get(&self, key: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawObject, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    entries.push(entry);
                }
                Ok(RawObject(entries))
            }
        }
        d.deserialize_map(Visitor)
    }
}

impl Serialize for RawObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// The string at `path` (`["organization", "id"]`) inside a JSON object's text; `None` when
/// a step is absent or of another type.
pub(crate) fn text_at(json: &RawValue, path: &[&str]) -> Option<String> {
    let mut current = json.to_owned();
    for key in path {
        current = RawObject::parse(current.get())?.get(key)?.to_owned();
    }
    serde_json::from_str(current.get()).ok()
}

/// Valid JSON text without its insignificant whitespace: every string, number and literal
/// exactly as it was. For line-delimited output, whatever layout the text came in (Clerk
/// sends compact JSON; the example events in `events/` are indented).
pub(crate) fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_their_values_text_and_order() {
        let text = r#"{"b": 1.50, "a": {"deep": [1e300]}, "b": "last"}"#;
        let object = RawObject::parse(text).unwrap();
        assert_eq!(object.get("a").unwrap().get(), r#"{"deep": [1e300]}"#);
        assert_eq!(object.get("b").unwrap().get(), r#""last""#);
        assert_eq!(
            serde_json::to_string(&object).unwrap(),
            r#"{"b":1.50,"a":{"deep": [1e300]},"b":"last"}"#
        );
        assert!(RawObject::parse("[1]").is_none());
        let json = RawValue::from_string(r#"{"o":{"id":"org_1"},"n":1}"#.into()).unwrap();
        assert_eq!(text_at(&json, &["o", "id"]).as_deref(), Some("org_1"));
        assert_eq!(text_at(&json, &["n"]), None);
        assert_eq!(text_at(&json, &["o", "missing"]), None);
    }

    #[test]
    fn compact_drops_layout_and_keeps_every_value() {
        let text = "{\n  \"a\": [1e400, 2 ],\n\t\"b\": \"x \\\" y\\n\" }\r\n";
        assert_eq!(compact(text), r#"{"a":[1e400,2],"b":"x \" y\n"}"#);
        assert_eq!(compact(r#""\\""#), r#""\\""#);
    }
}
