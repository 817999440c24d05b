//! Counters an embedding application exports as metrics: responses and bytes pushed and NACKs
//! received per type, and how long each connected Envoy took to ACK a change. Plain atomics,
//! bumped by the stream tasks and read at scrape time, so this crate needs no metrics library.
//!
//! [`Histogram`] is a fixed-bucket histogram of atomics: an observation is a scan of a dozen bounds
//! and two relaxed atomic adds (its bucket and the sum; the count is the buckets' total), cheap
//! enough for any hot path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::TypeKind;

/// Upper bounds, in seconds, of the convergence histogram: from a millisecond (a local Envoy) to
/// a minute (an Envoy behind a slow link, or one that holds a change back until it can apply it).
pub const CONVERGENCE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A histogram over fixed upper bounds (seconds) whose every part is an atomic.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, then the overflow (`+Inf`) bucket; not cumulative.
    buckets: Box<[AtomicU64]>,
    /// The sum of the observations, in nanoseconds (584 years before it wraps).
    sum_nanos: AtomicU64,
}

/// What a [`Histogram`] holds at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations in this bucket only)`, the last bound `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    /// How many observations.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum: f64,
}

/// The xDS server's counters (see the module documentation).
#[derive(Debug)]
pub struct XdsMetrics {
    pushes: [AtomicU64; TypeKind::COUNT],
    bytes: [AtomicU64; TypeKind::COUNT],
    nacks: [AtomicU64; TypeKind::COUNT],
    convergence: Histogram,
}

// === impl Histogram ===

impl Histogram {
    /// A histogram over `bounds` (seconds, ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        // A dozen bounds: a linear scan beats a binary search at this size.
        let i = self.bounds.iter().position(|b| secs <= *b).unwrap_or(self.bounds.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The current counts. Read without a lock, so a concurrent observation may show in its
    /// bucket and not yet in the sum: Prometheus tolerates such skew within one scrape.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let bounds = self.bounds.iter().copied().chain(std::iter::once(f64::INFINITY));
        let buckets: Vec<(f64, u64)> = bounds
            .zip(self.buckets.iter())
            .map(|(b, n)| (b, n.load(Ordering::Relaxed)))
            .collect();
        HistogramSnapshot {
            count: buckets.iter().map(|(_, n)| n).sum(),
            sum: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            buckets,
        }
    }
}

// === impl XdsMetrics ===

impl Default for XdsMetrics {
    fn default() -> Self {
        XdsMetrics {
            pushes: Default::default(),
            bytes: Default::default(),
            nacks: Default::default(),
            convergence: Histogram::new(CONVERGENCE_BUCKETS),
        }
    }
}

impl XdsMetrics {
    /// Responses sent for `kind`, over every stream since start.
    pub fn pushes(&self, kind: TypeKind) -> u64 {
        self.pushes[kind.index()].load(Ordering::Relaxed)
    }

    /// Encoded response bytes sent for `kind`.
    pub fn bytes(&self, kind: TypeKind) -> u64 {
        self.bytes[kind.index()].load(Ordering::Relaxed)
    }

    /// NACKs received for `kind` (the reason of the last is in the node status, not here).
    pub fn nacks(&self, kind: TypeKind) -> u64 {
        self.nacks[kind.index()].load(Ordering::Relaxed)
    }

    /// Per stream, the time from the publish of a change to the stream's ACK of every type it
    /// asked for (changes published while the stream was open only).
    pub fn convergence(&self) -> &Histogram {
        &self.convergence
    }

    pub(crate) fn sent(&self, kind: TypeKind, responses: u64, bytes: u64) {
        if responses > 0 {
            self.pushes[kind.index()].fetch_add(responses, Ordering::Relaxed);
            self.bytes[kind.index()].fetch_add(bytes, Ordering::Relaxed);
        }
    }

    pub(crate) fn nacked(&self, kind: TypeKind) {
        self.nacks[kind.index()].fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(10));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3));
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.01, 1), (0.1, 1), (f64::INFINITY, 1)]);
        assert_eq!(s.count, 3);
        assert!((s.sum - 3.06).abs() < 1e-9, "{}", s.sum);
    }

    #[test]
    fn counters_are_per_type() {
        let m = XdsMetrics::default();
        m.sent(TypeKind::Route, 2, 300);
        m.sent(TypeKind::Cluster, 0, 0);
        m.nacked(TypeKind::Route);
        assert_eq!((m.pushes(TypeKind::Route), m.bytes(TypeKind::Route)), (2, 300));
        assert_eq!(m.pushes(TypeKind::Cluster), 0);
        assert_eq!(m.nacks(TypeKind::Route), 1);
        assert_eq!(m.nacks(TypeKind::Listener), 0);
    }
}
