//! The typed configuration: a TOML file over documented defaults. Unknown keys and bad values are
//! errors that name the key; `main` exits 64 on them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::VhostDefaults;

/// Everything Tollgate can be configured with. Every field has a default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub router: Router,
    pub auth: Auth,
    pub api_keys: ApiKeys,
    pub logging: Logging,
    pub envoy: Envoy,
    pub control_plane: ControlPlane,
}

/// Ports, addresses and limits of the controller's own servers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// Address the management, admin and metrics APIs bind to.
    pub bind: String,
    /// Management REST API (`/api/management/v1`).
    pub management_port: u16,
    /// Admin API (`/api/admin/v1`).
    pub admin_port: u16,
    /// Prometheus metrics.
    pub metrics_port: u16,
    /// Address the xDS and ext_authz gRPC servers bind to.
    pub grpc_bind: String,
    /// xDS (ADS, delta and SotW).
    pub xds_port: u16,
    /// ext_authz gRPC service.
    pub authz_port: u16,
    /// The address Envoy uses to reach the ext_authz service (an IP, or a hostname resolved by DNS).
    pub authz_advertise: String,
    /// Run the ext_authz service in this process. `false`: Envoy is sent to
    /// `authz_advertise:authz_port`, where `tollgate authz-replica` processes serve the checks
    /// (needs `api_keys.publish_to_replicas`).
    pub authz_embedded: bool,
    /// Where the SQLite database and generated secrets live.
    pub data_dir: PathBuf,
    /// Largest request body the management API accepts, in bytes.
    pub max_body_bytes: usize,
    /// How long shutdown waits for connections and streams to finish.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
}

/// What the Envoy data plane is told to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Router {
    /// Address Envoy's listeners bind to.
    pub listen_address: String,
    pub http_port: u16,
    pub https_port: u16,
    /// PEM certificate and key for the HTTPS listener; without both there is no HTTPS listener.
    pub tls_cert_path: Option<PathBuf>,
    pub tls_key_path: Option<PathBuf>,
    /// Default route timeout (504 past it).
    #[serde(with = "duration")]
    pub route_timeout: Duration,
    /// Default route idle timeout.
    #[serde(with = "duration")]
    pub route_idle_timeout: Duration,
    /// Default upstream connect timeout.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// How long Envoy waits for an API-key check before refusing the request (fail closed).
    #[serde(with = "duration")]
    pub authz_timeout: Duration,
    /// CA bundle for HTTPS upstreams.
    pub trusted_ca_path: PathBuf,
    pub vhosts: Vhosts,
}

/// Virtual-host defaults (`_gateway_default_` and absent `vhosts` resolve to these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Vhosts {
    pub main: String,
    /// When non-empty, APIs on the default main vhost are served on all these domains.
    pub main_domains: Vec<String>,
    pub sandbox: String,
    pub sandbox_domains: Vec<String>,
}

/// Management API authentication.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// Switching this off makes the management API open to anyone who can reach it.
    pub enabled: bool,
    pub users: Vec<User>,
}

/// A management API user (HTTP Basic).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub username: String,
    /// A bcrypt or argon2id PHC hash when `password_hashed`, else the plaintext.
    pub password: String,
    #[serde(default)]
    pub password_hashed: bool,
    pub roles: Vec<Role>,
}

/// Management API roles (reference §1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Developer,
    Consumer,
}

/// API key limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiKeys {
    /// Active keys one user may hold per API.
    pub per_user_per_api: u32,
    /// Serve each API's key digests over xDS (`tollgate.keys.v1.ApiKeySet`) to remote ext_authz
    /// replicas, only on streams presenting the replica token (`<data_dir>/replica-token`, created
    /// when missing, or `TOLLGATE_REPLICA_TOKEN`). Off by default.
    pub publish_to_replicas: bool,
    /// With replicas: how long a key write through the REST API waits for every connected replica
    /// to ACK the change before answering (so a revocation bites on the next request there too).
    /// A replica still behind after this is named in the log and counted in the
    /// `tollgate-replicas-behind` response header; the write itself stands.
    #[serde(with = "duration")]
    pub replica_sync_timeout: Duration,
}

