//! Reference §8.12 (config dump) and §8.13 (health), plus the gateway's own health routes.

use reqwest::{Method, StatusCode};
use tollgate_testkit::Echo;

use crate::api_yaml;
use crate::stack::{Stack, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_dump_tracks_apis_and_shows_no_secrets() {
    let b1 = Echo::start("backend1").await;
    let s = Stack::start().await;
    let (status, dump) = send(s.admin("/config_dump")).await;
    assert_eq!(status, 200);
    for field in ["timestamp", "apis", "policies", "certificates", "statistics"] {
        assert!(!dump[field].is_null(), "{field} missing: {dump}");
    }
    assert_eq!(dump["statistics"]["totalApis"], 0);
    assert!(dump["statistics"]["totalPolicies"].as_u64().unwrap() >= 1);
    let doc = api_yaml(
        "config-dump-test-api",
        "/config-test",
        &format!("http://127.0.0.1:{}", b1.port),
        "    - {method: GET, path: /x}\n",
    );
    assert_eq!(s.deploy(&doc).await.0, StatusCode::CREATED);
    let (_, dump) = send(s.admin("/config_dump")).await;
    let text = dump.to_string();
    assert!(
        text.contains("config-dump-test-api") && text.contains("/config-test"),
        "{text}"
    );
    assert_eq!(dump["statistics"]["totalApis"], 1);
    assert!(!text.contains("\"admin\""), "no credentials in the dump");
    send(s.mgmt(Method::DELETE, "/rest-apis/config-dump-test-api")).await;
    let (_, dump) = send(s.admin("/config_dump")).await;
    assert!(!dump.to_string().contains("config-dump-test-api"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints() {
    let s = Stack::start().await;
    let url = format!("http://{}/api/admin/v1/health", s.running().admin);
    let r = s.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert!(
        s.envoy.admin_get("/ready").await.is_some(),
        "Envoy admin /ready answers 200"
    );
    let (st, body) = s.call(Method::GET, "/_gateway-health/healthy", None).await;
    assert_eq!((st.as_u16(), body["status"].as_str()), (200, Some("healthy")));
    let r = s.gw(Method::GET, "/nothing-here", None).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), "{\"error\":\"Not Found\"}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_open_and_says_when_the_platform_link_is_not_connected() {
    let s = Stack::start().await;
    let url = format!("http://{}/api/admin/v1/ready", s.running().admin);
    let (code, body) = send(s.http.get(&url)).await;
    assert_eq!(code, StatusCode::OK, "no credentials needed: {body}");
    assert_eq!(body["status"], "ready");
    // What the container health checks run.
    assert!(tollgate::cli::probe::probe(&url).await.is_ok());

    // A control plane that never answers: the link is not connected, so not ready.
    let dead = tollgate_testkit::free_port();
    let s = Stack::with(|c| {
        c.control_plane.host = format!("127.0.0.1:{dead}");
        c.control_plane.token = "t0ken-for-a-platform-that-is-not-there".to_string().into();
        c.control_plane.insecure_skip_verify = true;
    })
    .await;
    let url = format!("http://{}/api/admin/v1/ready", s.running().admin);
    let (code, body) = send(s.http.get(&url)).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["reasons"].to_string().contains("platform link"), "{body}");
    let err = tollgate::cli::probe::probe(&url).await.unwrap_err().to_string();
    assert!(err.starts_with("503"), "{err}");
}
