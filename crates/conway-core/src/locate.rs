//! Finding a value's position in the parsed document from its path
//! (`services.orders.depends_on[1]`).

use std::ops::Range;

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// A path from the document's root to a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Path(Vec<Step>);

impl Path {
    /// The path one key further down.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut steps = self.0.clone();
        steps.push(Step::Key(key.to_owned()));
        Self(steps)
    }

    /// The path one array element further down.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut steps = self.0.clone();
        steps.push(Step::Index(index));
        Self(steps)
    }
}

/// Where a path points: at the value, or at the key that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Value,
    Key,
}

/// The span of the value (or its key) at `path`; where the path leaves the document,
/// the span of the deepest value that exists.
pub(crate) fn locate(root: &Spanned<DeTable<'_>>, path: &Path, target: Target) -> Range<usize> {
    let table = root.get_ref();
    let mut span = root.span();
    let mut value: Option<&DeValue<'_>> = None;
    for (i, step) in path.0.iter().enumerate() {
        let last = i + 1 == path.0.len();
        let next = match (step, value) {
            (Step::Key(key), None) => table.get_key_value(key.as_str()),
            (Step::Key(key), Some(DeValue::Table(t))) => t.get_key_value(key.as_str()),
            (Step::Index(index), Some(DeValue::Array(array))) => match array.get(*index) {
                Some(element) => {
                    span = element.span();
                    value = Some(element.get_ref());
                    continue;
                }
                None => return span,
            },
            _ => return span,
        };
        let Some((key, element)) = next else {
            return span;
        };
        span = if last && target == Target::Key {
            key.span()
        } else {
            element.span()
        };
        value = Some(element.get_ref());
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position<'a>(source: &'a str, path: &Path, target: Target) -> &'a str {
        let doc = DeTable::parse(source).unwrap();
        let span = locate(&doc, path, target);
        &source[span]
    }

    #[test]
    fn paths_reach_nested_values_keys_and_elements() {
        let source = "[services.orders]\ndepends_on = [\"a\", \"b\"]\nhealth = { http = \"/h\" }\n";
        let orders = Path::default().key("services").key("orders");
        assert_eq!(
            position(source, &orders.key("depends_on").index(1), Target::Value),
            "\"b\""
        );
        assert_eq!(
            position(source, &orders.key("depends_on"), Target::Key),
            "depends_on"
        );
        assert_eq!(
            position(source, &orders.key("health").key("http"), Target::Value),
            "\"/h\""
        );
    }

    #[test]
    fn paths_beyond_the_document_stop_at_the_deepest_value() {
        let source = "[services.orders]\nreplicas = 2\n";
        let path = Path::default()
            .key("services")
            .key("orders")
            .key("nothing")
            .index(3);
        // A table opened by a header is located at its header.
        assert_eq!(position(source, &path, Target::Value), "[services.orders]");
    }
}
