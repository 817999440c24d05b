//! `tollgate authz-replica`: the ext_authz service without the controller, fed over xDS.
//!
//! A replica subscribes (delta ADS, wildcard) to the controller's `tollgate.keys.v1.ApiKeySet`
//! resources (published when `api_keys.publish_to_replicas` is on), keeps the same layered index
//! the controller keeps, and answers `Check` exactly as the embedded service does. Run one next to
//! each Envoy (or a pool behind a DNS name) and point the controller's `server.authz_advertise` /
//! `authz_port` at them with `server.authz_embedded = false`.
//!
//! Until the first key sets arrive the index is empty, so every check is refused (fail closed).
//! If the controller goes away the replica keeps serving the keys it has and reconnects with
//! backoff, telling the controller which set versions it holds so only changes are resent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use prost::Message;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tollgate_policies::AuthzServer;
use tollgate_policies::authz::index::Digest;
use tollgate_policies::authz::{IndexWriter, KeyRecord, SharedIndex};
use tollgate_proto::keys::ApiKeySet;
use tollgate_proto::pb::envoy::config::core::v3::Node;
use tollgate_proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use tollgate_proto::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DeltaDiscoveryResponse};
use tollgate_proto::pb::google::rpc::Status as RpcStatus;
use tollgate_xds::TypeKind;
use tracing::{info, warn};

/// The `node.cluster` replicas announce.
pub const NODE_CLUSTER: &str = "tollgate-authz-replica";

/// How a replica runs.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// The controller's xDS endpoint, e.g. `http://127.0.0.1:18000`.
    pub xds: String,
    /// Where the ext_authz gRPC service listens.
    pub listen: SocketAddr,
    /// `node.id` (shown in the controller's `/xds_sync_status`).
    pub node_id: String,
}

/// What a replica has applied, for tests and logs.
#[derive(Debug, Default)]
pub struct ReplicaStats {
    /// Responses applied (and ACKed).
    pub applied: AtomicU64,
    /// Responses refused (and NACKed).
    pub rejected: AtomicU64,
    /// Sessions opened with the controller.
    pub sessions: AtomicU64,
}

