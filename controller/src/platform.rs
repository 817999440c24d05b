//! The link to a WSO2 API Platform control plane (`platform-api`, reference
//! `platform-api-protocol.md`): a WebSocket for events and acks, REST calls for artifacts and the
//! startup/reconnect sync, and the store writes they lead to. Everything the control plane sends
//! goes through the same write path as the management API; the database stays the source of
//! what is served, so a control plane that is down changes nothing.

pub mod archive;
pub mod client;
pub mod events;
mod link;
pub mod payload;
pub mod status;
pub mod sync;
mod tls;

use std::path::PathBuf;

use serde_json::{Value, json};
use tollgate_policies::Catalogue;

pub use link::Link;
pub use status::{LinkPhase, LinkState, LinkStatus};

/// Why the link could not be set up (bad configuration, unreadable files).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The TLS library refused the protocol versions.
    #[error("TLS protocol versions: {0}")]
    Tls(#[source] rustls::Error),
    /// The CA file the configuration names cannot be used.
    #[error("control_plane.ca_cert_path {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    /// The HTTP client could not be built.
    #[error("building the platform API client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The gateway token cannot be sent as an HTTP header (control characters, say).
    #[error("control_plane.token is not a valid HTTP header value")]
    BadToken,
}

/// Upgrade or manifest statuses after which the Go gateway gives up for good, and so does Tollgate
/// (reference §2.8): the token or the gateway is wrong, and retrying cannot fix it.
pub fn is_permanent(status: u16) -> bool {
    matches!(status, 401 | 403 | 404 | 409 | 422)
}

/// The manifest pushed after a sync (reference §3.10): version, functionality and the policies
/// this gateway provides.
pub fn manifest(catalogue: &Catalogue, version: &str) -> Value {
    let policies: Vec<Value> = catalogue
        .list()
        .into_iter()
        .map(|(name, v)| json!({"name": name, "version": v, "managedBy": "wso2"}))
        .collect();
    json!({"version": version, "functionalityType": "regular", "policies": policies})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_statuses_are_those_of_the_go_gateway() {
        for s in [401, 403, 404, 409, 422] {
            assert!(is_permanent(s));
        }
        for s in [400, 429, 500, 502, 503] {
            assert!(!is_permanent(s));
        }
    }
}
