//! The mediation policies through the real Envoy: headers set and removed on the request (as the
//! upstream sees them) and on the response (as the client sees them), host and path/query rewrites
//! as the upstream sees them, redirects, and the same result from API-level and per-operation
//! placement.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tollgate_testkit::Echo;

use super::api_yaml;
use super::stack::Stack;

/// The header policies of both placements (indented for an API's or an operation's `policies`).
fn header_policies(indent: &str) -> String {
    [
        "- name: set-headers",
        "  version: v1",
        "  params:",
        "    requestHeaders: [{name: X-Team, value: \"50% blue\"}]",
        "    responseHeaders: [{name: X-Served-By, value: tollgate}]",
        "- {name: remove-headers, version: v1, params: {requestHeaders: [{name: X-Debug}], responseHeaders: [{name: X-Echo-Upstream}]}}",
        "- {name: host-rewrite, version: v1, params: {host: \"backend.example:8443\"}}",
    ]
    .iter()
    .map(|l| format!("{indent}{l}\n"))
    .collect()
}

/// What the upstream saw and the client got for GET `path` with the headers the policies touch.
async fn observe(s: &Stack, path: &str) -> (String, Value, Option<String>, bool) {
    let resp = s
        .gw(Method::GET, path, None)
        .header("x-debug", "1")
        .header("x-team", "red")
        .send()
        .await
        .unwrap();
    let served_by = resp
        .headers()
        .get("x-served-by")
        .map(|v| v.to_str().unwrap().to_string());
    let echo_header = resp.headers().contains_key("x-echo-upstream");
    let mut body: Value = resp.json().await.unwrap();
    // What differs between any two requests or paths, whatever the policies.
    let headers = body["headers"].as_object_mut().unwrap();
    headers.remove("x-request-id");
    headers.remove("x-envoy-original-path");
    (
        body["path"].as_str().unwrap().to_string(),
        body["headers"].clone(),
        served_by,
        echo_header,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mediation_policies_through_envoy() {
    let echo = Echo::start("med").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}/base", echo.port);

    // The same header policies on the API, and on each operation.
    let api_level = api_yaml(
        "med-api",
        "/meda",
        &url,
        "    - {method: GET, path: /items/*}\n    - method: GET\n      path: /over\n      policies:\n        - {name: set-headers, version: v1, params: {requestHeaders: [{name: X-Team, value: green}]}}\n",
    )
    .replace("  operations:\n", &format!("  policies:\n{}  operations:\n", header_policies("    ")));
    let op_level = api_yaml(
        "med-op",
        "/medo",
        &url,
        &format!(
            "    - method: GET\n      path: /items/*\n      policies:\n{}",
            header_policies("        ")
        ),
    );
    for doc in [&api_level, &op_level] {
        let (status, body) = s.deploy(doc).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    s.wait_status("/meda/items/x", None, 200).await;
    s.wait_status("/medo/items/x", None, 200).await;

    let (path, up, served_by, echo_header) = observe(&s, "/meda/items/x").await;
    assert_eq!(path, "/base/items/x");
    assert_eq!(up["x-team"], "50% blue", "set overwrites: {up}");
    assert!(up.get("x-debug").is_none(), "removed before the upstream: {up}");
    assert_eq!(up["host"], "backend.example:8443");
    assert_eq!(served_by.as_deref(), Some("tollgate"));
    assert!(!echo_header, "the upstream's x-echo-upstream is removed for the client");
    // Per-operation placement gives the same result.
    assert_eq!(observe(&s, "/medo/items/x").await, (path, up, served_by, echo_header));
    // An operation's own set-headers replaces the API's (and only that policy).
    let (_, up, served_by, _) = observe(&s, "/meda/over").await;
    assert_eq!(up["x-team"], "green");
    assert_eq!(served_by, None);
    assert!(up.get("x-debug").is_none());
    assert_eq!(up["host"], "backend.example:8443");

    rewrites_and_redirects(&s, echo.port).await;
}

/// The method, path and query the upstream saw for GET `path` (with `X-Mode: mode`).
async fn seen(s: &Stack, path: &str, mode: Option<&str>) -> (String, String, String) {
    let mut r = s.gw(Method::GET, path, None);
    if let Some(m) = mode {
        r = r.header("x-mode", m);
    }
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    let b: Value = r.json().await.unwrap();
    let field = |k: &str| b[k].as_str().unwrap().to_string();
    (field("method"), field("path"), field("query"))
}

/// An operation's `policies` with one `request-rewrite` of `params` (YAML flow style).
fn rewrite(params: &str) -> String {
    format!("      policies:\n        - {{name: request-rewrite, version: v1, params: {params}}}\n")
}

async fn rewrites_and_redirects(s: &Stack, port: u16) {
    let ops = [
        format!(
            "    - method: GET\n      path: /items/*\n{}",
            rewrite("{match: {headers: [{name: X-Mode, type: Exact, value: v2}]}, pathRewrite: {type: ReplacePrefixMatch, replacePrefixMatch: /v2/things}, queryRewrite: {rules: [{action: Replace, name: page, value: \"1\"}, {action: Remove, name: debug}, {action: Add, name: src, value: gw}]}}")
        ),
        format!("    - method: GET\n      path: /full\n{}", rewrite("{pathRewrite: {type: ReplaceFullPath, replaceFullPath: /other/place}}")),
        format!(
            "    - method: GET\n      path: /users/{{id}}\n{}",
            rewrite("{pathRewrite: {type: ReplaceRegexMatch, replaceRegexMatch: {pattern: \"^/users/([^/]+)$\", substitution: \"/people/\\\\1\"}}}")
        ),
        "    - method: GET\n      path: /old\n      policies:\n        - {name: redirect, version: v1, params: {url: \"https://example.com:8443/new?x=1\", statusCode: 308}}\n".to_string(),
        "    - method: GET\n      path: /moved\n      policies:\n        - {name: redirect, version: v1, params: {url: /rw/new}}\n".to_string(),
    ];
    let (status, body) = s
        .deploy(&api_yaml(
            "rw",
            "/rw",
            &format!("http://127.0.0.1:{port}"),
            &ops.concat(),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    s.wait_status("/rw/full", None, 200).await;

    let upstream = |path: &'static str, mode: Option<&'static str>| async move {
        let (_, path, query) = seen(s, path, mode).await;
        (path, query)
    };
    let (path, query) = upstream("/rw/items/7?page=3&debug=1&keep=y", Some("v2")).await;
    assert_eq!(path, "/v2/things/7");
    let mut params: Vec<&str> = query.split('&').collect();
    params.sort_unstable();
    assert_eq!(params, ["keep=y", "page=1", "src=gw"], "{query}");
    // `match` not met: neither path nor query is rewritten.
    assert_eq!(
        upstream("/rw/items/7?page=3&debug=1", Some("v1")).await,
        ("/items/7".to_string(), "page=3&debug=1".to_string())
    );
    assert_eq!(
        upstream("/rw/full?a=b", None).await,
        ("/other/place".to_string(), "a=b".to_string())
    );
    assert_eq!(upstream("/rw/users/42", None).await.0, "/people/42");

    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let gw = |path: &str| client.get(format!("http://127.0.0.1:{}{path}", s.port)).send();
    let r = gw("/rw/old?drop=me").await.unwrap();
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(r.headers()["location"], "https://example.com:8443/new?x=1");
    let r = gw("/rw/moved").await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, format!("http://127.0.0.1:{}/rw/new", s.port));

    service_rewrites(s, port).await;
}

/// `methodRewrite` and the in-place query actions, which our ext_authz service does for Envoy,
/// composed with a native path rewrite and a `match`.
async fn service_rewrites(s: &Stack, port: u16) {
    let ops = [
        format!(
            "    - method: GET\n      path: /m\n{}",
            rewrite(
                "{methodRewrite: POST, pathRewrite: {type: ReplaceFullPath, replaceFullPath: /svc/place}, queryRewrite: {rules: [{action: Append, name: tags, value: new, separator: \",\"}, {action: ReplaceRegexMatch, name: id, pattern: \"^user-([0-9]+)$\", substitution: \"u\\\\1\"}, {action: Remove, name: debug}]}}"
            )
        ),
        format!(
            "    - method: GET\n      path: /gated\n{}",
            rewrite("{match: {headers: [{name: X-Mode, type: Exact, value: v2}]}, methodRewrite: PUT}")
        ),
    ];
    let doc = api_yaml("rw-svc", "/rws", &format!("http://127.0.0.1:{port}"), &ops.concat());
    let (status, body) = s.deploy(&doc).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    s.wait_status("/rws/gated", None, 200).await;
    assert_eq!(
        seen(s, "/rws/m?tags=a&id=user-42&debug=1&keep=y", None).await,
        ("POST".into(), "/svc/place".into(), "tags=a%2Cnew&id=u42&keep=y".into())
    );
    // Append adds an absent parameter; the regex leaves an absent one absent.
    assert_eq!(seen(s, "/rws/m", None).await.2, "tags=new");
    assert_eq!(seen(s, "/rws/gated", Some("v2")).await.0, "PUT");
    assert_eq!(
        seen(s, "/rws/gated", Some("v1")).await.0,
        "GET",
        "match not met: no rewrite"
    );

    // A query pattern RE2 refuses is a 400 naming the field; nothing is deployed.
    let bad = api_yaml(
        "rw-bad",
        "/rwb",
        &format!("http://127.0.0.1:{port}"),
        &format!(
            "    - method: GET\n      path: /x\n{}",
            rewrite(
                "{queryRewrite: {rules: [{action: ReplaceRegexMatch, name: q, pattern: \"a(\", substitution: b}]}}"
            )
        ),
    );
    let (status, body) = s.deploy(&bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["errors"][0]["field"], "spec.operations[0].policies[0].params.queryRewrite.rules[0].pattern",
        "{body}"
    );
}
