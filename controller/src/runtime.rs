//! Wiring: open the database, restore and publish the configuration, start the xDS, management and
//! admin servers, and shut them down in order with a bounded drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tollgate_policies::authz::{SharedIndex, SharedSubscriptions};

use crate::subs::{Feed, Subs, persist};
use tollgate_policies::Catalogue;
use tollgate_policies::catalogue::GatewayFacts;
use tollgate_xds::{ServerHandle, StatusRegistry, Store, XdsServer};
use tracing::{info, warn};

use crate::admin::{self, AdminState};
use crate::api::{self, AppState};
use crate::app::{ApiRepo, App, RepoParts};
use crate::auth::{Authenticator, Bootstrap};
use crate::config::Config;
use crate::db::Db;
use crate::keys::Keys;
use crate::managed_envoy::EnvoySpec;
use crate::metrics;
use crate::platform::{Link, LinkStatus};
use crate::replica::{Publishing, SubSetPublisher};
use crate::secrets::{KeySource, Keyring, Secrets};
use tollgate_translate::{AuthzTarget, RouteDefaults, Settings, TlsMaterial, Translator};

mod apis;
mod authz;
mod tls;
use apis::serve_apis;
use authz::{Authz, authz_decisions, authz_service, shared_subscriptions};
use tls::{envoy_authz_tls, envoy_path, server_tls};

/// A running controller.
#[derive(Debug)]
pub struct Running {
    pub management: SocketAddr,
    pub admin: SocketAddr,
    /// Prometheus metrics (`/metrics`).
    pub metrics: SocketAddr,
    pub xds: SocketAddr,
    /// The application layer.
    pub app: Arc<App>,
    pub status: Arc<StatusRegistry>,
    /// The control-plane link's state.
    pub link: Arc<LinkStatus>,
    link_task: Link,
    xds_server: ServerHandle,
    authz: Option<Authz>,
    stop: watch::Sender<bool>,
    http: Vec<JoinHandle<()>>,
    /// Settles pending APIs and quarantines rejected ones (see `app::serving`).
    settler: JoinHandle<()>,
    /// Writes quota counts to the database every second.
    quotas: persist::Persister,
    grace: Duration,
}

/// Starts everything `config` describes. Ports of 0 bind ephemeral ports (tests).
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    let cp = control_plane(config)?;
    let db = open_db(config).await?;
    // SQLite reads and password hashing at start run on the blocking pool too.
    let auth = {
        let (config, db) = (config.clone(), db.clone());
        Arc::new(blocking(move || authenticator(&config, &db)).await??)
    };
    let store = Arc::new(Store::new());
    let status = Arc::new(StatusRegistry::default());
    let index = Arc::new(SharedIndex::default());
    let (publishing, sub_sets) = replica_publishing(config, &store, &status)?;
    let keys = {
        let (db, index, quota) = (db.clone(), index.clone(), config.api_keys.per_user_per_api);
        let publisher = publishing.as_ref().map(|p| p.publisher.clone());
        Arc::new(blocking(move || Keys::load(db, index, quota, publisher)).await??)
    };
    let subs = shared_subscriptions(config, &db).await?;
    let authz_counters = Arc::new(metrics::AuthzCounters::default());
    let decisions = authz_decisions(config, index, &subs).with_observer(authz_counters.clone());
    let authz = authz_service(config, decisions)?;
    let authz_port = authz.as_ref().map_or(config.server.authz_port, |a| a.addr.port());
    let app = load_app(config, &db, &keys, (&store, &status), authz_port, (&subs, sub_sets)).await?;
    let quotas = persist::Persister::start(db.clone(), subs);
    let settler = tokio::spawn(app.clone().settle_forever());

    let (xds, xds_server) = serve_xds(config, store, &status, publishing.as_ref()).await?;
    let replica_sync = publishing.map(|p| p.sync);

    let (stop, stopped) = watch::channel(false);
    let link_task = if cp.enabled() {
        Link::start(&cp, app.clone(), stopped.clone())?
    } else {
        Link::disabled()
    };
    let link = link_task.status.clone();
    let management_api = api::router(AppState {
        app: app.clone(),
        auth: auth.clone(),
        max_body: config.server.max_body_bytes,
        http_port: config.router.http_port,
        public_url: config.router.public_url.clone(),
        replicas: replica_sync,
    });
    let admin_api = admin::router(AdminState {
        app: app.clone(),
        auth,
        status: status.clone(),
        link: link.clone(),
        xds: Some(xds),
    });
    let sources = metrics::Sources {
        status: status.clone(),
        app: app.clone(),
        db,
        link: link.clone(),
        authz: authz_counters,
        http: metrics::HttpMetrics::default(),
    };
    let ([management, admin, metrics], http) =
        serve_apis(config, [management_api, admin_api], sources, stopped).await?;
    info!(%management, %admin, %metrics, %xds, "tollgate started");
    Ok(Running {
        management,
        admin,
        metrics,
        xds,
        app,
        status,
        link,
        link_task,
        xds_server,
        authz,
        stop,
        http,
        settler,
        quotas,
        grace: config.server.shutdown_timeout,
    })
}

