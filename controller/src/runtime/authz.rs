//! The embedded ext_authz service on its own runtime and threads, and what it decides with: the key
//! index, the subscriptions (quota counts restored from the database) and the header names.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tollgate_policies::AuthzServer;
use tollgate_policies::authz::{AuthzService, HeaderNames, SharedIndex, SharedSubscriptions};
use tracing::{info, warn};

use super::blocking;
use super::tls::server_tls;
use crate::config::Config;
use crate::db::Db;
use crate::subs::persist;

/// The ext_authz decisions over the key index and the subscriptions, with the upstream header
/// names the configuration gives.
pub(super) fn authz_decisions(
    config: &Config,
    index: Arc<SharedIndex>,
    subs: &Arc<SharedSubscriptions>,
) -> AuthzService {
    AuthzService::with_subscriptions(index, subs.clone())
        .with_header_names(HeaderNames {
            key_name: tollgate_policies::authz::KEY_NAME_HEADER.into(),
            application: config.api_keys.application_header.clone(),
            subscription: config.api_keys.subscription_header.clone(),
        })
        .with_rate_limit_entries(config.api_keys.rate_limit_max_entries)
}

/// The hot path's subscriptions, with the quota counts stored before a restart put back; or, with
/// a shared quota store (`[quota] store`), counting there (the store holds the counts, so none is
/// restored: the local counters count only what this process admits, on top of the store's).
pub(super) async fn shared_subscriptions(config: &Config, db: &Arc<Db>) -> anyhow::Result<Arc<SharedSubscriptions>> {
    if let Some(store) = config.quota.store_config() {
        info!(failure_mode = %store.failure_mode, "quotas are counted in the shared store");
        let backend = tollgate_quota_store::SharedQuotas::start(&store).context("quota.store")?;
        return Ok(Arc::new(SharedSubscriptions::with_backend(backend)));
    }
    let subs = Arc::new(SharedSubscriptions::default());
    let (db, shared) = (db.clone(), subs.clone());
    blocking(move || persist::restore(&db, &shared)).await??;
    Ok(subs)
}

/// The embedded ext_authz service, unless Envoy is sent to remote replicas.
pub(super) fn authz_service(config: &Config, service: AuthzService) -> anyhow::Result<Option<Authz>> {
    if config.server.authz_embedded {
        let tls = config
            .authz_tls
            .enabled()
            .then(|| server_tls(&config.authz_tls, "authz_tls"))
            .transpose()?;
        return Ok(Some(Authz::start(
            &config.server.grpc_bind,
            config.server.authz_port,
            service,
            tls,
        )?));
    }
    info!(
        target_addr = %format!("{}:{}", config.server.authz_advertise, config.server.authz_port),
        "no ext_authz service here: Envoy is sent to the replicas"
    );
    Ok(None)
}

/// The ext_authz service on its own runtime and threads: REST, SQLite and xDS never run there.
#[derive(Debug)]
pub(super) struct Authz {
    pub(super) addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Authz {
    pub(super) fn start(
        host: &str,
        port: u16,
        service: AuthzService,
        tls: Option<tonic::transport::ServerTlsConfig>,
    ) -> anyhow::Result<Authz> {
        if let Some(t) = &tls {
            // Refused settings are a start-up error, not a server that silently never answers.
            tonic::transport::Server::builder()
                .tls_config(t.clone())
                .context("authz_tls")?;
        }
        let listener = std::net::TcpListener::bind((host, port)).with_context(|| format!("binding {host}:{port}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("authz".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("authz-worker")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return warn!(error = %e, "authz runtime failed to start"),
            };
            rt.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    return;
                };
                let svc = AuthzServer::from_service(service);
                // Checks are on Envoy's request path: no Nagle delay on their answers.
                let incoming = tollgate_xds::nodelay_incoming(listener);
                let mut builder = tonic::transport::Server::builder();
                if let Some(tls) = tls {
                    builder = match builder.tls_config(tls) {
                        Ok(b) => b,
                        Err(e) => return warn!(error = %e, "authz TLS settings refused"),
                    };
                }
                let served = builder
                    .add_service(svc)
                    .serve_with_incoming_shutdown(incoming, async move {
                        let _ = rx.await;
                    })
                    .await;
                if let Err(e) = served {
                    warn!(error = %e, "authz server failed");
                }
            });
        })?;
        info!(%addr, "ext_authz service listening");
        Ok(Authz {
            addr,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    pub(super) fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
