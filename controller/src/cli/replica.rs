//! `tollgate authz-replica --xds URL --token-file FILE [--listen ADDR] [--node ID]
//! [--max-staleness DURATION] [--quota-store URL [--quota-failure-mode open|closed]
//! [--quota-sync-interval DURATION]] [--application-header NAME] [--subscription-header NAME]`: an ext_authz service fed by a controller over xDS. The token (the controller's `<data_dir>/replica-token`)
//! may come from `TOLLGATE_REPLICA_TOKEN` instead of `--token-file`; the quota store's password
//! from `TOLLGATE_QUOTA_STORE_PASSWORD` (the controller's variable for the same key).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use super::CliError;
use crate::replica::{DEFAULT_MAX_STALENESS, Replica, ReplicaConfig, ReplicaTls, ServeTls};
use crate::secret::Secret;
use tollgate_policies::authz::HeaderNames;
use tollgate_quota_store::StoreConfig;

/// The variable that may carry the replica token.
pub const REPLICA_TOKEN_VAR: &str = "TOLLGATE_REPLICA_TOKEN";
/// The variable that carries the shared quota store's password.
pub const QUOTA_PASSWORD_VAR: &str = "TOLLGATE_QUOTA_STORE_PASSWORD";

/// The arguments of `authz-replica`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaArgs {
    pub xds: String,
    pub listen: SocketAddr,
    pub node_id: String,
    /// `--max-staleness`: `None` for `0` (no limit).
    pub max_staleness: Option<Duration>,
    /// Never logged or shown by `Debug`.
    pub token: Secret<String>,
    /// TLS to the controller (with `--xds-ca`).
    pub tls: Option<ReplicaTls>,
    /// TLS on the ext_authz port (with `--listen-cert`).
    pub serve_tls: Option<ServeTls>,
    /// The shared quota store (`--quota-store`); `None`: quotas per replica.
    pub quota: Option<StoreConfig>,
    /// The upstream identity headers (`--application-header`, `--subscription-header`): the
    /// controller's `api_keys.application_header` and `api_keys.subscription_header`.
    pub header_names: HeaderNames,
}

// === impl ReplicaArgs ===

impl ReplicaArgs {
    /// Parses the flags (in the order the checks have always run: `--xds`, then the token, then
    /// `--listen`).
    pub fn parse(
        mut args: impl Iterator<Item = String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ReplicaArgs, CliError> {
        let (mut xds, mut token_file) = (None, None);
        let mut tls = TlsFlags::default();
        // Like the controller's own ext_authz port: loopback unless told otherwise, since anyone
        // who reaches it can test candidate keys.
        let mut listen = "127.0.0.1:18001".to_string();
        let mut node_id = format!("authz-replica-{}", std::process::id());
        let mut staleness = None;
        let mut quota = QuotaFlags::default();
        let mut header_names = HeaderNames::default();
        while let Some(a) = args.next() {
            match (a.as_str(), args.next()) {
                ("--xds", Some(v)) => xds = Some(v),
                ("--listen", Some(v)) => listen = v,
                ("--node", Some(v)) => node_id = v,
                ("--token-file", Some(v)) => token_file = Some(v),
                ("--xds-ca", Some(v)) => tls.ca = Some(v),
                ("--xds-server-name", Some(v)) => tls.server_name = Some(v),
                ("--tls-cert", Some(v)) => tls.cert = Some(v),
                ("--tls-key", Some(v)) => tls.key = Some(v),
                ("--listen-cert", Some(v)) => tls.listen_cert = Some(v),
                ("--listen-key", Some(v)) => tls.listen_key = Some(v),
                ("--listen-client-ca", Some(v)) => tls.listen_client_ca = Some(v),
                ("--max-staleness", Some(v)) => staleness = Some(v),
                ("--quota-store", Some(v)) => quota.store = Some(v),
                ("--quota-failure-mode", Some(v)) => quota.failure_mode = Some(v),
                ("--quota-sync-interval", Some(v)) => quota.sync_interval = Some(v),
                ("--application-header", Some(v)) => header_names.application = header("--application-header", v)?,
                ("--subscription-header", Some(v)) => header_names.subscription = header("--subscription-header", v)?,
                _ => return Err(CliError::Usage),
            }
        }
        let xds = xds.ok_or(CliError::Usage)?;
        let token = match token_file {
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(t) => t.trim().to_string(),
                Err(source) => return Err(CliError::TokenFile { path, source }),
            },
            None => env(REPLICA_TOKEN_VAR).unwrap_or_default().trim().to_string(),
        };
        if token.is_empty() {
            return Err(CliError::NoToken);
        }
        let listen = listen.parse().map_err(|_| CliError::Listen(listen))?;
        let serve_tls = tls.load_serving()?;
        let tls = tls.load()?;
        let max_staleness = match staleness {
            None => Some(DEFAULT_MAX_STALENESS),
            Some(v) if v.trim() == "0" => None,
            Some(v) => match humantime::parse_duration(&v) {
                Ok(d) if !d.is_zero() => Some(d),
                _ => return Err(CliError::Staleness(v)),
            },
        };
        let quota = quota.load(env)?;
        Ok(ReplicaArgs {
            quota,
            header_names,
            xds,
            listen,
            node_id,
            token: Secret::new(token),
            tls,
            serve_tls,
            max_staleness,
        })
    }
}

