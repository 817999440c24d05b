//! The management and admin APIs over HTTPS (`[server] tls_cert_path` / `tls_key_path`): the real
//! runtime with a generated certificate, a client that trusts only that certificate.

use std::time::Duration;

use reqwest::StatusCode;
use tollgate::runtime;
use tollgate_testkit::tls::self_signed;

use crate::stack::test_config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_and_admin_apis_answer_over_https_only() {
    let dir = std::env::temp_dir().join(format!("tollgate-e2e-https-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = self_signed(&["127.0.0.1", "localhost"]);
    std::fs::write(dir.join("api.crt"), &cert).unwrap();
    std::fs::write(dir.join("api.key"), &key).unwrap();
    let mut config = test_config(dir.join("data"));
    config.server.tls_cert_path = Some(dir.join("api.crt"));
    config.server.tls_key_path = Some(dir.join("api.key"));
    let running = runtime::start(&config).await.expect("controller starts");
    let (mgmt, admin) = (running.management, running.admin);

    // A client that connects and never says anything holds up no one.
    let _silent = tokio::net::TcpStream::connect(mgmt).await.unwrap();

    let https = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .build()
        .unwrap();
    let apis = format!("https://{mgmt}/api/management/v1/rest-apis");
    let resp = https
        .get(&apis)
        .basic_auth("admin", Some("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = https.get(&apis).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "still authenticated");
    let health = https
        .get(format!("https://{admin}/api/admin/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // Plain HTTP gets no answer from an HTTPS port.
    let plain = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let refused = plain
        .get(format!("http://{mgmt}/api/management/v1/rest-apis"))
        .basic_auth("admin", Some("admin"))
        .send()
        .await;
    assert!(refused.is_err(), "plain HTTP must fail: {refused:?}");

    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
