use std::sync::Arc;

use tower::Layer;

use super::{FaultInjector, InjectFaults};

/// Injects one set of faults in front of services.
#[derive(Debug, Clone)]
pub struct InjectFaultsLayer {
    injector: Arc<FaultInjector>,
    seed: Option<u64>,
}

impl InjectFaultsLayer {
    /// A layer injecting `injector`'s faults, with random dice.
    pub const fn new(injector: Arc<FaultInjector>) -> Self {
        Self {
            injector,
            seed: None,
        }
    }

    /// The same with dice seeded by `seed` in each service it makes (for tests).
    pub const fn with_seed(injector: Arc<FaultInjector>, seed: u64) -> Self {
        Self {
            injector,
            seed: Some(seed),
        }
    }
}

impl<S> Layer<S> for InjectFaultsLayer {
    type Service = InjectFaults<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let injector = Arc::clone(&self.injector);
        match self.seed {
            Some(seed) => InjectFaults::with_rng(inner, injector, fastrand::Rng::with_seed(seed)),
            None => InjectFaults::new(inner, injector),
        }
    }
}
