//! TLS end to end: HTTPS upstreams (SNI, verification against the configured trust store, host
//! rewrite and `hostRewrite: manual`) and Envoy's HTTPS listener with a configured certificate.

use reqwest::{Method, StatusCode};
use tollgate_testkit::{Echo, free_port, tls};

use crate::stack::Stack;

fn api(name: &str, url: &str, host_rewrite: Option<&str>) -> String {
    let rewrite = host_rewrite
        .map(|r| format!("\n      hostRewrite: {r}"))
        .unwrap_or_default();
    format!(
        "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata:\n  name: {name}\nspec:\n  displayName: {name}\n  version: v1\n  context: /{name}\n  upstream:\n    main:\n      url: {url}{rewrite}\n  operations:\n    - {{method: GET, path: /*}}\n"
    )
}

fn write_temp(tag: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("tollgate-{tag}-{}.pem", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstreams_get_sni_verification_and_host_rewrite() {
    let (trusted, ca) = Echo::start_tls("secure", &["localhost"]).await;
    let (untrusted, _) = Echo::start_tls("impostor", &["localhost"]).await;
    let ca_file = write_temp("upstream-ca", &ca);
    let s = Stack::with(|c| c.router.trusted_ca_path = ca_file.clone()).await;

    let url = format!("https://localhost:{}/base", trusted.port);
    assert_eq!(s.deploy(&api("secure", &url, None)).await.0, StatusCode::CREATED);
    s.wait_status("/secure/x", None, 200).await;
    let (st, body) = s.call(Method::GET, "/secure/x?q=1", Some("client.example")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["upstream"], "secure");
    assert_eq!(body["sni"], "localhost", "SNI is the upstream's host name");
    assert_eq!(body["path"], "/base/x");
    assert_eq!(
        body["headers"]["host"],
        format!("localhost:{}", trusted.port),
        "Host is rewritten to the upstream's"
    );

    // hostRewrite: manual keeps the client's Host.
    assert_eq!(
        s.deploy(&api("manual", &url, Some("manual"))).await.0,
        StatusCode::CREATED
    );
    s.wait_status("/manual/x", None, 200).await;
    let (_, body) = s.call(Method::GET, "/manual/x", Some("client.example")).await;
    assert_eq!(body["headers"]["host"], "client.example");
    assert_eq!(body["sni"], "localhost");

    // A certificate the trust store does not vouch for is refused: Envoy never talks to it.
    let bad = format!("https://localhost:{}", untrusted.port);
    assert_eq!(s.deploy(&api("impostor", &bad, None)).await.0, StatusCode::CREATED);
    s.wait_status("/impostor/x", None, 503).await;
    let (st, body) = s.call(Method::GET, "/impostor/x", None).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let _ = std::fs::remove_file(ca_file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_https_listener_serves_with_the_configured_certificate() {
    let echo = Echo::start("plain").await;
    let (cert, key) = tls::self_signed(&["gw.example"]);
    let (cert_file, key_file) = (write_temp("listener-cert", &cert), write_temp("listener-key", &key));
    let https_port = free_port();
    let s = Stack::with(|c| {
        c.router.tls_cert_path = Some(cert_file.clone());
        c.router.tls_key_path = Some(key_file.clone());
        c.router.https_port = https_port;
    })
    .await;
    // Envoy reads the key from its file: no xDS client ever receives it.
    let group = s.running().app.xds().group(tollgate_xds::DEFAULT_GROUP);
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    for name in group.names(tollgate_xds::TypeKind::Listener) {
        let listener = group.get(tollgate_xds::TypeKind::Listener, &name).unwrap();
        let bytes = listener.any().as_ref();
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(
            !has(b"PRIVATE KEY") && !has(&key_body.as_bytes()[..32]),
            "{name} carries the key"
        );
    }
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(s.deploy(&api("shop", &url, None)).await.0, StatusCode::CREATED);
    s.wait_status("/shop/x", None, 200).await;

    let client = reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .resolve("gw.example", std::net::SocketAddr::from(([127, 0, 0, 1], https_port)))
        .build()
        .unwrap();
    let mut last = None;
    for _ in 0..300 {
        match client
            .get(format!("https://gw.example:{https_port}/shop/x"))
            .send()
            .await
        {
            Ok(r) => {
                last = Some(r.status());
                if r.status() == StatusCode::OK {
                    let body: serde_json::Value = r.json().await.unwrap();
                    assert_eq!(body["upstream"], "plain");
                    assert_eq!(body["path"], "/x");
                    let plain = s.call(Method::GET, "/shop/x", None).await.0;
                    assert_eq!(plain, StatusCode::OK, "plain HTTP keeps working");
                    let _ = std::fs::remove_file(&cert_file);
                    let _ = std::fs::remove_file(&key_file);
                    return;
                }
            }
            Err(e) => last = Some(StatusCode::from_u16(599).unwrap()).filter(|_| !e.to_string().is_empty()),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("HTTPS listener never answered 200 (last: {last:?})");
}
