use std::sync::Arc;

use tower::Layer;

use super::{CircuitBreaker, WithCircuitBreaker};
use crate::outcome::ClassifyHttp;

/// Puts services behind one shared circuit breaker.
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer<C = ClassifyHttp> {
    breaker: Arc<CircuitBreaker>,
    classify: C,
}

impl CircuitBreakerLayer {
    /// A layer over `breaker` that fails `5xx` answers and errors.
    pub fn new(breaker: Arc<CircuitBreaker>) -> Self {
        Self::with_classify(breaker, ClassifyHttp)
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// A layer over `breaker`, with outcomes told by `classify`.
    pub const fn with_classify(breaker: Arc<CircuitBreaker>, classify: C) -> Self {
        Self { breaker, classify }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = WithCircuitBreaker<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        WithCircuitBreaker::new(inner, Arc::clone(&self.breaker), self.classify.clone())
    }
}
