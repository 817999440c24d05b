//! `tollgate authz-replica`: the ext_authz service without the controller, fed over xDS.
//!
//! A replica subscribes (delta ADS, wildcard) to the controller's `tollgate.keys.v1.ApiKeySet`
//! and `tollgate.subs.v1.SubscriptionSet` resources (published when
//! `api_keys.publish_to_replicas` is on), keeps the same layered indexes the controller keeps,
//! and answers `Check` as the embedded service does. Subscription quotas are counted by each
//! replica on its own unless a shared store is given (`--quota-store`, [`Replica::start_with`]):
//! then one count per subscription is kept for the fleet (`tollgate_quota_store`). Run one next to
//! each Envoy (or a pool behind a DNS name) and point the controller's `server.authz_advertise` /
//! `authz_port` at them with `server.authz_embedded = false`.
//!
//! Until the first key sets arrive the index is empty, so every check is refused (fail closed).
//! If the controller goes away the replica keeps serving the keys it has, up to a maximum
//! staleness (`fresh`; then it refuses every check until it syncs again), and reconnects with
//! backoff, telling the controller which set versions it holds so only changes are resent.
//!
//! The whole feature lives here:
//! - [`publish`]: the controller's side (key sets into xDS, the token rule, waiting for ACKs);
//! - [`sub_sets`]: the controller's side of subscription sets;
//! - [`token`]: the shared token, its file and the rule that checks it;
//! - `follow`, `apply` and `apply_subs`: the replica's side (the xDS session, and applying what
//!   it gets).
//!
//! The key-set codec (names, shards, validation) is `tollgate_proto::keys`.

mod apply;
mod apply_subs;
mod follow;
mod fresh;
pub mod publish;
pub mod sub_sets;
pub mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::sync::watch;
use tollgate_policies::AuthzServer;
use tollgate_policies::authz::{AuthzService, HeaderNames, SharedIndex, SharedSubscriptions};
use tonic::service::interceptor::InterceptedService;
use tracing::{info, warn};

pub use apply::{ApplyError, SetProblem};
pub use follow::SessionError;
pub use publish::{KeySetPublisher, Publishing, ReplicaSync};
pub use sub_sets::SubSetPublisher;
pub use token::{REPLICA_TOKEN_FILE, TOKEN_HEADER, TokenError, TokenRule, replica_token};

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
    pub token: crate::secret::Secret<String>,
    /// Past this long without a session with the controller, every check is refused (its keys may
    /// have been revoked since); `None`: serve what it holds however old.
    pub max_staleness: Option<std::time::Duration>,
    /// TLS to the xDS port (`https://` endpoints), with a client certificate for mutual TLS.
    pub tls: Option<ReplicaTls>,
    /// TLS on the replica's own ext_authz port (with a client CA: mutual TLS, only Envoys with a
    /// certificate it signed may ask).
    pub serve_tls: Option<ServeTls>,
    /// The names of the upstream identity headers: the controller's (`api_keys.application_header`,
    /// `api_keys.subscription_header`), so an upstream sees the same names whoever checked.
    pub header_names: HeaderNames,
}

/// The certificate a replica serves ext_authz with, and the CA its clients' certificates need.
#[derive(Clone, PartialEq, Eq)]
pub struct ServeTls {
    pub cert_pem: Vec<u8>,
    /// Never shown by `Debug`.
    pub key_pem: Vec<u8>,
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for ServeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeTls")
            .field("mutual", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl ServeTls {
    /// tonic's server TLS settings.
    pub fn server_config(&self) -> tonic::transport::ServerTlsConfig {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let mut c = ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_pem, &self.key_pem));
        if let Some(ca) = &self.client_ca_pem {
            c = c.client_ca_root(Certificate::from_pem(ca));
        }
        c
    }
}

/// How a replica checks the controller's xDS certificate, and proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplicaTls {
    /// The CA that signed the controller's certificate (PEM).
    pub ca_pem: Vec<u8>,
    /// The name expected in the controller's certificate.
    pub server_name: String,
    /// Certificate chain and private key (PEM), for mutual TLS. Never shown by `Debug`.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ReplicaTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaTls")
            .field("server_name", &self.server_name)
            .field("client_certificate", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

// === impl ReplicaTls ===

impl ReplicaTls {
    /// tonic's client TLS settings.
    pub fn client_config(&self) -> tonic::transport::ClientTlsConfig {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut c = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name(self.server_name.clone());
        if let Some((cert, key)) = &self.identity {
            c = c.identity(Identity::from_pem(cert, key));
        }
        c
    }
}

/// The default of `--max-staleness`.
pub const DEFAULT_MAX_STALENESS: std::time::Duration = std::time::Duration::from_secs(300);

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

/// Why the replica feature could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The ext_authz port could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The replica token could not be had.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The ext_authz port's TLS settings were refused.
    #[error("ext_authz TLS: {0}")]
    Tls(#[source] tonic::transport::Error),
    /// The key-set type could not be registered with xDS.
    #[error(transparent)]
    Xds(#[from] tollgate_xds::Error),
    /// The shared quota store's settings were refused.
    #[error(transparent)]
    QuotaStore(#[from] tollgate_quota_store::StoreError),
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

// === impl Replica ===

impl Replica {
    /// Binds the ext_authz port and starts following the controller; quotas are counted here,
    /// per replica.
    pub async fn start(config: ReplicaConfig) -> Result<Replica, ReplicaError> {
        Replica::start_with(config, None).await
    }

    /// [`Replica::start`], counting quotas in the shared store `quota` when one is given.
    pub async fn start_with(
        config: ReplicaConfig,
        quota: Option<tollgate_quota_store::StoreConfig>,
    ) -> Result<Replica, ReplicaError> {
        let index = Arc::new(SharedIndex::default());
        let subs = Arc::new(match quota {
            Some(store) => {
                info!(failure_mode = %store.failure_mode, "quotas are counted in the shared store");
                SharedSubscriptions::with_backend(tollgate_quota_store::SharedQuotas::start(&store)?)
            }
            None => SharedSubscriptions::default(),
        });
        let bind_error = |source| ReplicaError::Bind {
            addr: config.listen,
            source,
        };
        let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let (stop, stopped) = watch::channel(false);
        let stats = Arc::new(ReplicaStats::default());
        let fresh = Arc::new(fresh::Freshness::new(config.max_staleness));
        let mut on_stop = stopped.clone();
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &config.serve_tls {
            builder = builder.tls_config(tls.server_config()).map_err(ReplicaError::Tls)?;
        }
        let server = tokio::spawn({
            let service = AuthzService::with_subscriptions(index.clone(), subs.clone())
                .with_header_names(config.header_names.clone());
            let checks = InterceptedService::new(AuthzServer::from_service(service), fresh::StaleGate(fresh.clone()));
            async move {
                let served = builder
                    .add_service(checks)
                    .serve_with_incoming_shutdown(tollgate_xds::nodelay_incoming(listener), async move {
                        let _ = on_stop.wait_for(|s| *s).await;
                    })
                    .await;
                if let Err(e) = served {
                    warn!(error = %e, "ext_authz server failed");
                }
            }
        });
        let holdings = follow::Holdings::new(index, subs);
        let feed = tokio::spawn(follow::follow(config, holdings, stats.clone(), fresh, stopped));
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
