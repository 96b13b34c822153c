//! API keys: clients send the key, the registry holds only its SHA-256 digest.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use conway_core::manifest::Consumer;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The consumers' keys by digest.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], Arc<str>>,
}

impl ApiKeys {
    /// Indexes every consumer's `api_keys` and the digests in its `api_key_file` (one
    /// `sha256:HEX` a line; `#` comments and blank lines skipped). An unreadable file is
    /// logged and skipped: the other keys still work.
    pub fn build(consumers: &BTreeMap<String, Consumer>) -> Self {
        let mut by_digest = HashMap::new();
        for (name, consumer) in consumers {
            let name: Arc<str> = name.as_str().into();
            let from_file = consumer
                .api_key_file
                .as_deref()
                .map(read_key_file)
                .unwrap_or_default();
            for digest in consumer
                .api_keys
                .iter()
                .chain(&from_file)
                .filter_map(|key| parse_digest(key))
            {
                by_digest.insert(digest, name.clone());
            }
        }
        Self { by_digest }
    }

    /// The consumer whose key this is. The lookup is by the key's digest, then the
    /// stored digest is compared in constant time.
    pub fn find(&self, key: &[u8]) -> Option<Arc<str>> {
        let digest: [u8; 32] = Sha256::digest(key).into();
        let (stored, consumer) = self.by_digest.get_key_value(&digest)?;
        bool::from(stored.ct_eq(&digest)).then(|| consumer.clone())
    }
}

fn read_key_file(path: &str) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_owned)
            .collect(),
        Err(error) => {
            tracing::warn!(path, %error, "cannot read an api_key_file; its keys are not accepted");
            Vec::new()
        }
    }
}

/// `sha256:` and 64 hex digits as bytes.
fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let hex = text.strip_prefix("sha256:")?;
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumers(keys: &[&str]) -> BTreeMap<String, Consumer> {
        let consumer = Consumer {
            api_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            ..Consumer::default()
        };
        BTreeMap::from([("mobile".to_owned(), consumer)])
    }

    fn digest_of(key: &str) -> String {
        let digest = Sha256::digest(key.as_bytes());
        format!(
            "sha256:{}",
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    }

    #[test]
    fn a_key_is_found_by_its_digest_only() {
        let keys = ApiKeys::build(&consumers(&[&digest_of("s3cret")]));
        assert_eq!(keys.find(b"s3cret").as_deref(), Some("mobile"));
        assert_eq!(keys.find(b"s3cret "), None);
        assert_eq!(
            keys.find(digest_of("s3cret").as_bytes()),
            None,
            "the digest itself is not a key"
        );
        assert_eq!(keys.find(b""), None);
    }

    #[test]
    fn keys_come_from_files_too() {
        let dir = std::env::temp_dir().join(format!("conway-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keys");
        std::fs::write(
            &file,
            format!("# team keys\n\n{}\n", digest_of("from-file")),
        )
        .unwrap();
        let mut all = consumers(&[]);
        all.get_mut("mobile").unwrap().api_key_file = Some(file.display().to_string());
        let keys = ApiKeys::build(&all);
        assert_eq!(keys.find(b"from-file").as_deref(), Some("mobile"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
