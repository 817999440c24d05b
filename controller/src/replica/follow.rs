//! A replica following the controller: one delta ADS stream at a time, subscribed (wildcard) to
//! the key sets and the subscription sets, each response applied and ACKed (or NACKed with why),
//! reconnecting with backoff and telling the controller which set versions it holds so only
//! changes are resent.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tollgate_policies::authz::subs::{SharedSubscriptions, SubscriptionWriter};
use tollgate_policies::authz::{IndexWriter, SharedIndex};
use tollgate_proto::pb::envoy::config::core::v3::Node;
use tollgate_proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use tollgate_proto::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DeltaDiscoveryResponse};
use tollgate_proto::pb::google::rpc::Status as RpcStatus;
use tollgate_proto::{keys, subs};
use tonic::transport::{Channel, Endpoint};
use tracing::warn;

use super::apply::{ApplyError, HeldSets};
use super::apply_subs::HeldSubSets;
use super::fresh::{Freshness, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT};
use super::token::TOKEN_HEADER;
use super::{NODE_CLUSTER, ReplicaConfig, ReplicaStats};

/// How long a new stream must stay open, unrefused, to count as contact without an answer.
const SESSION_CONFIRM: Duration = Duration::from_secs(1);

/// Why a session with the controller ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The controller could not be reached.
    #[error("connecting: {0}")]
    Connect(#[source] tonic::transport::Error),
    /// The token cannot be sent as a header value.
    #[error("the replica token is not a valid header value")]
    BadToken,
    /// The controller refused or broke the stream.
    #[error("{0}: {1}")]
    Stream(&'static str, #[source] tonic::Status),
    /// The request stream closed under us.
    #[error("sending {0}: the stream is closed")]
    Send(&'static str),
}

/// What a replica holds: the key index and the subscription index, with the sets behind each.
pub(super) struct Holdings {
    keys: IndexWriter,
    key_sets: HeldSets,
    subs: SubscriptionWriter,
    sub_sets: HeldSubSets,
}

// === impl Holdings ===

impl Holdings {
    /// Empty holdings writing `index` and `subs`.
    pub(super) fn new(index: Arc<SharedIndex>, subs: Arc<SharedSubscriptions>) -> Self {
        Holdings {
            keys: IndexWriter::new(index, []),
            key_sets: HeldSets::default(),
            subs: SubscriptionWriter::new(subs),
            sub_sets: HeldSubSets::default(),
        }
    }

    /// Applies a response of either type, whole or not at all.
    fn apply(&mut self, response: &DeltaDiscoveryResponse) -> Result<(), ApplyError> {
        if response.type_url == subs::TYPE_URL {
            self.sub_sets.apply(response, &mut self.subs)
        } else {
            self.key_sets.apply(response, &mut self.keys)
        }
    }

    /// The first request of each type: wildcard, with the versions held.
    fn subscriptions(&self, node: Node) -> [DeltaDiscoveryRequest; 2] {
        let first = |type_url: &str, versions| DeltaDiscoveryRequest {
            node: Some(node.clone()),
            type_url: type_url.into(),
            resource_names_subscribe: vec!["*".into()],
            initial_resource_versions: versions,
            ..Default::default()
        };
        [
            first(keys::TYPE_URL, self.key_sets.versions()),
            first(subs::TYPE_URL, self.sub_sets.versions()),
        ]
    }
}

/// Follows the controller until `stop`.
pub(super) async fn follow(
    config: ReplicaConfig,
    mut holdings: Holdings,
    stats: Arc<ReplicaStats>,
    fresh: Arc<Freshness>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        stats.sessions.fetch_add(1, Ordering::Relaxed);
        let result = session(&config, &mut holdings, &stats, &fresh, &mut stop).await;
        fresh.lost();
        if *stop.borrow() {
            return;
        }
        match result {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => warn!(xds = %config.xds, error = %e, retry_in = ?backoff, "xDS session ended"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// A client of the controller's xDS port; keepalive notices a silent partition, so the staleness
/// clock starts.
async fn connect(config: &ReplicaConfig) -> Result<AggregatedDiscoveryServiceClient<Channel>, SessionError> {
    let mut endpoint = Endpoint::from_shared(config.xds.clone())
        .map_err(SessionError::Connect)?
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    if let Some(tls) = &config.tls {
        endpoint = endpoint
            .tls_config(tls.client_config())
            .map_err(SessionError::Connect)?;
    }
    let channel = endpoint.connect().await.map_err(SessionError::Connect)?;
    Ok(AggregatedDiscoveryServiceClient::new(channel))
}

/// One delta ADS stream; `Ok` when the controller ended it, `Err` on failure.
async fn session(
    config: &ReplicaConfig,
    holdings: &mut Holdings,
    stats: &ReplicaStats,
    fresh: &Freshness,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let mut client = connect(config).await?;
    let (tx, rx) = mpsc::channel(8);
    let node = Node {
        id: config.node_id.clone(),
        cluster: NODE_CLUSTER.into(),
        ..Default::default()
    };
    for first in holdings.subscriptions(node) {
        tx.send(first)
            .await
            .map_err(|_| SessionError::Send("the subscription"))?;
    }
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    let token = config.token.expose().parse().map_err(|_| SessionError::BadToken)?;
    request.metadata_mut().insert(TOKEN_HEADER, token);
    let mut responses = client
        .delta_aggregated_resources(request)
        .await
        .map_err(|s| SessionError::Stream("opening the stream", s))?
        .into_inner();
    // A controller with nothing new answers nothing: a stream it keeps open without refusing it
    // (a refusal comes at once) is contact too.
    let confirm = tokio::time::sleep(SESSION_CONFIRM);
    tokio::pin!(confirm);
    let mut confirmed = false;
    loop {
        let response = tokio::select! {
            r = responses.message() => r.map_err(|s| SessionError::Stream("receiving", s))?,
            _ = stop.wait_for(|s| *s) => return Ok(()),
            _ = &mut confirm, if !confirmed => {
                confirmed = true;
                fresh.live();
                continue;
            }
        };
        let Some(response) = response else {
            return Ok(());
        };
        let mut reply = DeltaDiscoveryRequest {
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            ..Default::default()
        };
        match holdings.apply(&response) {
            Ok(()) => {
                stats.applied.fetch_add(1, Ordering::Relaxed);
            }
            Err(why) => {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
                warn!(error = %why, "sets refused");
                reply.error_detail = Some(RpcStatus {
                    code: 3, // INVALID_ARGUMENT
                    message: why.to_string(),
                    ..Default::default()
                });
            }
        }
        // Only now is what the replica holds current.
        confirmed = true;
        fresh.live();
        tx.send(reply).await.map_err(|_| SessionError::Send("the ACK"))?;
    }
}
