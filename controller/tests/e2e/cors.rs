//! The `cors` policy through the real Envoy: WSO2's CORS scenarios (reference §8.11), CORS
//! preflights answered before auth on a key-protected API, `forwardPreflight`, and the catalogue
//! (`GET /policies`, `config_dump`) of the running controller. One stack for all of it.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tollgate_testkit::Echo;

use crate::api_yaml;
use crate::keys::create_key;
use crate::stack::{Stack, send};

/// WSO2's §8.11 API, plus a regex origin; `/open` has its own `*` policy, `/fwd` forwards refused
/// preflights.
const CORS_API: &str = "  policies:
    - name: cors
      version: v1
      params:
        allowedOrigins: ['http://example.com', 'https://*.example.com', 'http://localhost:5000', 'https://[a-z]+\\.example\\.org']
        allowedMethods: [GET, POST]
        allowedHeaders: [Content-Type]
        exposedHeaders: [X-Custom-Header]
        allowCredentials: true
        maxAge: 600
  operations:
    - {method: GET, path: /items}
    - {method: POST, path: /items}
    - {method: PUT, path: /items}
    - {method: OPTIONS, path: /items}
    - method: GET
      path: /open
      policies:
        - {name: cors, version: v1, params: {allowedOrigins: ['*'], exposedHeaders: [X-Open]}}
    - method: GET
      path: /fwd
      policies:
        - {name: cors, version: v1, params: {allowedOrigins: ['http://example.com'], forwardPreflight: true}}
";

/// Key-protected, with CORS for `http://app.example.com`.
const SECURE_API: &str = "  policies:
    - {name: api-key-auth, version: v1, params: {key: X-API-Key, in: header}}
    - {name: cors, version: v1, params: {allowedOrigins: ['http://app.example.com'], allowedHeaders: [X-API-Key]}}
  operations:
    - {method: GET, path: /data}
";

const ACAO: &str = "access-control-allow-origin";
const ACAM: &str = "access-control-allow-methods";
const ACAH: &str = "access-control-allow-headers";

fn get<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A preflight for `method` (and `headers`) from `origin`: status and headers.
async fn preflight(s: &Stack, path: &str, origin: &str, method: &str, headers: Option<&str>) -> (u16, HeaderMap) {
    let mut r = s
        .gw(Method::OPTIONS, path, None)
        .header("origin", origin)
        .header("access-control-request-method", method);
    if let Some(h) = headers {
        r = r.header("access-control-request-headers", h);
    }
    let resp = r.send().await.unwrap();
    (resp.status().as_u16(), resp.headers().clone())
}

/// An actual GET, with `origin` when given and extra headers.
async fn actual(s: &Stack, path: &str, origin: Option<&str>, extra: &[(&str, &str)]) -> (u16, HeaderMap, String) {
    let mut r = s.gw(Method::GET, path, None);
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap_or_default())
}