/// Log output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Logging {
    /// A `tracing` filter, e.g. `info` or `tollgate=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The managed Envoy of `tollgate run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Envoy {
    /// The Envoy binary; `TOLLGATE_ENVOY_BIN` overrides, default `.tools/envoy/bin/envoy`.
    pub binary: PathBuf,
    /// Bootstrap template with `${NODE_ID}`-style placeholders.
    pub bootstrap: PathBuf,
    pub node_id: String,
    pub node_cluster: String,
    pub admin_port: u16,
    /// Extra command-line arguments.
    pub args: Vec<String>,
}

/// The link to a WSO2 API Platform control plane (`platform-api`). Off while `host` is empty.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlPlane {
    /// `host[:port]` of the platform API; Tollgate connects to `wss://{host}` and `https://{host}`.
    /// `TOLLGATE_CONTROL_PLANE_HOST` overrides.
    pub host: String,
    /// The gateway token issued by the platform API. `TOLLGATE_CONTROL_PLANE_TOKEN` overrides.
    /// Never logged.
    pub token: String,
    /// Accept any server certificate (test set-ups only).
    pub insecure_skip_verify: bool,
    /// Extra trusted CA certificates (PEM), on top of the system trust store.
    pub ca_cert_path: Option<PathBuf>,
    /// First reconnect delay; doubles per failure, with ±25 % jitter.
    #[serde(with = "duration")]
    pub reconnect_initial: Duration,
    /// Longest reconnect delay.
    #[serde(with = "duration")]
    pub reconnect_max: Duration,
    /// A link with no ping for this long is dead and is reconnected.
    #[serde(with = "duration")]
    pub ping_timeout: Duration,
    /// Timeout of each REST call to the platform API.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// Deployments fetched per `fetch-batch` call during sync.
    pub sync_batch_size: usize,
    /// The gateway version reported in the manifest (1.2.0 or later gets `v1` artifacts).
    pub gateway_version: String,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("host", &self.host)
            .field("token", &if self.token.is_empty() { "" } else { "[redacted]" })
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("ca_cert_path", &self.ca_cert_path)
            .field("reconnect_initial", &self.reconnect_initial)
            .field("reconnect_max", &self.reconnect_max)
            .field("ping_timeout", &self.ping_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("sync_batch_size", &self.sync_batch_size)
            .field("gateway_version", &self.gateway_version)
            .finish()
    }
}

impl Default for ControlPlane {
    fn default() -> Self {
        ControlPlane {
            host: String::new(),
            token: String::new(),
            insecure_skip_verify: false,
            ca_cert_path: None,
            reconnect_initial: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(300),
            ping_timeout: Duration::from_secs(35),
            request_timeout: Duration::from_secs(30),
            sync_batch_size: 50,
            gateway_version: "1.2.0".into(),
        }
    }
}

impl ControlPlane {
    /// Applies `TOLLGATE_CONTROL_PLANE_HOST` and `TOLLGATE_CONTROL_PLANE_TOKEN`.
    pub fn with_env(mut self) -> ControlPlane {
        if let Ok(h) = std::env::var("TOLLGATE_CONTROL_PLANE_HOST")
            && !h.trim().is_empty()
        {
            self.host = h.trim().to_string();
        }
        if let Ok(t) = std::env::var("TOLLGATE_CONTROL_PLANE_TOKEN")
            && !t.trim().is_empty()
        {
            self.token = t.trim().to_string();
        }
        self
    }

    /// Whether a control plane is configured.
    pub fn enabled(&self) -> bool {
        !self.host.is_empty()
    }
}

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not valid TOML for this schema (the message names the key).
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is out of range.
    #[error("invalid config: {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

// === impl Config ===

