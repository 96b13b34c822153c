//! The proxy's view of the system, rebuilt from the registry mirror whenever it changes
//! and swapped in atomically: routes, and per service its endpoints and policies. The
//! live state of the policies (breaker, retry budget, endpoint latencies) carries over
//! from one table to the next as long as their configuration does not change.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use conway_client::MirrorSnapshot;
use conway_core::manifest::{Faults, MeshAuthorization, Protocol, Service};
use conway_core::units::Share;
use conway_resilience::circuit_breaker::CircuitBreaker;
use conway_resilience::concurrency::Bulkhead;
use conway_resilience::fault::{FaultInjector, FaultSources};
use conway_resilience::outlier::OutlierDetector;
use conway_resilience::retry::RetryPolicy;

use crate::auth::Authenticator;
use crate::balance::{BalanceOptions, Endpoint, EndpointSet};
use crate::load::InFlight;
use crate::router::Router;
use crate::tls::TlsCerts;

/// One service as the proxy sees it.
#[derive(Debug)]
pub struct ServiceState {
    /// Its name.
    pub name: Arc<str>,
    /// Its declared definition.
    pub config: Service,
    /// Its endpoints and balancer.
    pub endpoints: EndpointSet,
    /// Its retry policy and budget.
    pub retry: RetryPolicy,
    /// Its circuit breaker, if declared.
    pub breaker: Option<Arc<CircuitBreaker>>,
    /// Its outlier detector, if declared.
    pub outlier: Option<Arc<OutlierDetector<String>>>,
    /// Its concurrency limit, if declared.
    pub bulkhead: Option<Arc<Bulkhead>>,
    /// Faults declared in the manifest.
    pub declared_faults: Option<Faults>,
    /// Faults set at run time (`PUT /v1/services/{name}/faults`), replacing the declared
    /// ones kind by kind.
    pub runtime_faults: Option<Faults>,
    /// The declared and run-time faults combined, for requests whose route adds none.
    pub faults: FaultInjector,
    /// Version shares in force (run-time split, else declared), cumulative in basis points.
    pub split: Vec<(String, u32)>,
    /// The upstream HTTP version.
    pub protocol: Protocol,
    /// Requests in flight to it through this proxy (kept from table to table).
    pub inflight: Arc<InFlight>,
}

impl ServiceState {
    /// A version drawn from the split, if the service has one.
    pub fn pick_version(&self) -> Option<&str> {
        let draw = fastrand::u32(0..Share::FULL.basis_points());
        self.split
            .iter()
            .find(|(_, upto)| draw < *upto)
            .map(|(version, _)| version.as_str())
    }
}

/// Routes and services at one registry revision.
#[derive(Debug, Default)]
pub struct Table {
    /// Whether this table reflects a listing of the registry (a fresh or saved one);
    /// false only before the first.
    pub listed: bool,
    /// The registry revision this table reflects.
    pub revision: i64,
    /// The gateway's routes.
    pub router: Router,
    /// Services by name.
    pub services: HashMap<String, Arc<ServiceState>>,
    /// Which services each service may call (`depends_on`), for mesh authorization.
    pub dependencies: HashMap<String, Vec<String>>,
    /// What the mesh does with undeclared calls.
    pub authorization: MeshAuthorization,
    /// Calling instances by the SHA-256 (hex) of their proxy token.
    pub callers: HashMap<String, Caller>,
    /// The gateway's consumers and token issuers.
    pub auth: Arc<Authenticator>,
    /// The gateway's certificates, when it serves HTTPS.
    pub tls: Option<Arc<TlsCerts>>,
}

/// An instance calling through the mesh, identified by its proxy token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Its service.
    pub service: Arc<str>,
    /// Its instance id.
    pub instance: Arc<str>,
    /// Its zone, for zone-aware balancing.
    pub zone: Option<Arc<str>>,
}

/// The instance metadata key holding the SHA-256 (hex) of an instance's proxy token.
pub const TOKEN_DIGEST: &str = "conway.token_sha256";

