//! Validation: values out of range, settings that only work together, and the files the
//! configuration points at (read here so a missing one is a configuration error, exit 64, rather
//! than a failure at start-up).

use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::{Config, ConfigError};

/// The oldest control-plane protocol this gateway speaks: older versions get legacy artifacts.
const MIN_GATEWAY_VERSION: (u64, u64) = (1, 2);

fn invalid(key: &'static str, message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        key,
        message: message.into(),
    })
}

// === impl Config ===

impl Config {
    /// Checks every value, section by section.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        self.check_server_and_router()?;
        self.check_auth_and_keys()?;
        self.check_control_plane()?;
        self.xds_tls.check(super::tls::Section::Xds)?;
        self.authz_tls.check(super::tls::Section::Authz)?;
        self.quota.check()
    }

    fn check_server_and_router(&self) -> Result<(), ConfigError> {
        if let Some(u) = &self.router.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return invalid(
                "router.public_url",
                format!("{u:?} must start with http:// or https://"),
            );
        }
        if self.server.max_body_bytes == 0 {
            return invalid("server.max_body_bytes", "must be greater than 0");
        }
        let xds = [
            ("server.xds_max_message_bytes", self.server.xds_max_message_bytes),
            (
                "server.xds_max_streams_per_connection",
                self.server.xds_max_streams_per_connection,
            ),
            ("server.xds_max_streams", self.server.xds_max_streams),
            ("server.xds_max_resource_names", self.server.xds_max_resource_names),
        ];
        if let Some((key, _)) = xds.into_iter().find(|(_, v)| *v == 0) {
            return invalid(key, "must be greater than 0");
        }
        if self.server.xds_first_message_timeout.is_zero() {
            return invalid("server.xds_first_message_timeout", "must be greater than 0");
        }
        if self.router.tls_cert_path.is_some() != self.router.tls_key_path.is_some() {
            return invalid(
                "router.tls_cert_path",
                "tls_cert_path and tls_key_path must be set together",
            );
        }
        if let Some(bad) = self.router.allowed_internal_upstreams.iter().find(|a| !is_host_port(a)) {
            return invalid(
                "router.allowed_internal_upstreams",
                format!("'{bad}' is not host:port (IPv6 in brackets: [::1]:9901)"),
            );
        }
        if self.server.tls_cert_path.is_some() != self.server.tls_key_path.is_some() {
            return invalid(
                "server.tls_cert_path",
                "tls_cert_path and tls_key_path must be set together",
            );
        }
        let log = self.router.access_log.as_str();
        if !matches!(log, "stdout" | "off") && !Path::new(log).is_absolute() {
            return invalid(
                "router.access_log",
                "must be \"stdout\", \"off\" or an absolute file path (Envoy opens it on its host)",
            );
        }
        if self.server.metrics_username.is_empty() != self.server.metrics_password.expose().is_empty() {
            return invalid(
                "server.metrics_username",
                "metrics_username and metrics_password must be set together",
            );
        }
        if self.router.vhosts.main.is_empty() {
            return invalid("router.vhosts.main", "must not be empty");
        }
        if self.router.vhosts.sandbox.is_empty() {
            return invalid("router.vhosts.sandbox", "must not be empty");
        }
        Ok(())
    }

    fn check_auth_and_keys(&self) -> Result<(), ConfigError> {
        if let Some(i) = self.auth.users.iter().position(|u| u.username.is_empty()) {
            return invalid("auth.users", format!("user {i} has no username"));
        }
        if let Some(u) = self.auth.users.iter().find(|u| u.password.expose().is_empty()) {
            return invalid("auth.users", format!("user {:?} has an empty password", u.username));
        }
        if self.api_keys.per_user_per_api == 0 {
            return invalid("api_keys.per_user_per_api", "must be at least 1");
        }
        if !(100..=10_000_000).contains(&self.api_keys.rate_limit_max_entries) {
            return invalid("api_keys.rate_limit_max_entries", "must be from 100 to 10000000");
        }
        for (key, name) in [
            ("api_keys.subscription_header", &self.api_keys.subscription_header),
            ("api_keys.application_header", &self.api_keys.application_header),
        ] {
            if !identity_header_ok(name) {
                return invalid(
                    key,
                    format!(
                        "{name:?} must be x-tollgate- followed by letters, digits or '-' (clients' copies are removed)"
                    ),
                );
            }
        }
        if !self.server.authz_embedded && !self.api_keys.publish_to_replicas {
            return invalid(
                "server.authz_embedded",
                "false needs api_keys.publish_to_replicas = true (the replicas get the keys over xDS)",
            );
        }
        Ok(())
    }

    fn check_control_plane(&self) -> Result<(), ConfigError> {
        let cp = &self.control_plane;
        if cp.host.contains("://") || cp.host.contains('/') {
            return invalid("control_plane.host", "must be host[:port], without a scheme or path");
        }
        if cp.enabled() && cp.token.expose().is_empty() {
            return invalid(
                "control_plane.token",
                "control_plane.host is set but there is no gateway token: set control_plane.token or TOLLGATE_CONTROL_PLANE_TOKEN",
            );
        }
        if cp.sync_batch_size == 0 {
            return invalid("control_plane.sync_batch_size", "must be at least 1");
        }
        if cp.key_sync_max_drop_percent > 100 {
            return invalid("control_plane.key_sync_max_drop_percent", "must be at most 100");
        }
        if cp.reconnect_initial.is_zero() || cp.reconnect_max < cp.reconnect_initial {
            return invalid(
                "control_plane.reconnect_max",
                "reconnect_initial must be > 0 and reconnect_max at least reconnect_initial",
            );
        }
        if semver_below(&cp.gateway_version, MIN_GATEWAY_VERSION) {
            return invalid(
                "control_plane.gateway_version",
                "must be a version of at least 1.2.0 (older versions get legacy artifacts)",
            );
        }
        Ok(())
    }

    /// Reads the files this process will read at start-up. `router.trusted_ca_path` is not among
    /// them: Envoy reads it, possibly on another host or in another container.
    pub(super) fn check_files(&self) -> Result<(), ConfigError> {
        if let (Some(cert), Some(key)) = (&self.router.tls_cert_path, &self.router.tls_key_path) {
            readable("router.tls_cert_path", cert)?;
            readable("router.tls_key_path", key)?;
        }
        if let (Some(cert), Some(key)) = (&self.server.tls_cert_path, &self.server.tls_key_path) {
            readable("server.tls_cert_path", cert)?;
            readable("server.tls_key_path", key)?;
        }
        let cp = &self.control_plane;
        // The CA file is used only when the link runs and verifies certificates.
        if let Some(ca) = cp
            .ca_cert_path
            .as_deref()
            .filter(|_| cp.enabled() && !cp.insecure_skip_verify)
        {
            certificates("control_plane.ca_cert_path", ca)?;
        }
        self.jwt.settings()?;
        Ok(())
    }
}