/// The control-plane settings, with the environment applied; a host without a token is refused.
fn control_plane(config: &Config) -> anyhow::Result<crate::config::ControlPlane> {
    let cp = config.control_plane.clone().with_env();
    if cp.enabled() && cp.token.expose().is_empty() {
        anyhow::bail!(
            "control_plane.host is set but there is no gateway token: set control_plane.token or TOLLGATE_CONTROL_PLANE_TOKEN"
        );
    }
    Ok(cp)
}

/// Binds and serves xDS over `store`, with the configured limits, TLS and replica guard.
async fn serve_xds(
    config: &Config,
    store: Arc<Store>,
    status: &Arc<StatusRegistry>,
    publishing: Option<&Publishing>,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let listener = bind(&config.server.grpc_bind, config.server.xds_port).await?;
    let addr = listener.local_addr()?;
    let mut server = XdsServer::new(store, status.clone()).with_limits(config.server.xds_limits());
    if config.xds_tls.enabled() {
        server = server.with_tls(server_tls(&config.xds_tls, "xds_tls")?);
    }
    if let Some(p) = publishing {
        server = p.guard(server);
    }
    Ok((addr, server.serve(listener)?))
}

/// Runs start-up work that touches SQLite or the CPU on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await.context("a start-up task failed")
}

/// The data directory and the database in it (opened and migrated off the async workers).
async fn open_db(config: &Config) -> anyhow::Result<Arc<Db>> {
    let data = config.server.data_dir.clone();
    std::fs::create_dir_all(&data).with_context(|| format!("creating data dir {}", data.display()))?;
    let db = blocking(move || Db::open(&data.join("tollgate.db")))
        .await?
        .context("opening database")?;
    Ok(Arc::new(db))
}

/// Restores every stored API, publishes it, and builds the application layer over it.
async fn load_app(
    config: &Config,
    db: &Arc<Db>,
    keys: &Arc<Keys>,
    xds: (&Arc<Store>, &Arc<StatusRegistry>),
    authz_port: u16,
    (shared_subs, sub_sets): (&Arc<SharedSubscriptions>, Option<SubSetPublisher>),
) -> anyhow::Result<Arc<App>> {
    let translator = Translator::new(settings(config, authz_port)?);
    let secrets = load_secrets(config, db).await?;
    let repo = ApiRepo::load(RepoParts {
        db: db.clone(),
        xds: xds.0.clone(),
        status: xds.1.clone(),
        ack_timeout: config.server.ack_timeout,
        catalogue: Catalogue::for_gateway(GatewayFacts {
            key_managers: config.jwt.names(),
            auth_header_scheme: config.jwt.auth_header_scheme.clone(),
        }),
        vhosts: config.vhost_defaults(),
        translator,
        secrets,
    })
    .await?;
    let subs = {
        let (db, feed) = (db.clone(), Feed::new(shared_subs.clone()));
        Arc::new(blocking(move || Subs::load_publishing(db, feed, sub_sets)).await??)
    };
    Ok(Arc::new(App::new(repo, keys.clone(), subs, db.clone())))
}

/// The secret keys (generated on first start) and every stored secret, decrypted: a key that is
/// missing or does not open a stored value stops the start with a message saying so.
async fn load_secrets(config: &Config, db: &Arc<Db>) -> anyhow::Result<Arc<Secrets>> {
    let (db, data) = (db.clone(), config.server.data_dir.clone());
    let secrets = blocking(move || {
        let stored = db.count_secrets()?;
        let (keyring, source) = Keyring::load(&data, &|var| std::env::var(var).ok(), stored)?;
        match &source {
            KeySource::Generated(file) => info!(file = %file.display(), "created the secret encryption key"),
            KeySource::Env | KeySource::Files => {
                info!(source = ?source, versions = ?keyring.versions(), "secret encryption keys loaded")
            }
        }
        anyhow::Ok(Secrets::load(db, keyring)?)
    })
    .await?
    .context("loading secrets")?;
    Ok(Arc::new(secrets))
}

/// The management API's users; a bootstrapped admin password is shown once, on the terminal.
fn authenticator(config: &Config, db: &Db) -> anyhow::Result<Authenticator> {
    let data = &config.server.data_dir;
    let (auth, boot) = Authenticator::new(config.auth.enabled, config.auth.users.clone(), db, data)?;
    match boot {
        Bootstrap::Generated(file) => {
            // Shown once, on the terminal only (never through the log pipeline).
            let password = std::fs::read_to_string(&file).unwrap_or_default();
            eprintln!(
                "tollgate: created user 'admin' with password {} (also in {})",
                password.trim(),
                file.display()
            );
            info!(file = %file.display(), "created user 'admin' with a random password, written to this file")
        }
        Bootstrap::FromEnv => info!("created user 'admin' with the password from TOLLGATE_ADMIN_PASSWORD"),
        Bootstrap::Nothing => {}
    }
    if !config.auth.enabled {
        warn!("management API authentication is OFF (auth.enabled = false)");
    }
    Ok(auth)
}

