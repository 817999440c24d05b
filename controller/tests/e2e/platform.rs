//! The platform-API link end to end: the faithful fake platform API (TLS, WebSocket, REST) on one
//! side, the controller and the real Envoy on the other. Deployments, undeployments, API keys and
//! replays arrive as the platform API sends them; the assertions read real traffic through Envoy,
//! the acks the fake recorded, and the admin API.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate::config::{Config, ControlPlane};
use tollgate_testkit::Echo;
use tollgate_testkit::platform::{FakePlatform, KeyListing, Refusal};

use crate::api_yaml;
use crate::stack::{Stack, eventually, send};

pub(crate) const TOKEN: &str = "Qy8R-gateway-token_for-tests-0123456789abc";
pub(crate) const WAIT: Duration = Duration::from_secs(30);
const DENY: &str = "{\"error\":\"Unauthorized\",\"message\":\"Valid API key required\"}";

/// Control-plane settings pointing at `fake`, trusting its self-signed certificate.
pub(crate) fn link_to(fake: &FakePlatform, c: &mut Config) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ca = std::env::temp_dir().join(format!("tollgate-cp-ca-{}-{n}.pem", std::process::id()));
    std::fs::write(&ca, fake.ca_pem()).unwrap();
    c.control_plane = ControlPlane {
        host: fake.host(),
        token: TOKEN.into(),
        ca_cert_path: Some(ca),
        reconnect_initial: Duration::from_millis(200),
        reconnect_max: Duration::from_secs(1),
        ..ControlPlane::default()
    };
}

/// A platform-API artifact (v1, `_gateway_default_` vhost as platform-api writes it).
pub(crate) fn artifact(name: &str, url: &str, policies: &str) -> String {
    api_yaml(name, &format!("/{name}"), url, "    - {method: GET, path: /*}\n")
        .replace(
            "metadata:\n",
            "metadata:\n  annotations:\n    gateway.api-platform.wso2.com/project-id: p-1\n",
        )
        .replace(
            "  operations:",
            &format!("  vhosts:\n    main: _gateway_default_\n{policies}  operations:"),
        )
}

const KEY_AUTH: &str = "  policies:\n    - {name: api-key-auth, version: v1, params: {key: X-API-Key, in: header}}\n";

async fn link_state(s: &Stack) -> Value {
    let (status, body) = send(s.admin("/control_plane")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["controlPlane"].clone()
}

/// Waits until the link has connected `n` times in total and the sync after it pushed the manifest.
async fn wait_synced(fake: &FakePlatform, manifests: usize) {
    eventually(|| async { fake.manifests().len() >= manifests }).await;
}

async fn call_with_key(s: &Stack, path: &str, key: Option<&str>) -> (u16, String) {
    let mut r = s.gw(Method::GET, path, None);
    if let Some(k) = key {
        r = r.header("x-api-key", k);
    }
    let resp = r.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap_or_default())
}

