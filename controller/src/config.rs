//! The typed configuration: documented defaults, under a TOML file, under the environment
//! (`TOLLGATE_<SECTION>_<KEY>`), under command-line flags; the merged result is validated once,
//! values and the files they point at. Every problem is a [`ConfigError`] that names the key
//! (and where its value came from); `main` exits 64 on it.

mod check;
pub(crate) use check::identity_header_ok;
mod duration;
pub mod env;
mod jwt;
mod load;
mod quota;
mod sections;
mod tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use tollgate_model::{UpstreamGuard, VhostDefaults};

pub use jwt::{JwksSource, Jwt, KeyManager, LocalJwks, RemoteJwks};
pub use load::{FlagValue, Origins, Source};
pub use quota::{Quota, QuotaFailureMode};
pub use sections::{ApiKeys, Auth, ControlPlane, Envoy, LogFormat, Logging, Role, Router, Server, User, Vhosts};
pub use tls::{PortTls, XdsTls};

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
    pub xds_tls: XdsTls,
    pub authz_tls: PortTls,
    pub quota: Quota,
    /// `jwt-auth`'s key managers and settings.
    pub jwt: Jwt,
}

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read; `via` names `TOLLGATE_CONFIG` when that variable named it.
    #[error("cannot read config file {path}{via}: {source}")]
    Read {
        path: PathBuf,
        via: &'static str,
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (the message names the key).
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is out of range.
    #[error("invalid config: {key}: {message}")]
    Invalid { key: &'static str, message: String },
    /// A value is out of range, or not of the key's type; `origin` says who set it.
    #[error("invalid config: {key} (from {origin}): {message}")]
    From {
        key: String,
        origin: Source,
        message: String,
    },
    /// A file the configuration names cannot be read.
    #[error("invalid config: {key}: cannot read {path}: {source}")]
    File {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ConfigError {
    /// The configuration key at fault, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } | ConfigError::File { key, .. } => Some(key),
            ConfigError::From { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::Parse { .. } => None,
        }
    }
}

// === impl Config ===

impl Config {
    /// Reads `path` (else the file `TOLLGATE_CONFIG` names, else none), applies the environment,
    /// and checks the values and the files they name.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with(path, &|var| std::env::var(var).ok())
    }

    /// [`Config::load`] with the environment given as a lookup (tests pass their own).
    pub fn load_with(path: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::load_from(path, env, &[]).map(|(config, _)| config)
    }

    /// Merges the defaults, the file, the environment and `flags` (each overriding the ones
    /// before), checks the result once, and returns it with the origin of every key set.
    pub fn load_from(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &[FlagValue],
    ) -> Result<(Config, Origins), ConfigError> {
        let (config, origins) = load::merge(path, env, flags)?;
        let attribute = |e| load::attribute(e, &origins);
        config.check().map_err(attribute)?;
        config.check_files().map_err(attribute)?;
        Ok((config, origins))
    }

    /// Parses TOML text and checks the values (no environment, no files).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config = Config::from_toml(text)?;
        config.check()?;
        Ok(config)
    }

    fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })
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
        c.server.metrics_port = 0;
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

    /// The virtual-host defaults in the model's terms, with the upstream guard: this gateway's
    /// own ports (refused as upstreams on loopback) and the allowed exceptions.
    pub fn vhost_defaults(&self) -> VhostDefaults {
        let v = &self.router.vhosts;
        let (s, r) = (&self.server, &self.router);
        let mut gateway_ports = vec![
            self.envoy.admin_port,
            r.http_port,
            r.https_port,
            s.management_port,
            s.admin_port,
            s.metrics_port,
            s.xds_port,
            s.authz_port,
        ];
        // Port 0 (an ephemeral port, in tests) names no port an upstream could use.
        gateway_ports.retain(|p| *p != 0);
        gateway_ports.sort_unstable();
        gateway_ports.dedup();
        VhostDefaults {
            main: v.main.clone(),
            main_domains: v.main_domains.clone(),
            sandbox: v.sandbox.clone(),
            sandbox_domains: v.sandbox_domains.clone(),
            upstreams: UpstreamGuard {
                gateway_ports,
                allowed: r.allowed_internal_upstreams.clone(),
            },
        }
    }

    /// The configuration as loggable JSON, every [`Secret`](crate::secret::Secret) (passwords,
    /// tokens) replaced by `[redacted]`.
    pub fn redacted(&self) -> serde_json::Value {
        crate::secret::redacting(|| serde_json::to_value(self)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
