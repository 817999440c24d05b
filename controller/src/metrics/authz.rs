//! `tollgate_authz_*`: ext_authz checks by result, with a latency histogram.
//!
//! [`AuthzCounters`] is plain atomics so the check path pays an atomic add or three per request
//! and needs no metrics library; it depends on nothing of the controller, so it can move into
//! `tollgate-policies` as is.
//!
//! How to hook it into the check path (done by the owner of `policies/src/authz*`): give the
//! service an `Arc<AuthzCounters>` (the one `runtime` registers, [`crate::metrics::Sources::authz`]),
//! take `Instant::now()` when a check starts and, where the answer is built, call
//! `counters.record(AuthzResult::Allowed | Denied401 | Denied403 | Limited429, started.elapsed())`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tollgate_xds::metrics::Histogram;

/// Upper bounds, in seconds, for a check (answered from memory: tens of microseconds).
pub const CHECK_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
];

/// What a check answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthzResult {
    /// Let through.
    Allowed,
    /// No key, or an unknown or expired one.
    Denied401,
    /// A valid key that may not call this API or operation.
    Denied403,
    /// Over a quota or rate limit.
    Limited429,
}

/// Check counts by result and the check latency.
#[derive(Debug)]
pub struct AuthzCounters {
    results: [AtomicU64; AuthzResult::ALL.len()],
    latency: Histogram,
}

// === impl AuthzResult ===

impl AuthzResult {
    /// Every result, in label order.
    pub const ALL: [AuthzResult; 4] = [
        AuthzResult::Allowed,
        AuthzResult::Denied401,
        AuthzResult::Denied403,
        AuthzResult::Limited429,
    ];

    /// The `result` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthzResult::Allowed => "allowed",
            AuthzResult::Denied401 => "denied_401",
            AuthzResult::Denied403 => "denied_403",
            AuthzResult::Limited429 => "limited_429",
        }
    }
}

// === impl AuthzCounters ===

impl Default for AuthzCounters {
    fn default() -> Self {
        AuthzCounters {
            results: Default::default(),
            latency: Histogram::new(CHECK_BUCKETS),
        }
    }
}

impl AuthzCounters {
    /// Counts one check and its duration.
    pub fn record(&self, result: AuthzResult, took: Duration) {
        self.results[result as usize].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(took);
    }

    /// Checks answered with `result` since start.
    pub fn count(&self, result: AuthzResult) -> u64 {
        self.results[result as usize].load(Ordering::Relaxed)
    }

    /// The check latency.
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }
}
