//! `[xds_tls]` and `[authz_tls]`: TLS, and mutual TLS, on the xDS and ext_authz ports; and how
//! Envoy (the managed one, for xDS; every one, for ext_authz) connects to them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::check::{certificates, readable};

/// TLS on one gRPC port. Off while `cert` and `key` are unset (then the port stays plain gRPC and
/// should stay on loopback).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortTls {
    /// The server certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// The server private key (PEM). Never sent anywhere.
    pub key: Option<PathBuf>,
    /// With it, mutual TLS: every client (Envoy, replica) must present a certificate this CA
    /// (PEM) signed.
    pub client_ca: Option<PathBuf>,
    /// For Envoy: the CA that signed `cert` (PEM); defaults to `client_ca`.
    pub ca: Option<PathBuf>,
    /// For Envoy under mutual TLS: its client certificate and key (PEM).
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// The name Envoy expects in the server certificate (SAN) and sends as SNI.
    pub server_name: String,
}

/// `[xds_tls]`.
pub type XdsTls = PortTls;

/// Which section a [`PortTls`] is, for the keys its errors name.
#[derive(Clone, Copy, Debug)]
pub(super) enum Section {
    Xds,
    Authz,
}

impl Section {
    /// The full key of `field` in this section.
    fn key(self, field: &str) -> &'static str {
        const XDS: [&str; 6] = [
            "xds_tls.cert",
            "xds_tls.key",
            "xds_tls.client_ca",
            "xds_tls.ca",
            "xds_tls.client_cert",
            "xds_tls.server_name",
        ];
        const AUTHZ: [&str; 6] = [
            "authz_tls.cert",
            "authz_tls.key",
            "authz_tls.client_ca",
            "authz_tls.ca",
            "authz_tls.client_cert",
            "authz_tls.server_name",
        ];
        let keys = match self {
            Section::Xds => XDS,
            Section::Authz => AUTHZ,
        };
        keys.into_iter()
            .find(|k| k.split('.').nth(1) == Some(field))
            .unwrap_or(keys[0])
    }
}

// === impl XdsTls ===

impl PortTls {
    /// Whether the port serves TLS.
    pub fn enabled(&self) -> bool {
        self.cert.is_some()
    }

    /// The trust anchor clients use for the server certificate.
    pub fn trust(&self) -> Option<&Path> {
        self.ca.as_deref().or(self.client_ca.as_deref())
    }

    /// Settings that only work together, and the files this process reads.
    pub(super) fn check(&self, section: Section) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                key: section.key(field),
                message: message.into(),
            })
        };
        if self.cert.is_some() != self.key.is_some() {
            return invalid("cert", "cert and key must be set together");
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return invalid("client_cert", "client_cert and client_key must be set together");
        }
        if !self.enabled() {
            if self.client_ca.is_some() || self.client_cert.is_some() {
                return invalid("client_ca", "mutual TLS needs cert and key");
            }
            return Ok(());
        }
        if self.server_name.is_empty() {
            return invalid("server_name", "must name the server certificate's DNS name");
        }
        if self.trust().is_none() {
            return invalid(
                "ca",
                "Envoy needs the CA of the server certificate: set ca or client_ca",
            );
        }
        for (field, path) in [("cert", &self.cert), ("client_ca", &self.client_ca)] {
            if let Some(p) = path {
                certificates(section.key(field), p)?;
            }
        }
        if let Some(key) = &self.key {
            readable(section.key("key"), key)?;
        }
        Ok(())
    }
}
