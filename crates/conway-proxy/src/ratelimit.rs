//! Rate limits per route, keyed by consumer (or by client address on open routes): GCRA
//! through governor, with an optional burst. Limiters live outside the route table, so
//! a configuration reload keeps every key's state unless the route's limit changed;
//! keys idle long enough to be back at a full bucket are forgotten.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use conway_core::manifest::RateLimit;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use parking_lot::RwLock;

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// A route's limit and the limiter enforcing it.
type RouteLimiter = (RateLimit, Arc<Limiter>);

/// Every route's limiter.
#[derive(Debug, Default)]
pub struct RateLimits {
    limiters: RwLock<HashMap<Arc<str>, RouteLimiter>>,
}

/// A request within the limit, and what is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// The burst size.
    pub limit: u32,
    /// Requests left in the burst.
    pub remaining: u32,
    /// Seconds until the burst is whole again.
    pub reset: u64,
}

/// A request over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// The burst size.
    pub limit: u32,
    /// When the next request would be allowed.
    pub retry_after: Duration,
}

impl RateLimits {
    /// Counts one request of `key` on `route` against `config`.
    pub fn check(
        &self,
        route: &Arc<str>,
        config: &RateLimit,
        key: &str,
    ) -> Result<Allowed, Limited> {
        let limiter = self.limiter(route, config);
        let burst = burst_of(config);
        let period = config.rate.per.as_secs_f64() / config.rate.count as f64;
        match limiter.check_key(&key.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let reset =
                    (f64::from(burst.get() - remaining.min(burst.get())) * period).ceil() as u64;
                Ok(Allowed {
                    limit: burst.get(),
                    remaining,
                    reset,
                })
            }
            Err(not_until) => Err(Limited {
                limit: burst.get(),
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }),
        }
    }

    /// Forgets routes that are gone and keys that are idle.
    pub fn retain(&self, routes: &HashSet<Arc<str>>) {
        let mut limiters = self.limiters.write();
        limiters.retain(|route, _| routes.contains(route));
        for (_, limiter) in limiters.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn limiter(&self, route: &Arc<str>, config: &RateLimit) -> Arc<Limiter> {
        if let Some((_, limiter)) = self
            .limiters
            .read()
            .get(route)
            .filter(|(current, _)| current == config)
        {
            return limiter.clone();
        }
        let mut limiters = self.limiters.write();
        match limiters.get(route) {
            Some((current, limiter)) if current == config => limiter.clone(),
            _ => {
                let limiter = Arc::new(
                    RateLimiter::keyed(quota(config))
                        .with_middleware::<StateInformationMiddleware>(),
                );
                limiters.insert(route.clone(), (*config, limiter.clone()));
                limiter
            }
        }
    }
}

fn burst_of(config: &RateLimit) -> NonZeroU32 {
    let burst = config
        .burst
        .unwrap_or_else(|| u32::try_from(config.rate.count).unwrap_or(u32::MAX));
    NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN)
}

/// The GCRA quota: one request every `per / count`, bursts of `burst` (default: one
/// period's worth of the rate).
fn quota(config: &RateLimit) -> Quota {
    let interval = config
        .rate
        .per
        .div_f64(config.rate.count as f64)
        .max(Duration::from_nanos(1));
    Quota::with_period(interval)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst_of(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(rate: &str, burst: Option<u32>) -> RateLimit {
        RateLimit {
            rate: rate.parse().unwrap(),
            burst,
        }
    }

    #[test]
    fn a_burst_passes_then_requests_wait() {
        let limits = RateLimits::default();
        let route: Arc<str> = "orders".into();
        let config = limit("10/m", Some(3));
        for remaining in [2, 1, 0] {
            assert_eq!(
                limits.check(&route, &config, "alice").map(|a| a.remaining),
                Ok(remaining)
            );
        }
        let limited = limits.check(&route, &config, "alice").unwrap_err();
        assert_eq!(limited.limit, 3);
        assert!(
            limited.retry_after > Duration::from_secs(5)
                && limited.retry_after <= Duration::from_secs(6),
            "{limited:?}"
        );
        assert!(
            limits.check(&route, &config, "bob").is_ok(),
            "keys are limited apart"
        );
    }

    #[test]
    fn a_reload_keeps_state_unless_the_limit_changed() {
        let limits = RateLimits::default();
        let route: Arc<str> = "orders".into();
        let config = limit("1/m", None);
        assert!(limits.check(&route, &config, "alice").is_ok());
        limits.retain(&HashSet::from([route.clone()]));
        assert!(
            limits.check(&route, &config, "alice").is_err(),
            "the same limit keeps its state"
        );
        assert!(
            limits.check(&route, &limit("2/m", None), "alice").is_ok(),
            "a new limit starts afresh"
        );
        limits.retain(&HashSet::new());
        assert!(
            limits.limiters.read().is_empty(),
            "removed routes are forgotten"
        );
    }
}
