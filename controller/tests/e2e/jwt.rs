//! `jwt-auth` end to end (issue 15): key managers from the configuration, tokens signed here
//! (ES256 with ring), their JWKS served over HTTPS (Envoy trusts the key manager's own CA) by a
//! small server this test runs, verified by the real
//! Envoy's `jwt_authn` and checked per route by its RBAC filter; then a key rotation at the JWKS
//! server, picked up once Envoy's cache expires.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::{Method, StatusCode};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use tollgate::config::{JwksSource, KeyManager, LocalJwks, RemoteJwks};
use tollgate_testkit::Echo;

use crate::api_yaml;
use crate::stack::{Stack, send};

const ISSUER: &str = "https://idp.test";

/// A P-256 signing key and its key id.
struct Signer {
    kid: String,
    key: EcdsaKeyPair,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        Signer { kid: kid.into(), key }
    }

    /// The public key as a JWK (the uncompressed point is 0x04, x, y).
    fn jwk(&self) -> Value {
        let point = self.key.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
               "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])})
    }

    /// The public key as PEM (SubjectPublicKeyInfo: the fixed P-256 prefix, then the point).
    fn pem(&self) -> String {
        const P256_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
        let mut der: Vec<u8> = (0..P256_SPKI.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&P256_SPKI[i..i + 2], 16).unwrap())
            .collect();
        der.extend_from_slice(self.key.public_key().as_ref());
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
    }

    /// A compact JWS over `claims`.
    fn token(&self, claims: Value) -> String {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let sig = self.key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Claims valid for an hour, for audience `orders`, with `scope`.
fn claims(scope: &str) -> Value {
    json!({"iss": ISSUER, "sub": "alice", "aud": ["orders", "billing"], "scope": scope,
           "iat": now(), "exp": now() + 3600})
}

/// Claims with the `admin` scope in an `scp` array, from `iss`.
fn admin_claims(iss: &str) -> Value {
    let mut c = claims("");
    c["scp"] = json!(["admin"]);
    c["iss"] = json!(iss);
    c
}

/// Serves the JWKS of whichever keys `keys` holds at `/jwks.json`, over HTTPS with a fresh
/// self-signed certificate for 127.0.0.1; returns its port and that certificate (PEM), Envoy's CA.
async fn jwks_server(keys: Arc<Mutex<Value>>) -> (u16, String) {
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let keys = keys.clone();
            async move {
                let body = keys.lock().unwrap().to_string();
                ([("content-type", "application/json")], body)
            }
        }),
    );
    let (cert, key) = tollgate_testkit::tls::self_signed(&["127.0.0.1"]);
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = tollgate::https::TlsListener::new(tcp, tollgate_testkit::tls::acceptor(&cert, &key)).unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, cert)
}

/// An API under `/<name>`: `GET /items` takes the API's policy, `GET /admin` its own (which
/// needs the `admin` scope, in `scp`).
fn orders(name: &str, url: &str, issuer: &str) -> String {
    let policy = format!(
        "  policies:\n    - name: jwt-auth\n      version: v1\n      params:\n        issuers: [{issuer}]\n        \
         audiences: [orders]\n        requiredScopes: [orders:read]\n        claimMappings: {{sub: X-User-Id}}\n"
    );
    let ops = "    - {method: GET, path: /items}\n    - method: GET\n      path: /admin\n      policies:\n        \
               - {name: jwt-auth, version: v1, params: {requiredScopes: [admin]}}\n";
    api_yaml(name, &format!("/{name}"), url, ops).replace("  operations:", &format!("{policy}  operations:"))
}