/// Publishing to replicas: key and subscription sets only for streams with the token, and key
/// and subscription writes wait for the replicas' ACKs. The set types are registered either way,
/// so reports name them alike.
fn replica_publishing(
    config: &Config,
    store: &Arc<Store>,
    status: &Arc<StatusRegistry>,
) -> anyhow::Result<(Option<Publishing>, Option<SubSetPublisher>)> {
    crate::replica::publish::register_key_sets()?;
    if !config.api_keys.publish_to_replicas {
        return Ok((None, None));
    }
    let publishing = Publishing::prepare(
        &config.server.data_dir,
        store,
        status,
        config.api_keys.replica_sync_timeout,
    )?;
    let sub_sets = publishing.sub_sets()?;
    Ok((Some(publishing), Some(sub_sets)))
}

/// Runs until SIGINT/SIGTERM; with `envoy`, also runs a managed Envoy (or adopts the one a
/// previous controller left running) and stops if it exits. A signal stops Envoy too unless
/// `envoy.keep_running_on_exit`; a crash never does (see `managed_envoy`).
pub async fn run(config: Config, envoy: bool) -> anyhow::Result<()> {
    let running = start(&config).await?;
    let mut managed = if envoy {
        let spec = EnvoySpec::from_config(&config.envoy, running.xds, &config.xds_tls);
        let e = spec.launch(&config.server.data_dir.join("envoy")).await?;
        let (pid, adopted) = (e.pid(), e.adopted());
        info!(binary = %spec.binary.display(), admin_port = spec.admin_port, pid, adopted, "managed envoy running");
        Some(e)
    } else {
        None
    };
    let reason = tokio::select! {
        _ = signal() => "signal",
        status = async { match managed.as_mut() { Some(e) => e.exited().await, None => std::future::pending().await } } => {
            warn!(?status, "managed envoy exited");
            "envoy exited"
        }
    };
    info!(reason, "shutting down");
    match managed {
        Some(e) if reason == "envoy exited" => drop(e),
        Some(e) if config.envoy.keep_running_on_exit => {
            info!(
                pid = e.pid(),
                "leaving the managed envoy running (envoy.keep_running_on_exit)"
            );
            e.release();
        }
        Some(e) => e.stop(crate::managed_envoy::STOP_GRACE).await,
        None => {}
    }
    running.shutdown().await;
    Ok(())
}

// === impl Running ===

impl Running {
    /// Where the embedded ext_authz service listens (none when Envoy is sent to replicas).
    pub fn authz_addr(&self) -> Option<SocketAddr> {
        self.authz.as_ref().map(|a| a.addr)
    }

    /// Stops accepting, ends xDS streams, and waits at most the configured grace period.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        self.settler.abort();
        self.quotas.stop().await;
        self.link_task.stopped(self.grace).await;
        if let Some(a) = self.authz {
            a.stop();
        }
        if let Err(e) = self.xds_server.shutdown(self.grace).await {
            warn!(error = %e, "xds server shutdown");
        }
        for h in self.http {
            if tokio::time::timeout(self.grace, h).await.is_err() {
                warn!("http server did not stop within the grace period");
            }
        }
    }
}

fn settings(config: &Config, authz_port: u16) -> anyhow::Result<Settings> {
    let r = &config.router;
    let tls = match (&r.tls_cert_path, &r.tls_key_path) {
        (Some(c), Some(k)) => Some(TlsMaterial {
            cert_path: envoy_path(c, "router.tls_cert_path")?,
            key_path: envoy_path(k, "router.tls_key_path")?,
        }),
        _ => None,
    };
    Ok(Settings {
        listen_address: r.listen_address.clone(),
        http_port: r.http_port,
        https_port: r.https_port,
        tls,
        routes: RouteDefaults {
            timeout: r.route_timeout,
            idle_timeout: r.route_idle_timeout,
            authz: true,
        },
        connect_timeout: r.connect_timeout,
        trusted_ca: r.trusted_ca_path.display().to_string(),
        vhosts: config.vhost_defaults(),
        authz: Some(AuthzTarget {
            host: config.server.authz_advertise.clone(),
            port: authz_port,
            timeout: r.authz_timeout,
            tls: envoy_authz_tls(&config.authz_tls)?,
        }),
        access_log: r.access_log_sink(),
        jwt: config.jwt.settings()?,
    })
}

async fn bind(host: &str, port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding {host}:{port}"))
}

fn serve_http<L>(listener: L, app: axum::Router, mut stop: watch::Receiver<bool>) -> JoinHandle<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    crate::api::PeerAddr: for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let app = app.into_make_service_with_connect_info::<crate::api::PeerAddr>();
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            warn!(error = %e, "http server failed");
        }
    })
}

pub async fn signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
