//! Per-node status for callers: which version each connected Envoy ACKed per type, whether an
//! update is pending, and the last NACK.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::{Flavour, TypeKind, TypeReport};

/// The status of one connected stream (one Envoy, or one per-type stream of an Envoy).
#[derive(Clone, Debug)]
pub struct NodeStatus {
    /// Server-assigned stream id.
    pub stream_id: u64,
    /// `node.id`.
    pub node_id: String,
    /// `node.cluster`.
    pub node_cluster: String,
    /// The gateway group the stream serves.
    pub group: String,
    /// SotW or delta.
    pub flavour: Flavour,
    /// ADS, or the one type of a per-type stream.
    pub only: Option<TypeKind>,
    /// When the stream opened.
    pub connected_at: SystemTime,
    /// Per type, in [`TypeKind::ALL`] order.
    pub types: [TypeReport; TypeKind::COUNT],
}

/// Every open stream's status.
#[derive(Debug, Default)]
pub struct StatusRegistry {
    streams: Mutex<BTreeMap<u64, NodeStatus>>,
}

// === impl StatusRegistry ===

impl StatusRegistry {
    /// Records (or replaces) a stream's status.
    pub(crate) fn put(&self, status: NodeStatus) {
        self.lock().insert(status.stream_id, status);
    }

    /// Updates the per-type reports of a stream.
    pub(crate) fn update(&self, stream_id: u64, types: [TypeReport; TypeKind::COUNT]) {
        if let Some(s) = self.lock().get_mut(&stream_id) {
            s.types = types;
        }
    }

    /// Forgets a closed stream.
    pub(crate) fn remove(&self, stream_id: u64) {
        self.lock().remove(&stream_id);
    }

    /// A snapshot of every open stream, by stream id.
    pub fn snapshot(&self) -> Vec<NodeStatus> {
        self.lock().values().cloned().collect()
    }

    /// The streams of node `id`.
    pub fn node(&self, id: &str) -> Vec<NodeStatus> {
        self.lock().values().filter(|s| s.node_id == id).cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, NodeStatus>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }
}
