//! `tollgate_platform_*` counters the control-plane link bumps: events by type and outcome, and
//! how long each startup/reconnect sync took. Event types outside the protocol's known set are
//! counted as `other`, so a control plane cannot grow the label set.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tollgate_xds::metrics::Histogram;

use crate::platform::events::Outcome;

/// The event types of the platform protocol (reference §3), then `other`.
pub const EVENT_TYPES: &[&str] = &[
    "api.deployed",
    "api.undeployed",
    "api.deleted",
    "apikey.created",
    "apikey.updated",
    "apikey.revoked",
    "subscription.created",
    "subscription.updated",
    "subscription.deleted",
    "subscriptionPlan.created",
    "subscriptionPlan.updated",
    "subscriptionPlan.deleted",
    "application.updated",
    "llmprovider.deployed",
    "llmprovider.undeployed",
    "llmproxy.deployed",
    "llmproxy.undeployed",
    "mcpproxy.deployed",
    "mcpproxy.undeployed",
    "other",
];

/// What handling an event did, in label order.
pub const OUTCOMES: &[&str] = &["applied", "duplicate", "stale", "failed", "ignored"];

/// Upper bounds, in seconds, of a sync (REST calls and store writes: up to minutes).
const SYNC_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// The link's counters.
#[derive(Debug)]
pub struct PlatformCounters {
    events: Vec<[AtomicU64; 5]>,
    sync: Histogram,
}

impl Default for PlatformCounters {
    fn default() -> Self {
        PlatformCounters {
            events: EVENT_TYPES.iter().map(|_| Default::default()).collect(),
            sync: Histogram::new(SYNC_BUCKETS),
        }
    }
}

impl PlatformCounters {
    /// Counts one event of type `kind` (`None`: a frame that named none) handled with `outcome`.
    pub fn event(&self, kind: Option<&str>, outcome: &Outcome) {
        let other = EVENT_TYPES.len() - 1;
        let t = kind
            .and_then(|k| EVENT_TYPES[..other].iter().position(|e| *e == k))
            .unwrap_or(other);
        let o = match outcome {
            Outcome::Applied => 0,
            Outcome::Duplicate => 1,
            Outcome::Stale => 2,
            Outcome::Failed(_) => 3,
            Outcome::Ignored(_) => 4,
        };
        if let Some(c) = self.events.get(t).and_then(|row| row.get(o)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records how long a sync took.
    pub fn synced(&self, took: Duration) {
        self.sync.observe(took);
    }

    /// `(type, outcome, count)` of every pair seen at least once.
    pub fn events(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (t, row) in EVENT_TYPES.iter().zip(&self.events) {
            for (o, c) in OUTCOMES.iter().zip(row) {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    out.push((*t, *o, n));
                }
            }
        }
        out
    }

    /// Sync durations.
    pub fn sync(&self) -> &Histogram {
        &self.sync
    }
}
