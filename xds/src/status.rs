//! Per-node status for callers: which version each connected Envoy ACKed per type, whether an
//! update is pending, and the last NACK.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::metrics::XdsMetrics;
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

/// What a group's Envoys did with a published generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// No open stream of the group asked for any of the types: nobody to wait for.
    Unobserved,
    /// Every stream that asked for the types is up to date with the generation.
    Accepted,
    /// A stream rejected a response built at or after the generation.
    Rejected {
        /// The rejecting node.
        node_id: String,
        /// The rejected type.
        kind: TypeKind,
        /// Envoy's error text.
        message: String,
        /// The generation of the rejected response.
        generation: u64,
    },
    /// These nodes have not answered yet.
    Behind(Vec<String>),
}

/// Every open stream's status.
#[derive(Debug, Default)]
pub struct StatusRegistry {
    streams: Mutex<BTreeMap<u64, NodeStatus>>,
    /// Woken on every change, for [`StatusRegistry::wait_synced`].
    changed: tokio::sync::Notify,
    /// Pushes, bytes and NACKs, counted from the reports' differences.
    metrics: XdsMetrics,
}

// === impl StatusRegistry ===

impl StatusRegistry {
    /// Records (or replaces) a stream's status.
    pub(crate) fn put(&self, status: NodeStatus) {
        self.lock().insert(status.stream_id, status);
        self.changed.notify_waiters();
    }

    /// Updates the per-type reports of a stream, counting what changed since the last ones.
    pub(crate) fn update(&self, stream_id: u64, types: [TypeReport; TypeKind::COUNT]) {
        if let Some(s) = self.lock().get_mut(&stream_id) {
            for (kind, (old, new)) in TypeKind::ALL.into_iter().zip(s.types.iter().zip(&types)) {
                let responses = new.responses.saturating_sub(old.responses);
                self.metrics
                    .sent(kind, responses, new.bytes_sent.saturating_sub(old.bytes_sent));
                if new.last_nack.is_some() && new.last_nack != old.last_nack {
                    self.metrics.nacked(kind);
                }
            }
            s.types = types;
        }
        self.changed.notify_waiters();
    }

    /// Forgets a closed stream.
    pub(crate) fn remove(&self, stream_id: u64) {
        self.lock().remove(&stream_id);
        self.changed.notify_waiters();
    }

    /// The node ids of the open streams that asked for `kind` and are not yet up to date with store
    /// generation `generation` for it.
    pub fn behind(&self, kind: TypeKind, generation: u64) -> Vec<String> {
        let mut out: Vec<String> = self
            .lock()
            .values()
            .filter(|s| {
                let t = &s.types[kind.index()];
                t.active && t.acked_generation < generation
            })
            .map(|s| s.node_id.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Waits until every open stream that asked for `kind` has ACKed store generation `generation`
    /// (or a later one) for it, or has closed; at most `limit`. Returns the node ids still behind
    /// (empty when all caught up).
    pub async fn wait_synced(&self, kind: TypeKind, generation: u64, limit: std::time::Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // Registered before the check, so a change between the check and the wait is not lost.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let behind = self.behind(kind, generation);
            if behind.is_empty() {
                return behind;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.behind(kind, generation);
            }
        }
    }

    /// What the open streams of `group` did with store generation `generation` for `kinds`: a
    /// rejection of a response built at or after it wins over everything else.
    pub fn settled(&self, group: &str, kinds: &[TypeKind], generation: u64) -> Settled {
        let streams = self.lock();
        let mut observed = false;
        let mut behind = Vec::new();
        for s in streams.values().filter(|s| s.group == group) {
            for &kind in kinds {
                let t = &s.types[kind.index()];
                if !t.active {
                    continue;
                }
                observed = true;
                if let Some(n) = t.last_nack.as_ref().filter(|n| n.generation >= generation) {
                    return Settled::Rejected {
                        node_id: s.node_id.clone(),
                        kind,
                        message: n.message.clone(),
                        generation: n.generation,
                    };
                }
                if t.acked_generation < generation {
                    behind.push(s.node_id.clone());
                }
            }
        }
        behind.sort();
        behind.dedup();
        match (observed, behind.is_empty()) {
            (false, _) => Settled::Unobserved,
            (true, true) => Settled::Accepted,
            (true, false) => Settled::Behind(behind),
        }
    }

    /// Waits, at most `limit`, until [`StatusRegistry::settled`] is no longer `Behind`; returns the
    /// last answer.
    pub async fn wait_settled(
        &self,
        group: &str,
        kinds: &[TypeKind],
        generation: u64,
        limit: std::time::Duration,
    ) -> Settled {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = self.settled(group, kinds, generation);
            if !matches!(now, Settled::Behind(_)) {
                return now;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.settled(group, kinds, generation);
            }
        }
    }

