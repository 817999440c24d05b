//! TLS and mutual TLS on the xDS and ext_authz ports: the Envoy and a replica with certificates from the
//! configured CA get their configuration; a plain-text client and a TLS client without a
//! certificate get nothing.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use serde_json::json;
use tollgate::config::XdsTls;
use tollgate::replica::{Replica, ReplicaConfig, ReplicaTls};
use tollgate_proto::pb::envoy::config::core::v3::Node;
use tollgate_proto::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use tollgate_proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use tollgate_testkit::tls::TestCa;
use tollgate_testkit::{Echo, free_port};

use crate::keys::{call, create_key, protected};
use crate::stack::{Stack, eventually};

const SERVER_NAME: &str = "tollgate-xds.test";

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Opens a delta ADS stream on `endpoint` and waits for the first answer: `Err` when refused.
async fn first_answer(endpoint: tonic::transport::Endpoint) -> Result<(), String> {
    let channel = endpoint.connect().await.map_err(|e| format!("connect: {e}"))?;
    let mut client = AggregatedDiscoveryServiceClient::new(channel);
    let first = DeltaDiscoveryRequest {
        node: Some(Node {
            id: "stranger".into(),
            cluster: "default".into(),
            ..Default::default()
        }),
        type_url: "type.googleapis.com/envoy.config.listener.v3.Listener".into(),
        ..Default::default()
    };
    let stream = tokio_stream::StreamExt::chain(tokio_stream::iter(vec![first]), tokio_stream::pending());
    let mut answers = client
        .delta_aggregated_resources(stream)
        .await
        .map_err(|e| format!("open: {e}"))?
        .into_inner();
    match tokio::time::timeout(std::time::Duration::from_secs(5), answers.message()).await {
        Ok(Ok(Some(_))) => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_on_xds_serves_envoys_and_replicas_with_certificates_only() {
    let dir = std::env::temp_dir().join(format!("tollgate-xds-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = TestCa::new("tollgate test CA");
    let (server_cert, server_key) = ca.issue(&[SERVER_NAME]);
    let (envoy_cert, envoy_key) = ca.issue(&["envoy.test"]);
    let tls = XdsTls {
        cert: Some(write(&dir, "xds.crt", &server_cert)),
        key: Some(write(&dir, "xds.key", &server_key)),
        client_ca: Some(write(&dir, "ca.crt", &ca.pem)),
        ca: None,
        client_cert: Some(write(&dir, "envoy.crt", &envoy_cert)),
        client_key: Some(write(&dir, "envoy.key", &envoy_key)),
        server_name: SERVER_NAME.into(),
    };
    let echo = Echo::start("backend").await;
    let authz_port = free_port();
    // Stack::with_bootstrap waits until the Envoy serves: it got its listeners over mutual TLS.
    let s = Stack::with_bootstrap(
        |c| {
            c.xds_tls = tls.clone();
            c.server.authz_embedded = false;
            c.server.authz_port = authz_port;
            c.api_keys.publish_to_replicas = true;
        },
        |c, bootstrap| tollgate::managed_envoy::with_xds_tls(&bootstrap, &c.xds_tls).unwrap(),
    )
    .await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let (code, body) = s.deploy(&protected("mtls", &url, true)).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["status"]["state"], "deployed", "the Envoy ACKed over TLS: {body}");

    // Strangers: plain text, and TLS without a client certificate.
    let addr = s.running().xds;
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
    assert!(first_answer(plain).await.is_err(), "plain text is refused");
    let anonymous = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&ca.pem))
        .domain_name(SERVER_NAME);
    let no_cert = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(anonymous)
        .unwrap();
    assert!(
        first_answer(no_cert).await.is_err(),
        "TLS without a client certificate is refused"
    );

    // A replica with a certificate gets the keys (and the token travels encrypted).
    let (replica_cert, replica_key) = ca.issue(&["replica.test"]);
    let replica = Replica::start(ReplicaConfig {
        xds: format!("https://{addr}"),
        listen: format!("127.0.0.1:{authz_port}").parse().unwrap(),
        node_id: "replica-tls".into(),
        token: tollgate::replica::replica_token(&s.config.server.data_dir)
            .unwrap()
            .0
            .into(),
        tls: Some(ReplicaTls {
            ca_pem: ca.pem.clone().into_bytes(),
            server_name: SERVER_NAME.into(),
            identity: Some((replica_cert.into_bytes(), replica_key.into_bytes())),
        }),
        serve_tls: None,
        max_staleness: None,
        header_names: Default::default(),
    })
    .await
    .unwrap();
    let (code, body) = create_key(&s, "mtls", json!({"name": "mtls-key"})).await;
    assert_eq!(code, 201, "{body}");
    let key = body["apiKey"]["apiKey"].as_str().unwrap().to_string();
    eventually(|| async { call(&s, "/mtls/x", Some(&key)).await.0 == 200 }).await;
    assert!(replica.stats.applied.load(Ordering::Relaxed) > 0);
    replica.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `Check` with no key on `endpoint`: `Err` when the port refused the caller.
async fn check(endpoint: tonic::transport::Endpoint) -> Result<(), String> {
    use tollgate_proto::pb::envoy::service::auth::v3::CheckRequest;
    use tollgate_proto::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
    let channel = endpoint.connect().await.map_err(|e| format!("connect: {e}"))?;
    let mut client = AuthorizationClient::new(channel);
    let call = client.check(CheckRequest::default());
    match tokio::time::timeout(std::time::Duration::from_secs(5), call).await {
        Ok(Ok(_)) => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_on_ext_authz_answers_envoy_and_nobody_else() {
    let dir = std::env::temp_dir().join(format!("tollgate-authz-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = TestCa::new("tollgate authz CA");
    let (server_cert, server_key) = ca.issue(&["authz.test"]);
    let (envoy_cert, envoy_key) = ca.issue(&["envoy.test"]);
    let tls = tollgate::config::PortTls {
        cert: Some(write(&dir, "authz.crt", &server_cert)),
        key: Some(write(&dir, "authz.key", &server_key)),
        client_ca: Some(write(&dir, "ca.crt", &ca.pem)),
        ca: None,
        client_cert: Some(write(&dir, "envoy.crt", &envoy_cert)),
        client_key: Some(write(&dir, "envoy.key", &envoy_key)),
        server_name: "authz.test".into(),
    };
    let echo = Echo::start("backend").await;
    let authz_port = free_port();
    let s = Stack::with(|c| {
        c.authz_tls = tls.clone();
        c.server.authz_port = authz_port;
    })
    .await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(s.deploy(&protected("authz-tls", &url, true)).await.0, 201);
    let (code, body) = create_key(&s, "authz-tls", json!({"name": "tls-key"})).await;
    assert_eq!(code, 201, "{body}");
    let key = body["apiKey"]["apiKey"].as_str().unwrap().to_string();
    // Envoy asks the service over mutual TLS: the key opens the route, its absence does not.
    assert_eq!(call(&s, "/authz-tls/x", Some(&key)).await.0, 200);
    assert_eq!(call(&s, "/authz-tls/x", None).await.0, 401);

    // Nobody else can use the port as an oracle for candidate keys.
    let addr = format!("127.0.0.1:{authz_port}");
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
    assert!(check(plain).await.is_err(), "plain text is refused");
    let anonymous = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&ca.pem))
        .domain_name("authz.test");
    let no_cert = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(anonymous.clone())
        .unwrap();
    assert!(
        check(no_cert).await.is_err(),
        "TLS without a client certificate is refused"
    );
    let (cert, key) = ca.issue(&["tool.test"]);
    let with_cert = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(anonymous.identity(tonic::transport::Identity::from_pem(cert, key)))
        .unwrap();
    assert!(
        check(with_cert).await.is_ok(),
        "a client with a certificate of the CA is answered"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
