//! `conway gateway` against real processes: a control plane loaded with a manifest, the
//! gateway following it, and real upstream servers (`conway_test_support::upstream`) as
//! the instances. Every test starts its own system on ports the OS picks, waits on
//! conditions (the control plane's health states, the gateway's table revision), and
//! stops every process when it ends, even when it fails.
//!
//! Health checks run every 100 ms and timeouts are short, so the whole suite runs in
//! well under a minute on two cores.

mod auth;
mod bad_input;
mod balancing;
mod faults;
mod fixture;
mod lifecycle;
mod mesh;
mod protocols;
mod resilience;
mod routing;
