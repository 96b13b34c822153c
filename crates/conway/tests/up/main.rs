//! `conway up` end to end: the real binary on manifests of small test services
//! (`conway_test_support::TEST_SERVICE`, shell one-liners), checked through its control plane's API, its
//! gateway, its output and the process table.

mod apply;
mod autoscale;
mod chaos;
mod deploy;
mod failures;
mod lifecycle;
mod logs;
mod stop;
mod support;