impl Config {
    /// Reads `path`, or returns the defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let config = match path {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Config::parse(&text).map_err(|e| match e {
                    ConfigError::Parse { message, .. } => ConfigError::Parse {
                        path: path.to_path_buf(),
                        message,
                    },
                    other => other,
                })?
            }
        };
        Ok(config)
    }

    /// Parses TOML text and checks the values.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_string(),
            })
        };
        if self.server.max_body_bytes == 0 {
            return invalid("server.max_body_bytes", "must be greater than 0");
        }
        if self.router.tls_cert_path.is_some() != self.router.tls_key_path.is_some() {
            return invalid(
                "router.tls_cert_path",
                "tls_cert_path and tls_key_path must be set together",
            );
        }
        if self.router.vhosts.main.is_empty() {
            return invalid("router.vhosts.main", "must not be empty");
        }
        if self.router.vhosts.sandbox.is_empty() {
            return invalid("router.vhosts.sandbox", "must not be empty");
        }
        for (i, u) in self.auth.users.iter().enumerate() {
            if u.username.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "auth.users",
                    message: format!("user {i} has no username"),
                });
            }
        }
        if self.api_keys.per_user_per_api == 0 {
            return invalid("api_keys.per_user_per_api", "must be at least 1");
        }
        if !self.server.authz_embedded && !self.api_keys.publish_to_replicas {
            return invalid(
                "server.authz_embedded",
                "false needs api_keys.publish_to_replicas = true (the replicas get the keys over xDS)",
            );
        }
        let cp = &self.control_plane;
        if cp.host.contains("://") || cp.host.contains('/') {
            return invalid("control_plane.host", "must be host[:port], without a scheme or path");
        }
        if cp.sync_batch_size == 0 {
            return invalid("control_plane.sync_batch_size", "must be at least 1");
        }
        if cp.reconnect_initial.is_zero() || cp.reconnect_max < cp.reconnect_initial {
            return invalid(
                "control_plane.reconnect_max",
                "reconnect_initial must be > 0 and reconnect_max at least reconnect_initial",
            );
        }
        if crate::platform::semver_below(&cp.gateway_version, (1, 2)) {
            return invalid(
                "control_plane.gateway_version",
                "must be a version of at least 1.2.0 (older versions get legacy artifacts)",
            );
        }
        Ok(())
    }

    /// Everything on loopback with ephemeral controller ports, data in `data_dir`, Envoy's HTTP
    /// listener on `http_port`, and one plaintext admin user: for tests and benchmarks that run the
    /// controller in process.
    pub fn loopback(data_dir: PathBuf, http_port: u16, user: &str, password: &str) -> Config {
        let mut c = Config::default();
        c.server.bind = "127.0.0.1".into();
        c.server.grpc_bind = "127.0.0.1".into();
        c.server.management_port = 0;
        c.server.admin_port = 0;
        c.server.xds_port = 0;
        c.server.authz_port = 0;
        c.server.data_dir = data_dir;
        c.server.shutdown_timeout = Duration::from_secs(2);
        c.router.listen_address = "127.0.0.1".into();
        c.router.http_port = http_port;
        c.auth.users = vec![User {
            username: user.into(),
            password: password.into(),
            password_hashed: false,
            roles: vec![Role::Admin],
        }];
        c
    }

    /// The virtual-host defaults in the model's terms.
    pub fn vhost_defaults(&self) -> VhostDefaults {
        let v = &self.router.vhosts;
        VhostDefaults {
            main: v.main.clone(),
            main_domains: v.main_domains.clone(),
            sandbox: v.sandbox.clone(),
            sandbox_domains: v.sandbox_domains.clone(),
        }
    }

    /// The configuration as loggable JSON, with passwords replaced.
    pub fn redacted(&self) -> serde_json::Value {
        let mut c = self.clone();
        for u in &mut c.auth.users {
            u.password = "[redacted]".into();
        }
        if !c.control_plane.token.is_empty() {
            c.control_plane.token = "[redacted]".into();
        }
        serde_json::to_value(&c).unwrap_or_default()
    }
}

