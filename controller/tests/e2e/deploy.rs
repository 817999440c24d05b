//! Reference §8.1 (api_deploy) and the write path: persistence, restart, convergence.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tollgate_testkit::{Echo, wait_for};

use crate::api_yaml;
use crate::stack::{LIMIT, Stack, send};

const WEATHER_OPS: &str = "    - {method: GET, path: \"/{country_code}/{city}\"}\n    - {method: GET, path: /alerts/active}\n    - {method: POST, path: /alerts/active}\n";

fn weather(echo: &Echo) -> String {
    api_yaml(
        "weather-api-v1.0",
        "/weather/$version",
        &format!("http://127.0.0.1:{}/api/v2", echo.port),
        WEATHER_OPS,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_serve_and_delete_an_api() {
    let echo = Echo::start("sample").await;
    let s = Stack::start().await;
    let (status, body) = s.deploy(&weather(&echo)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["id"], "weather-api-v1.0");
    assert_eq!(body["status"]["state"], "deployed");
    assert!(body["status"]["generation"].as_u64().unwrap() > 0);
    s.wait_status("/weather/v1.0/us/seattle", None, 200).await;
    let (status, body) = s.call(Method::GET, "/weather/v1.0/us/seattle", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["path"], "/api/v2/us/seattle");
    // Only the declared method.
    let (status, body) = s.call(Method::DELETE, "/weather/v1.0/alerts/active", None).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (404, Some("Not Found")));
    let (status, body) = send(s.mgmt(Method::DELETE, "/rest-apis/weather-api-v1.0")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "success");
    s.wait_status("/weather/v1.0/us/seattle", None, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_are_stored_and_bad_labels_or_urls_are_refused() {
    let echo = Echo::start("sample").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let labelled = api_yaml("labelled", "/labelled", &url, "    - {method: GET, path: /x}\n").replace(
        "  name: labelled\n",
        "  name: labelled\n  labels:\n    environment: production\n    team: backend\n",
    );
    assert_eq!(s.deploy(&labelled).await.0, StatusCode::CREATED);
    let (_, body) = send(s.mgmt(Method::GET, "/rest-apis/labelled")).await;
    assert_eq!(body["metadata"]["labels"]["environment"], "production");

    let spaced = labelled
        .replace("name: labelled", "name: spaced")
        .replace("context: /labelled", "context: /spaced")
        .replace("displayName: labelled", "displayName: spaced")
        .replace("    team: backend\n", "    My Label: x\n");
    let (status, body) = s.deploy(&spaced).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Configuration validation failed");
    assert_eq!(body["status"], "error");

    for (suffix, wants) in [
        ("?region=eu", vec!["must not include a query string"]),
        ("?", vec!["must not include a query string"]),
        ("#section", vec!["must not include a fragment"]),
        (
            "?a=1#top",
            vec!["must not include a query string", "must not include a fragment"],
        ),
    ] {
        let doc = format!(
            "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata: {{name: defs}}\nspec:\n  displayName: defs\n  version: v1.0\n  context: /defs\n  upstreamDefinitions:\n    - name: primary\n      upstreams:\n        - url: \"{url}{suffix}\"\n  upstream:\n    main: {{ref: primary}}\n  operations:\n    - {{method: GET, path: /x}}\n"
        );
        let (status, body) = s.deploy(&doc).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{suffix}");
        let text = body.to_string();
        for w in wants {
            assert!(text.contains(w), "{suffix}: {text}");
        }
    }
    // Nothing invalid was stored.
    let (_, list) = send(s.mgmt(Method::GET, "/rest-apis")).await;
    assert_eq!(list["count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apis_survive_a_restart_with_the_same_resource_versions() {
    let echo = Echo::start("sample").await;
    let mut s = Stack::start().await;
    assert_eq!(s.deploy(&weather(&echo)).await.0, StatusCode::CREATED);
    s.wait_status("/weather/v1.0/us/seattle", None, 200).await;
    let before = route_version(&s).await;
    s.restart_controller().await;
    // Envoy reconnects to the restarted controller; it restored the API from SQLite.
    wait_for("Envoy to reconnect", LIMIT, || async {
        let (_, st) = send(s.admin("/xds_sync_status")).await;
        st["nodes"].as_array().is_some_and(|n| !n.is_empty())
    })
    .await;
    let (_, list) = send(s.mgmt(Method::GET, "/rest-apis")).await;
    assert_eq!(list["count"], 1);
    assert_eq!(s.call(Method::GET, "/weather/v1.0/us/seattle", None).await.0, 200);
    assert_eq!(
        route_version(&s).await,
        before,
        "same content, same version after restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_reports_its_generation_and_sync_status_shows_when_envoy_has_it() {
    let echo = Echo::start("sample").await;
    let s = Stack::start().await;
    let (_, body) = s.deploy(&weather(&echo)).await;
    let generation = body["status"]["generation"].as_u64().unwrap();
    wait_for("Envoy to ACK the generation", LIMIT, || async {
        let (_, st) = send(s.admin("/xds_sync_status")).await;
        st["nodes"][0]["types"]["rds"]["ackedGeneration"].as_u64().unwrap_or(0) >= generation
    })
    .await;
    // Once ACKed, the route serves.
    assert_eq!(s.call(Method::GET, "/weather/v1.0/us/seattle", None).await.0, 200);
    let (_, st) = send(s.admin("/xds_sync_status")).await;
    assert_eq!(st["nodes"][0]["nodeId"], "router");
    assert!(st["nodes"][0]["types"]["rds"]["lastNack"].is_null());
}

/// The version of the route configuration Envoy holds.
async fn route_version(s: &Stack) -> String {
    let dump = s.envoy.config_dump().await;
    let configs = dump["configs"].as_array().cloned().unwrap_or_default();
    configs
        .iter()
        .flat_map(|c| c["dynamic_route_configs"].as_array().cloned().unwrap_or_default())
        .map(|r: Value| r["version_info"].as_str().unwrap_or_default().to_string())
        .next()
        .expect("a dynamic route config")
}
