use std::sync::Arc;

use tower::Layer;

use super::{Bulkhead, ConcurrencyLimit};

/// Puts services behind one shared [`Bulkhead`].
#[derive(Debug, Clone)]
pub struct ConcurrencyLimitLayer {
    bulkhead: Arc<Bulkhead>,
}

impl ConcurrencyLimitLayer {
    /// A layer allowing `max` requests in flight across every service it makes.
    pub fn new(max: u32) -> Self {
        Self::with_bulkhead(Arc::new(Bulkhead::new(max)))
    }

    /// A layer over an existing bulkhead.
    pub const fn with_bulkhead(bulkhead: Arc<Bulkhead>) -> Self {
        Self { bulkhead }
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimit::new(inner, Arc::clone(&self.bulkhead))
    }
}
