//! Prometheus metrics end to end: with real traffic through Envoy, `/metrics` (behind the basic
//! auth configured here) shows the families moving (xDS pushes and clients, management API
//! requests by route template, APIs by state, keys, SQLite writes), and no key value, key name or
//! API name appears anywhere in the scrape.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tollgate_testkit::Echo;

use crate::api_yaml;
use crate::keys::{call, create_key, protected};
use crate::stack::{Stack, eventually};

async fn scrape(s: &Stack, credentials: Option<(&str, &str)>) -> (StatusCode, String) {
    let mut r = s.http.get(format!("http://{}/metrics", s.running().metrics));
    if let Some((u, p)) = credentials {
        r = r.basic_auth(u, Some(p));
    }
    let resp = r.send().await.expect("scrape");
    (resp.status(), resp.text().await.unwrap_or_default())
}

/// The value of the sample whose name and labels are exactly `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(name, _)| *name == series)
        .and_then(|(_, v)| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_real_traffic_and_hold_no_secret() {
    let echo = Echo::start("backend").await;
    let s = Stack::with(|c| {
        c.server.metrics_username = "prom".into();
        c.server.metrics_password = "scrape-pw".into();
    })
    .await;
    let creds = Some(("prom", "scrape-pw"));
    assert_eq!(scrape(&s, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(scrape(&s, Some(("prom", "nope"))).await.0, StatusCode::UNAUTHORIZED);
    let (status, before) = scrape(&s, creds).await;
    assert_eq!(status, StatusCode::OK);
    let pushes = |t: &str| value(t, "tollgate_xds_pushes_total{type=\"rds\"}").unwrap_or(0.0);

    let url = format!("http://127.0.0.1:{}", echo.port);
    let open = api_yaml("meter-open-api", "/meter-open", &url, "    - {method: GET, path: /*}\n");
    assert_eq!(s.deploy(&open).await.0, StatusCode::CREATED);
    assert_eq!(
        s.deploy(&protected("meter-locked-api", &url, true)).await.0,
        StatusCode::CREATED
    );
    let (st, body) = create_key(&s, "meter-locked-api", json!({"name": "meter-key-name"})).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let key = body["apiKey"]["apiKey"].as_str().unwrap().to_string();
    s.wait_status("/meter-open/x", None, 200).await;
    assert_eq!(call(&s, "/meter-locked-api/x", None).await.0, 401);
    assert_eq!(call(&s, "/meter-locked-api/x", Some(&key)).await.0, 200);
    let missing = s
        .mgmt(Method::GET, "/rest-apis/meter-missing-api")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Both APIs are deployed once every Envoy ACKed them; wait for the gauge rather than race it.
    eventually(|| async { value(&scrape(&s, creds).await.1, "tollgate_apis{state=\"deployed\"}") == Some(2.0) }).await;
    let (_, text) = scrape(&s, creds).await;
    assert!(pushes(&text) > pushes(&before), "route pushes counted:\n{text}");
    assert!(value(&text, "tollgate_xds_push_bytes_total{type=\"rds\"}").is_some_and(|b| b > 0.0));
    assert_eq!(
        value(&text, "tollgate_xds_clients{group=\"default\",flavour=\"delta\"}"),
        Some(1.0)
    );
    assert!(
        value(&text, "tollgate_xds_convergence_seconds_count").is_some_and(|n| n >= 1.0),
        "the deploys' convergence timed:\n{text}"
    );
    assert_eq!(value(&text, "tollgate_xds_nacks_total{type=\"rds\"}"), Some(0.0));
    let created = "tollgate_http_requests_total{server=\"management\",route=\"/api/management/v1/rest-apis\",method=\"POST\",status=\"201\"}";
    assert_eq!(value(&text, created), Some(2.0), "{text}");
    let not_found = "tollgate_http_requests_total{server=\"management\",route=\"/api/management/v1/rest-apis/{handle}\",method=\"GET\",status=\"404\"}";
    assert_eq!(value(&text, not_found), Some(1.0), "{text}");
    assert_eq!(value(&text, "tollgate_apis{state=\"failed\"}"), Some(0.0));
    assert_eq!(value(&text, "tollgate_keys"), Some(1.0));
    assert!(value(&text, "tollgate_db_write_duration_seconds_count").is_some_and(|n| n >= 3.0));
    assert_eq!(
        value(&text, "tollgate_platform_link_state{state=\"disabled\"}"),
        Some(1.0)
    );
    assert!(value(&text, "process_resident_memory_bytes").is_some_and(|b| b > 0.0));
    // The key-protected calls above: at least one allowed and one 401 (readiness polls add more).
    for result in ["allowed", "denied_401"] {
        let n = value(&text, &format!("tollgate_authz_checks_total{{result=\"{result}\"}}"));
        assert!(n.is_some_and(|n| n >= 1.0), "ext_authz {result} counted: {n:?}\n{text}");
    }

    for secret in [
        key.as_str(),
        &key[..12],
        "meter-key-name",
        "meter-missing-api",
        "meter-open-api",
        "scrape-pw",
    ] {
        assert!(!text.contains(secret), "{secret} appears in the scrape");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_link_events_and_syncs_are_counted_by_closed_labels() {
    use crate::platform::{TOKEN, WAIT, artifact, link_to};
    use tollgate_testkit::platform::FakePlatform;

    let echo = Echo::start("backend").await;
    let fake = FakePlatform::start(TOKEN).await;
    let s = Stack::with(|c| link_to(&fake, c)).await;
    eventually(|| async { !fake.manifests().is_empty() }).await;
    let id = "44444444-aaaa-4bbb-8ccc-000000000001";
    let d = fake.deploy(
        id,
        &artifact("meter-cp-api", &format!("http://127.0.0.1:{}", echo.port), ""),
    );
    fake.push(&fake.deployed_event(&d));
    fake.wait_acks(1, WAIT).await;
    fake.push(&json!({"type": "made.up-event-7f3a", "payload": {}}));

    let other = "tollgate_platform_events_total{type=\"other\",outcome=\"ignored\"}";
    eventually(|| async { value(&scrape(&s, None).await.1, other) == Some(1.0) }).await;
    let (_, text) = scrape(&s, None).await;
    let applied = "tollgate_platform_events_total{type=\"api.deployed\",outcome=\"applied\"}";
    assert_eq!(value(&text, applied), Some(1.0), "{text}");
    assert_eq!(
        value(&text, "tollgate_platform_link_state{state=\"connected\"}"),
        Some(1.0)
    );
    assert!(value(&text, "tollgate_platform_sync_duration_seconds_count").is_some_and(|n| n >= 1.0));
    for raw in ["made.up-event-7f3a", id, "meter-cp-api", TOKEN] {
        assert!(!text.contains(raw), "{raw} appears in the scrape");
    }
}
