//! The registry of a Conway system: which services exist, which instances serve them,
//! and since which revision.
//!
//! This crate owns the registry's storage — the [`store::Store`] trait, modelled on etcd,
//! and [`store::EmbeddedStore`], its SQLite implementation for one machine — and, later,
//! the service catalog, instances with their leases, and health built on top of it.
//!
//! It must not know HTTP serving (the control plane serves the registry) nor the proxy
//! (which learns the registry's state through the control plane's API).

pub mod health;
pub mod registry;
pub mod store;