pub(crate) fn ack_payload(ack: &Value) -> &Value {
    assert_eq!(ack["type"], "deployment.ack", "{ack}");
    &ack["payload"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_deploy_undeploy_and_failures_are_acked_exactly() {
    let echo = Echo::start("backend").await;
    let fake = FakePlatform::start(TOKEN).await;
    let s = Stack::with(|c| link_to(&fake, c)).await;
    fake.wait_connections(1, WAIT).await;
    wait_synced(&fake, 1).await;
    let manifest = &fake.manifests()[0];
    assert_eq!(manifest["version"], "1.2.0");
    assert!(
        manifest["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "api-key-auth")
    );
    let ws = fake
        .requests()
        .into_iter()
        .find(|r| r.path.contains("/ws/gateways/connect"))
        .unwrap();
    assert_eq!(ws.api_key.as_deref(), Some(TOKEN));

    // Live deploy: fetched, served, acked with the exact performedAt.
    let url = format!("http://127.0.0.1:{}", echo.port);
    let id = "23826f9e-8daf-4638-b295-14898312759f";
    let d = fake.deploy(id, &artifact("weather", &url, ""));
    assert_eq!(fake.push(&fake.deployed_event(&d)), 1);
    let acks = fake.wait_acks(1, WAIT).await;
    let p = ack_payload(&acks[0]);
    assert_eq!(p["status"], "success", "{p}");
    assert_eq!(p["action"], "deploy");
    assert_eq!(p["resourceType"], "api");
    assert_eq!(p["artifactId"], id);
    assert_eq!(p["deploymentId"], d.deployment_id.as_str());
    assert_eq!(p["performedAt"], d.performed_at.as_str());
    assert!(p.get("errorCode").is_none());
    // The ack follows the publish; Envoy applies the configuration a moment later.
    s.wait_status("/weather/now", None, 200).await;
    let (st, body) = s.call(Method::GET, "/weather/now", None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["path"], "/now");

    // The management API shows where it came from.
    let (st, body) = send(s.mgmt(Method::GET, "/rest-apis/weather")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["status"]["origin"], "control_plane");

    // An undeploy naming another deployment fails with DEPLOYMENT_ID_MISMATCH and changes nothing.
    let mut foreign = fake.undeployed_event(&d);
    foreign["payload"]["deploymentId"] = json!("0b7a3f0e-0000-4000-8000-000000000000");
    foreign["payload"]["performedAt"] = json!("2099-01-01T00:00:00.5Z");
    fake.push(&foreign);
    let acks = fake.wait_acks(2, WAIT).await;
    let p = ack_payload(&acks[1]);
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(p["action"], "undeploy");
    assert_eq!(p["errorCode"], "DEPLOYMENT_ID_MISMATCH");
    assert_eq!(p["performedAt"], "2099-01-01T00:00:00.5Z");
    assert_eq!(s.call(Method::GET, "/weather/now", None).await.0, StatusCode::OK);

    // The real undeploy: 404 and a success ack.
    let u = fake.undeploy(id);
    fake.push(&fake.undeployed_event(&u));
    let acks = fake.wait_acks(3, WAIT).await;
    let p = ack_payload(&acks[2]);
    assert_eq!(
        (p["status"].as_str(), p["action"].as_str()),
        (Some("success"), Some("undeploy")),
        "{p}"
    );
    assert_eq!(p["performedAt"], u.performed_at.as_str());
    assert_eq!(s.call(Method::GET, "/weather/now", None).await.0, StatusCode::NOT_FOUND);

    // A stale deploy (older performedAt) is ignored: no ack, still undeployed.
    fake.push(&fake.deployed_event(&d));
    // An artifact fetch that fails is a failed deploy with GATEWAY_PROCESSING_ERROR.
    let id2 = "5a1c0d3e-1111-4222-8333-444455556666";
    let d2 = fake.deploy(id2, &artifact("broken", &url, ""));
    fake.set_fetch_status(id2, Some(500));
    fake.push(&fake.deployed_event(&d2));
    let acks = fake.wait_acks(4, WAIT).await;
    assert_eq!(acks.len(), 4, "the stale deploy is not acked: {acks:?}");
    let p = ack_payload(&acks[3]);
    assert_eq!(p["artifactId"], id2);
    assert_eq!(p["status"], "failed");
    assert_eq!(p["errorCode"], "GATEWAY_PROCESSING_ERROR");
    assert_eq!(p["performedAt"], d2.performed_at.as_str());
    assert_eq!(s.call(Method::GET, "/broken/x", None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.call(Method::GET, "/weather/now", None).await.0, StatusCode::NOT_FOUND);

    // An artifact that does not validate is a failed deploy too, and changes nothing.
    let id3 = "7f3e2d1c-2222-4333-8444-555566667777";
    let d3 = fake.deploy(id3, &artifact("bad", "ftp://nope", ""));
    fake.push(&fake.deployed_event(&d3));
    let acks = fake.wait_acks(5, WAIT).await;
    assert_eq!(ack_payload(&acks[4])["errorCode"], "GATEWAY_PROCESSING_ERROR");

    // Malformed frames and unknown types are logged, counted and ignored; the link stays up.
    fake.push_raw("{not json");
    fake.push_raw("[1,2,3]");
    fake.push(&fake.envelope("gateway.config.updated", json!({}), None));
    fake.push(&fake.envelope(
        "api.deployed",
        json!({"apiId": "../../etc", "deploymentId": "x", "performedAt": "now"}),
        None,
    ));
    eventually(|| async { link_state(&s).await["events"]["ignored"].as_u64().unwrap_or(0) >= 4 }).await;
    let state = link_state(&s).await;
    assert_eq!(state["state"], "connected", "{state}");
    assert_eq!(state["gatewayId"], fake.gateway_id().as_str());
    assert_eq!(fake.total_connections(), 1);
    assert_eq!(fake.acks().len(), 5);
    assert!(!state.to_string().contains(TOKEN), "the token is never shown");

    // Subscriptions, plans and applications are stored (once, however often they arrive); the
    // subscription token only as a digest.
    let sub = json!({"id": "sub-1", "apiId": id, "subscriptionToken": "sub-token-plaintext-123", "status": "ACTIVE"});
    let plan = json!({"id": "plan-1", "handle": "gold", "planName": "Gold"});
    for _ in 0..2 {
        fake.push(&fake.subscription_event("subscription.created", &sub));
        fake.push(&fake.plan_event("subscriptionPlan.created", &plan));
    }
    fake.push(&fake.envelope(
        "application.updated",
        json!({"applicationId": "app", "applicationUuid": "app-1", "applicationName": "App",
               "applicationType": "web", "mappings": [{"apiKeyUuid": "k"}]}),
        Some("admin"),
    ));
    let stored = |s: &Stack| {
        let s = s.admin("/control_plane");
        async move { send(s).await.1["stored"].clone() }
    };
    eventually(|| async { stored(&s).await["applications"] == 1 }).await;
    let got = stored(&s).await;
    assert_eq!(
        (got["subscriptions"].as_u64(), got["subscriptionPlans"].as_u64()),
        (Some(1), Some(1)),
        "{got}"
    );
    fake.push(&fake.subscription_event("subscription.deleted", &sub));
    eventually(|| async { stored(&s).await["subscriptions"] == 0 }).await;

    // api.deleted removes a control-plane API entirely.
    fake.push(&fake.deleted_event(id));
    eventually(|| async { send(s.mgmt(Method::GET, "/rest-apis/weather")).await.0 == StatusCode::NOT_FOUND }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_keys_open_their_api_through_envoy_until_revoked() {
    crate::stack::capture_logs();
    let echo = Echo::start("backend").await;
    let fake = FakePlatform::start(TOKEN).await;
    let s = Stack::with(|c| link_to(&fake, c)).await;
    wait_synced(&fake, 1).await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let (orders, billing) = (
        "11111111-aaaa-4bbb-8ccc-000000000001",
        "11111111-aaaa-4bbb-8ccc-000000000002",
    );
    for (id, name) in [(orders, "orders"), (billing, "billing")] {
        let d = fake.deploy(id, &artifact(name, &url, KEY_AUTH));
        fake.push(&fake.deployed_event(&d));
    }
    fake.wait_acks(2, WAIT).await;
    s.wait_status("/orders/x", None, 401).await;

    let key = "cp-generated-key-0123456789abcdef0123456789abcdef";
    let key_uuid = "0195aaaa-bbbb-7ccc-8ddd-eeeeffff0001";
    fake.put_key(json!({"uuid": key_uuid, "name": "my-key", "artifactUuid": orders, "apiKey": key}));
    fake.push(&fake.key_created_event(orders, key_uuid, "my-key", key, None));
    eventually(|| async { call_with_key(&s, "/orders/x", Some(key)).await.0 == 200 }).await;
    let (st, text) = call_with_key(&s, "/orders/x", None).await;
    assert_eq!((st, text.as_str()), (401, DENY));
    let (st, text) = call_with_key(&s, "/billing/x", Some(key)).await;
    assert_eq!((st, text.as_str()), (401, DENY), "another API's key is refused");

    // Listed as a control-plane key, masked.
    let (st, body) = send(s.mgmt(Method::GET, "/rest-apis/orders/api-keys")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let listed = body.to_string();
    assert!(
        listed.contains("\"origin\":\"control_plane\"") && listed.contains("***bcdef"),
        "{listed}"
    );
    assert!(!listed.contains(key));

    // An expired key is refused; an update rotates the value.
    let expired = "cp-expired-key-0123456789abcdef0123456789abcdef";
    fake.push(&fake.key_created_event(
        orders,
        "0195aaaa-bbbb-7ccc-8ddd-eeeeffff0002",
        "old-key",
        expired,
        Some("2020-01-01T00:00:00Z"),
    ));
    let rotated = "cp-rotated-key-0123456789abcdef0123456789abcdef";
    fake.push(&fake.key_updated_event(orders, "my-key", rotated, None));
    eventually(|| async { call_with_key(&s, "/orders/x", Some(rotated)).await.0 == 200 }).await;
    assert_eq!(
        call_with_key(&s, "/orders/x", Some(key)).await.0,
        401,
        "the old value stops"
    );
    assert_eq!(call_with_key(&s, "/orders/x", Some(expired)).await.0, 401, "expired");

    // Revoked: the next request is refused, and a replayed creation does not bring it back.
    fake.push(&fake.key_revoked_event(orders, "my-key"));
    eventually(|| async { call_with_key(&s, "/orders/x", Some(rotated)).await.0 == 401 }).await;
    let before = link_state(&s).await["events"]["received"].as_u64().unwrap();
    fake.push(&fake.key_created_event(orders, key_uuid, "my-key", key, None));
    fake.push(&fake.envelope("test.barrier", json!({}), None));
    eventually(|| async { link_state(&s).await["events"]["received"].as_u64().unwrap() >= before + 2 }).await;
    assert_eq!(call_with_key(&s, "/orders/x", Some(key)).await.0, 401);

    let logs = crate::stack::logs();
    for secret in [key, rotated, expired, TOKEN] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_duplicated_events_change_nothing_twice() {
    let echo = Echo::start("backend").await;
    let fake = FakePlatform::start(TOKEN).await;
    let s = Stack::with(|c| link_to(&fake, c)).await;
    wait_synced(&fake, 1).await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let id = "22222222-aaaa-4bbb-8ccc-000000000001";
    let d = fake.deploy(id, &artifact("orders", &url, KEY_AUTH));
    fake.push(&fake.deployed_event(&d));
    let key = "cp-replayed-key-0123456789abcdef0123456789abcdef";
    let key_uuid = "0195aaaa-bbbb-7ccc-8ddd-eeeeffff0101";
    fake.put_key(json!({"uuid": key_uuid, "name": "k1", "artifactUuid": id, "apiKey": key}));
    fake.push(&fake.key_created_event(id, key_uuid, "k1", key, None));
    fake.wait_acks(1, WAIT).await;
    eventually(|| async { call_with_key(&s, "/orders/x", Some(key)).await.0 == 200 }).await;
    let generation = |body: Value| body["xds"]["generation"].as_u64().unwrap();
    let gen_before = generation(send(s.admin("/config_dump")).await.1);
    let fetches = |fake: &FakePlatform| {
        fake.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == format!("/api/internal/v1/apis/{id}"))
            .count()
    };
    assert_eq!(fetches(&fake), 1);

    // The connection drops; the platform API replays its history twice on the new one.
    fake.close_all();
    fake.wait_connections(2, WAIT).await;
    wait_synced(&fake, 2).await;
    assert_eq!(fake.replay(), 1);
    assert_eq!(fake.replay(), 1);
    let acks = fake.wait_acks(3, WAIT).await;
    for a in &acks {
        let p = ack_payload(a);
        assert_eq!(
            p["status"], "success",
            "duplicates are acked as done, never failed: {p}"
        );
        assert_eq!(p["performedAt"], d.performed_at.as_str());
        assert_eq!(p["deploymentId"], d.deployment_id.as_str());
    }
    eventually(|| async { link_state(&s).await["events"]["duplicate"].as_u64().unwrap_or(0) >= 4 }).await;
    assert_eq!(fetches(&fake), 1, "a duplicate deploy is not fetched again");
    let gen_after = generation(send(s.admin("/config_dump")).await.1);
    assert_eq!(gen_before, gen_after, "nothing was republished");
    assert_eq!(call_with_key(&s, "/orders/x", Some(key)).await.0, 200);
    let state = link_state(&s).await;
    assert_eq!(state["events"]["applied"], 2, "{state}");
    assert_eq!(state["connections"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_missed_while_disconnected_are_applied_by_the_reconnect_sync() {
    let echo = Echo::start("backend").await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let fake = FakePlatform::start(TOKEN).await;
    let (kept, gone, later) = (
        "33333333-aaaa-4bbb-8ccc-000000000001",
        "33333333-aaaa-4bbb-8ccc-000000000002",
        "33333333-aaaa-4bbb-8ccc-000000000003",
    );
    let s = Stack::with(|c| link_to(&fake, c)).await;
    wait_synced(&fake, 1).await;
    for (id, name) in [(kept, "kept"), (gone, "gone")] {
        let d = fake.deploy(id, &artifact(name, &url, ""));
        fake.push(&fake.deployed_event(&d));
    }
    fake.wait_acks(2, WAIT).await;
    s.wait_status("/gone/x", None, 200).await;

    // Disconnected (refused with 429, which is retried); meanwhile the platform API changes.
    fake.set_refusal(Refusal::TooManyRequests);
    fake.kill_all();
    eventually(|| async { link_state(&s).await["state"] == "waiting" }).await;
    fake.deploy(later, &artifact("later", &url, ""));
    fake.delete_api(gone);
    let redeployed = fake.deploy(
        kept,
        &artifact("kept", &url, "").replace("version: v1.0", "version: v1.1"),
    );
    assert_eq!(fake.manifests().len(), 1);

    fake.set_refusal(Refusal::None);
    wait_synced(&fake, 2).await;
    s.wait_status("/later/x", None, 200).await;
    s.wait_status("/gone/x", None, 404).await;
    let (_, body) = send(s.mgmt(Method::GET, "/rest-apis/kept")).await;
    assert_eq!(
        body["spec"]["version"], "v1.1",
        "the newer deployment was fetched: {body}"
    );
    assert_eq!(fake.acks().len(), 2, "sync sends no acks");
    let batch = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/deployments/fetch-batch"))
        .expect("a batch fetch");
    assert_eq!(batch.accept.as_deref(), Some("application/x-tar+gzip"));
    assert!(batch.body.contains(&redeployed.deployment_id), "{}", batch.body);
    let state = link_state(&s).await;
    assert_eq!(state["lastSync"]["deployed"], 2, "{state}");
    assert_eq!(state["lastSync"]["removed"], 1, "{state}");
}

/// Forces a reconnect and waits for the sync after it; returns the sync report.
async fn resync(s: &Stack, fake: &FakePlatform) -> Value {
    let manifests = fake.manifests().len();
    fake.kill_all();
    wait_synced(fake, manifests + 1).await;
    eventually(|| async { link_state(s).await["state"] == "connected" }).await;
    link_state(s).await["lastSync"].clone()
}

/// Statuses through Envoy for each key, in order.
async fn key_statuses(s: &Stack, keys: &[String]) -> Vec<u16> {
    let mut out = Vec::new();
    for k in keys {
        out.push(call_with_key(s, "/orders/x", Some(k)).await.0);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_listings_are_followed_across_pages_and_partial_ones_revoke_nothing() {
    let echo = Echo::start("backend").await;
    let fake = FakePlatform::start(TOKEN).await;
    let s = Stack::with(|c| link_to(&fake, c)).await;
    wait_synced(&fake, 1).await;
    let orders = "55555555-aaaa-4bbb-8ccc-000000000001";
    let d = fake.deploy(
        orders,
        &artifact("orders", &format!("http://127.0.0.1:{}", echo.port), KEY_AUTH),
    );
    fake.push(&fake.deployed_event(&d));
    fake.wait_acks(1, WAIT).await;
    s.wait_status("/orders/x", None, 401).await;
    let keys: Vec<String> = (0..6)
        .map(|i| format!("cp-listed-key-{i}-0123456789abcdef0123456789abcdef"))
        .collect();
    let uuid = |i: usize| format!("0195bbbb-bbbb-7ccc-8ddd-eeeeffff000{i}");
    for (i, k) in keys.iter().enumerate() {
        fake.put_key(json!({"uuid": uuid(i), "name": format!("k{i}"), "artifactUuid": orders, "apiKey": k}));
    }

    // Paginated: every page is read, so every key is stored.
    fake.set_key_listing(KeyListing::Paged(2));
    let sync = resync(&s, &fake).await;
    assert_eq!(sync["keys"], 6, "{sync}");
    assert_eq!(key_statuses(&s, &keys).await, [200; 6]);
    let pages = fake
        .requests()
        .iter()
        .filter(|r| r.path.contains("/apis/api-keys?offset="))
        .count();
    assert_eq!(pages, 2, "pages after the first one");

    // Truncated to one key: removing five of six is implausible, nothing is removed.
    fake.set_key_listing(KeyListing::Truncated(1));
    let sync = resync(&s, &fake).await;
    assert_eq!(
        (sync["keysRemoved"].as_u64(), sync["keysRemovalRefused"].as_u64()),
        (Some(0), Some(5)),
        "{sync}"
    );
    assert_eq!(key_statuses(&s, &keys).await, [200; 6]);

    // A key the listing no longer holds is removed, but not for good: it may come back.
    fake.set_key_listing(KeyListing::Whole);
    fake.remove_key(&uuid(5));
    let sync = resync(&s, &fake).await;
    assert_eq!(sync["keysRemoved"], 1, "{sync}");
    assert_eq!(key_statuses(&s, &keys).await, [200, 200, 200, 200, 200, 401]);
    fake.put_key(json!({"uuid": uuid(5), "name": "k5", "artifactUuid": orders, "apiKey": keys[5]}));
    resync(&s, &fake).await;
    assert_eq!(
        key_statuses(&s, &keys).await,
        [200; 6],
        "an unlisted key is not tombstoned"
    );

    // A key listed as revoked is revoked for good.
    fake.put_key(
        json!({"uuid": uuid(4), "name": "k4", "artifactUuid": orders, "apiKey": keys[4], "status": "revoked"}),
    );
    resync(&s, &fake).await;
    assert_eq!(key_statuses(&s, &keys).await, [200, 200, 200, 200, 401, 200]);
    fake.put_key(json!({"uuid": uuid(4), "name": "k4", "artifactUuid": orders, "apiKey": keys[4], "status": "active"}));
    resync(&s, &fake).await;
    assert_eq!(key_statuses(&s, &keys).await[4], 401, "an explicit revocation is final");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_api_that_is_down_at_start_changes_nothing_served() {
    let echo = Echo::start("backend").await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let fake = FakePlatform::start(TOKEN).await;
    let mut s = Stack::with(|c| link_to(&fake, c)).await;
    wait_synced(&fake, 1).await;
    let id = "44444444-aaaa-4bbb-8ccc-000000000001";
    let d = fake.deploy(id, &artifact("orders", &url, ""));
    fake.push(&fake.deployed_event(&d));
    fake.wait_acks(1, WAIT).await;
    s.wait_status("/orders/x", None, 200).await;

    // Platform down, controller restarted: everything is served from the database.
    fake.stop().await;
    s.restart_controller().await;
    s.wait_status("/orders/x", None, 200).await;
    eventually(|| async {
        let st = link_state(&s).await;
        st["state"] == "waiting" && st["lastError"].as_str().is_some_and(|e| !e.is_empty())
    })
    .await;
    assert_eq!(s.call(Method::GET, "/orders/x", None).await.0, StatusCode::OK);

    // Back: it connects, syncs (nothing to change) and pushes its manifest.
    let manifests = fake.manifests().len();
    fake.restart().await;
    wait_synced(&fake, manifests + 1).await;
    let state = link_state(&s).await;
    assert_eq!(state["state"], "connected", "{state}");
    assert_eq!(state["lastSync"]["unchanged"], 1, "{state}");
    assert_eq!(s.call(Method::GET, "/orders/x", None).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_pings_and_dead_links() {
    let fake = FakePlatform::start(TOKEN).await;
    // Pings answered: a fast heartbeat keeps one connection alive.
    fake.set_heartbeat(Some(Duration::from_millis(200)), Duration::from_secs(2));
    let s = Stack::with(|c| {
        link_to(&fake, c);
        c.control_plane.ping_timeout = Duration::from_secs(1);
    })
    .await;
    wait_synced(&fake, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(fake.pongs() >= 3, "pongs: {}", fake.pongs());
    assert_eq!(fake.total_connections(), 1, "answered pings keep the link");

    // No pings: after ping_timeout the link is treated as dead and reconnected.
    fake.set_heartbeat(None, Duration::from_secs(60));
    fake.kill_all();
    fake.wait_connections(3, WAIT).await;
    let state = link_state(&s).await;
    assert!(
        state["lastError"].as_str().unwrap().contains("no ping for 1 s"),
        "{state}"
    );

    // A capacity refusal (error frame instead of connection.ack) is retried.
    fake.set_heartbeat(Some(Duration::from_millis(200)), Duration::from_secs(2));
    fake.set_refusal(Refusal::Capacity);
    fake.kill_all();
    eventually(|| async {
        link_state(&s).await["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("maximum connection limit"))
    })
    .await;
    let before = fake.total_connections();

    // An upgrade that is never acknowledged is abandoned after 5 s and retried.
    fake.set_refusal(Refusal::Silent);
    fake.kill_all();
    eventually(|| async {
        link_state(&s).await["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("no connection.ack within 5 s"))
    })
    .await;

    fake.set_refusal(Refusal::None);
    fake.wait_connections(before + 1, WAIT).await;

    // 401 is permanent: the link stops, says why, and the controller keeps serving.
    fake.set_refusal(Refusal::Unauthorized);
    fake.kill_all();
    eventually(|| async { link_state(&s).await["state"] == "stopped" }).await;
    let state = link_state(&s).await;
    assert!(state["stoppedReason"].as_str().unwrap().contains("401"), "{state}");
    let attempts = fake
        .requests()
        .iter()
        .filter(|r| r.path.contains("/ws/gateways/connect"))
        .count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = fake
        .requests()
        .iter()
        .filter(|r| r.path.contains("/ws/gateways/connect"))
        .count();
    assert_eq!(attempts, later, "no reconnect after 401");
    assert_eq!(send(s.admin("/health")).await.0, StatusCode::OK);
    s.wait_status("/_gateway-health/ready", None, 200).await;
}
