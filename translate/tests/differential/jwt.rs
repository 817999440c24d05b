//! `jwt-auth` through the judge: whatever the catalogue accepts, with every kind of key manager
//! and every error format, Envoy accepts too.

use std::time::Duration;

use tollgate_model::parse::{self, Syntax};
use tollgate_policies::Catalogue;
use tollgate_policies::catalogue::GatewayFacts;
use tollgate_translate::{ErrorFormat, Jwks, JwksEndpoint, JwtSettings, KeyManager};

use super::judge::{self, Judge};

const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

fn settings(judge: &Judge, format: ErrorFormat) -> tollgate_translate::Settings {
    let mut s = judge.settings();
    let ca = s.trusted_ca.clone();
    s.jwt = JwtSettings {
        key_managers: vec![
            KeyManager {
                name: "idp".into(),
                issuer: Some("https://idp.example".into()),
                jwks: Jwks::Remote(JwksEndpoint {
                    uri: "https://idp.example/jwks.json".into(),
                    tls: true,
                    host: "idp.example".into(),
                    port: 443,
                    ca_path: Some(ca),
                    skip_tls_verify: false,
                }),
            },
            KeyManager {
                name: "internal".into(),
                issuer: None,
                jwks: Jwks::Remote(JwksEndpoint {
                    uri: "http://10.0.0.7:8081/keys".into(),
                    tls: false,
                    host: "10.0.0.7".into(),
                    port: 8081,
                    ca_path: None,
                    skip_tls_verify: false,
                }),
            },
            KeyManager {
                name: "insecure".into(),
                issuer: Some("insecure".into()),
                jwks: Jwks::Remote(JwksEndpoint {
                    uri: "https://10.0.0.8/keys".into(),
                    tls: true,
                    host: "10.0.0.8".into(),
                    port: 443,
                    ca_path: None,
                    skip_tls_verify: true,
                }),
            },
            KeyManager {
                name: "local".into(),
                issuer: Some("local".into()),
                jwks: Jwks::Inline(JWKS.into()),
            },
        ],
        error_format: format,
        error_message: "100% \"wrong\" token".into(),
        ..JwtSettings::default()
    };
    s
}

const DOC: &str = r#"
metadata: {name: jwt}
spec:
  displayName: Jwt
  version: v1.0
  context: /jwt
  upstream: {main: {url: "http://10.0.0.1:8080"}}
  policies:
    - name: jwt-auth
      version: v1
      params:
        issuers: [idp, local]
        audiences: ["orders", "https://api.example/"]
        requiredScopes: ["orders:read"]
        requiredClaims: {tenant: acme, "https://example.com/role": "a b"}
        claimMappings: {sub: X-User-Id, "example.com/email": x-email}
        authHeaderPrefix: Bearer
        userIdClaim: sub
  operations:
    - {method: GET, path: /items}
    - method: POST
      path: /items/{id}
      policies:
        - {name: jwt-auth, version: v1, params: {}}
"#;

#[test]
fn envoy_accepts_every_jwt_auth_the_catalogue_accepts() {
    let judge = Judge::new("jwt");
    let facts = GatewayFacts {
        key_managers: ["idp", "internal", "insecure", "local"].map(String::from).to_vec(),
        auth_header_scheme: "Bearer".into(),
    };
    let doc = parse::document(DOC.as_bytes(), Syntax::Yaml).unwrap();
    let api = tollgate_model::resolve(&doc, &judge::defaults(), &Catalogue::for_gateway(facts)).unwrap();
    for format in [ErrorFormat::Json, ErrorFormat::Plain, ErrorFormat::Minimal] {
        let s = settings(&judge, format);
        judge.verdict_with(s, std::slice::from_ref(&api)).unwrap();
    }
    // The judge does see the JWT configuration: a status Envoy's local reply mapper cannot send
    // (the config file refuses anything but 401 and 403) is refused.
    let mut bad = settings(&judge, ErrorFormat::Json);
    bad.jwt.failure_status = 99;
    let msg = judge.verdict_with(bad, std::slice::from_ref(&api)).unwrap_err();
    assert!(msg.contains("StatusCode"), "{msg}");
    // No key manager: no JWT filter at all, and nothing for Envoy to refuse.
    let mut plain = judge.settings();
    plain.jwt.jwks_cache_ttl = Duration::from_secs(1);
    judge.verdict_with(plain, &[]).unwrap();
}
