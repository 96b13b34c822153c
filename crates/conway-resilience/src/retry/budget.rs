//! The retry budget: Linkerd's (and Finagle's), as tower's `TpsBudget` keeps it.

use std::fmt;
use std::time::Duration;

use conway_core::units::Share;
use tower::retry::budget::{Budget as _, TpsBudget};

/// How many retries a service's requests may add: each request deposits, each retry
/// withdraws, and deposits and withdrawals expire after `ttl`; a reserve of
/// `min_per_second × ttl` retries lets a quiet service retry at all.
///
/// A wrapper over tower's [`TpsBudget`], shared (in an `Arc`) by all requests to one
/// service. `TpsBudget` withdraws a whole number of deposits per retry, `⌊1 / share⌋`,
/// so a share that does not divide 100% is rounded up to the next one that does:
/// 20%, 25%, 50% and 100% are exact, 30% acts as 33⅓%, 70% as 100%.
pub struct RetryBudget {
    tps: TpsBudget,
    /// What one withdrawal costs in `TpsBudget`'s units, as it computes it.
    withdraw_cost: isize,
}

impl RetryBudget {
    /// How long a deposit or withdrawal counts: 10 seconds, as Linkerd.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

    /// Retries allowed a second whatever the traffic: 10, as Linkerd.
    pub const DEFAULT_MIN_PER_SECOND: u32 = 10;

    /// A budget of `share` of requests plus 10 retries a second, over 10 seconds.
    pub fn new(share: Share) -> Self {
        Self::with_params(share, Self::DEFAULT_MIN_PER_SECOND, Self::DEFAULT_TTL)
    }

    /// A budget of `share` of requests plus `min_per_second`, counted over `ttl`
    /// (clamped to 1–60 s, as `TpsBudget` requires).
    pub fn with_params(share: Share, min_per_second: u32, ttl: Duration) -> Self {
        let ttl = ttl.clamp(Duration::from_secs(1), Duration::from_secs(60));
        let min_per_second = min_per_second.min(i32::MAX as u32 - 1);
        let percent = share.fraction() as f32;
        // The same arithmetic as `TpsBudget::new`, so `remaining` speaks in retries.
        let withdraw_cost = if percent == 0.0 {
            1
        } else {
            (1.0 / percent) as isize
        };
        Self {
            tps: TpsBudget::new(ttl, min_per_second, percent),
            withdraw_cost: withdraw_cost.max(1),
        }
    }

    /// Counts a request (call once per request, before its first try).
    pub fn deposit(&self) {
        self.tps.deposit();
    }

    /// Takes one retry from the budget; `false` if nothing is left.
    pub fn withdraw(&self) -> bool {
        self.tps.withdraw()
    }

    /// Retries the budget would allow now, for metrics. `TpsBudget` drops expired
    /// deposits and withdrawals only when one is made, so after a quiet spell this is
    /// the count as of the last request until the next one.
    ///
    /// `TpsBudget` exposes its balance only through `Debug`; this reads it from there,
    /// once per metrics scrape (a test pins the format).
    pub fn remaining(&self) -> u64 {
        let text = format!("{:?}", self.tps);
        let balance = text
            .split_once("balance: ")
            .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit() && c != '-').next())
            .and_then(|digits| digits.parse::<isize>().ok())
            .unwrap_or(0);
        u64::try_from(balance.max(0) / self.withdraw_cost).unwrap_or(0)
    }
}

impl Default for RetryBudget {
    /// 20% of requests plus 10 a second, over 10 seconds: Linkerd's default.
    fn default() -> Self {
        Self::new(Share::from_percent(20))
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("remaining", &self.remaining())
            .finish()
    }
}
