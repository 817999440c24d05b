//! API keys end to end (reference §8.4 and the key issue): keys created through the REST API open
//! their API through Envoy's ext_authz and nothing else; revocation bites on the next request.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_testkit::Echo;

use crate::api_yaml;
use crate::stack::{Stack, send};

pub const DENY: &str = "{\"error\":\"Unauthorized\",\"message\":\"Valid API key required\"}";

pub fn protected(name: &str, url: &str, policy_at_api: bool) -> String {
    let policy = "    - {name: api-key-auth, version: v1, params: {key: X-API-Key, in: header}}\n";
    if policy_at_api {
        api_yaml(name, &format!("/{name}"), url, "    - {method: GET, path: /*}\n")
            .replace("  operations:", &format!("  policies:\n{policy}  operations:"))
    } else {
        let ops = format!(
            "    - method: GET\n      path: /private\n      policies:\n    {}    - {{method: GET, path: /public}}\n",
            policy.trim_start_matches("    ").replace("- ", "  - ")
        );
        api_yaml(name, &format!("/{name}"), url, &ops)
    }
}

pub async fn create_key(s: &Stack, api: &str, body: Value) -> (StatusCode, Value) {
    send(s.mgmt(Method::POST, &format!("/rest-apis/{api}/api-keys")).json(&body)).await
}

