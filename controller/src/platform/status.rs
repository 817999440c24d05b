//! What the admin API shows about the control-plane link.

use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use crate::metrics::platform::PlatformCounters;

/// Shared link status.
#[derive(Debug, Default)]
pub struct LinkStatus {
    state: Mutex<LinkState>,
    /// Events by type and outcome, sync durations (exported as metrics).
    metrics: PlatformCounters,
}

/// A snapshot of the link.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkState {
    pub enabled: bool,
    pub host: String,
    pub state: LinkPhase,
    pub gateway_id: Option<String>,
    pub connection_id: Option<String>,
    pub connected_at: Option<String>,
    /// Successful connections since start.
    pub connections: u64,
    pub last_error: Option<String>,
    /// Why the link gave up for good (401/403/404/409/422), if it did.
    pub stopped_reason: Option<String>,
    pub events: EventCounters,
    pub last_sync: Option<Value>,
}

/// Where the link is; shown in lower case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkPhase {
    /// No control plane is configured.
    Disabled,
    #[default]
    Connecting,
    /// Connected, running the startup/reconnect sync.
    Syncing,
    Connected,
    /// Backing off before the next connection attempt.
    Waiting,
    /// Gave up for good (401/403/404/409/422).
    Stopped,
}

/// Per-outcome event counts.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventCounters {
    pub received: u64,
    pub applied: u64,
    pub duplicate: u64,
    pub stale: u64,
    pub failed: u64,
    /// Malformed frames, unknown types, events for artifacts not deployed here.
    pub ignored: u64,
    pub acks_sent: u64,
}

/// Which counter to bump.
#[derive(Clone, Copy, Debug)]
pub enum Counter {
    Received,
    Applied,
    Duplicate,
    Stale,
    Failed,
    Ignored,
    AckSent,
}

impl LinkStatus {
    /// A snapshot.
    pub fn snapshot(&self) -> LinkState {
        self.lock().clone()
    }

    /// Changes the state under the lock.
    pub fn update(&self, f: impl FnOnce(&mut LinkState)) {
        f(&mut self.lock());
    }

    pub fn count(&self, c: Counter) {
        let mut s = self.lock();
        let e = &mut s.events;
        *match c {
            Counter::Received => &mut e.received,
            Counter::Applied => &mut e.applied,
            Counter::Duplicate => &mut e.duplicate,
            Counter::Stale => &mut e.stale,
            Counter::Failed => &mut e.failed,
            Counter::Ignored => &mut e.ignored,
            Counter::AckSent => &mut e.acks_sent,
        } += 1;
    }

    /// The counters exported as `tollgate_platform_*`.
    pub fn metrics(&self) -> &PlatformCounters {
        &self.metrics
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_keep_their_wire_names() {
        let names: Vec<serde_json::Value> = [
            LinkPhase::Disabled,
            LinkPhase::Connecting,
            LinkPhase::Syncing,
            LinkPhase::Connected,
            LinkPhase::Waiting,
            LinkPhase::Stopped,
        ]
        .iter()
        .map(|p| serde_json::to_value(p).unwrap())
        .collect();
        assert_eq!(
            names,
            ["disabled", "connecting", "syncing", "connected", "waiting", "stopped"]
        );
    }
}
