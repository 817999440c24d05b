//! Subscriptions on a remote ext_authz replica: plans and subscriptions written over REST reach
//! the replica as `tollgate.subs.v1.SubscriptionSet` resources (token digests only), and Envoy,
//! sent to the replica, gets 200, 429 past the plan's quota (counted by the replica) and 403 once
//! a subscription is paused, its token replaced, its plan deactivated or it is deleted. A
//! subscription write waits for the replicas' ACKs, as a key write does.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_stream::wrappers::ReceiverStream;
use tollgate::replica::{Replica, ReplicaConfig};
use tollgate_proto::pb::envoy::config::core::v3::Node;
use tollgate_proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use tollgate_proto::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DeltaDiscoveryResponse};
use tollgate_testkit::{Echo, free_port};

use crate::stack::{Stack, eventually, send};
use crate::subscriptions::{call, plan, post, subscribe, subscribed};

/// The subscription header name the operator chose (`api_keys.subscription_header`).
const SUBSCRIPTION_HEADER: &str = "x-tollgate-sub-id";

fn replica_config(s: &Stack, port: u16) -> ReplicaConfig {
    ReplicaConfig {
        xds: format!("http://{}", s.running().xds),
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        node_id: "replica-subs".into(),
        token: token(s).into(),
        tls: None,
        serve_tls: None,
        max_staleness: None,
        header_names: Default::default(),
    }
}

/// Polls until a GET with `token` answers `want` (a 403 costs no quota).
async fn until(s: &Stack, token: &str, want: u16) {
    eventually(|| async { call(s, "/shop/x", Some(token), None).await.0 == want }).await;
}

/// A GET with `token`: its status.
async fn gets(s: &Stack, token: &str) -> u16 {
    call(s, "/shop/x", Some(token), None).await.0
}

