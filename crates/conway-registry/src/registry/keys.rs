//! How the registry lays out its keys in the store.

/// Service definitions: `services/NAME`.
pub(crate) const SERVICES: &str = "services/";
/// Instances, by id: `instances/ID` (each attached to its own lease).
pub(crate) const INSTANCES: &str = "instances/";
/// Configuration: `config/manifest`, `config/faults/SERVICE`, `config/splits/SERVICE`.
pub(crate) const CONFIG: &str = "config/";
/// The declared state that is not services: routes, mesh, consumers, issuers.
pub(crate) const MANIFEST: &str = "config/manifest";
/// Run-time faults: `config/faults/SERVICE`.
pub(crate) const FAULTS: &str = "config/faults/";
/// Run-time splits: `config/splits/SERVICE`.
pub(crate) const SPLITS: &str = "config/splits/";

pub(crate) fn service(name: &str) -> String {
    format!("{SERVICES}{name}")
}

pub(crate) fn instance(id: &str) -> String {
    format!("{INSTANCES}{id}")
}

pub(crate) fn faults(service: &str) -> String {
    format!("{FAULTS}{service}")
}

pub(crate) fn splits(service: &str) -> String {
    format!("{SPLITS}{service}")
}
