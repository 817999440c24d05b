//! `tollgate_authz_*`: ext_authz checks by result, with a latency histogram.
//!
//! [`AuthzCounters`] is plain atomics and depends on nothing of the controller, so it can move
//! into `tollgate-policies` as is. What a check pays: a thread-local increment and one relaxed
//! atomic add to a counter stripe of its own thread's (so the authz workers do not bounce one
//! cache line between them); one check in [`SAMPLE_EVERY`] is also timed (two `Instant::now()`,
//! tens of nanoseconds each on some virtual machines, and two adds into the histogram). The
//! histogram so shows the latency of an unbiased sample: its `_count` is the sampled checks, the
//! number of checks is `tollgate_authz_checks_total`.
//!
//! How to hook it into the check path (done by the owner of `policies/src/authz*`): give the
//! service an `Arc<AuthzCounters>` (the one `runtime` registers, [`crate::metrics::Sources::authz`]);
//! when a check starts, `let timer = counters.start();`; where the answer is built,
//! `counters.finish(AuthzResult::Allowed | Denied401 | Denied403 | Limited429, timer)`.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tollgate_xds::metrics::Histogram;

/// Upper bounds, in seconds, for a check (answered from memory: tens of microseconds).
pub const CHECK_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
];

/// One check in this many is timed.
pub const SAMPLE_EVERY: u32 = 64;

/// Counter stripes: more than the authz runtime's worker threads.
const STRIPES: usize = 8;

/// Hands each thread its stripe, round robin.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
    static CHECKS: Cell<u32> = const { Cell::new(0) };
}

/// One thread's counters, on a cache line of their own.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Stripe([AtomicU64; AuthzResult::ALL.len()]);

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
    stripes: [Stripe; STRIPES],
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
            stripes: Default::default(),
            latency: Histogram::new(CHECK_BUCKETS),
        }
    }
}

impl AuthzCounters {
    /// Call when a check starts: `Some` for the one check in [`SAMPLE_EVERY`] that is timed.
    pub fn start(&self) -> Option<Instant> {
        CHECKS.with(|c| {
            let n = c.get().wrapping_add(1);
            c.set(n);
            (n % SAMPLE_EVERY == 0).then(Instant::now)
        })
    }

    /// Counts one check answered with `result`, and its duration when [`AuthzCounters::start`]
    /// timed it.
    pub fn finish(&self, result: AuthzResult, timer: Option<Instant>) {
        self.count_one(result);
        if let Some(started) = timer {
            self.latency.observe(started.elapsed());
        }
    }

    /// Counts one check and its duration, for a caller that times every check itself.
    pub fn record(&self, result: AuthzResult, took: Duration) {
        self.count_one(result);
        self.latency.observe(took);
    }

    /// Checks answered with `result` since start.
    pub fn count(&self, result: AuthzResult) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0[result as usize].load(Ordering::Relaxed))
            .sum()
    }

    /// The check latency (of the timed checks).
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }

    fn count_one(&self, result: AuthzResult) {
        let stripe = STRIPE.with(|s| *s);
        if let Some(s) = self.stripes.get(stripe) {
            s.0[result as usize].fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl tollgate_policies::authz::CheckObserver for AuthzCounters {
    fn start(&self) -> Option<Instant> {
        AuthzCounters::start(self)
    }

    fn finish(&self, verdict: tollgate_policies::authz::Verdict, started: Option<Instant>) {
        use tollgate_policies::authz::Verdict;
        let result = match verdict {
            Verdict::Allowed => AuthzResult::Allowed,
            Verdict::Unauthorized => AuthzResult::Denied401,
            Verdict::Forbidden => AuthzResult::Denied403,
            Verdict::Limited => AuthzResult::Limited429,
        };
        AuthzCounters::finish(self, result, started);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_is_counted_and_one_in_sample_every_is_timed() {
        let c = std::sync::Arc::new(AuthzCounters::default());
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..SAMPLE_EVERY * 2 {
                        let timer = c.start();
                        c.finish(AuthzResult::Denied401, timer);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.count(AuthzResult::Denied401), 3 * 2 * u64::from(SAMPLE_EVERY));
        assert_eq!(c.count(AuthzResult::Allowed), 0);
        assert_eq!(c.latency().snapshot().count, 3 * 2, "one in SAMPLE_EVERY per thread");
    }
}
