//! One stream's task: its first request (in time, or the stream ends), then requests applied to
//! the protocol state and responses sent, until the client goes away or the server shuts down.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tollgate_proto::pb::envoy::config::core::v3::Node;
use tollgate_proto::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use tollgate_proto::wire::{DeltaResponse, SotwResponse};
use tonic::{Status, Streaming};
use tracing::{debug, info, warn};

use super::Inner;
use super::limits::{MAX_NACK_TEXT, Slot, truncated};
use crate::state::{Outgoing, StreamState};
use crate::store::{Group, GroupState};
use crate::{Flavour, NodeStatus, TypeKind};

/// What the stream task needs from a request of either flavour.
pub(super) trait Incoming: prost::Message + Default + Send + 'static {
    fn node(&self) -> Option<&Node>;
    fn type_url(&self) -> &str;
    /// Resource names the request carries (subscriptions, unsubscriptions, initial versions).
    fn name_count(&self) -> usize;
    fn apply(self, state: &mut StreamState, kind: TypeKind, group: &GroupState);
}

/// Converts a built response to the wire type of a flavour.
pub(super) trait Outbound: prost::Message + Sized + Send + 'static {
    fn from_outgoing(o: Outgoing) -> Option<Self>;
}

/// Per type, the status that ends the stream if it asks for that type (from the access rules).
pub(super) type Refusals = [Option<Status>; TypeKind::COUNT];

/// An admitted stream, before its first request.
pub(super) struct Stream<O> {
    /// Its place among the open streams, given back when the task ends.
    pub(super) slot: Slot,
    pub(super) inner: Arc<Inner>,
    pub(super) tx: mpsc::Sender<Result<O, Status>>,
    pub(super) flavour: Flavour,
    pub(super) only: Option<TypeKind>,
    pub(super) id: u64,
    pub(super) refusals: Refusals,
}

// === impl Stream ===

impl<O: Outbound> Stream<O> {
    /// Runs the stream until the client goes away or the server shuts down.
    pub(super) async fn drive<R: Incoming>(mut self, mut inbound: Streaming<R>) {
        let Some(first) = self.first(&mut inbound).await else {
            return;
        };
        let node = first.node().cloned().unwrap_or_default();
        let group = self.inner.store.resolve(&node.cluster);
        info!(node = %node.id, cluster = %node.cluster, group = group.name(), "stream opened");
        self.inner.status.put(NodeStatus {
            stream_id: self.id,
            node_id: node.id.clone(),
            node_cluster: node.cluster.clone(),
            group: group.name().to_string(),
            flavour: self.flavour,
            only: self.only,
            connected_at: SystemTime::now(),
            types: Default::default(),
        });
        let ended = self.serve(&group, &node, first, &mut inbound).await;
        if let Err(status) = ended {
            let _ = self.tx.send(Err(status)).await;
        }
        self.inner.status.remove(self.id);
        info!(node = %node.id, "stream closed");
        drop(self.slot);
    }

    /// The first request, if it comes in time; otherwise the stream is ended.
    async fn first<R: Incoming>(&self, inbound: &mut Streaming<R>) -> Option<R> {
        let mut shutdown = self.inner.shutdown.clone();
        let first = tokio::select! {
            m = tokio::time::timeout(self.inner.limits.first_message_timeout, inbound.message()) => m,
            _ = shutdown.wait_for(|s| *s) => return None,
        };
        let refusal = match first {
            Ok(Ok(Some(first))) => return Some(first),
            Ok(Ok(None)) => return None,
            Ok(Err(status)) => status,
            Err(_) => Status::deadline_exceeded("no request within the first-message timeout"),
        };
        debug!(status = %refusal, "stream ended before its first request");
        let _ = self.tx.send(Err(refusal)).await;
        None
    }

