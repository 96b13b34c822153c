//! Rules for consumers, JWT issuers and telemetry export.

use super::{Report, root};
use crate::manifest::Manifest;

pub(super) fn check(manifest: &Manifest, report: &mut Report<'_, '_>) {
    for (name, consumer) in &manifest.consumers {
        for (i, key) in consumer.api_keys.iter().enumerate() {
            if !is_sha256_digest(key) {
                report.error(
                    &root().key("consumers").key(name).key("api_keys").index(i),
                    "an API key is stored as its digest, \"sha256:\" and 64 hex digits (`printf %s KEY | sha256sum`), never in clear",
                );
            }
        }
    }
    for (name, issuer) in &manifest.jwt {
        let path = root().key("jwt").key(name);
        if issuer.key_sources() != 1 {
            report.error(
                &path,
                "give exactly one of secret_file, public_key_file and jwks_file",
            );
        }
        for (key, value) in [("issuer", &issuer.issuer), ("audience", &issuer.audience)] {
            if value.is_empty() {
                report.error(&path.key(key), format!("{key} must not be empty"));
            }
        }
    }
    if let Some(endpoint) = &manifest.telemetry.otlp_endpoint {
        let rest = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"));
        if rest.is_none_or(|rest| {
            rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace)
        }) {
            report.error(
                &root().key("telemetry").key("otlp_endpoint"),
                format!("invalid OTLP endpoint {endpoint:?}: expected an http:// or https:// URL"),
            );
        }
    }
}

/// Whether `key` is `sha256:` followed by 64 hex digits.
pub(crate) fn is_sha256_digest(key: &str) -> bool {
    key.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}
