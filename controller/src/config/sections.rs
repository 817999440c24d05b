//! The configuration's sections, one struct per TOML table, with their documented defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use crate::secret::Secret;

/// Ports, addresses and limits of the controller's own servers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// Address the management and admin APIs bind to.
    pub bind: String,
    /// Management REST API (`/api/management/v1`).
    pub management_port: u16,
    /// Admin API (`/api/admin/v1`).
    pub admin_port: u16,
    /// Prometheus metrics (`GET /metrics`).
    pub metrics_port: u16,
    /// Address the metrics endpoint binds to: loopback unless set, as it answers without
    /// credentials by default (like the gRPC ports).
    pub metrics_bind: String,
    /// With `metrics_password`, `/metrics` asks for these basic-auth credentials; without both it
    /// is open, as Prometheus scrapes by default.
    pub metrics_username: String,
    pub metrics_password: Secret<String>,
    /// PEM certificate chain and private key: with both, the management and admin APIs speak
    /// HTTPS only (TLS 1.2/1.3, rustls); without, plain HTTP.
    pub tls_cert_path: Option<PathBuf>,
    pub tls_key_path: Option<PathBuf>,
    /// Address the xDS and ext_authz gRPC servers bind to.
    pub grpc_bind: String,
    /// xDS (ADS, delta and SotW).
    pub xds_port: u16,
    /// ext_authz gRPC service.
    pub authz_port: u16,
    /// Largest xDS request decoded, in bytes (a delta reconnect lists every resource it holds).
    pub xds_max_message_bytes: usize,
    /// xDS streams one connection may hold open at once; more get `RESOURCE_EXHAUSTED`.
    pub xds_max_streams_per_connection: usize,
    /// xDS streams the server holds open at once, over all connections.
    pub xds_max_streams: usize,
    /// An xDS stream that sends no request for this long is ended.
    #[serde(with = "duration")]
    pub xds_first_message_timeout: Duration,
    /// Resource names one xDS request may carry, and one stream may subscribe to per type.
    pub xds_max_resource_names: usize,
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
    /// How long an API write waits for every connected Envoy to ACK (or NACK) it before it
    /// answers with `status.state: "pending"`.
    #[serde(with = "duration")]
    pub ack_timeout: Duration,
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
    /// `host:port` upstream targets allowed although they are internal: a loopback address on one of
    /// the gateway's own ports, a link-local (metadata) or an unspecified address. IPv6 in brackets.
    pub allowed_internal_upstreams: Vec<String>,
    /// The gateway's public base URL (e.g. `https://api.example.com`), as developers are told to
    /// call APIs in the answers that hand out keys and subscription tokens. Unset: built from the
    /// API's virtual host (or `localhost`) and `http_port`.
    pub public_url: Option<String>,
    /// Envoy's access log for the gateway listeners, one JSON object per request (never the API
    /// key): `"stdout"` (Envoy's standard output), `"off"`, or an absolute file path on the
    /// Envoy's host.
    pub access_log: String,
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
    pub password: Secret<String>,
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
    /// `tollgate-replicas-behind` response header, and the write answers 504: it is stored, but not
    /// yet in force on that replica. `0s`: writes do not wait and answer as if confirmed.
    #[serde(with = "duration")]
    pub replica_sync_timeout: Duration,
    /// The request header naming, upstream, the subscription that admitted a request. Must start
    /// with `x-tollgate-`, so the listeners remove any copy a client sends.
    pub subscription_header: String,
    /// The request header naming, upstream, the application of the key or subscription. Same rule.
    pub application_header: String,
    /// About how many keys the rate-limit policies count in the embedded ext_authz service (WSO2's
    /// `memory.maxEntries`, here for all policies together): past it, ended and least recently
    /// used keys are dropped. 100 to 10,000,000.
    pub rate_limit_max_entries: usize,
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
    /// Leave Envoy serving when `tollgate run` stops on SIGTERM/Ctrl-C (the next start adopts it);
    /// off: a graceful stop stops Envoy too. A crash never stops it.
    pub keep_running_on_exit: bool,
    /// Envoy's standard output and error are appended to this file; unset, Envoy shares the
    /// controller's (the terminal of `make run`), which it keeps when the controller dies.
    pub log_file: Option<PathBuf>,
}

