//! Issue #19: Envoy's access log, with the real Envoy. Each request is one JSON line naming the
//! method, the path without its query, the status, the API and, once ext_authz has let it in, the
//! key's name; the key itself appears nowhere, neither from its header nor from the query.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_testkit::{Echo, envoy::poll_until};

use crate::keys::{create_key, protected};
use crate::stack::{LIMIT, Stack};

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_lines_name_the_key_but_never_hold_it() {
    let echo = Echo::start("backend").await;
    let dir = tollgate_testkit::envoy::TempDir(
        std::env::temp_dir().join(format!("tollgate-e2e-access-log-{}", std::process::id())),
    );
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("access.json");
    let file_text = file.display().to_string();
    let s = Stack::with(|c| c.router.access_log = file_text).await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(s.deploy(&protected("orders", &url, true)).await.0, StatusCode::CREATED);
    s.wait_status("/orders/x", None, 401).await;
    let (status, body) = create_key(&s, "orders", json!({"name": "log-key-1"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["apiKey"]["apiKey"].as_str().unwrap().to_string();

    let allowed = s
        .gw(Method::GET, &format!("/orders/allowed?token={key}&q=1"), None)
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    let wrong = format!("apip_{}", "f".repeat(64));
    let refused = s
        .gw(Method::GET, "/orders/refused?q=2", None)
        .header("x-api-key", &wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let seen = |path: &'static str| {
        let file = file.clone();
        move || {
            let file = file.clone();
            async move { lines(&file).iter().any(|l| l["path"] == path) }
        }
    };
    assert!(
        poll_until(LIMIT, seen("/orders/allowed")).await,
        "no line for the allowed request"
    );
    assert!(
        poll_until(LIMIT, seen("/orders/refused")).await,
        "no line for the refused request"
    );
    let log = std::fs::read_to_string(&file).unwrap();
    assert!(
        !log.contains(&key) && !log.contains(&key[5..]),
        "the key is logged:\n{log}"
    );
    assert!(!log.contains(&wrong), "the refused key is logged:\n{log}");
    assert!(
        !log.contains("q=1") && !log.contains("token="),
        "the query is logged:\n{log}"
    );

    let all = lines(&file);
    let ok = all.iter().find(|l| l["path"] == "/orders/allowed").unwrap();
    assert_eq!(ok["method"], "GET", "{ok}");
    assert_eq!(ok["status"], 200, "{ok}");
    assert_eq!(ok["api"], "orders", "{ok}");
    assert_eq!(ok["key_name"], "log-key-1", "{ok}");
    assert!(ok["upstream_cluster"].as_str().is_some_and(|c| !c.is_empty()), "{ok}");
    assert!(
        ok["upstream_host"]
            .as_str()
            .is_some_and(|h| h.contains(&echo.port.to_string())),
        "{ok}"
    );
    assert!(ok["duration_ms"].is_number(), "{ok}");
    let no = all.iter().find(|l| l["path"] == "/orders/refused").unwrap();
    assert_eq!(no["status"], 401, "{no}");
    assert_eq!(no["api"], "orders", "{no}");
    assert!(no["key_name"].is_null(), "no key name on a refusal: {no}");
}
