//! A Clerk object exactly as it was sent.

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::json::RawObject;

/// A Clerk object exactly as it was sent: its JSON text, byte for byte, and its top-level
/// fields, each as its own exact text. Nothing is parsed deeper than the planner needs, so
/// no depth, number or key that JSON allows can fail here.
#[derive(Debug, Clone)]
pub struct Data {
    text: Box<RawValue>,
    fields: RawObject,
}

impl Data {
    /// `None` unless `text` is a JSON object.
    pub fn parse(text: Box<RawValue>) -> Option<Self> {
        let fields = RawObject::parse(text.get())?;
        Some(Self { text, fields })
    }

    /// The object's JSON text, exactly as received.
    pub fn text(&self) -> &str {
        self.text.get()
    }

    /// A top-level field's exact text (the last, if the object names it twice).
    pub fn field(&self, name: &str) -> Option<&RawValue> {
        self.fields.get(name)
    }

    /// The same object without the top-level fields `names`, and with `replace`'s fields in
    /// place of those of the same name; every other field keeps its exact text.
    pub fn edited(&self, names: &[&str], replace: &[(&str, Data)]) -> Self {
        let fields = RawObject(
            self.fields
                .0
                .iter()
                .filter(|(key, _)| !names.contains(&key.as_str()))
                .map(
                    |(key, value)| match replace.iter().find(|(name, _)| name == key) {
                        Some((_, data)) => (key.clone(), data.text.clone()),
                        None => (key.clone(), value.clone()),
                    },
                )
                .collect(),
        );
        let text = serde_json::to_string(&fields).expect("raw JSON values serialize");
        Self {
            text: RawValue::from_string(text).expect("serialized JSON is JSON"),
            fields,
        }
    }

    /// The object read as `T` (the typed payloads below).
    pub(super) fn typed<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.text())
    }
}

/// Two objects are equal when their texts are.
impl PartialEq for Data {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}
