//! `[mesh]`, `[consumers.NAME]` and `[jwt.NAME]`: who may call what.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::string_or_table::table_only;

/// East-west calls between services.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Mesh {
    /// What happens when a service calls one it does not list in `depends_on`.
    #[serde(default)]
    pub authorization: MeshAuthorization,
}

/// Authorization of calls between services by their declared dependencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MeshAuthorization {
    /// Any service may call any other; nothing is recorded.
    Off,
    /// Undeclared calls go through and are recorded (a metric and a log line).
    #[default]
    Audit,
    /// Undeclared calls are refused with 403.
    Enforce,
}

/// A known client of the gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Consumer {
    /// What the consumer is, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The consumer's API keys as `sha256:HEX` digests (64 hex digits); clients send the
    /// key itself in `x-api-key`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<String>,
    /// A file (relative to the manifest) holding more keys, one `sha256:HEX` digest a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
}

/// A JWT issuer whose tokens routes with `auth = "jwt"` accept. Exactly one of
/// `secret_file`, `public_key_file` and `jwks_file` says how tokens are verified.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct JwtIssuer {
    /// The `iss` claim tokens must carry.
    pub issuer: String,
    /// The `aud` claim tokens must carry.
    pub audience: String,
    /// An HS256 shared secret, in a file relative to the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<String>,
    /// An RS256 or ES256 public key (PEM), in a file relative to the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_file: Option<String>,
    /// A JSON Web Key Set, in a file relative to the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<String>,
}

impl JwtIssuer {
    /// How many key sources are given (exactly one is valid).
    pub fn key_sources(&self) -> usize {
        [&self.secret_file, &self.public_key_file, &self.jwks_file]
            .iter()
            .filter(|source| source.is_some())
            .count()
    }
}

table_only!(Mesh, Consumer, JwtIssuer);
