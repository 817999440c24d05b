//! `basic-ratelimit` and `advanced-ratelimit` through the real Envoy (the policy-catalogue issue):
//! 429 at exactly the configured count with `Retry-After`, the rate-limit headers and WSO2's body;
//! an API-level limit shared by the API's operations, an operation-level one by that operation
//! alone; the most restrictive of several limits; separate counters per header key; and the
//! refusal of bad parameters with their field paths. Windows are long (a year), so the test never
//! straddles a reset.

use reqwest::StatusCode;
use serde_json::Value;
use tollgate_testkit::Echo;

use crate::api_yaml;
use crate::stack::Stack;

/// WSO2's 429 body.
const BODY: &str = "{\"error\": \"Too Many Requests\", \"message\": \"Rate limit exceeded. Please try again later.\"}";

fn with_api_policies(name: &str, url: &str, policies: &str, operations: &str) -> String {
    api_yaml(name, &format!("/{name}"), url, operations)
        .replace("  operations:", &format!("  policies:\n{policies}  operations:"))
}

/// GET through Envoy with `headers` on a new connection (one opened before the listener learnt
/// of `x-user` would keep its old filter configuration, which does not send it): status,
/// response headers, body.
async fn get(s: &Stack, path: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut r = client.get(format!("http://127.0.0.1:{}{path}", s.port));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    let (status, h) = (resp.status().as_u16(), resp.headers().clone());
    (status, h, resp.text().await.unwrap_or_default())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn statuses(s: &Stack, path: &str, headers: &[(&str, &str)], n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(get(s, path, headers).await.0);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_refuse_at_the_configured_count() {
    let echo = Echo::start("backend").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let two_ops = "    - {method: GET, path: /a}\n    - {method: GET, path: /b}\n";

    // Bad parameters are refused with their paths.
    let bad = with_api_policies(
        "rl-bad",
        &url,
        "    - {name: basic-ratelimit, version: v1, params: {limits: [{requests: 1, duration: 1s}, {requests: 1, duration: 1d}]}}\n",
        two_ops,
    );
    let (st, b) = s.deploy(&bad).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    let fields: Vec<&str> = b["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["spec.policies[0].params.limits[1].duration"], "{b}");

    // Every API is deployed before the first call, so every connection sees the final listener
    // (the header `x-user` joins the headers ext_authz is sent).
    let api_level = with_api_policies(
        "rl-api",
        &url,
        "    - {name: basic-ratelimit, version: v1, params: {limits: [{requests: 3, duration: 8760h}]}}\n",
        two_ops,
    );
    let op_level = api_yaml(
        "rl-op",
        "/rl-op",
        &url,
        "    - method: GET\n      path: /a\n      policies:\n        - {name: basic-ratelimit, version: v1, params: {limits: [{requests: 5, duration: 8760h}, {requests: 2, duration: 4380h}]}}\n    - {method: GET, path: /b}\n",
    );
    let advanced = with_api_policies(
        "rl-adv",
        &url,
        "    - {name: advanced-ratelimit, version: v1, params: {quotas: [{name: per-user, limits: [{limit: 2, duration: 8760h}], keyExtraction: [{type: header, key: X-User}]}]}}\n",
        "    - {method: GET, path: /*}\n",
    );
    for doc in [&api_level, &op_level, &advanced] {
        let (st, b) = s.deploy(doc).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
    }

    // API level: one count for all the API's operations, 429 at the fourth request.
    let mut remaining = Vec::new();
    for path in ["/rl-api/a", "/rl-api/b", "/rl-api/a"] {
        let (st, h, _) = get(&s, path, &[]).await;
        assert_eq!(st, 200, "{path}");
        remaining.push(header(&h, "x-ratelimit-remaining").to_string());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let (st, h, body) = get(&s, "/rl-api/b", &[]).await;
    assert_eq!(st, 429);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::from_str::<Value>(BODY).unwrap()
    );
    assert_eq!(header(&h, "content-type"), "application/json");
    assert_eq!(
        (header(&h, "x-ratelimit-limit"), header(&h, "x-ratelimit-remaining")),
        ("3", "0")
    );
    let retry: u64 = header(&h, "retry-after").parse().unwrap();
    assert!((1..=8760 * 3600).contains(&retry), "{retry}");
    assert_eq!(header(&h, "x-ratelimit-reset"), retry.to_string());
    assert_eq!(header(&h, "ratelimit"), format!("\"default\";r=0;t={retry}"));
    assert_eq!(header(&h, "ratelimit-policy"), "\"default\";q=3;w=31536000");

    // Operation level: that operation alone, the tighter of its two limits.
    assert_eq!(statuses(&s, "/rl-op/a", &[], 3).await, [200, 200, 429]);
    let (st, h, _) = get(&s, "/rl-op/b", &[]).await;
    assert_eq!((st, h.get("x-ratelimit-limit")), (200, None), "no limit on /b");
    assert_eq!(statuses(&s, "/rl-op/b", &[], 3).await, [200, 200, 200]);

    // Advanced: a count per X-User value; no header is a key of its own.
    assert_eq!(
        statuses(&s, "/rl-adv/x", &[("x-user", "alice")], 3).await,
        [200, 200, 429]
    );
    assert_eq!(statuses(&s, "/rl-adv/y", &[("x-user", "bob")], 2).await, [200, 200]);
    assert_eq!(statuses(&s, "/rl-adv/y", &[], 3).await, [200, 200, 429]);
    let (_, h, _) = get(&s, "/rl-adv/x", &[("x-user", "alice")]).await;
    assert_eq!(header(&h, "ratelimit-policy"), "\"per-user\";q=2;w=31536000");
}