impl Default for Server {
    fn default() -> Self {
        Server {
            bind: "0.0.0.0".into(),
            management_port: 9090,
            admin_port: 9092,
            metrics_port: 9091,
            grpc_bind: "0.0.0.0".into(),
            xds_port: 18000,
            authz_port: 18001,
            authz_advertise: "127.0.0.1".into(),
            authz_embedded: true,
            data_dir: PathBuf::from("./data"),
            max_body_bytes: 1024 * 1024,
            shutdown_timeout: Duration::from_secs(15),
        }
    }
}

impl Default for Router {
    fn default() -> Self {
        Router {
            listen_address: "0.0.0.0".into(),
            http_port: 8080,
            https_port: 8443,
            tls_cert_path: None,
            tls_key_path: None,
            route_timeout: Duration::from_secs(60),
            route_idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(5),
            authz_timeout: Duration::from_millis(500),
            trusted_ca_path: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            vhosts: Vhosts::default(),
        }
    }
}

impl Default for Vhosts {
    fn default() -> Self {
        Vhosts {
            main: "*".into(),
            main_domains: vec![],
            sandbox: "sandbox-*".into(),
            sandbox_domains: vec![],
        }
    }
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            enabled: true,
            users: vec![],
        }
    }
}

impl Default for ApiKeys {
    fn default() -> Self {
        ApiKeys {
            per_user_per_api: 10,
            publish_to_replicas: false,
            replica_sync_timeout: Duration::from_secs(2),
        }
    }
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Default for Envoy {
    fn default() -> Self {
        Envoy {
            binary: PathBuf::from(".tools/envoy/bin/envoy"),
            bootstrap: PathBuf::from("envoy/bootstrap-delta.yaml"),
            node_id: "tollgate-envoy-0".into(),
            node_cluster: "default".into(),
            admin_port: 9901,
            args: vec![],
        }
    }
}

/// Durations written as `"60s"`, `"250ms"`, `"5m"`.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("bad duration {s:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ports() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.server.management_port, 9090);
        assert_eq!(c.server.admin_port, 9092);
        assert_eq!(c.server.xds_port, 18000);
        assert_eq!(c.server.authz_port, 18001);
        assert_eq!(c.router.http_port, 8080);
        assert!(c.auth.enabled);
        assert_eq!(c.router.route_timeout, Duration::from_secs(60));
    }

    #[test]
    fn the_example_file_documents_exactly_the_defaults() {
        assert_eq!(
            Config::parse(include_str!("../tollgate.example.toml")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn the_compose_file_changes_only_where_envoy_finds_ext_authz() {
        let c = Config::parse(include_str!("../tollgate.compose.toml")).unwrap();
        assert_eq!(c.server.authz_advertise, "controller");
        let mut d = Config::default();
        d.server.authz_advertise = "controller".into();
        assert_eq!(c, d);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse("[server]\nmanagment_port = 1\n").unwrap_err().to_string();
        assert!(err.contains("managment_port"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::parse("[router]\nroute_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("route_timeout"), "{err}");
        let err = Config::parse("[server]\nmax_body_bytes = 0\n").unwrap_err().to_string();
        assert!(err.contains("server.max_body_bytes"), "{err}");
        let err = Config::parse("[router]\ntls_cert_path = \"a.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls_cert_path"), "{err}");
        let err = Config::parse("[server]\nauthz_embedded = false\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.authz_embedded") && err.contains("publish_to_replicas"),
            "{err}"
        );
        let ok = Config::parse("[server]\nauthz_embedded = false\n[api_keys]\npublish_to_replicas = true\n").unwrap();
        assert!(!ok.server.authz_embedded && ok.api_keys.publish_to_replicas);
    }

    #[test]
    fn users_parse_and_redact() {
        let c = Config::parse(
            "[[auth.users]]\nusername = \"ops\"\npassword = \"hunter2\"\nroles = [\"admin\", \"consumer\"]\n",
        )
        .unwrap();
        assert_eq!(c.auth.users[0].roles, vec![Role::Admin, Role::Consumer]);
        assert!(!c.redacted().to_string().contains("hunter2"));
    }
}
