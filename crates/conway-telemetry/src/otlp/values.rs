//! OTLP attribute values to JSON and back, cutting what is too long on the way in.

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
use serde_json::{Map, Number, Value};

use crate::config::{Limits, truncate};

/// How deep arrays and maps inside attribute values may nest.
const MAX_DEPTH: usize = 4;

/// Turns decoded OTLP values into bounded JSON, counting what it cuts.
#[derive(Debug)]
pub(crate) struct Cutter<'a> {
    limits: &'a Limits,
    /// Strings cut to the length limit.
    pub(crate) truncated: u64,
    /// Attributes (or array elements) dropped beyond the count limit or depth.
    pub(crate) dropped: u64,
}

impl<'a> Cutter<'a> {
    pub(crate) fn new(limits: &'a Limits) -> Self {
        Self {
            limits,
            truncated: 0,
            dropped: 0,
        }
    }

    /// A name or value string, cut to `max_value_bytes`.
    pub(crate) fn text(&mut self, mut text: String) -> String {
        if truncate(&mut text, self.limits.max_value_bytes) {
            self.truncated += 1;
        }
        text
    }

    /// A log body, cut to `max_log_body_bytes`.
    pub(crate) fn body(&mut self, mut text: String) -> String {
        if truncate(&mut text, self.limits.max_log_body_bytes) {
            self.truncated += 1;
        }
        text
    }

    /// Attributes as a JSON object: at most `max_attributes`, each value bounded.
    pub(crate) fn attributes(&mut self, attributes: Vec<KeyValue>) -> Map<String, Value> {
        self.attributes_at(attributes, 0)
    }

    fn attributes_at(&mut self, attributes: Vec<KeyValue>, depth: usize) -> Map<String, Value> {
        let mut map = Map::new();
        let total = attributes.len();
        for attribute in attributes.into_iter().take(self.limits.max_attributes) {
            let key = self.text(attribute.key);
            let value = self.value_at(attribute.value, depth);
            map.insert(key, value);
        }
        self.dropped += total.saturating_sub(self.limits.max_attributes) as u64;
        map
    }

    /// One value as JSON.
    pub(crate) fn value(&mut self, value: Option<AnyValue>) -> Value {
        self.value_at(value, 0)
    }

    fn value_at(&mut self, value: Option<AnyValue>, depth: usize) -> Value {
        let Some(value) = value.and_then(|v| v.value) else {
            return Value::Null;
        };
        match value {
            Any::StringValue(text) => Value::String(self.text(text)),
            Any::BoolValue(b) => Value::Bool(b),
            Any::IntValue(i) => Value::Number(i.into()),
            Any::DoubleValue(d) => {
                Number::from_f64(d).map_or_else(|| Value::String(d.to_string()), Value::Number)
            }
            Any::BytesValue(bytes) => {
                let mut hex = String::with_capacity(bytes.len() * 2);
                for byte in bytes {
                    hex.push_str(&format!("{byte:02x}"));
                }
                Value::String(self.text(hex))
            }
            Any::ArrayValue(array) if depth < MAX_DEPTH => {
                let total = array.values.len();
                let items = array
                    .values
                    .into_iter()
                    .take(self.limits.max_attributes)
                    .map(|item| self.value_at(Some(item), depth + 1))
                    .collect();
                self.dropped += total.saturating_sub(self.limits.max_attributes) as u64;
                Value::Array(items)
            }
            Any::KvlistValue(list) if depth < MAX_DEPTH => {
                Value::Object(self.attributes_at(list.values, depth + 1))
            }
            Any::ArrayValue(_) | Any::KvlistValue(_) => {
                self.dropped += 1;
                Value::Null
            }
            Any::StringValueStrindex(_) => Value::Null,
        }
    }
}

/// The text of a log body: a string as it is, anything else as JSON.
pub(crate) fn body_text(value: Value) -> String {
    match value {
        Value::String(text) => text,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A string attribute of a resource, if present.
pub(crate) fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Any::StringValue(text)) => Some(text.clone()),
            _ => None,
        })
}

/// A JSON value as an OTLP value (for export).
pub(crate) fn to_any(value: &Value) -> AnyValue {
    let value = match value {
        Value::Null => None,
        Value::Bool(b) => Some(Any::BoolValue(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(Any::IntValue(i)),
            None => Some(Any::DoubleValue(n.as_f64().unwrap_or_default())),
        },
        Value::String(text) => Some(Any::StringValue(text.clone())),
        Value::Array(items) => Some(Any::ArrayValue(ArrayValue {
            values: items.iter().map(to_any).collect(),
        })),
        Value::Object(map) => Some(Any::KvlistValue(KeyValueList {
            values: to_key_values(map),
        })),
    };
    AnyValue { value }
}

/// JSON attributes as OTLP key-values.
pub(crate) fn to_key_values(map: &Map<String, Value>) -> Vec<KeyValue> {
    map.iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            value: Some(to_any(value)),
            ..Default::default()
        })
        .collect()
}

/// A string key-value.
pub(crate) fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Any::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(text: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(Any::StringValue(text.to_owned())),
        })
    }

    #[test]
    fn long_values_and_many_attributes_are_cut_and_counted() {
        let limits = Limits {
            max_value_bytes: 8,
            max_attributes: 2,
            ..Limits::default()
        };
        let mut cutter = Cutter::new(&limits);
        let attributes = vec![
            KeyValue {
                key: "a".into(),
                value: string("0123456789"),
                ..Default::default()
            },
            KeyValue {
                key: "b".into(),
                value: Some(AnyValue {
                    value: Some(Any::IntValue(-7)),
                }),
                ..Default::default()
            },
            KeyValue {
                key: "c".into(),
                value: string("dropped"),
                ..Default::default()
            },
        ];
        let map = cutter.attributes(attributes);
        assert_eq!(map["a"], "01234567");
        assert_eq!(map["b"], -7);
        assert!(!map.contains_key("c"));
        assert_eq!((cutter.truncated, cutter.dropped), (1, 1));
    }

    #[test]
    fn json_round_trips_through_any_value() {
        let value = serde_json::json!({"list": [1, 2.5, "x", true], "nested": {"k": null}});
        let limits = Limits::default();
        let mut cutter = Cutter::new(&limits);
        assert_eq!(cutter.value(Some(to_any(&value))), value);
    }
}
