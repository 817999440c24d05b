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
    /// The controller's replica token (its `<data_dir>/replica-token`), sent with every session.
    pub token: String,
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

/// A key set held: its version, its API and its digests.
struct HeldSet {
    version: String,
    api: String,
    digests: Vec<Digest>,
}

/// The key sets held, by resource name.
#[derive(Default)]
struct Held {
    sets: HashMap<String, HeldSet>,
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
        initial_resource_versions: held.sets.iter().map(|(k, s)| (k.clone(), s.version.clone())).collect(),
        ..Default::default()
    };
    tx.send(first).await.context("sending the subscription")?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    let token = config
        .token
        .parse()
        .context("the replica token is not a valid header value")?;
    request.metadata_mut().insert(tollgate_xds::REPLICA_TOKEN_HEADER, token);
    let mut responses = client
        .delta_aggregated_resources(request)
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
        // Messages name the API, not the shard: a shard is a digest's first byte, and digests
        // (or their prefixes) are never logged.
        let label = r.name.rsplit_once('/').map_or(r.name.as_str(), |(api, _)| api);
        let any = r
            .resource
            .as_ref()
            .ok_or_else(|| format!("key set of {label}: no body"))?;
        if any.type_url != type_url {
            return Err(format!("key set of {label}: unexpected type {}", any.type_url));
        }
        let set = ApiKeySet::decode(any.value.as_slice()).map_err(|e| format!("key set of {label}: {e}"))?;
        // Named `{api}/{shard}`, the shard being the first digest byte of every key in it.
        let shard = match r.name.rsplit_once('/') {
            Some((api, shard)) if api == set.api => u8::from_str_radix(shard, 16).ok(),
            _ => None,
        }
        .ok_or_else(|| format!("key set of {label}: not a key set name for API {}", set.api))?;
        let mut entries = Vec::with_capacity(set.keys.len());
        for k in set.keys {
            let digest: Digest = k
                .sha256
                .as_slice()
                .try_into()
                .map_err(|_| format!("key set of {label}: a digest of {} bytes", k.sha256.len()))?;
            if digest[0] != shard {
                return Err(format!("key set of {label}: a digest outside the set's shard"));
            }
            entries.push((digest, k));
        }
        sets.push((r.name.clone(), r.version.clone(), set.api, entries));
    }
    let mut remove = Vec::new();
    let mut add = Vec::new();
    // A digest is only removed while it still belongs to the set's API (a value freed on one API
    // and reused on another must not be removed by the first API's update arriving later).
    let owned_by = |writer: &IndexWriter, d: &Digest, api: &str| writer.get(d).is_some_and(|k| k.api == api);
    for name in &response.removed_resources {
        if let Some(old) = held.sets.remove(name) {
            remove.extend(old.digests.into_iter().filter(|d| owned_by(writer, d, &old.api)));
        }
    }
    for (name, version, api, entries) in sets {
        let api_arc: Arc<str> = Arc::from(api.as_str());
        let digests = entries.iter().map(|(d, _)| *d).collect();
        let set = HeldSet {
            version,
            api: api.clone(),
            digests,
        };
        if let Some(old) = held.sets.insert(name, set) {
            remove.extend(old.digests.into_iter().filter(|d| owned_by(writer, d, &old.api)));
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

#[cfg(test)]
mod tests {
    use tollgate_policies::authz::{Decision, digest_of};
    use tollgate_proto::keys::ApiKeyDigest;
    use tollgate_proto::pb::envoy::service::discovery::v3::Resource;
    use tollgate_proto::pb::google::protobuf::Any;

    use super::*;

    fn resource(name: &str, api: &str, keys: &[&[u8]]) -> Resource {
        let set = ApiKeySet {
            api: api.into(),
            keys: keys
                .iter()
                .map(|k| ApiKeyDigest {
                    sha256: digest_of(k).to_vec(),
                    name: "k".into(),
                    application: String::new(),
                    expires_at: 0,
                })
                .collect(),
        };
        Resource {
            name: name.into(),
            version: "v1".into(),
            resource: Some(Any {
                type_url: TypeKind::KeySet.type_url().into(),
                value: set.encode_to_vec(),
            }),
            ..Default::default()
        }
    }

    fn shard(key: &[u8]) -> String {
        format!("{:02x}", digest_of(key)[0])
    }

    fn response(resources: Vec<Resource>, removed: &[&str]) -> DeltaDiscoveryResponse {
        DeltaDiscoveryResponse {
            type_url: TypeKind::KeySet.type_url().into(),
            resources,
            removed_resources: removed.iter().map(|s| s.to_string()).collect(),
            nonce: "1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn applies_sets_and_removals_and_refuses_bad_ones_whole() {
        let index = Arc::new(SharedIndex::default());
        let mut writer = IndexWriter::new(index.clone(), []);
        let mut held = Held::default();
        let allows = |k: &[u8]| matches!(index.load().decide("orders", k, 0), Decision::Allow(_));
        let name = format!("orders/{}", shard(b"apip_a"));
        apply(
            &response(vec![resource(&name, "orders", &[b"apip_a"])], &[]),
            &mut writer,
            &mut held,
        )
        .unwrap();
        assert!(allows(b"apip_a"));

        // Each of these is refused and changes nothing, however the rest of the response looks.
        let other = format!("orders/{}", shard(b"apip_b"));
        let good = resource(&other, "orders", &[b"apip_b"]);
        let mut short = resource(&other, "orders", &[]);
        short.resource = Some(Any {
            type_url: TypeKind::KeySet.type_url().into(),
            value: ApiKeySet {
                api: "orders".into(),
                keys: vec![ApiKeyDigest {
                    sha256: vec![1, 2, 3],
                    ..Default::default()
                }],
            }
            .encode_to_vec(),
        });
        let bad = [
            resource(&format!("billing/{}", shard(b"apip_c")), "orders", &[b"apip_c"]),
            resource(
                &format!("orders/{}", shard(b"apip_c")),
                "orders",
                &[b"apip_c", b"apip_a"],
            ),
            resource("orders/zz", "orders", &[]),
            short,
            Resource {
                name: other.clone(),
                resource: Some(Any {
                    type_url: TypeKind::KeySet.type_url().into(),
                    value: vec![0xff, 0xff],
                }),
                ..Default::default()
            },
        ];
        for (i, b) in bad.into_iter().enumerate() {
            let r = response(vec![good.clone(), b], &[]);
            assert!(apply(&r, &mut writer, &mut held).is_err(), "case {i}");
            assert!(!allows(b"apip_b"), "case {i}: nothing applied");
            assert!(allows(b"apip_a"), "case {i}");
        }

        apply(&response(vec![], &[&name]), &mut writer, &mut held).unwrap();
        assert!(!allows(b"apip_a"), "a removed set's keys stop at once");
    }
}