    /// The request loop; `Err` carries the status the stream ends with.
    async fn serve<R: Incoming>(
        &mut self,
        group: &Group,
        node: &Node,
        first: R,
        inbound: &mut Streaming<R>,
    ) -> Result<(), Status> {
        let mut shutdown = self.inner.shutdown.clone();
        let mut changed = group.subscribe();
        let mut state = StreamState::new(self.flavour, self.only.is_none());
        let kinds: Vec<TypeKind> = match self.only {
            Some(k) => vec![k],
            None => TypeKind::ALL.to_vec(),
        };
        // Changes published before the stream opened are not timed: its first sync is not one.
        let mut converged = group.read().generation;
        let mut next = Some(first);
        loop {
            if let Some(req) = next.take() {
                self.apply(req, &mut state, group, node)?;
            }
            let (out, reports) = {
                let g = group.read();
                let out: Vec<Outgoing> = kinds.iter().filter_map(|k| state.next_response(*k, &g)).collect();
                let reports = TypeKind::ALL.map(|k| state.report(k, &g));
                if let Some(at) = newly_converged(&reports, &mut converged).and_then(|n| g.published_at(n)) {
                    self.inner.status.metrics().convergence().observe(at.elapsed());
                }
                (out, reports)
            };
            for o in out {
                let Some(msg) = O::from_outgoing(o) else { continue };
                if self.tx.send(Ok(msg)).await.is_err() {
                    return Ok(());
                }
            }
            self.inner.status.update(self.id, reports);
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
                m = inbound.message() => match m {
                    Ok(Some(r)) => next = Some(r),
                    Ok(None) => return Ok(()),
                    Err(status) => {
                        // A message too large, say: told to the client as the stream ends.
                        debug!(%status, "stream error");
                        return Err(status);
                    }
                },
                r = changed.changed() => if r.is_err() { return Ok(()) },
            }
        }
    }

    /// Applies one request within the limits and the access rules.
    fn apply<R: Incoming>(
        &mut self,
        req: R,
        state: &mut StreamState,
        group: &Group,
        node: &Node,
    ) -> Result<(), Status> {
        let max = self.inner.limits.max_resource_names;
        if req.name_count() > max {
            warn!(node = %node.id, names = req.name_count(), "too many resource names in one request: stream ended");
            return Err(too_many_names());
        }
        let Some(kind) = self.only.or_else(|| TypeKind::from_type_url(req.type_url())) else {
            debug!(type_url = req.type_url(), "ignoring request for a type we do not serve");
            return Ok(());
        };
        if let Some(refusal) = self.refusals[kind.index()].take() {
            warn!(node = %node.id, type_url = req.type_url(), "refused by the type's access rule: stream ended");
            return Err(refusal);
        }
        req.apply(state, kind, &group.read());
        if state.names(kind) > max {
            warn!(node = %node.id, type_url = kind.type_url(), "too many resource names on one stream: stream ended");
            return Err(too_many_names());
        }
        Ok(())
    }
}

/// The generation a stream has just caught up with on every type it asked for, if it is newer than
/// `last` (which it then becomes).
fn newly_converged(reports: &[crate::TypeReport], last: &mut u64) -> Option<u64> {
    let active = || reports.iter().filter(|r| r.active);
    if active().any(|r| r.pending) {
        return None;
    }
    let generation = active().map(|r| r.acked_generation).max()?;
    (generation > *last).then(|| {
        *last = generation;
        generation
    })
}

fn too_many_names() -> Status {
    Status::invalid_argument("too many resource names on one xDS stream")
}

// === impl Incoming ===

impl Incoming for DiscoveryRequest {
    fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    fn type_url(&self) -> &str {
        &self.type_url
    }

    fn name_count(&self) -> usize {
        self.resource_names.len()
    }

    fn apply(self, state: &mut StreamState, kind: TypeKind, group: &GroupState) {
        let error = self.error_detail.map(|e| truncated(e.message, MAX_NACK_TEXT));
        state.on_sotw_request(
            kind,
            self.resource_names,
            &self.version_info,
            &self.response_nonce,
            error,
            group,
        );
    }
}

impl Incoming for DeltaDiscoveryRequest {
    fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    fn type_url(&self) -> &str {
        &self.type_url
    }

    fn name_count(&self) -> usize {
        self.resource_names_subscribe.len()
            + self.resource_names_unsubscribe.len()
            + self.initial_resource_versions.len()
    }

    fn apply(self, state: &mut StreamState, kind: TypeKind, group: &GroupState) {
        let error = self.error_detail.map(|e| truncated(e.message, MAX_NACK_TEXT));
        let initial: HashMap<String, String> = self.initial_resource_versions;
        state.on_delta_request(
            kind,
            self.resource_names_subscribe,
            self.resource_names_unsubscribe,
            initial,
            &self.response_nonce,
            error,
            group,
        );
    }
}

// === impl Outbound ===

impl Outbound for SotwResponse {
    fn from_outgoing(o: Outgoing) -> Option<Self> {
        match o {
            Outgoing::Sotw(m) => Some(m),
            Outgoing::Delta(_) => None,
        }
    }
}

impl Outbound for DeltaResponse {
    fn from_outgoing(o: Outgoing) -> Option<Self> {
        match o {
            Outgoing::Delta(m) => Some(m),
            Outgoing::Sotw(_) => None,
        }
    }
}
