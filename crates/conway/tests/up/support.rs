//! The `conway up` fixture of `conway_test_support::up`, and this binary's names for
//! the binary under test and the test service.

pub(crate) use conway_test_support::up::*;

/// The binary under test.
pub(crate) const CONWAY: &str = env!("CARGO_BIN_EXE_conway");

/// The test service: `python3 SERVICE [ignore-term] [slow-start SECONDS]`.
pub(crate) const SERVICE: &str = conway_test_support::TEST_SERVICE;