pub async fn call(s: &Stack, path: &str, key: Option<&str>) -> (u16, String) {
    let mut r = s.gw(Method::GET, path, None);
    if let Some(k) = key {
        r = r.header("x-api-key", k);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_open_their_api_and_revocation_bites_at_once() {
    let echo = Echo::start("backend").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(s.deploy(&protected("orders", &url, true)).await.0, StatusCode::CREATED);
    assert_eq!(s.deploy(&protected("billing", &url, true)).await.0, StatusCode::CREATED);
    s.wait_status("/orders/x", None, 401).await;

    let (status, body) = create_key(&s, "orders", json!({"name": "test-key-1"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "success");
    let key = body["apiKey"]["apiKey"].as_str().unwrap().to_string();
    assert!(key.starts_with("apip_") && key.len() == 69);
    let inv = &body["invocation"];
    assert_eq!(inv["gatewayType"], "envoy");
    assert_eq!(inv["credentialType"], "api-key");
    assert_eq!(inv["credentialHeaderName"], "X-API-Key");
    assert_eq!(inv["credentialValue"], key.as_str());
    assert_eq!(inv["basePath"], "/orders");
    assert!(inv["fullUrl"].as_str().unwrap().ends_with("/orders"), "{inv}");
    assert!(inv["curlExample"].as_str().unwrap().contains(&key));

    let (st, _) = call(&s, "/orders/x", Some(&key)).await;
    assert_eq!(st, 200, "the key opens its API");
    let (st, text) = call(&s, "/orders/x", None).await;
    assert_eq!((st, text.as_str()), (401, DENY), "missing key");
    let (st, text) = call(&s, "/orders/x", Some("apip_wrong")).await;
    assert_eq!((st, text.as_str()), (401, DENY), "wrong key");
    let (st, text) = call(&s, "/billing/x", Some(&key)).await;
    assert_eq!((st, text.as_str()), (401, DENY), "another API's key");
    // The upstream learns the key's name, never the key.
    let r = s
        .gw(Method::GET, "/orders/echo", None)
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    let echoed: Value = r.json().await.unwrap();
    assert_eq!(echoed["headers"]["x-tollgate-key-name"], "test-key-1");

    // Listing shows only the mask.
    let (_, list) = send(s.mgmt(Method::GET, "/rest-apis/orders/api-keys")).await;
    assert_eq!(list["totalCount"], 1);
    assert!(!list.to_string().contains(&key));
    assert_eq!(list["apiKeys"][0]["apiKey"], format!("***{}", &key[64..]));

    // Regenerate: the new value works, the old one stops.
    let (st, regen) = send(
        s.mgmt(Method::POST, "/rest-apis/orders/api-keys/test-key-1/regenerate")
            .json(&json!({})),
    )
    .await;
    assert_eq!(st, 200, "{regen}");
    let new_key = regen["apiKey"]["apiKey"].as_str().unwrap().to_string();
    assert_eq!(call(&s, "/orders/x", Some(&new_key)).await.0, 200);
    assert_eq!(call(&s, "/orders/x", Some(&key)).await.0, 401);

    // Revoke: the very next request is refused; revoking again is fine.
    let (st, _) = send(s.mgmt(Method::DELETE, "/rest-apis/orders/api-keys/test-key-1")).await;
    assert_eq!(st, 200);
    assert_eq!(call(&s, "/orders/x", Some(&new_key)).await.0, 401);
    assert_eq!(
        send(s.mgmt(Method::DELETE, "/rest-apis/orders/api-keys/test-key-1"))
            .await
            .0,
        200
    );
    assert_eq!(send(s.mgmt(Method::DELETE, "/rest-apis/nope/api-keys/x")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_level_policy_protects_only_that_operation_and_keys_survive_restart() {
    let echo = Echo::start("backend").await;
    let mut s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let (st, body) = s.deploy(&protected("mixed", &url, false)).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    s.wait_status("/mixed/public", None, 200).await;
    assert_eq!(call(&s, "/mixed/private", None).await.0, 401);
    let (_, body) = create_key(&s, "mixed", json!({})).await;
    let key = body["apiKey"]["apiKey"].as_str().unwrap().to_string();
    assert_eq!(call(&s, "/mixed/private", Some(&key)).await.0, 200);

    s.restart_controller().await;
    s.wait_status("/mixed/public", None, 200).await;
    // The authz service restarted too; the key was restored from SQLite.
    crate::stack::eventually(|| async { call(&s, "/mixed/private", Some(&key)).await.0 == 200 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_requests_are_checked_and_answered_clearly() {
    let echo = Echo::start("backend").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    s.deploy(&protected("checks", &url, true)).await;
    assert_eq!(create_key(&s, "nope", json!({})).await.0, 404, "unknown API");
    assert_eq!(create_key(&s, "checks", json!({"name": "Bad Name"})).await.0, 400);
    assert_eq!(
        create_key(
            &s,
            "checks",
            json!({"name": "past", "expiresAt": "2001-01-01T00:00:00Z"})
        )
        .await
        .0,
        400
    );
    assert_eq!(create_key(&s, "checks", json!({"name": "my-api-key_v1"})).await.0, 201);
    assert_eq!(
        create_key(&s, "checks", json!({"name": "my-api-key_v1"})).await.0,
        409,
        "duplicate name"
    );
    let (st, _) = send(
        s.mgmt(Method::POST, "/rest-apis/checks/api-keys")
            .header("content-type", "application/json")
            .body("{ this is not valid json"),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(
        send(
            s.mgmt(Method::POST, "/rest-apis/checks/api-keys/ghost/regenerate")
                .json(&json!({}))
        )
        .await
        .0,
        404
    );
    let (st, body) = send(s.mgmt(Method::GET, "/rest-apis/checks/api-keys?limit=10&offset=0")).await;
    assert_eq!((st.as_u16(), body["status"].as_str()), (200, Some("success")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_keys_expiry_grace_and_no_key_in_the_logs() {
    crate::stack::capture_logs();
    let echo = Echo::start("backend").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let doc = api_yaml("q-api", "/q-api", &url, "    - {method: GET, path: /*}\n").replace(
        "  operations:",
        "  policies:\n    - {name: api-key-auth, version: v1, params: {key: apikey, in: query}}\n  operations:",
    );
    assert_eq!(s.deploy(&doc).await.0, StatusCode::CREATED);
    s.wait_status("/q-api/x", None, 401).await;
    let (_, body) = create_key(&s, "q-api", json!({"name": "query-key"})).await;
    let key = body["apiKey"]["apiKey"].as_str().unwrap().to_string();
    assert_eq!(body["invocation"]["credentialQueryParam"], "apikey");
    assert!(body["invocation"]["credentialHeaderName"].is_null());
    assert_eq!(
        s.call(Method::GET, &format!("/q-api/x?apikey={key}"), None).await.0,
        200
    );
    assert_eq!(s.call(Method::GET, "/q-api/x?apikey=apip_nope", None).await.0, 401);
    assert_eq!(s.call(Method::GET, &format!("/q-api/x?other={key}"), None).await.0, 401);

    // A key that expires in one second works, then stops.
    let (_, short) = create_key(
        &s,
        "q-api",
        json!({"name": "short", "expiresIn": {"unit": "seconds", "duration": 1}}),
    )
    .await;
    let short = short["apiKey"]["apiKey"].as_str().unwrap().to_string();
    assert_eq!(
        s.call(Method::GET, &format!("/q-api/x?apikey={short}"), None).await.0,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        s.call(Method::GET, &format!("/q-api/x?apikey={short}"), None).await.0,
        401,
        "expired"
    );

    // Rotation with a grace period: both values work.
    let (st, regen) = send(
        s.mgmt(Method::POST, "/rest-apis/q-api/api-keys/query-key/regenerate")
            .json(&json!({"gracePeriod": "1h"})),
    )
    .await;
    assert_eq!(st, 200, "{regen}");
    let new_key = regen["apiKey"]["apiKey"].as_str().unwrap().to_string();
    assert_eq!(
        s.call(Method::GET, &format!("/q-api/x?apikey={new_key}"), None).await.0,
        200
    );
    assert_eq!(
        s.call(Method::GET, &format!("/q-api/x?apikey={key}"), None).await.0,
        200,
        "old value in grace"
    );
    let too_long = json!({"gracePeriod": "31days"});
    let (st, _) = send(
        s.mgmt(Method::POST, "/rest-apis/q-api/api-keys/query-key/regenerate")
            .json(&too_long),
    )
    .await;
    assert_eq!(st, 400);

    let logs = crate::stack::logs();
    assert!(logs.contains("api written"), "the controller's logs were captured");
    for k in [&key, &short, &new_key] {
        assert!(!logs.contains(k.as_str()), "a key appeared in the logs");
        assert!(!logs.contains(&k[5..]), "a key's hex appeared in the logs");
    }
}
