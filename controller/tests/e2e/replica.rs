//! A remote ext_authz replica (`tollgate authz-replica`) fed over xDS: Envoy is sent to it instead
//! of the controller's embedded service, and keys created, rotated and revoked through the REST
//! API reach it as `tollgate.keys.v1.ApiKeySet` resources.

use std::sync::atomic::Ordering;

use reqwest::Method;
use serde_json::json;
use tollgate::replica::{Replica, ReplicaConfig};
use tollgate_testkit::{Echo, free_port};

use crate::keys::{DENY, call, create_key, protected};
use crate::stack::{Stack, eventually, send};

fn replica_config(s: &Stack, port: u16) -> ReplicaConfig {
    ReplicaConfig {
        xds: format!("http://{}", s.running().xds),
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        node_id: "replica-1".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_replica_enforces_the_keys_it_gets_over_xds() {
    let echo = Echo::start("backend").await;
    let authz_port = free_port();
    let s = Stack::with(|c| {
        c.server.authz_embedded = false;
        c.server.authz_port = authz_port;
        c.api_keys.publish_to_replicas = true;
    })
    .await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(s.deploy(&protected("remote", &url, true)).await.0, 201);
    // A key made before any replica runs: the replica must get it in its first sync.
    let (st, body) = create_key(&s, "remote", json!({"name": "early"})).await;
    assert_eq!(st, 201, "{body}");
    let early = body["apiKey"]["apiKey"].as_str().unwrap().to_string();
    // No replica yet: the protected route fails closed.
    eventually(|| async { call(&s, "/remote/x", Some(&early)).await.0 == 403 }).await;

    let replica = Replica::start(replica_config(&s, authz_port)).await.unwrap();
    eventually(|| async { call(&s, "/remote/x", Some(&early)).await.0 == 200 }).await;
    assert_eq!(call(&s, "/remote/x", None).await, (401, DENY.to_string()));
    assert_eq!(call(&s, "/remote/x", Some("apip_wrong")).await, (401, DENY.to_string()));

    // Created, regenerated and revoked after the replica connected.
    let (_, body) = create_key(&s, "remote", json!({"name": "late"})).await;
    let late = body["apiKey"]["apiKey"].as_str().unwrap().to_string();
    eventually(|| async { call(&s, "/remote/x", Some(&late)).await.0 == 200 }).await;
    let (st, body) = send(
        s.mgmt(Method::POST, "/rest-apis/remote/api-keys/late/regenerate")
            .json(&json!({})),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let rotated = body["apiKey"]["apiKey"].as_str().unwrap().to_string();
    eventually(|| async {
        call(&s, "/remote/x", Some(&rotated)).await.0 == 200 && call(&s, "/remote/x", Some(&late)).await.0 == 401
    })
    .await;
    assert_eq!(
        send(s.mgmt(Method::DELETE, "/rest-apis/remote/api-keys/early")).await.0,
        200
    );
    eventually(|| async { call(&s, "/remote/x", Some(&early)).await.0 == 401 }).await;
    assert_eq!(call(&s, "/remote/x", Some(&rotated)).await.0, 200);

    // The controller sees the replica as an xDS node that ACKed the key sets.
    let (_, status) = send(s.admin("/xds_sync_status")).await;
    let text = status.to_string();
    assert!(text.contains("replica-1"), "{text}");
    assert!(replica.stats.applied.load(Ordering::Relaxed) >= 4);
    assert_eq!(replica.stats.rejected.load(Ordering::Relaxed), 0);

    // Deleting the API removes its key set; the replica drops the keys.
    assert_eq!(send(s.mgmt(Method::DELETE, "/rest-apis/remote")).await.0, 200);
    assert_eq!(s.deploy(&protected("remote", &url, true)).await.0, 201);
    eventually(|| async { call(&s, "/remote/x", Some(&rotated)).await.0 == 401 }).await;

    // Replica gone: fail closed again.
    replica.stop().await;
    eventually(|| async { call(&s, "/remote/x", Some(&rotated)).await.0 == 403 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_keeps_serving_through_a_controller_restart_and_catches_up() {
    let echo = Echo::start("backend").await;
    let authz_port = free_port();
    let mut s = Stack::with(|c| {
        c.server.authz_embedded = false;
        c.server.authz_port = authz_port;
        c.api_keys.publish_to_replicas = true;
    })
    .await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    s.deploy(&protected("steady", &url, true)).await;
    let replica = Replica::start(replica_config(&s, authz_port)).await.unwrap();
    let (_, body) = create_key(&s, "steady", json!({"name": "one"})).await;
    let one = body["apiKey"]["apiKey"].as_str().unwrap().to_string();
    eventually(|| async { call(&s, "/steady/x", Some(&one)).await.0 == 200 }).await;

    let xds = s.running().xds;
    s.running.take().unwrap().shutdown().await;
    // Controller down: the replica still answers from what it holds.
    assert_eq!(call(&s, "/steady/x", Some(&one)).await.0, 200);
    assert_eq!(call(&s, "/steady/x", Some("apip_wrong")).await.0, 401);

    let mut config = s.config.clone();
    config.server.xds_port = xds.port();
    s.running = Some(tollgate::runtime::start(&config).await.unwrap());
    eventually(|| async { replica.stats.sessions.load(Ordering::Relaxed) >= 2 }).await;
    // A revocation after the restart reaches the replica on its new session.
    assert_eq!(
        send(s.mgmt(Method::DELETE, "/rest-apis/steady/api-keys/one")).await.0,
        200
    );
    eventually(|| async { call(&s, "/steady/x", Some(&one)).await.0 == 401 }).await;
    replica.stop().await;
}