    /// Resolves on the next change of any stream's status (register it before looking, as
    /// [`StatusRegistry::wait_settled`] does, so no change is missed).
    pub fn changes(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The counters of every stream since start.
    pub fn metrics(&self) -> &XdsMetrics {
        &self.metrics
    }

    /// How many distinct nodes have a stream open, per group and flavour.
    pub fn clients(&self) -> BTreeMap<(String, Flavour), usize> {
        let streams = self.lock();
        let mut nodes: BTreeMap<(String, Flavour), std::collections::BTreeSet<&str>> = BTreeMap::new();
        for s in streams.values() {
            nodes
                .entry((s.group.clone(), s.flavour))
                .or_default()
                .insert(&s.node_id);
        }
        nodes.into_iter().map(|(k, v)| (k, v.len())).collect()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn stream(id: u64, node: &str, key_sets: Option<u64>) -> NodeStatus {
        let mut types: [TypeReport; TypeKind::COUNT] = Default::default();
        if let Some(g) = key_sets {
            types[TypeKind::Custom.index()] = TypeReport {
                active: true,
                acked_generation: g,
                ..Default::default()
            };
        }
        NodeStatus {
            stream_id: id,
            node_id: node.into(),
            node_cluster: "c".into(),
            group: "default".into(),
            flavour: Flavour::Delta,
            only: None,
            connected_at: SystemTime::now(),
            types,
        }
    }

    #[test]
    fn behind_counts_only_streams_that_asked_for_the_type() {
        let r = StatusRegistry::default();
        r.put(stream(1, "envoy", None));
        r.put(stream(2, "replica-a", Some(7)));
        r.put(stream(3, "replica-b", Some(9)));
        assert_eq!(r.behind(TypeKind::Custom, 8), vec!["replica-a".to_string()]);
        assert!(r.behind(TypeKind::Custom, 7).is_empty());
        assert!(r.behind(TypeKind::Route, 100).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn wait_synced_returns_on_the_ack_or_names_who_is_behind_at_the_limit() {
        let r = Arc::new(StatusRegistry::default());
        r.put(stream(2, "replica-a", Some(3)));
        r.put(stream(3, "replica-b", Some(3)));
        // Nothing newer to wait for.
        assert!(
            r.wait_synced(TypeKind::Custom, 3, Duration::from_secs(1))
                .await
                .is_empty()
        );

        let waiter = {
            let r = r.clone();
            tokio::spawn(async move { r.wait_synced(TypeKind::Custom, 4, Duration::from_secs(60)).await })
        };
        tokio::task::yield_now().await;
        let mut acked = stream(2, "replica-a", Some(4)).types;
        r.update(2, acked.clone());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "replica-b has not ACKed yet");
        // A stream that closes is no longer waited for.
        r.remove(3);
        assert!(waiter.await.unwrap().is_empty());

        // At the limit, the laggard is named.
        acked[TypeKind::Custom.index()].acked_generation = 4;
        r.update(2, acked);
        r.put(stream(4, "replica-c", Some(4)));
        let behind = r.wait_synced(TypeKind::Custom, 5, Duration::from_millis(200)).await;
        assert_eq!(behind, vec!["replica-a".to_string(), "replica-c".to_string()]);
    }

    #[test]
    fn settled_prefers_a_rejection_and_ignores_other_groups_and_inactive_types() {
        let r = StatusRegistry::default();
        assert_eq!(r.settled("default", &[TypeKind::Custom], 1), Settled::Unobserved);
        r.put(stream(1, "a", Some(5)));
        let mut other = stream(2, "b", Some(1));
        other.group = "other".into();
        r.put(other);
        assert_eq!(r.settled("default", &[TypeKind::Custom], 5), Settled::Accepted);
        assert_eq!(r.settled("default", &[TypeKind::Route], 5), Settled::Unobserved);
        assert_eq!(
            r.settled("default", &[TypeKind::Custom], 6),
            Settled::Behind(vec!["a".into()])
        );
        let mut types = stream(1, "a", Some(5)).types;
        types[TypeKind::Custom.index()].last_nack = Some(crate::Nack {
            version: "v".into(),
            message: "bad regex".into(),
            generation: 6,
            at: SystemTime::now(),
        });
        r.update(1, types);
        assert_eq!(
            r.settled("default", &[TypeKind::Custom], 6),
            Settled::Rejected {
                node_id: "a".into(),
                kind: TypeKind::Custom,
                message: "bad regex".into(),
                generation: 6,
            }
        );
        // A rejection of an earlier generation says nothing about a later one.
        assert_eq!(
            r.settled("default", &[TypeKind::Custom], 7),
            Settled::Behind(vec!["a".into()])
        );
    }
}
