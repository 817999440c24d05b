//! Ways around per-operation auth and routing, tried through the real Envoy: escaped slashes in the
//! path, forged identity headers, upstreams that point at the gateway itself, and one API's routes
//! capturing another's traffic.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate_testkit::Echo;

use crate::api_yaml;
use crate::keys::create_key;
use crate::stack::{Stack, send};

/// `GET /<name>/public/*` open, `GET /<name>/admin` behind an API key in `X-API-Key`.
fn open_and_protected(name: &str, url: &str) -> String {
    let ops = "    - {method: GET, path: /public/*}\n    - method: GET\n      path: /admin\n      policies:\n        - {name: api-key-auth, version: v1, params: {key: X-API-Key, in: header}}\n";
    api_yaml(name, &format!("/{name}"), url, ops)
}

/// Sends `GET <target>` exactly as written (no client-side normalisation) over HTTP/1.1; returns
/// the status and the body.
async fn raw_get(s: &Stack, target: &str) -> (u16, String) {
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    sock.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaped_slashes_do_not_reach_a_protected_operation_through_an_open_one() {
    let echo = Echo::start("backend").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let (st, body) = s.deploy(&open_and_protected("esc", &url)).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    s.wait_status("/esc/public/x", None, 200).await;
    assert_eq!(
        raw_get(&s, "/esc/admin").await.0,
        401,
        "the protected operation needs a key"
    );
    for target in [
        "/esc/public/..%2Fadmin",
        "/esc/public/..%2fadmin",
        "/esc/public/..%5Cadmin",
        "/esc/public/..%5cadmin",
        "/esc/public/%2e%2e%2Fadmin",
    ] {
        let (status, body) = raw_get(&s, target).await;
        assert_eq!(status, 400, "{target} is refused, not forwarded: {body}");
        assert!(!body.contains("backend"), "{target} reached the upstream: {body}");
    }
    // Dot segments, plain or escaped, are resolved before routing: the protected route answers.
    for target in ["/esc/public/../admin", "/esc/public/%2e%2e/admin", "/esc/./admin"] {
        let (status, body) = raw_get(&s, target).await;
        assert_eq!(status, 401, "{target} is the protected operation: {body}");
    }
    // Paths are case-sensitive: another case is another (here unknown) path, never the open route.
    assert_eq!(raw_get(&s, "/esc/ADMIN").await.0, 404);
    assert_eq!(raw_get(&s, "/ESC/public/x").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_from_the_client_never_reach_the_upstream() {
    let echo = Echo::start("backend").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let (st, body) = s.deploy(&open_and_protected("ids", &url)).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    s.wait_status("/ids/public/x", None, 200).await;
    let (st, body) = create_key(&s, "ids", json!({"name": "real-key"})).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let key = body["apiKey"]["apiKey"].as_str().unwrap().to_string();
    let forged = |path: &str| {
        s.gw(Method::GET, path, None)
            .header("x-tollgate-key-name", "forged")
            .header("X-Tollgate-Application", "forged")
            .header("x-tollgate-anything", "forged")
    };
    // An open route: none of the client's values arrive.
    let echoed: Value = forged("/ids/public/x").send().await.unwrap().json().await.unwrap();
    let headers = echoed["headers"].as_object().unwrap();
    let leaked: Vec<&String> = headers.keys().filter(|h| h.starts_with("x-tollgate-")).collect();
    assert!(leaked.is_empty(), "open route forwarded {leaked:?}: {echoed}");
    // A key-protected route: the key's real name, and no application (the key has none).
    let r = forged("/ids/admin").header("x-api-key", &key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let echoed: Value = r.json().await.unwrap();
    assert_eq!(echoed["headers"]["x-tollgate-key-name"], "real-key", "{echoed}");
    assert!(echoed["headers"].get("x-tollgate-application").is_none(), "{echoed}");
    assert!(echoed["headers"].get("x-tollgate-anything").is_none(), "{echoed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_at_the_gateway_itself_are_refused_unless_allowed() {
    let s = Stack::with(|c| c.router.allowed_internal_upstreams = vec!["127.0.0.1:9901".into()]).await;
    let listener = format!("http://127.0.0.1:{}", s.port);
    let refused = [
        ("meta", "http://169.254.169.254/latest/meta-data"),
        ("admin6", "http://[::1]:9901"),
        ("loop", listener.as_str()),
        ("any", "http://0.0.0.0:7000"),
    ];
    for (name, url) in refused {
        let (st, body) = s
            .deploy(&api_yaml(
                name,
                &format!("/{name}"),
                url,
                "    - {method: GET, path: /*}\n",
            ))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["errors"][0]["field"], "spec.upstream.main.url", "{body}");
    }
    // The configured exception, and loopback on a port that is not the gateway's.
    for (name, url) in [
        ("allowed", "http://127.0.0.1:9901"),
        ("local", "http://127.0.0.1:34567"),
    ] {
        let (st, body) = s
            .deploy(&api_yaml(
                name,
                &format!("/{name}"),
                url,
                "    - {method: GET, path: /*}\n",
            ))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{url}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_may_not_take_another_apis_requests() {
    let echo = Echo::start("backend").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let (st, body) = s.deploy(&open_and_protected("shop", &url)).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    // The same operation under the same context, and a more specific one under the open wildcard.
    for (name, ctx, ops) in [
        ("thief", "/shop", "    - {method: GET, path: /admin}\n"),
        ("nested", "/shop/public", "    - {method: GET, path: /report}\n"),
    ] {
        let (st, body) = s.deploy(&api_yaml(name, ctx, &url, ops)).await;
        assert_eq!(st, StatusCode::CONFLICT, "{name}: {body}");
        let msg = body["message"].as_str().unwrap_or_default();
        assert!(msg.contains("'shop'"), "{name}: the message names the other API: {msg}");
    }
    // Another method, or a sibling context, is not an overlap; nor is an update of the API itself.
    let post = api_yaml("writer", "/shop", &url, "    - {method: POST, path: /admin}\n");
    assert_eq!(s.deploy(&post).await.0, StatusCode::CREATED);
    let sibling = api_yaml("shopping", "/shopping", &url, "    - {method: GET, path: /*}\n");
    assert_eq!(s.deploy(&sibling).await.0, StatusCode::CREATED);
    let (st, body) = send(
        s.mgmt(Method::PUT, "/rest-apis/shop")
            .header("content-type", "application/yaml")
            .body(open_and_protected("shop", &url)),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // An update that would start overlapping is refused too, and the API stays as it was.
    let grab = api_yaml("writer", "/shop", &url, "    - {method: GET, path: \"/public/{x}\"}\n");
    let (st, body) = send(
        s.mgmt(Method::PUT, "/rest-apis/writer")
            .header("content-type", "application/yaml")
            .body(grab),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    s.wait_status("/shop/public/x", None, 200).await;
    let (_, echoed) = s.call(Method::GET, "/shop/public/x", None).await;
    assert_eq!(echoed["path"], "/public/x", "still served by 'shop'");
}
