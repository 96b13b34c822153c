//! What proxies and listings read: services with their instance counts, and the
//! configuration in force.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{Consumer, Faults, GatewayTls, JwtIssuer, Mesh, Route, Service};
use crate::units::Share;

/// A service as `GET /v1/services` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceView {
    /// Its name.
    pub name: String,
    /// Its declared definition.
    #[serde(flatten)]
    pub definition: Service,
    /// Registered instances.
    pub instances: usize,
    /// Of those, how many are healthy.
    pub healthy: usize,
}

/// `GET /v1/config`: everything a proxy needs, at one registry revision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSnapshot {
    /// The registry revision this snapshot reflects.
    pub revision: i64,
    /// The gateway's routes, in the order they are tried.
    pub routes: Vec<Route>,
    /// The gateway's TLS settings (certificate paths, never their contents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<GatewayTls>,
    /// Mesh authorization.
    pub mesh: Mesh,
    /// Service definitions (policies, dependencies, declared splits and faults).
    pub services: BTreeMap<String, Service>,
    /// Gateway consumers.
    pub consumers: BTreeMap<String, Consumer>,
    /// JWT issuers.
    pub jwt: BTreeMap<String, JwtIssuer>,
    /// Run-time faults per service (`PUT /v1/services/{name}/faults`): each kind given
    /// (delay, abort) replaces the declared one of that kind.
    pub faults: BTreeMap<String, Faults>,
    /// Run-time splits per service (a canary deploy), replacing the declared ones.
    pub splits: BTreeMap<String, BTreeMap<String, Share>>,
}
