//! The TLS client configuration shared by the WebSocket and the REST calls: the system trust
//! store plus an optional CA file, or (explicitly) no verification at all.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tracing::{debug, warn};

use super::LinkError;
use crate::config::ControlPlane;

/// Builds the client configuration `cp` asks for.
pub fn client_config(cp: &ControlPlane) -> Result<Arc<ClientConfig>, LinkError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(LinkError::Tls)?;
    if cp.insecure_skip_verify {
        warn!("control_plane.insecure_skip_verify is on: the platform API's certificate is not checked");
        let verifier = AnyCertificate(provider.signature_verification_algorithms);
        return Ok(Arc::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth(),
        ));
    }
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    debug!(added, errors = native.errors.len(), "system trust store loaded");
    if let Some(path) = &cp.ca_cert_path {
        add_ca_file(&mut roots, path)?;
    }
    Ok(Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
}

/// Adds the certificates of the PEM file `path` (at least one) to `roots`.
fn add_ca_file(roots: &mut RootCertStore, path: &std::path::Path) -> Result<(), LinkError> {
    let ca = |reason: String| LinkError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| ca(e.to_string()))?;
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| ca(format!("not PEM: {e}")))?;
        roots.add(cert).map_err(|e| ca(format!("not a usable CA: {e}")))?;
        n += 1;
    }
    if n == 0 {
        return Err(ca("holds no certificate".into()));
    }
    Ok(())
}

/// Accepts any certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