/// The quota store flags as given.
#[derive(Default)]
struct QuotaFlags {
    store: Option<String>,
    failure_mode: Option<String>,
    sync_interval: Option<String>,
}

impl QuotaFlags {
    /// The store's settings, its password from the environment; `None` without a URL (the
    /// other flags then make no sense).
    fn load(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<StoreConfig>, CliError> {
        let store = self.store.filter(|s| !s.trim().is_empty());
        let Some(url) = store else {
            return match (self.failure_mode, self.sync_interval) {
                (None, None) => Ok(None),
                _ => Err(CliError::Usage),
            };
        };
        let mut config = StoreConfig::new(url.trim());
        config.password = env(QUOTA_PASSWORD_VAR).filter(|p| !p.is_empty());
        if let Some(mode) = self.failure_mode {
            config.failure_mode = mode.parse().map_err(|_| CliError::QuotaFailureMode(mode))?;
        }
        if let Some(v) = self.sync_interval {
            config.sync_interval = match humantime::parse_duration(&v) {
                Ok(d) if d >= Duration::from_millis(1) && d <= Duration::from_secs(1) => d,
                _ => return Err(CliError::QuotaSyncInterval(v)),
            };
        }
        // The URL is not repeated in the error: it may hold a password.
        config.check().map_err(|e| CliError::QuotaStore(e.to_string()))?;
        Ok(Some(config))
    }
}

/// The TLS flags as given.
#[derive(Default)]
struct TlsFlags {
    ca: Option<String>,
    server_name: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    listen_cert: Option<String>,
    listen_key: Option<String>,
    listen_client_ca: Option<String>,
}

impl TlsFlags {
    /// The ext_authz port's certificate, key and client CA; `None` without `--listen-cert`.
    fn load_serving(&mut self) -> Result<Option<ServeTls>, CliError> {
        let (cert, key) = match (self.listen_cert.take(), self.listen_key.take()) {
            (Some(c), Some(k)) => (c, k),
            (None, None) if self.listen_client_ca.is_none() => return Ok(None),
            _ => return Err(CliError::Usage),
        };
        Ok(Some(ServeTls {
            cert_pem: read("--listen-cert", cert)?,
            key_pem: read("--listen-key", key)?,
            client_ca_pem: self
                .listen_client_ca
                .take()
                .map(|ca| read("--listen-client-ca", ca))
                .transpose()?,
        }))
    }

    /// The files read; `None` without `--xds-ca`. A name and both halves of an identity are
    /// needed together.
    fn load(self) -> Result<Option<ReplicaTls>, CliError> {
        let Some(ca) = self.ca else {
            return match (self.server_name, self.cert, self.key) {
                (None, None, None) => Ok(None),
                _ => Err(CliError::Usage),
            };
        };
        let server_name = self.server_name.ok_or(CliError::Usage)?;
        let identity = match (self.cert, self.key) {
            (Some(c), Some(k)) => Some((read("--tls-cert", c)?, read("--tls-key", k)?)),
            (None, None) => None,
            _ => return Err(CliError::Usage),
        };
        Ok(Some(ReplicaTls {
            ca_pem: read("--xds-ca", ca)?,
            server_name,
            identity,
        }))
    }
}

/// An identity header name a flag gives, checked as the controller checks its own.
fn header(flag: &'static str, name: String) -> Result<String, CliError> {
    if crate::config::identity_header_ok(&name) {
        Ok(name)
    } else {
        Err(CliError::HeaderName { flag, name })
    }
}

/// The bytes of a file a flag names.
fn read(flag: &'static str, path: String) -> Result<Vec<u8>, CliError> {
    std::fs::read(&path).map_err(|source| CliError::InputFile { flag, path, source })
}

/// Runs the replica until SIGINT/SIGTERM; exit 1 when it cannot start.
pub(super) fn run(args: ReplicaArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(super::log_filter("info"))
        .init();
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let config = ReplicaConfig {
        xds: args.xds,
        listen: args.listen,
        node_id: args.node_id,
        token: args.token,
        tls: args.tls,
        serve_tls: args.serve_tls,
        max_staleness: args.max_staleness,
        header_names: args.header_names,
    };
    let quota = args.quota;
    runtime.block_on(async move {
        let replica = match Replica::start_with(config, quota).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("tollgate: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        crate::runtime::signal().await;
        replica.stop().await;
        ExitCode::SUCCESS
    })
}