/// `host:port` or `[v6]:port`, with a port of 1-65535.
fn is_host_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok()),
        None => !host.is_empty() && !host.contains(':'),
    };
    host_ok && port.parse::<u16>().is_ok_and(|p| p != 0)
}

pub(super) fn readable(key: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::File {
        key,
        path: path.to_path_buf(),
        source,
    })
}

/// Checks `path` holds at least one PEM certificate, and that every one parses.
pub(super) fn certificates(key: &'static str, path: &Path) -> Result<(), ConfigError> {
    let pem = readable(key, path)?;
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        if let Err(e) = cert {
            return invalid(key, format!("{}: {e}", path.display()));
        }
        n += 1;
    }
    if n == 0 {
        return invalid(key, format!("{} holds no certificate", path.display()));
    }
    Ok(())
}

/// Whether `version` (`major.minor[.patch]`) is below `min`, or not a version at all.
pub(super) fn semver_below(version: &str, min: (u64, u64)) -> bool {
    let mut parts = version.trim().trim_start_matches('v').split('.');
    let major = parts.next().and_then(|p| p.parse::<u64>().ok());
    let minor = parts.next().map_or(Some(0), |p| p.parse::<u64>().ok());
    match (major, minor) {
        (Some(a), Some(b)) => (a, b) < min,
        _ => true,
    }
}

/// Whether `name` can carry an identity upstream: `x-tollgate-` and letters, digits or `-` (the
/// listeners remove clients' copies of that namespace, so no client can forge it).
pub(crate) fn identity_header_ok(name: &str) -> bool {
    name.to_ascii_lowercase()
        .strip_prefix(tollgate_policies::IDENTITY_HEADER_PREFIX)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}
