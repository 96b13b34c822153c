//! Real clients of other stacks calling services through `conway up`'s mesh, as a
//! supervised service would: tonic (gRPC over h2c) on a `CONWAY_UPSTREAM_<DEPENDENCY>`
//! listener (and through the gateway); Python's `requests` and `urllib`, and curl,
//! through the `http_proxy` the supervisor sets. Each test starts its own `conway up` on
//! ports the OS picks.

mod grpc;
mod proxy_setting;
mod system;
