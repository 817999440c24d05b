//! Subscriptions on a remote ext_authz replica: plans and subscriptions written over REST reach
//! the replica as `tollgate.subs.v1.SubscriptionSet` resources (token digests only), and Envoy,
//! sent to the replica, gets 200, 429 past the plan's quota (counted by the replica) and 403 once
//! a subscription is paused, its token replaced, its plan deactivated or it is deleted.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tollgate::replica::{Replica, ReplicaConfig};
use tollgate_testkit::{Echo, free_port};

use crate::stack::{Stack, eventually, send};
use crate::subscriptions::{call, plan, post, subscribe, subscribed};

fn replica_config(s: &Stack, port: u16) -> ReplicaConfig {
    ReplicaConfig {
        xds: format!("http://{}", s.running().xds),
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        node_id: "replica-subs".into(),
        token: tollgate::replica::replica_token(&s.config.server.data_dir)
            .unwrap()
            .0
            .into(),
        tls: None,
        serve_tls: None,
        max_staleness: None,
    }
}

/// Polls until a GET with `token` answers `want` (a 403 costs no quota).
async fn until(s: &Stack, token: &str, want: u16) {
    eventually(|| async { call(s, "/shop/x", Some(token), None).await.0 == want }).await;
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
    })
    .await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(s.deploy(&subscribed("shop", &url, &[], false)).await.0, StatusCode::CREATED);
    // An hour's window: a minute's could roll over between the third request and the fourth.
    let business = plan(
        &s,
        json!({"planName": "Business", "throttleLimitCount": 3, "throttleLimitUnit": "Hour"}),
    )
    .await;
    let free = plan(&s, json!({"planName": "Free"})).await;
    // Made before any replica runs: the replica must get it in its first sync.
    let (_, limited) = subscribe(&s, "shop", Some(&business)).await;
    let replica = Replica::start(replica_config(&s, authz_port)).await.unwrap();

    // The first 200 is the first of the three the replica counts.
    until(&s, &limited, 200).await;
    for i in 1..3 {
        assert_eq!(call(&s, "/shop/x", Some(&limited), None).await.0, 200, "request {i}");
    }
    let (st, h, body) = call(&s, "/shop/x", Some(&limited), None).await;
    assert_eq!(st, 429, "{body}");
    assert_eq!(h["x-ratelimit-limit"], "3");
    assert_eq!(call(&s, "/shop/x", Some("tgsub_unknown"), None).await.0, 403);

    // Written while the replica follows.
    let (sid, tok) = subscribe(&s, "shop", Some(&free)).await;
    until(&s, &tok, 200).await;
    set_status(&s, &format!("/subscriptions/{sid}"), "INACTIVE").await;
    until(&s, &tok, 403).await;
    set_status(&s, &format!("/subscriptions/{sid}"), "ACTIVE").await;
    until(&s, &tok, 200).await;
    let (st, b) = post(&s, &format!("/subscriptions/{sid}/regenerate-token"), json!({})).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let fresh = b["subscriptionToken"].as_str().unwrap().to_string();
    until(&s, &fresh, 200).await;
    assert_eq!(call(&s, "/shop/x", Some(&tok), None).await.0, 403, "the old token");

    // A plan change re-publishes its subscriptions.
    set_status(&s, &format!("/subscription-plans/{business}"), "INACTIVE").await;
    until(&s, &limited, 403).await;
    let (st, _) = send(s.mgmt(Method::DELETE, &format!("/subscriptions/{sid}"))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    until(&s, &fresh, 403).await;
    assert_eq!(replica.stats.rejected.load(std::sync::atomic::Ordering::Relaxed), 0);
    replica.stop().await;
}
