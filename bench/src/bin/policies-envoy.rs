//! What policies cost through Envoy, side by side in one run (issue #15, item 6): an API with no
//! policy, one with `set-headers` + `cors` (mediation: route configuration and Envoy's CORS filter
//! only), and one with `jwt-auth` (Envoy's `jwt_authn` plus the route-enabled RBAC filter checking
//! audience and scope; a local JWKS, an ES256 token). One Envoy (`--concurrency 1`) serves all
//! three; a closed-loop client keeps N requests in flight for a fixed time per case. For each case
//! it reports requests/s, p50, p99 and the CPU time per request of that Envoy (from the scheduler's
//! per-thread counters) and of the controller's ext_authz threads (which none of these policies
//! should use).
//!
//! Usage: `cargo run --release -p tollgate-bench --bin policies-envoy [-- SECONDS CONCURRENCY]`
//! (defaults 10 and 16). Needs Envoy (`make envoy`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;
use tollgate::config::{Config, JwksSource, KeyManager, LocalJwks};
use tollgate::runtime;
use tollgate_bench::{Headers, deploy_yaml, measure, micros, wait_200};
use tollgate_testkit::{Echo, Envoy, envoy::TempDir, free_port};

const ORIGIN: &str = "https://app.example.com";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let secs = args.first().copied().unwrap_or(10);
    let conc = args.get(1).copied().unwrap_or(16) as usize;
    let echo = Echo::start("backend").await;

    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("key generation failed"))?;
    let signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| anyhow::anyhow!("key parsing failed"))?;
    let point = signer.public_key().as_ref();
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "bench",
        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])}]});

    let dir = std::env::temp_dir().join(format!("tollgate-policies-envoy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _dir = TempDir(dir.clone());
    let mut c = Config::loopback(dir, free_port(), "b", "b");
    c.jwt.key_managers = vec![KeyManager {
        name: "idp".into(),
        issuer: Some("https://idp.bench".into()),
        jwks: JwksSource {
            remote: None,
            local: Some(LocalJwks {
                inline: Some(jwks.to_string()),
                certificate_path: None,
            }),
        },
    }];
    let running = runtime::start(&c).await?;
    let envoy = Envoy::start("delta", "bench", "default", running.xds).await;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let mgmt = format!("http://{}/api/management/v1", running.management);
    let mediated = "  policies:\n    - name: set-headers\n      version: v1\n      params:\n        requestHeaders: [{name: X-Gateway, value: tollgate}]\n        responseHeaders: [{name: X-Served-By, value: tollgate}]\n    - name: cors\n      version: v1\n      params:\n        allowedOrigins: [\"https://app.example.com\"]\n        allowedMethods: [GET, POST]\n        exposedHeaders: [X-Served-By]\n";
    let jwt = "  policies:\n    - name: jwt-auth\n      version: v1\n      params: {issuers: [idp], audiences: [orders], requiredScopes: [orders:read]}\n";
    for (name, policy) in [("open", ""), ("mediated", mediated), ("jwt", jwt)] {
        let doc = format!(
            "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata: {{name: {name}}}\nspec:\n  displayName: {name}\n  version: v1\n  context: /{name}\n  upstream: {{main: {{url: \"http://127.0.0.1:{}\"}}}}\n{policy}  operations:\n    - {{method: GET, path: /*}}\n",
            echo.port
        );
        deploy_yaml(&http, &mgmt, "b", doc).await?;
    }
    let token = sign(&signer, &rng)?;

    let gw = c.router.http_port;
    let pid = envoy.pid().unwrap_or(0);
    let cases: [(&str, String, Headers); 3] = [
        ("no policy", format!("http://127.0.0.1:{gw}/open/x"), vec![]),
        (
            "set-headers + cors",
            format!("http://127.0.0.1:{gw}/mediated/x"),
            vec![("origin".into(), ORIGIN.into())],
        ),
        (
            "jwt-auth (audience + scope)",
            format!("http://127.0.0.1:{gw}/jwt/x"),
            vec![("authorization".into(), format!("Bearer {token}"))],
        ),
    ];
    for (_, url, headers) in &cases {
        wait_200(&http, url, headers).await?;
    }
    println!(
        "| case | in flight | requests/s | p50 | p99 | p50 vs no policy | Envoy CPU per request | ext_authz CPU per request |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut base_p50 = None;
    for (label, url, headers) in &cases {
        let m = measure(&http, url, headers, (secs, conc), pid).await?;
        let vs = base_p50
            .map(|b: Duration| format!("{:+.1} µs", (m.p50.as_secs_f64() - b.as_secs_f64()) * 1e6))
            .unwrap_or("-".into());
        base_p50.get_or_insert(m.p50);
        println!(
            "| {label} | {conc} | {:.0} | {} | {} | {vs} | {} | {} |",
            m.requests_per_s,
            micros(m.p50),
            micros(m.p99),
            micros(m.envoy_cpu),
            micros(m.authz_cpu)
        );
    }
    running.shutdown().await;
    Ok(())
}

/// An ES256 token for audience `orders` with scope `orders:read`, valid for a day.
fn sign(key: &EcdsaKeyPair, rng: &SystemRandom) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": "bench"});
    let claims = json!({"iss": "https://idp.bench", "sub": "bench", "aud": "orders", "scope": "orders:read",
        "iat": now, "exp": now + 86_400});
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let sig = key
        .sign(rng, input.as_bytes())
        .map_err(|_| anyhow::anyhow!("signing failed"))?;
    Ok(format!("{input}.{}", B64.encode(sig.as_ref())))
}
