//! How the manifest's tables deserialize: values that take either a short string form
//! or the full table (`rate_limit = "50/s"` or `rate_limit = { rate = "50/s", burst = 100 }`),
//! and tables that are only tables.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::json;

/// Implements `Deserialize` (string or table) and `Serialize` (always the table) for a
/// struct derived with `#[serde(remote = "Self")]`; `$from_short` builds the struct from
/// the parsed short form.
macro_rules! string_or_table {
    ($ty:ty, $short:ty, $from_short:expr) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;

                impl<'de> serde::de::Visitor<'de> for Visitor {
                    type Value = $ty;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a string or a table")
                    }

                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$ty, E> {
                        let short: $short = text.parse().map_err(E::custom)?;
                        Ok($from_short(short))
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<$ty, A::Error> {
                        <$ty>::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }

                deserializer.deserialize_any(Visitor)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$ty>::serialize(self, serializer)
            }
        }
    };
}

pub(crate) use string_or_table;

/// Implements `Deserialize` (a table, nothing else) and `Serialize` for structs derived
/// with `#[serde(remote = "Self")]`. serde's derived `Deserialize` also takes an array of
/// the fields in order, so `health = ["/health"]` would pass for `{ http = "/health" }`;
/// the JSON Schema says a table, and so does the parser.
macro_rules! table_only {
    ($($ty:ty),+ $(,)?) => {$(
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;

                impl<'de> serde::de::Visitor<'de> for Visitor {
                    type Value = $ty;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a table")
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<$ty, A::Error> {
                        <$ty>::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }

                deserializer.deserialize_map(Visitor)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$ty>::serialize(self, serializer)
            }
        }
    )+};
}

pub(crate) use table_only;

/// A schemars transform: the table's schema, or `S`'s (the short form, a string).
pub(crate) fn or_short_string<S: JsonSchema>(schema: &mut Schema) {
    let table = Schema::from(schema.as_object().cloned().unwrap_or_default());
    let description = schema.get("description").cloned();
    let short = S::json_schema(&mut SchemaGenerator::default());
    *schema = json!({ "anyOf": [short, table] })
        .try_into()
        .unwrap_or_default();
    if let (Some(description), Some(object)) = (description, schema.as_object_mut()) {
        object.insert("description".to_owned(), description);
    }
}
