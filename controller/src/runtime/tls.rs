//! TLS settings at start-up: the gRPC ports' server side, and the files Envoy reads itself.

use anyhow::Context;
use tollgate_translate::AuthzTls;

/// A gRPC port's TLS: its certificate and, for mutual TLS, the CA client certificates must chain to.
pub(super) fn server_tls(
    tls: &crate::config::PortTls,
    section: &str,
) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let read = |p: &Option<std::path::PathBuf>, key: &str| -> anyhow::Result<Option<Vec<u8>>> {
        p.as_ref()
            .map(|p| std::fs::read(p).with_context(|| format!("reading {section}.{key} {}", p.display())))
            .transpose()
    };
    let (Some(cert), Some(key)) = (read(&tls.cert, "cert")?, read(&tls.key, "key")?) else {
        anyhow::bail!("{section}.cert and {section}.key must be set together");
    };
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if let Some(ca) = read(&tls.client_ca, "client_ca")? {
        config = config.client_ca_root(Certificate::from_pem(ca));
    }
    Ok(config)
}

/// How Envoy reaches the ext_authz service over TLS (files on the Envoy's host).
pub(super) fn envoy_authz_tls(tls: &crate::config::PortTls) -> anyhow::Result<Option<AuthzTls>> {
    if !tls.enabled() {
        return Ok(None);
    }
    let path = |p: &std::path::Path| {
        p.to_str()
            .map(str::to_string)
            .with_context(|| format!("{} is not valid UTF-8", p.display()))
    };
    let ca = tls.trust().context("authz_tls.ca or authz_tls.client_ca must be set")?;
    let client_cert = match (&tls.client_cert, &tls.client_key) {
        (Some(c), Some(k)) => Some((path(c)?, path(k)?)),
        _ => None,
    };
    Ok(Some(AuthzTls {
        ca_path: path(ca)?,
        server_name: tls.server_name.clone(),
        client_cert,
    }))
}

/// The absolute path of a file Envoy reads itself, checked readable here first (the managed Envoy
/// shares this host; a remote Envoy needs the same file at the same path).
pub(super) fn envoy_path(path: &std::path::Path, key: &str) -> anyhow::Result<String> {
    std::fs::File::open(path).with_context(|| format!("reading {key} {}", path.display()))?;
    let abs = std::fs::canonicalize(path).with_context(|| format!("resolving {key} {}", path.display()))?;
    abs.to_str()
        .map(str::to_string)
        .with_context(|| format!("{key} {} is not valid UTF-8", abs.display()))
}
