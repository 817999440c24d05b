//! `[xds_tls]`: TLS, and mutual TLS, on the xDS port; and how the managed Envoy and
//! `tollgate authz-replica` connect to it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::check::{certificates, readable};

/// TLS on the xDS port. Off while `cert` and `key` are unset (then the port stays plain gRPC and
/// should stay on loopback).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XdsTls {
    /// The server certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// The server private key (PEM). Never sent anywhere.
    pub key: Option<PathBuf>,
    /// With it, mutual TLS: every client (Envoy, replica) must present a certificate this CA
    /// (PEM) signed.
    pub client_ca: Option<PathBuf>,
    /// For the managed Envoy: the CA that signed `cert` (PEM); defaults to `client_ca`.
    pub ca: Option<PathBuf>,
    /// For the managed Envoy under mutual TLS: its client certificate and key (PEM).
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// The name the managed Envoy expects in the server certificate (SAN) and sends as SNI.
    pub server_name: String,
}

// === impl XdsTls ===

impl XdsTls {
    /// Whether the port serves TLS.
    pub fn enabled(&self) -> bool {
        self.cert.is_some()
    }

    /// The trust anchor clients use for the server certificate.
    pub fn trust(&self) -> Option<&Path> {
        self.ca.as_deref().or(self.client_ca.as_deref())
    }

    /// Settings that only work together, and the files this process or its managed Envoy reads.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        if self.cert.is_some() != self.key.is_some() {
            return invalid("xds_tls.cert", "cert and key must be set together");
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return invalid("xds_tls.client_cert", "client_cert and client_key must be set together");
        }
        if !self.enabled() {
            if self.client_ca.is_some() || self.client_cert.is_some() {
                return invalid("xds_tls.client_ca", "mutual TLS needs xds_tls.cert and xds_tls.key");
            }
            return Ok(());
        }
        if self.server_name.is_empty() {
            return invalid("xds_tls.server_name", "must name the server certificate's DNS name");
        }
        if let Some(cert) = &self.cert {
            certificates("xds_tls.cert", cert)?;
        }
        if let Some(key) = &self.key {
            readable("xds_tls.key", key)?;
        }
        if let Some(ca) = &self.client_ca {
            certificates("xds_tls.client_ca", ca)?;
        }
        if let Some(ca) = &self.ca {
            certificates("xds_tls.ca", ca)?;
        }
        Ok(())
    }
}