async fn set_status(s: &Stack, path: &str, status: &str) {
    let (st, b) = send(s.mgmt(Method::PUT, path).json(&json!({"status": status}))).await;
    assert_eq!(st, StatusCode::OK, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_replica_enforces_subscriptions_it_gets_over_xds() {
    let echo = Echo::start("backend").await;
    let authz_port = free_port();
    let s = Stack::with(|c| {
        c.server.authz_embedded = false;
        c.server.authz_port = authz_port;
        c.api_keys.publish_to_replicas = true;
        c.api_keys.subscription_header = SUBSCRIPTION_HEADER.into();
    })
    .await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(
        s.deploy(&subscribed("shop", &url, &[], false)).await.0,
        StatusCode::CREATED
    );
    // An hour's window: a minute's could roll over between the third request and the fourth.
    let business = plan(
        &s,
        json!({"planName": "Business", "throttleLimitCount": 3, "throttleLimitUnit": "Hour"}),
    )
    .await;
    let free = plan(&s, json!({"planName": "Free"})).await;
    // Made before any replica runs: the replica must get it in its first sync.
    let (_, limited) = subscribe(&s, "shop", Some(&business)).await;
    let mut config = replica_config(&s, authz_port);
    config.header_names.subscription = SUBSCRIPTION_HEADER.into();
    let replica = Replica::start(config).await.unwrap();

    // The first 200 is the first of the three the replica counts.
    until(&s, &limited, 200).await;
    for i in 1..3 {
        let (status, _, body) = call(&s, "/shop/x", Some(&limited), None).await;
        assert_eq!(status, 200, "request {i}");
        // The upstream gets the subscription under the name the operator chose, as from the
        // controller's own service.
        let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(seen["headers"][SUBSCRIPTION_HEADER].is_string(), "{body}");
        assert!(seen["headers"].get("x-tollgate-subscription").is_none(), "{body}");
    }
    let (st, h, body) = call(&s, "/shop/x", Some(&limited), None).await;
    assert_eq!(st, 429, "{body}");
    assert_eq!(h["x-ratelimit-limit"], "3");
    assert_eq!(call(&s, "/shop/x", Some("tgsub_unknown"), None).await.0, 403);

    // Written while the replica follows. Each write answers once the replica has ACKed it, so
    // the very next request through Envoy and the replica sees it (no polling from here on).
    let (sid, tok) = subscribe(&s, "shop", Some(&free)).await;
    assert_eq!(gets(&s, &tok).await, 200);
    set_status(&s, &format!("/subscriptions/{sid}"), "INACTIVE").await;
    assert_eq!(gets(&s, &tok).await, 403, "paused");
    set_status(&s, &format!("/subscriptions/{sid}"), "ACTIVE").await;
    assert_eq!(gets(&s, &tok).await, 200, "resumed");
    let (st, b) = post(&s, &format!("/subscriptions/{sid}/regenerate-token"), json!({})).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let fresh = b["subscriptionToken"].as_str().unwrap().to_string();
    assert_eq!(gets(&s, &tok).await, 403, "the old token");
    assert_eq!(gets(&s, &fresh).await, 200, "the new token");

    // A plan change re-publishes its subscriptions.
    set_status(&s, &format!("/subscription-plans/{business}"), "INACTIVE").await;
    assert_eq!(gets(&s, &limited).await, 403, "inactive plan");
    let (st, _) = send(s.mgmt(Method::DELETE, &format!("/subscriptions/{sid}"))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(gets(&s, &fresh).await, 403, "deleted");
    assert_eq!(replica.stats.rejected.load(std::sync::atomic::Ordering::Relaxed), 0);
    replica.stop().await;
}

type Responses = tonic::Streaming<DeltaDiscoveryResponse>;

/// A delta ADS stream subscribing to the subscription sets as node `id`, presenting `token`: the
/// sender (dropping it ends the stream), the responses, and the first thing the controller answers.
async fn subscribe_sub_sets(
    s: &Stack,
    id: &str,
    token: Option<&str>,
) -> (
    tokio::sync::mpsc::Sender<DeltaDiscoveryRequest>,
    Responses,
    Result<Option<DeltaDiscoveryResponse>, tonic::Status>,
) {
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{}", s.running().xds))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let first = DeltaDiscoveryRequest {
        node: Some(Node {
            id: id.into(),
            cluster: "replicas".into(),
            ..Default::default()
        }),
        type_url: tollgate_proto::subs::TYPE_URL.into(),
        resource_names_subscribe: vec!["*".into()],
        ..Default::default()
    };
    tx.send(first).await.unwrap();
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(t) = token {
        request
            .metadata_mut()
            .insert(tollgate::replica::TOKEN_HEADER, t.parse().unwrap());
    }
    let mut responses = client.delta_aggregated_resources(request).await.unwrap().into_inner();
    let first = responses.message().await;
    (tx, responses, first)
}

fn token(s: &Stack) -> String {
    tollgate::replica::replica_token(&s.config.server.data_dir).unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_sets_go_only_to_streams_with_the_replica_token() {
    let echo = Echo::start("backend").await;
    let s = Stack::with(|c| c.api_keys.publish_to_replicas = true).await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(
        s.deploy(&subscribed("shop", &url, &[], false)).await.0,
        StatusCode::CREATED
    );
    let (id, plain) = subscribe(&s, "shop", None).await;
    for bad in [None, Some("not-the-token")] {
        let (_tx, _rx, first) = subscribe_sub_sets(&s, "intruder", bad).await;
        let status = first.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    }
    let (_tx, _rx, first) = subscribe_sub_sets(&s, "trusted", Some(&token(&s))).await;
    let first = first.unwrap().expect("a response");
    let set = first
        .resources
        .iter()
        .find(|r| r.name.starts_with("shop/"))
        .expect("the API's set");
    let any = set.resource.as_ref().unwrap();
    let decoded = tollgate_proto::subs::SubscriptionSet::decode_named(&set.name, &any.value).unwrap();
    assert_eq!(decoded.subscriptions[0].id, id);
    // Digests only: the token is nowhere in what a replica receives.
    let digest = tollgate_policies::authz::digest_of(plain.as_bytes());
    assert_eq!(decoded.subscriptions[0].token(), Some(digest));
    let bytes = String::from_utf8_lossy(&any.value).to_string();
    assert!(!bytes.contains(&plain));
}

/// An xDS client that subscribes to the subscription sets (with the token) and never ACKs.
async fn stalled_subscriber(s: &Stack) -> tokio::sync::mpsc::Sender<DeltaDiscoveryRequest> {
    let (tx, mut responses, first) = subscribe_sub_sets(s, "stalled", Some(&token(s))).await;
    assert!(first.is_ok(), "{first:?}");
    // Read (and drop) whatever comes, never answering.
    tokio::spawn(async move { while let Ok(Some(_)) = responses.message().await {} });
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_write_names_replicas_that_do_not_ack_in_time() {
    let echo = Echo::start("backend").await;
    let s = Stack::with(|c| {
        c.api_keys.publish_to_replicas = true;
        c.api_keys.replica_sync_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(
        s.deploy(&subscribed("shop", &url, &[], false)).await.0,
        StatusCode::CREATED
    );
    let (sid, _) = subscribe(&s, "shop", None).await;

    let stalled = stalled_subscriber(&s).await;
    eventually(|| async { !s.running().status.node("stalled").is_empty() }).await;
    let r = s
        .mgmt(Method::PUT, &format!("/subscriptions/{sid}"))
        .json(&json!({"status": "INACTIVE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504, "not confirmed by the replica");
    assert_eq!(r.headers()["tollgate-replicas-behind"], "1");
    drop(stalled);
    eventually(|| async { s.running().status.node("stalled").is_empty() }).await;
    set_status(&s, &format!("/subscriptions/{sid}"), "ACTIVE").await;
}
