//! Reference §8.6 (path matching), §8.7 (header routing), §8.8 (virtual hosts), §8.10 (timeouts).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use tollgate_testkit::Echo;

use crate::api_yaml;
use crate::stack::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_matching_and_rewrites() {
    let echo = Echo::start("sample").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let deploy = |name: &str, ctx: &str, url: &str, ops: &str| api_yaml(name, ctx, url, ops);
    for doc in [
        deploy(
            "wc",
            "/route-wildcard/$version",
            &url,
            "    - {method: GET, path: /*}\n",
        ),
        deploy("root", "/route-root/$version", &url, "    - {method: GET, path: /}\n"),
        deploy(
            "exact",
            "/exact/$version",
            &format!("{url}/anything"),
            "    - {method: GET, path: /weather}\n    - {method: GET, path: /forecast/*}\n    - {method: PUT, path: /put/*}\n",
        ),
    ] {
        let (status, body) = s.deploy(&doc).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    s.wait_status("/route-wildcard/v1.0/us/seattle", None, 200).await;
    s.wait_status("/exact/v1.0/weather", None, 200).await;
    let get = |p: &'static str| s.call(Method::GET, p, None);
    // Wildcard: sub-paths and the bare prefix, not sibling prefixes, GET only.
    assert_eq!(get("/route-wildcard/v1.0/data").await.0, 200);
    assert_eq!(get("/route-wildcard/v1.0").await.0, 200);
    assert_eq!(get("/route-wildcard/v1.0beta/data").await.0, 404);
    assert_eq!(s.call(Method::POST, "/route-wildcard/v1.0/data", None).await.0, 404);
    // Root operation with and without the trailing slash.
    assert_eq!(get("/route-root/v1.0/").await.0, 200);
    assert_eq!(get("/route-root/v1.0").await.0, 200);
    // Literal path: trailing slash optional and preserved; base path prepended.
    let (st, b) = get("/exact/v1.0/weather").await;
    assert_eq!((st.as_u16(), b["path"].as_str()), (200, Some("/anything/weather")));
    let (st, b) = get("/exact/v1.0/weather/").await;
    assert_eq!((st.as_u16(), b["path"].as_str()), (200, Some("/anything/weather/")));
    for (p, want) in [
        ("/exact/v1.0/forecast", "/anything/forecast"),
        ("/exact/v1.0/forecast/today", "/anything/forecast/today"),
        ("/exact/v1.0/forecast/a/b/c", "/anything/forecast/a/b/c"),
    ] {
        let (st, b) = s.call(Method::GET, p, None).await;
        assert_eq!((st.as_u16(), b["path"].as_str()), (200, Some(want)), "{p}");
    }
    let r = s
        .gw(Method::PUT, "/exact/v1.0/put", None)
        .body("{\"k\":1}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (b["method"].as_str(), b["path"].as_str(), b["body"].as_str()),
        (Some("PUT"), Some("/anything/put"), Some("{\"k\":1}"))
    );
    // Query strings pass through untouched.
    let (_, b) = get("/route-wildcard/v1.0/q?x=1&y=2").await;
    assert_eq!(b["query"], "x=1&y=2");
    // Host header rewritten to the upstream by default.
    let (_, b) = get("/route-wildcard/v1.0/h").await;
    assert_eq!(b["headers"]["host"], format!("127.0.0.1:{}", echo.port));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_matching_with_respond_policies() {
    let echo = Echo::start("sample").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let respond = |code: u16| {
        format!("      policies:\n        - {{name: respond, version: v1, params: {{statusCode: {code}}}}}\n")
    };
    let ops = format!(
        "    - match:\n        method: GET\n        path: {{value: /pick, type: Exact}}\n        headers: [{{name: X-Variant, value: alpha}}]\n{}    - match:\n        method: GET\n        path: {{value: /pick}}\n        headers: [{{name: x-variant, value: beta, type: Exact}}]\n{}    - match:\n        method: GET\n        path: {{value: /pick}}\n        headers: [{{name: x-variant, value: \"^v[0-9]+$\", type: RegularExpression}}]\n{}    - {{method: GET, path: /pick}}\n    - {{method: GET, path: /ready}}\n",
        respond(201),
        respond(202),
        respond(203)
    );
    let (status, body) = s.deploy(&api_yaml("hdr", "/hdr", &url, &ops)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    s.wait_status("/hdr/ready", None, 200).await;
    for (value, want) in [
        (Some("alpha"), 201),
        (Some("beta"), 202),
        (Some("v12"), 203),
        (Some("does-not-match"), 200),
        (None, 200),
    ] {
        let mut r = s.gw(Method::GET, "/hdr/pick", None);
        if let Some(v) = value {
            r = r.header("x-variant", v);
        }
        assert_eq!(r.send().await.unwrap().status().as_u16(), want, "{value:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_hosts_main_and_sandbox() {
    let main = Echo::start("main").await;
    let sandbox = Echo::start("sandbox").await;
    let s = Stack::with(|c| {
        c.router.vhosts.main = "*.wso2.com".into();
        c.router.vhosts.sandbox = "*-sandbox.wso2.com".into();
    })
    .await;
    let with_sandbox = |name: &str, ctx: &str, vhosts: &str| {
        format!(
            "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata: {{name: {name}}}\nspec:\n  displayName: {name}\n  version: v1.0\n  context: {ctx}\n{vhosts}  upstream:\n    main: {{url: \"http://127.0.0.1:{}\"}}\n    sandbox: {{url: \"http://127.0.0.1:{}/sandbox\"}}\n  operations:\n    - {{method: GET, path: /whoami}}\n",
            main.port, sandbox.port
        )
    };
    let defaults = with_sandbox("vh-default", "/vh1", "");
    let explicit = with_sandbox(
        "vh-custom",
        "/vh2",
        "  vhosts:\n    main: custom.wso2.com\n    sandbox: custom-sandbox.wso2.com\n",
    );
    let sentinel = with_sandbox(
        "vh-sentinel",
        "/vh3",
        "  vhosts:\n    main: _gateway_default_\n    sandbox: _gateway_default_\n",
    );
    for doc in [&defaults, &explicit, &sentinel] {
        let (status, body) = s.deploy(doc).await;
        assert_eq!(status, StatusCode::CREATED, "{doc}\n{body}");
    }
    // The last API deployed is served only once Envoy has the configuration with all three.
    s.wait_status("/vh3/whoami", Some("api.wso2.com"), 200).await;
    let s = &s;
    let check = |path: &'static str, host: &'static str| async move {
        let (st, b) = s.call(Method::GET, path, Some(host)).await;
        (
            st.as_u16(),
            b["upstream"].as_str().map(str::to_string),
            b["path"].as_str().map(str::to_string),
        )
    };
    for ctx in ["/vh1/whoami", "/vh3/whoami"] {
        assert_eq!(
            check(ctx, "api.wso2.com").await,
            (200, Some("main".into()), Some("/whoami".into()))
        );
        assert_eq!(
            check(ctx, "api-sandbox.wso2.com").await,
            (200, Some("sandbox".into()), Some("/sandbox/whoami".into()))
        );
        assert_eq!(check(ctx, "api.other.com").await.0, 404);
        assert_eq!(check(ctx, "_gateway_default_").await.0, 404);
    }
    assert_eq!(check("/vh2/whoami", "custom.wso2.com").await.1, Some("main".into()));
    assert_eq!(
        check("/vh2/whoami", "custom-sandbox.wso2.com").await.1,
        Some("sandbox".into())
    );
    assert_eq!(check("/vh2/whoami", "api.wso2.com").await.0, 404);
    // Port-qualified Host headers match too.
    assert_eq!(check("/vh1/whoami", "api.wso2.com:8080").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_timeouts_answer_504() {
    let echo = Echo::start("slow").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let api_level = api_yaml("to-api", "/to-api", &url, "    - {method: GET, path: /delay/*}\n")
        .replace("  operations:", "  resilience: {timeout: 1s}\n  operations:");
    let op_level = api_yaml(
        "to-op",
        "/to-op",
        &url,
        "    - method: GET\n      path: /delay/*\n      resilience: {timeout: 1s}\n",
    )
    .replace("  operations:", "  resilience: {timeout: 10s}\n  operations:");
    let none = api_yaml("to-none", "/to-none", &url, "    - {method: GET, path: /delay/*}\n");
    for d in [&api_level, &op_level, &none] {
        assert_eq!(s.deploy(d).await.0, StatusCode::CREATED);
    }
    s.wait_status("/to-none/delay/0", None, 200).await;
    for path in ["/to-api/delay/3", "/to-op/delay/3"] {
        let t = Instant::now();
        let (st, _) = s.call(Method::GET, path, None).await;
        assert_eq!(st, 504, "{path}");
        assert!(
            t.elapsed() >= Duration::from_millis(900),
            "{path} timed out after {:?}",
            t.elapsed()
        );
    }
    assert_eq!(s.call(Method::GET, "/to-none/delay/2", None).await.0, 200);
}