impl Table {
    /// The table for `snapshot`, carrying live state over from `previous`.
    pub fn build(snapshot: &MirrorSnapshot, previous: &Table) -> Self {
        let config = &snapshot.config;
        let mut services = HashMap::with_capacity(config.services.len());
        for (name, definition) in &config.services {
            let endpoints = endpoints_of(snapshot, name);
            let before = previous.services.get(name);
            services.insert(
                name.to_owned(),
                Arc::new(service_state(
                    name,
                    definition,
                    endpoints,
                    snapshot,
                    before.map(Arc::as_ref),
                )),
            );
        }
        let dependencies = config
            .services
            .iter()
            .map(|(name, s)| (name.clone(), s.depends_on.clone()))
            .collect();
        let callers = snapshot
            .instances
            .values()
            .filter_map(|instance| {
                let digest = instance.metadata.get(TOKEN_DIGEST)?;
                let caller = Caller {
                    service: instance.service.as_str().into(),
                    instance: instance.id.as_str().into(),
                    zone: instance.zone.as_deref().map(Arc::from),
                };
                Some((digest.to_ascii_lowercase(), caller))
            })
            .collect();
        Self {
            listed: snapshot.listed,
            revision: snapshot.revision,
            router: Router::new(&config.routes),
            services,
            dependencies,
            authorization: config.mesh.authorization,
            callers,
            auth: Authenticator::build(&config.consumers, &config.jwt, Some(&previous.auth)),
            tls: config.tls.as_ref().map(|tls| match &previous.tls {
                Some(loaded) if &loaded.config == tls => loaded.clone(),
                _ => Arc::new(TlsCerts::load(tls)),
            }),
        }
    }

    /// A service by name.
    pub fn service(&self, name: &str) -> Option<&Arc<ServiceState>> {
        self.services.get(name)
    }
}

fn service_state(
    name: &str,
    definition: &Service,
    endpoints: Vec<Endpoint>,
    snapshot: &MirrorSnapshot,
    before: Option<&ServiceState>,
) -> ServiceState {
    let options = BalanceOptions::new(definition.resilience.balancer.clone());
    let same_policies = before.is_some_and(|b| b.config.resilience == definition.resilience);
    let endpoints = match before {
        Some(before) if before.endpoints.options() == &options => {
            before.endpoints.update(endpoints)
        }
        Some(before) => before.endpoints.reconfigure(options).update(endpoints),
        None => EndpointSet::new(options, endpoints),
    };
    let retry = match before {
        Some(before) if same_policies => RetryPolicy::with_budget(
            &definition.resilience.retries,
            before.retry.budget().clone(),
        ),
        _ => RetryPolicy::new(&definition.resilience.retries),
    };
    let resilience = &definition.resilience;
    // Live policy state carries over while the policies stay the same.
    let carried = before.filter(|_| same_policies);
    let breaker = resilience.circuit_breaker.as_ref().map(|config| {
        carried
            .and_then(|b| b.breaker.clone())
            .unwrap_or_else(|| Arc::new(CircuitBreaker::new(config)))
    });
    let outlier = resilience.outlier.as_ref().map(|config| {
        let detector = carried
            .and_then(|b| b.outlier.clone())
            .unwrap_or_else(|| Arc::new(OutlierDetector::new(config)));
        detector.retain(|id| endpoints.get(id).is_some());
        detector
    });
    let bulkhead = resilience.max_concurrency.map(|max| {
        carried
            .and_then(|b| b.bulkhead.clone())
            .unwrap_or_else(|| Arc::new(Bulkhead::new(max)))
    });
    let split = snapshot
        .config
        .splits
        .get(name)
        .unwrap_or(&definition.split);
    ServiceState {
        name: name.into(),
        config: definition.clone(),
        endpoints,
        retry,
        breaker,
        outlier,
        bulkhead,
        declared_faults: definition.faults.clone(),
        runtime_faults: snapshot.config.faults.get(name).cloned(),
        faults: FaultInjector::new(FaultSources {
            route: None,
            declared: definition.faults.as_ref(),
            runtime: snapshot.config.faults.get(name),
        }),
        split: cumulative(split),
        protocol: definition.protocol,
        inflight: before.map(|b| b.inflight.clone()).unwrap_or_default(),
    }
}

/// `{"1.4.0": 90%, "1.5.0": 10%}` as `[("1.4.0", 9000), ("1.5.0", 10000)]`.
fn cumulative(split: &BTreeMap<String, Share>) -> Vec<(String, u32)> {
    let mut total = 0;
    split
        .iter()
        .filter(|(_, share)| share.basis_points() > 0)
        .map(|(version, share)| {
            total += share.basis_points();
            (version.clone(), total)
        })
        .collect()
}

/// The registry's instances of `service` as endpoints (with an IP address; host names
/// are not resolved by the proxy yet).
fn endpoints_of(snapshot: &MirrorSnapshot, service: &str) -> Vec<Endpoint> {
    snapshot
        .instances_of(service)
        .filter_map(|instance| {
            let ip: IpAddr = instance.address.parse().ok()?;
            let mut endpoint =
                Endpoint::new(instance.id.clone(), SocketAddr::new(ip, instance.port))
                    .with_health(instance.is_routable());
            if let Some(zone) = &instance.zone {
                endpoint = endpoint.with_zone(zone.clone());
            }
            if let Some(version) = &instance.version {
                endpoint = endpoint.with_version(version.clone());
            }
            Some(endpoint)
        })
        .collect()
}
