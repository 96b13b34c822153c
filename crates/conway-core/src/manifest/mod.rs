//! The manifest, `conway.toml`: the system's declared state, fully typed.
//!
//! Every field has a doc comment and its default in one place (a `default` function or
//! `Default` impl beside the type); the JSON Schema (`conway schema`) and the reference
//! (`docs/manifest.md`) are generated from these types.

mod gateway;
mod resilience;
mod security;
mod service;
mod telemetry;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::string_or_table::table_only;

pub(crate) use gateway::path_has_prefix;
pub use gateway::{Auth, Certificate, Gateway, GatewayTls, RateLimit, Route};
pub use resilience::HashKey;
pub use security::{Consumer, JwtIssuer, Mesh, MeshAuthorization};
pub use service::{
    Abort, Autoscale, Balancer, CircuitBreaker, Delay, Faults, Health, Outlier, Protocol,
    Resilience, Retries, RetryCondition, Service,
};
pub use telemetry::{Sampling, Telemetry};

/// The whole declared state of a system: its services, how the outside reaches them, who
/// may call them, and what is observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "conway.toml")]
pub struct Manifest {
    /// The system as a whole.
    #[serde(default)]
    pub system: System,
    /// The north-south entry: where outside clients connect and which routes they reach.
    #[serde(default)]
    pub gateway: Gateway,
    /// East-west calls between services.
    #[serde(default)]
    pub mesh: Mesh,
    /// The services, by name: lower-case letters, digits and `-`, starting with a letter.
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    /// Known clients of the gateway, by name, and the API keys that identify them.
    #[serde(default)]
    pub consumers: BTreeMap<String, Consumer>,
    /// JWT issuers, by name, whose tokens routes with `auth = "jwt"` accept.
    #[serde(default)]
    pub jwt: BTreeMap<String, JwtIssuer>,
    /// Traces, logs and metrics: retention, sampling and export.
    #[serde(default)]
    pub telemetry: Telemetry,
}

/// The system as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct System {
    /// The system's name, shown by the CLI and the dashboard.
    #[serde(default = "System::default_name")]
    pub name: String,
}

impl System {
    fn default_name() -> String {
        "conway".to_owned()
    }
}

impl Default for System {
    fn default() -> Self {
        Self {
            name: Self::default_name(),
        }
    }
}

impl Manifest {
    /// The service named `name`, if declared.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.get(name)
    }

    /// Makes the key files of consumers, issuers and certificates absolute, relative to `base` (the
    /// manifest's folder), so the proxies that read them need not know where the
    /// manifest was. Key files stay files: their secrets never enter the registry.
    pub fn resolve_key_files(&mut self, base: &std::path::Path) {
        let resolve = |file: &mut Option<String>| {
            if let Some(path) = file.as_mut() {
                *path = base.join(&*path).display().to_string();
            }
        };
        for consumer in self.consumers.values_mut() {
            resolve(&mut consumer.api_key_file);
        }
        for issuer in self.jwt.values_mut() {
            resolve(&mut issuer.secret_file);
            resolve(&mut issuer.public_key_file);
            resolve(&mut issuer.jwks_file);
        }
        for certificate in self
            .gateway
            .tls
            .iter_mut()
            .flat_map(|tls| &mut tls.certificates)
        {
            for file in [&mut certificate.cert_file, &mut certificate.key_file] {
                *file = base.join(&*file).display().to_string();
            }
        }
    }
}

/// Whether `name` can name a service: a DNS label, as it becomes a host name
/// (`http://inventory/`) and part of environment variable names.
pub fn is_service_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 63
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-')
}

table_only!(System);