async fn get(s: &Stack, path: &str, token: Option<&str>) -> (StatusCode, Value, String) {
    let mut r = s.gw(Method::GET, path, None).header("x-user-id", "mallory");
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    let body = serde_json::from_str(&resp.text().await.unwrap_or_default()).unwrap_or(Value::Null);
    (status, body, ctype)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_verified_checked_mapped_and_rotated() {
    let (old, new, stranger) = (Signer::new("k1"), Signer::new("k2"), Signer::new("k-unknown"));
    let partner = Signer::new("p1");
    let keys = Arc::new(Mutex::new(json!({"keys": [old.jwk()]})));
    let (jwks_port, jwks_cert) = jwks_server(keys.clone()).await;
    let ca =
        tollgate_testkit::envoy::TempDir(std::env::temp_dir().join(format!("tollgate-jwks-{}", std::process::id())));
    std::fs::create_dir_all(&ca.0).unwrap();
    let ca_path = ca.0.join("jwks-ca.pem");
    std::fs::write(&ca_path, jwks_cert).unwrap();
    let echo = Echo::start("backend").await;
    let s = Stack::with(|c| {
        c.jwt.key_managers = vec![KeyManager {
            name: "idp".into(),
            issuer: Some(ISSUER.into()),
            jwks: JwksSource {
                remote: Some(RemoteJwks {
                    uri: format!("https://127.0.0.1:{jwks_port}/jwks.json"),
                    certificate_path: Some(ca_path.clone()),
                    skip_tls_verify: false,
                }),
                local: None,
            },
        }];
        // A second key manager with a local key, as PEM (the controller turns it into a JWKS),
        // for the issuers check.
        c.jwt.key_managers.push(KeyManager {
            name: "partners".into(),
            issuer: Some("partners".into()),
            jwks: JwksSource {
                remote: None,
                local: Some(LocalJwks {
                    inline: Some(partner.pem()),
                    certificate_path: None,
                }),
            },
        });
        c.jwt.jwks_cache_ttl = Duration::from_secs(2);
    })
    .await;
    let url = format!("http://127.0.0.1:{}", echo.port);

    // An issuer that names no configured key manager is refused with its field.
    let (st, body) = s.deploy(&orders("refused", &url, "nope")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.to_string().contains("spec.policies[0].params.issuers[0]"),
        "{body}"
    );

    let (st, body) = s.deploy(&orders("orders", &url, "idp")).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let good = old.token(claims("orders:read profile"));
    // Envoy fetches the JWKS off the request path: poll until the token passes.
    crate::stack::eventually(|| async { get(&s, "/orders/items", Some(&good)).await.0 == StatusCode::OK }).await;

    // Accepted: the claim reaches the upstream in the mapped header, the client's value does not.
    let (_, echoed, _) = get(&s, "/orders/items", Some(&good)).await;
    assert_eq!(echoed["headers"]["x-user-id"], "alice", "{echoed}");

    // No token, an expired one, one signed by a key the JWKS lacks: the configured 401 and body.
    for (what, token) in [
        ("missing", None),
        (
            "expired",
            Some(old.token(json!({"iss": ISSUER, "sub": "a", "aud": "orders",
            "scope": "orders:read", "exp": now() - 600}))),
        ),
        ("unknown kid", Some(stranger.token(claims("orders:read")))),
    ] {
        let (st, body, ctype) = get(&s, "/orders/items", token.as_deref()).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"], "Unauthorized", "{what}: {body}");
        assert_eq!(body["message"], "Authentication failed", "{what}");
        assert_eq!(ctype, "application/json", "{what}");
    }

    // A token the other key manager (local PEM key) verifies: good on an API that lists it (and on
    // an operation whose policy lists no issuers), 403 on one that lists only `idp`.
    let mut from_partner = claims("orders:read");
    from_partner["iss"] = json!("partners");
    let from_partner = partner.token(from_partner);
    let (st, body) = s.deploy(&orders("partners", &url, "partners")).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    crate::stack::eventually(|| async { get(&s, "/partners/items", Some(&from_partner)).await.0 == StatusCode::OK })
        .await;
    assert_eq!(get(&s, "/partners/items", Some(&good)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        get(&s, "/orders/items", Some(&from_partner)).await.0,
        StatusCode::FORBIDDEN
    );
    let partner_admin = partner.token(admin_claims("partners"));
    assert_eq!(get(&s, "/orders/admin", Some(&partner_admin)).await.0, StatusCode::OK);

    // Verified, but not for this route: 403.
    let wrong_aud = old.token(
        json!({"iss": ISSUER, "sub": "a", "aud": "billing", "scope": "orders:read",
        "exp": now() + 600}),
    );
    for (what, token) in [
        ("wrong audience", wrong_aud),
        ("missing scope", old.token(claims("profile"))),
    ] {
        let (st, body, ctype) = get(&s, "/orders/items", Some(&token)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{what}: {body}");
        assert_eq!(body["error"], "Forbidden", "{what}: {body}");
        assert_eq!(ctype, "application/json", "{what}");
    }

    // The operation's policy replaces the API's: `admin` (here in an `scp` array) is what counts.
    assert_eq!(get(&s, "/orders/admin", Some(&good)).await.0, StatusCode::FORBIDDEN);
    let admin = old.token(admin_claims(ISSUER));
    assert_eq!(get(&s, "/orders/admin", Some(&admin)).await.0, StatusCode::OK);

    // Rotation: the key manager now publishes only the new key. Once Envoy's cache (2 s) expires,
    // tokens from the new key pass and tokens from the old one no longer do.
    *keys.lock().unwrap() = json!({"keys": [new.jwk()]});
    let fresh = new.token(claims("orders:read"));
    crate::stack::eventually(|| async { get(&s, "/orders/items", Some(&fresh)).await.0 == StatusCode::OK }).await;
    assert_eq!(get(&s, "/orders/items", Some(&good)).await.0, StatusCode::UNAUTHORIZED);

    // Other APIs keep Envoy's own replies: the catch-all 404 is untouched by the JWT mappers.
    let (st, body) = send(s.gw(Method::GET, "/elsewhere", None)).await;
    assert_eq!((st, body), (StatusCode::NOT_FOUND, json!({"error": "Not Found"})));
}