/// The link to a WSO2 API Platform control plane (`platform-api`). Off while `host` is empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlPlane {
    /// `host[:port]` of the platform API; Tollgate connects to `wss://{host}` and `https://{host}`.
    /// `TOLLGATE_CONTROL_PLANE_HOST` overrides.
    pub host: String,
    /// The gateway token issued by the platform API. `TOLLGATE_CONTROL_PLANE_TOKEN` overrides.
    /// Never logged.
    pub token: Secret<String>,
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
    /// A key listing that would remove more than this percentage of the known control-plane keys
    /// is not applied (a truncated listing must not delete keys); 100 turns the check off.
    pub key_sync_max_drop_percent: u8,
    /// The drop check applies only when more than this many control-plane keys are known.
    pub key_sync_min_known: usize,
    /// The gateway version reported in the manifest (1.2.0 or later gets `v1` artifacts).
    pub gateway_version: String,
}

impl Default for ControlPlane {
    fn default() -> Self {
        ControlPlane {
            host: String::new(),
            token: Secret::default(),
            insecure_skip_verify: false,
            ca_cert_path: None,
            reconnect_initial: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(300),
            ping_timeout: Duration::from_secs(35),
            request_timeout: Duration::from_secs(30),
            sync_batch_size: 50,
            key_sync_max_drop_percent: 50,
            key_sync_min_known: 4,
            gateway_version: "1.2.0".into(),
        }
    }
}

impl ControlPlane {
    /// Whether a control plane is configured.
    pub fn enabled(&self) -> bool {
        !self.host.is_empty()
    }
}

impl Router {
    /// Where Envoy writes the access log, in the translator's terms (checked by `check`).
    pub fn access_log_sink(&self) -> tollgate_translate::AccessLog {
        match self.access_log.as_str() {
            "stdout" => tollgate_translate::AccessLog::Stdout,
            "off" => tollgate_translate::AccessLog::Off,
            path => tollgate_translate::AccessLog::File(path.to_string()),
        }
    }
}

impl Server {
    /// The bounds of the xDS server.
    pub fn xds_limits(&self) -> tollgate_xds::Limits {
        tollgate_xds::Limits {
            max_message_bytes: self.xds_max_message_bytes,
            max_streams_per_connection: self.xds_max_streams_per_connection,
            max_streams: self.xds_max_streams,
            first_message_timeout: self.xds_first_message_timeout,
            max_resource_names: self.xds_max_resource_names,
        }
    }
}

// === defaults ===

impl Default for Server {
    fn default() -> Self {
        Server {
            bind: "0.0.0.0".into(),
            management_port: 9090,
            admin_port: 9092,
            metrics_port: 9091,
            metrics_bind: "127.0.0.1".into(),
            metrics_username: String::new(),
            metrics_password: Secret::default(),
            tls_cert_path: None,
            tls_key_path: None,
            grpc_bind: "127.0.0.1".into(),
            xds_port: 18000,
            authz_port: 18001,
            xds_max_message_bytes: 4 * 1024 * 1024,
            xds_max_streams_per_connection: 16,
            xds_max_streams: 4096,
            xds_first_message_timeout: Duration::from_secs(5),
            xds_max_resource_names: 100_000,
            authz_advertise: "127.0.0.1".into(),
            authz_embedded: true,
            data_dir: PathBuf::from("./data"),
            max_body_bytes: 1024 * 1024,
            shutdown_timeout: Duration::from_secs(15),
            ack_timeout: Duration::from_secs(5),
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
            allowed_internal_upstreams: vec![],
            public_url: None,
            access_log: "stdout".into(),
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
            subscription_header: tollgate_policies::authz::SUBSCRIPTION_HEADER.into(),
            application_header: tollgate_policies::authz::APPLICATION_HEADER.into(),
            rate_limit_max_entries: tollgate_policies::authz::ratelimit::DEFAULT_MAX_ENTRIES,
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
            keep_running_on_exit: false,
            log_file: None,
        }
    }
}
