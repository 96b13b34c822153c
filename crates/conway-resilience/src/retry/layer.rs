use std::sync::Arc;

use tower::retry::RetryLayer;

use super::{HttpRetry, RetryPolicy};

/// tower's `RetryLayer` retrying `http` requests by `policy` (see [`HttpRetry`]).
pub fn layer(policy: Arc<RetryPolicy>) -> RetryLayer<HttpRetry> {
    RetryLayer::new(HttpRetry::new(policy))
}
