//! PEM certificates and public keys of a local key manager, turned into the JWKS Envoy's
//! `jwt_authn` reads (it takes no PEM): RSA keys, and EC keys on P-256, P-384 and P-521.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Whether `text` looks like PEM rather than JSON.
pub(super) fn is_pem(text: &str) -> bool {
    text.trim_start().starts_with("-----BEGIN")
}

/// The JWKS of every certificate and public key in `text`.
pub(super) fn to_jwks(text: &str) -> Result<String, String> {
    let mut keys = Vec::new();
    for block in Pem::iter_from_buffer(text.as_bytes()) {
        let block = block.map_err(|e| format!("not valid PEM: {e}"))?;
        let jwk = match block.label.as_str() {
            "CERTIFICATE" => {
                let (_, cert) =
                    x509_parser::parse_x509_certificate(&block.contents).map_err(|e| format!("certificate: {e}"))?;
                jwk(cert.public_key())?
            }
            "PUBLIC KEY" => {
                let (_, spki) =
                    SubjectPublicKeyInfo::from_der(&block.contents).map_err(|e| format!("public key: {e}"))?;
                jwk(&spki)?
            }
            other => return Err(format!("PEM block {other:?}: only CERTIFICATE and PUBLIC KEY are read")),
        };
        keys.push(jwk);
    }
    if keys.is_empty() {
        return Err("holds no PEM certificate or public key".into());
    }
    Ok(json!({ "keys": keys }).to_string())
}

fn jwk(spki: &SubjectPublicKeyInfo<'_>) -> Result<Value, String> {
    match spki.parsed().map_err(|e| format!("public key: {e}"))? {
        PublicKey::RSA(rsa) => Ok(json!({
            "kty": "RSA",
            "n": B64.encode(unsigned(rsa.modulus)),
            "e": B64.encode(unsigned(rsa.exponent)),
        })),
        PublicKey::EC(point) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            let (crv, size) = match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => ("P-256", 32),
                Some("1.3.132.0.34") => ("P-384", 48),
                Some("1.3.132.0.35") => ("P-521", 66),
                _ => return Err("EC key on a curve Envoy does not verify (P-256, P-384, P-521 only)".into()),
            };
            let data = point.data();
            // Uncompressed point: 0x04, then x and y.
            if data.len() != 1 + 2 * size || data[0] != 4 {
                return Err("EC key is not an uncompressed point".into());
            }
            Ok(json!({
                "kty": "EC",
                "crv": crv,
                "x": B64.encode(&data[1..=size]),
                "y": B64.encode(&data[1 + size..]),
            }))
        }
        _ => Err("only RSA and EC keys are supported".into()),
    }
}

/// A DER integer's magnitude without its sign octet.
fn unsigned(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    &bytes[zeros.min(bytes.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_becomes_its_ec_jwk() {
        let (cert, _) = tollgate_testkit::tls::self_signed(&["idp.example"]);
        let jwks: Value = serde_json::from_str(&to_jwks(&cert).unwrap()).unwrap();
        let key = &jwks["keys"][0];
        assert_eq!((key["kty"].as_str(), key["crv"].as_str()), (Some("EC"), Some("P-256")));
        assert_eq!(B64.decode(key["x"].as_str().unwrap()).unwrap().len(), 32);
        assert!(is_pem(&cert));
    }

    #[test]
    fn anything_else_is_refused() {
        assert!(to_jwks("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());
        assert!(to_jwks("").is_err());
    }

    #[test]
    fn sign_octets_are_dropped() {
        assert_eq!(unsigned(&[0, 0x80, 1]), &[0x80, 1]);
        assert_eq!(unsigned(&[1, 0, 1]), &[1, 0, 1]);
        assert_eq!(unsigned(&[0]), &[0]);
    }
}