fn no_cors_headers(h: &HeaderMap, what: &str) {
    for name in [
        ACAO,
        ACAM,
        ACAH,
        "access-control-allow-credentials",
        "access-control-max-age",
    ] {
        assert!(h.get(name).is_none(), "{what}: unexpected {name}: {h:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wso2_cors_scenarios_and_preflight_before_auth() {
    let echo = Echo::start("backend").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let doc = api_yaml("cors-test", "/cors", &url, "").replace("  operations:\n", CORS_API);
    let (st, body) = s.deploy(&doc).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let doc = api_yaml("secure", "/secure", &url, "").replace("  operations:\n", SECURE_API);
    assert_eq!(s.deploy(&doc).await.0, StatusCode::CREATED);
    s.wait_status("/cors/items", None, 200).await;
    s.wait_status("/secure/data", None, 401).await;

    // 1. An allowed preflight: 204 with the allow headers (WSO2's answer, not Envoy's 200).
    let (st, h) = preflight(&s, "/cors/items", "http://example.com", "POST", Some("content-type")).await;
    assert_eq!(st, 204, "{h:?}");
    assert_eq!(get(&h, ACAO), Some("http://example.com"));
    assert_eq!(get(&h, ACAM), Some("GET,POST"));
    assert_eq!(get(&h, ACAH), Some("Content-Type"));
    assert_eq!(get(&h, "access-control-max-age"), Some("600"));
    assert_eq!(get(&h, "access-control-allow-credentials"), Some("true"));
    // The regex origin matches the whole Origin only.
    let (st, h) = preflight(&s, "/cors/items", "https://shop.example.org", "GET", None).await;
    assert_eq!((st, get(&h, ACAO)), (204, Some("https://shop.example.org")));
    let (st, h) = preflight(&s, "/cors/items", "https://shop.example.org.evil.com", "GET", None).await;
    assert_eq!(st, 204);
    no_cors_headers(&h, "regex origin with a suffix");

    // 2-4. Disallowed origin, method (PUT: an operation exists, the policy does not allow it) and
    // header: 204 with none of the allow headers.
    for (origin, method, headers, what) in [
        ("http://evil.com", "POST", None, "origin"),
        ("http://example.com", "PUT", None, "method"),
        ("http://example.com", "DELETE", None, "method without an operation"),
        ("http://example.com", "POST", Some("authorization"), "header"),
        (
            "http://example.com",
            "POST",
            Some("content-type,authorization"),
            "one header of two",
        ),
    ] {
        let (st, h) = preflight(&s, "/cors/items", origin, method, headers).await;
        assert_eq!(st, 204, "{what}");
        no_cors_headers(&h, what);
    }

    // 5, 8-10. An actual request from an allowed origin: the origin echoed, credentials, the
    // exposed headers and `Vary: Origin`.
    let (st, h, _) = actual(&s, "/cors/items", Some("http://localhost:5000"), &[]).await;
    assert_eq!(st, 200);
    assert_eq!(get(&h, ACAO), Some("http://localhost:5000"));
    assert_eq!(get(&h, "access-control-allow-credentials"), Some("true"));
    assert_eq!(get(&h, "access-control-expose-headers"), Some("X-Custom-Header"));
    assert!(get(&h, "vary").is_some_and(|v| v.contains("Origin")), "{h:?}");
    // 6-7. A disallowed origin, and no origin: served, without CORS headers.
    for origin in [Some("http://evil.com"), None] {
        let (st, h, _) = actual(&s, "/cors/items", origin, &[]).await;
        assert_eq!(st, 200);
        assert!(h.get(ACAO).is_none(), "{origin:?}: {h:?}");
        assert!(h.get("access-control-expose-headers").is_none(), "{origin:?}");
    }
    // 11. `*` (the operation's own policy overrides the API's): `Access-Control-Allow-Origin: *`.
    let (st, h, _) = actual(&s, "/cors/open", Some("http://anyone.test"), &[]).await;
    assert_eq!((st, get(&h, ACAO)), (200, Some("*")));
    assert_eq!(get(&h, "access-control-expose-headers"), Some("X-Open"));
    let (st, h) = preflight(&s, "/cors/open", "http://anyone.test", "GET", None).await;
    assert_eq!(
        (st, get(&h, ACAO), get(&h, ACAM)),
        (204, Some("*"), Some("GET,POST,PUT,DELETE,OPTIONS"))
    );
    // The user's OPTIONS operation still serves a plain OPTIONS.
    let (st, _) = send(s.gw(Method::OPTIONS, "/cors/items", None)).await;
    assert_eq!(st, StatusCode::OK);

    // forwardPreflight: a refused preflight reaches the upstream; an allowed one is answered.
    let (st, h) = preflight(&s, "/cors/fwd", "http://evil.com", "GET", None).await;
    assert_eq!(st, 200, "forwarded to the echo upstream");
    assert!(h.get(ACAO).is_none());
    let (st, h) = preflight(&s, "/cors/fwd", "http://example.com", "GET", None).await;
    assert_eq!((st, get(&h, ACAO)), (204, Some("http://example.com")));

    // CORS before auth: the preflight needs no key; the actual request does.
    let (st, h) = preflight(&s, "/secure/data", "http://app.example.com", "GET", Some("x-api-key")).await;
    assert_eq!(st, 204, "a preflight is answered without a key: {h:?}");
    assert_eq!(get(&h, ACAO), Some("http://app.example.com"));
    assert_eq!(get(&h, ACAH), Some("X-API-Key"));
    let (st, h, _) = actual(&s, "/secure/data", Some("http://app.example.com"), &[]).await;
    assert_eq!(st, 401);
    // The CORS filter runs before ext_authz, so the page can read the 401 too.
    assert_eq!(get(&h, ACAO), Some("http://app.example.com"), "{h:?}");
    let (st, body) = create_key(&s, "secure", json!({"name": "browser"})).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let key = body["apiKey"]["apiKey"].as_str().unwrap().to_string();
    let (st, h, _) = actual(
        &s,
        "/secure/data",
        Some("http://app.example.com"),
        &[("x-api-key", &key)],
    )
    .await;
    assert_eq!((st, get(&h, ACAO)), (200, Some("http://app.example.com")));

    // The running controller's catalogue.
    let (st, list) = send(s.mgmt(Method::GET, "/policies")).await;
    assert_eq!(st, StatusCode::OK);
    let cors = list["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cors")
        .cloned();
    let cors = cors.expect("cors in GET /policies");
    assert_eq!(cors["parameters"]["properties"]["maxAge"]["maximum"], 86400);
    let (_, dump) = send(s.admin("/config_dump")).await;
    assert!(
        dump["policies"].as_array().unwrap().contains(&cors),
        "config_dump shows the same entry"
    );
    // WSO2 §8.12 scenario 4: the dump holds the API with its operation-level cors.
    let apis = dump["apis"].to_string();
    assert!(apis.contains("cors-test") && apis.contains("\"cors\""), "{apis}");

    // Validation, with the catalogue's field paths (the `*` with credentials is judged once every
    // parameter has the right shape).
    let bad = "  policies:\n    - {name: cors, version: v1, params: {allowedOrigins: ['http://a.com', '*', 'https://(?=x)'], \
               allowCredentials: true, maxAge: 90000}}\n  operations:\n";
    let doc = api_yaml("bad-cors", "/bad", &url, "    - {method: GET, path: /x}\n").replace("  operations:\n", bad);
    let (st, body) = s.deploy(&doc).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "spec.policies[0].params.allowedOrigins[2]",
            "spec.policies[0].params.maxAge"
        ],
        "{body}"
    );
    let doc = doc
        .replace(", 'https://(?=x)'", "")
        .replace("maxAge: 90000", "maxAge: 0");
    let (st, body) = s.deploy(&doc).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["errors"][0]["field"], "spec.policies[0].params.allowedOrigins[1]",
        "{body}"
    );
}