/// A running replica.
#[derive(Debug)]
pub struct Replica {
    /// The ext_authz address.
    pub addr: SocketAddr,
    pub stats: Arc<ReplicaStats>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Replica {
    /// Binds the ext_authz port and starts following the controller.
    pub async fn start(config: ReplicaConfig) -> anyhow::Result<Replica> {
        let index = Arc::new(SharedIndex::default());
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let stats = Arc::new(ReplicaStats::default());
        let mut on_stop = stopped.clone();
        let server = tokio::spawn({
            let index = index.clone();
            async move {
                let served = tonic::transport::Server::builder()
                    .add_service(AuthzServer::new(index))
                    .serve_with_incoming_shutdown(tollgate_xds::nodelay_incoming(listener), async move {
                        let _ = on_stop.wait_for(|s| *s).await;
                    })
                    .await;
                if let Err(e) = served {
                    warn!(error = %e, "ext_authz server failed");
                }
            }
        });
        let feed = tokio::spawn(follow(config, index, stats.clone(), stopped));
        info!(%addr, "ext_authz replica listening");
        Ok(Replica {
            addr,
            stats,
            stop,
            tasks: vec![server, feed],
        })
    }

    /// Stops serving and following.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The key sets held, by API: their versions and digests.
#[derive(Default)]
struct Held {
    sets: HashMap<String, (String, Vec<Digest>)>,
}

async fn follow(
    config: ReplicaConfig,
    index: Arc<SharedIndex>,
    stats: Arc<ReplicaStats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut writer = IndexWriter::new(index, []);
    let mut held = Held::default();
    let mut backoff = Duration::from_millis(100);
    loop {
        stats.sessions.fetch_add(1, Ordering::Relaxed);
        let result = session(&config, &mut writer, &mut held, &stats, &mut stop).await;
        if *stop.borrow() {
            return;
        }
        match result {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => warn!(xds = %config.xds, error = format!("{e:#}"), retry_in = ?backoff, "xDS session ended"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One delta ADS stream; `Ok` when the controller ended it, `Err` on failure.
async fn session(
    config: &ReplicaConfig,
    writer: &mut IndexWriter,
    held: &mut Held,
    stats: &ReplicaStats,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut client = AggregatedDiscoveryServiceClient::connect(config.xds.clone())
        .await
        .context("connecting")?;
    let (tx, rx) = mpsc::channel(8);
    let type_url = TypeKind::KeySet.type_url().to_string();
    let first = DeltaDiscoveryRequest {
        node: Some(Node {
            id: config.node_id.clone(),
            cluster: NODE_CLUSTER.into(),
            ..Default::default()
        }),
        type_url: type_url.clone(),
        resource_names_subscribe: vec!["*".into()],
        initial_resource_versions: held.sets.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect(),
        ..Default::default()
    };
    tx.send(first).await.context("sending the subscription")?;
    let mut responses = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
        .context("opening the stream")?
        .into_inner();
    loop {
        let response = tokio::select! {
            r = responses.message() => r.context("receiving")?,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let Some(response) = response else {
            return Ok(());
        };
        let mut reply = DeltaDiscoveryRequest {
            type_url: type_url.clone(),
            response_nonce: response.nonce.clone(),
            ..Default::default()
        };
        match apply(&response, writer, held) {
            Ok(()) => {
                stats.applied.fetch_add(1, Ordering::Relaxed);
            }
            Err(why) => {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
                warn!(error = %why, "key sets refused");
                reply.error_detail = Some(RpcStatus {
                    code: 3, // INVALID_ARGUMENT
                    message: why,
                    ..Default::default()
                });
            }
        }
        tx.send(reply).await.context("sending the ACK")?;
    }
}

/// Applies a response whole or not at all.
fn apply(response: &DeltaDiscoveryResponse, writer: &mut IndexWriter, held: &mut Held) -> Result<(), String> {
    let type_url = TypeKind::KeySet.type_url();
    if response.type_url != type_url {
        return Err(format!("unexpected type {}", response.type_url));
    }
    let mut sets = Vec::with_capacity(response.resources.len());
    for r in &response.resources {
        let any = r.resource.as_ref().ok_or_else(|| format!("{}: no body", r.name))?;
        if any.type_url != type_url {
            return Err(format!("{}: unexpected type {}", r.name, any.type_url));
        }
        let set = ApiKeySet::decode(any.value.as_slice()).map_err(|e| format!("{}: {e}", r.name))?;
        if set.api != r.name {
            return Err(format!("{}: names API {}", r.name, set.api));
        }
        let mut entries = Vec::with_capacity(set.keys.len());
        for k in set.keys {
            let digest: Digest = k
                .sha256
                .as_slice()
                .try_into()
                .map_err(|_| format!("{}: a digest of {} bytes", r.name, k.sha256.len()))?;
            entries.push((digest, k));
        }
        sets.push((r.name.clone(), r.version.clone(), set.api, entries));
    }
    let mut remove = Vec::new();
    let mut add = Vec::new();
    let api_of = |writer: &IndexWriter, d: &Digest| writer.get(d).map(|k| k.api.to_string());
    let gone: Vec<String> = response.removed_resources.clone();
    for name in gone {
        if let Some((_, digests)) = held.sets.remove(&name) {
            remove.extend(
                digests
                    .into_iter()
                    .filter(|d| api_of(writer, d).as_deref() == Some(name.as_str())),
            );
        }
    }
    for (name, version, api, entries) in sets {
        let api_arc: Arc<str> = Arc::from(api.as_str());
        let digests = entries.iter().map(|(d, _)| *d).collect();
        if let Some((_, old)) = held.sets.insert(name, (version, digests)) {
            remove.extend(
                old.into_iter()
                    .filter(|d| api_of(writer, d).as_deref() == Some(api.as_str())),
            );
        }
        for (d, k) in entries {
            add.push((
                d,
                KeyRecord {
                    api: api_arc.clone(),
                    name: Arc::from(k.name.as_str()),
                    application: (!k.application.is_empty()).then(|| Arc::from(k.application.as_str())),
                    expires_at: (k.expires_at != 0).then_some(k.expires_at),
                },
            ));
        }
    }
    writer.change(remove, add);
    Ok(())
}
