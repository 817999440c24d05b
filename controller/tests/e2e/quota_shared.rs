//! One quota for the fleet: the controller's own ext_authz service (behind Envoy) and two
//! `tollgate authz-replica` processes (the real binary, asked over gRPC as Envoys next to them
//! would) share a real redis-server. Requests spread over the three admit the plan's limit once,
//! not once per replica, and then every one of them answers 429.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tollgate_policies::authz::ctx;
use tollgate_policies::authz::quota::{QuotaUnit, window};
use tollgate_proto::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use tollgate_proto::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context, check_response};
use tollgate_testkit::{Echo, Redis, free_port};
use tonic::transport::Channel;

use crate::stack::{Stack, eventually};
use crate::subscriptions::{call, plan, subscribe, subscribed};

const LIMIT: u64 = 6;

/// A replica process, killed on drop.
struct ReplicaProcess {
    _child: tokio::process::Child,
    client: AuthorizationClient<Channel>,
}

async fn start_replica(s: &Stack, redis: &Redis, node: &str) -> ReplicaProcess {
    let port = free_port();
    let token_file = s.config.server.data_dir.join(tollgate::replica::REPLICA_TOKEN_FILE);
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["authz-replica", "--xds", &format!("http://{}", s.running().xds)])
        .arg("--token-file")
        .arg(&token_file)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--node", node])
        .args(["--quota-store", &redis.url(), "--quota-sync-interval", "5ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    eventually(|| async { !s.running().status.node(node).is_empty() }).await;
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let client = loop {
        if let Ok(c) = AuthorizationClient::connect(endpoint.clone()).await {
            break c;
        }
        assert!(std::time::Instant::now() < deadline, "replica {node} does not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    ReplicaProcess { _child: child, client }
}

/// A `Check` for `GET /shop/x` with the subscription token: the HTTP status the replica decides.
async fn check(client: &mut AuthorizationClient<Channel>, token: &str) -> u16 {
    let req = CheckRequest {
        attributes: Some(AttributeContext {
            context_extensions: [
                (ctx::API, "shop"),
                (ctx::SUB, "true"),
                (ctx::SUB_HEADER, "subscription-key"),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    method: "GET".into(),
                    path: "/shop/x".into(),
                    headers: [("subscription-key".to_string(), token.to_string())].into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let answer = client.check(req).await.unwrap().into_inner();
    match answer.http_response {
        Some(check_response::HttpResponse::DeniedResponse(d)) => d.status.unwrap().code as u16,
        _ => 200,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_and_two_replicas_share_one_quota_through_redis() {
    let redis = Redis::start().await;
    let echo = Echo::start("backend").await;
    let s = Stack::with(|c| {
        c.api_keys.publish_to_replicas = true;
        c.quota.store = redis.url();
        c.quota.sync_interval = Duration::from_millis(5);
    })
    .await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(
        s.deploy(&subscribed("shop", &url, &[], false)).await.0,
        StatusCode::CREATED
    );
    let mut a = start_replica(&s, &redis, "replica-a").await;
    let mut b = start_replica(&s, &redis, "replica-b").await;
    // An hour's window, so the test does not straddle a reset. The subscription is written once
    // both replicas follow: the write answers when they have ACKed it.
    let business = plan(
        &s,
        json!({"planName": "Business", "throttleLimitCount": LIMIT, "throttleLimitUnit": "Hour"}),
    )
    .await;
    let (sid, token) = subscribe(&s, "shop", Some(&business)).await;
    let store_key = tollgate_quota_store::key(&sid, window(QuotaUnit::Hour, now()).0);

    // Round robin: Envoy (the controller's service), replica A, replica B. Each request is sent
    // once the previous ones have reached the store and the replicas' next sync has read them:
    // requests further apart than a sync are counted exactly.
    let mut admitted = 0;
    let mut answers = Vec::new();
    for i in 0..3 * LIMIT as usize {
        let status = match i % 3 {
            0 => call(&s, "/shop/x", Some(&token), None).await.0,
            1 => check(&mut a.client, &token).await,
            _ => check(&mut b.client, &token).await,
        };
        answers.push(status);
        if status == 200 {
            admitted += 1;
        }
        eventually(|| async { redis.get_u64(&store_key).await == admitted }).await;
        // The replicas are other processes: give their next sync (every 5 ms) ample time, with
        // room for a loaded machine's scheduling delays, while each replica still serves more
        // often than every 2 s (a subscription idle longer is synced once a second only).
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(admitted, LIMIT, "one quota for the three services: {answers:?}");
    assert!(answers.iter().all(|&st| st == 200 || st == 429), "{answers:?}");
    // Spent everywhere.
    assert_eq!(call(&s, "/shop/x", Some(&token), None).await.0, 429);
    assert_eq!(check(&mut a.client, &token).await, 429);
    assert_eq!(check(&mut b.client, &token).await, 429);
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
