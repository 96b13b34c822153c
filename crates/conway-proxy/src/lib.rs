//! Conway's data plane: one proxy engine in two roles — the gateway (north-south, for
//! outside clients) and the mesh (east-west, between services). It routes, balances over
//! healthy endpoints, applies the resilience policies and fault injection, and forwards
//! HTTP/1.1, HTTP/2, gRPC and WebSocket traffic.
//!
//! It learns the system's state only through the control plane's API client; it must not
//! know the registry's storage or the supervisor.

pub mod access_log;
pub mod admin;
pub mod auth;
pub mod balance;
pub mod body;
pub mod error;
pub mod forward;
pub mod gateway;
pub mod headers;
pub mod load;
pub mod mesh;
pub mod metrics;
pub mod proxy;
pub mod ratelimit;
pub mod router;
pub mod run;
pub mod server;
pub mod table;
pub mod tls;
pub mod trace;
pub mod updater;
pub mod upstream;

#[cfg(test)]
mod tests;
