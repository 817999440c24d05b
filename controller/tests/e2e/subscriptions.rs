//! Plans, subscriptions and quotas end to end (the subscriptions issue, reference §1.7, §1.8, §8.5):
//! managed over REST, enforced by ext_authz through the real Envoy: 403 without a usable
//! subscription, 200 with one, 429 past the plan's quota, exact under concurrency, and a spent day
//! quota that survives a restart.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_testkit::Echo;

use crate::api_yaml;
use crate::stack::{Stack, send};

/// An API whose every GET needs a subscription token in `Subscription-Key` (and, with `key`,
/// an API key in `X-API-Key` too), offering `plans`.
pub fn subscribed(name: &str, url: &str, plans: &[&str], key: bool) -> String {
    let mut policies = String::from(
        "    - {name: subscription-validation, version: v1, params: {subscriptionKeyHeader: Subscription-Key}}\n",
    );
    if key {
        policies.push_str("    - {name: api-key-auth, version: v1, params: {key: X-API-Key, in: header}}\n");
    }
    let offered = if plans.is_empty() {
        String::new()
    } else {
        format!("  subscriptionPlans: [{}]\n", plans.join(", "))
    };
    api_yaml(name, &format!("/{name}"), url, "    - {method: GET, path: /*}\n").replace(
        "  operations:",
        &format!("{offered}  policies:\n{policies}  operations:"),
    )
}

pub async fn post(s: &Stack, path: &str, body: Value) -> (StatusCode, Value) {
    send(s.mgmt(Method::POST, path).json(&body)).await
}

pub async fn plan(s: &Stack, body: Value) -> String {
    let (st, b) = post(s, "/subscription-plans", body).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    b["id"].as_str().unwrap().to_string()
}

/// Subscribes to `api` on `plan`; the subscription's id and its token.
pub async fn subscribe(s: &Stack, api: &str, plan: Option<&str>) -> (String, String) {
    let (st, b) = post(s, "/subscriptions", json!({"apiId": api, "subscriptionPlanId": plan})).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    (
        b["id"].as_str().unwrap().to_string(),
        b["subscriptionToken"].as_str().unwrap().to_string(),
    )
}

/// GET through Envoy with a subscription token (and optionally a key): status and headers.
pub async fn call(
    s: &Stack,
    path: &str,
    token: Option<&str>,
    key: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut r = s.gw(Method::GET, path, None);
    if let Some(t) = token {
        r = r.header("subscription-key", t);
    }
    if let Some(k) = key {
        r = r.header("x-api-key", k);
    }
    let resp = r.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap_or_default())
}

fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["field"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_are_managed_with_field_level_errors() {
    let s = Stack::start().await;
    let id = plan(
        &s,
        json!({"planName": " Gold ", "throttleLimitCount": 10, "throttleLimitUnit": "MINUTE"}),
    )
    .await;
    let (st, b) = send(s.mgmt(Method::GET, &format!("/subscription-plans/{id}"))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (
            b["planName"].as_str(),
            b["throttleLimitUnit"].as_str(),
            b["stopOnQuotaReach"].as_bool()
        ),
        (Some("Gold"), Some("Min"), Some(true))
    );

    let (st, b) = post(&s, "/subscription-plans", json!({"planName": "gold"})).await;
    assert_eq!(st, StatusCode::CONFLICT, "names are unique without case: {b}");
    let (st, b) = post(
        &s,
        "/subscription-plans",
        json!({"planName": "x", "throttleLimitCount": 0, "throttleLimitUnit": "Week"}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let mut f = fields(&b);
    f.sort();
    assert_eq!(f, ["throttleLimitCount", "throttleLimitUnit"], "{b}");
    let (st, b) = post(
        &s,
        "/subscription-plans",
        json!({"planName": "y", "throttleLimitCount": 5}),
    )
    .await;
    assert_eq!(
        (st, fields(&b)),
        (StatusCode::BAD_REQUEST, vec!["throttleLimitUnit".to_string()])
    );

    let (st, b) = send(
        s.mgmt(Method::PUT, &format!("/subscription-plans/{id}"))
            .json(&json!({"status": "INACTIVE"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        (b["status"].as_str(), b["throttleLimitCount"].as_i64()),
        (Some("INACTIVE"), Some(10)),
        "a PUT is partial"
    );
    let (st, b) = send(s.mgmt(Method::GET, "/subscription-plans")).await;
    assert_eq!((st, b["count"].as_u64()), (StatusCode::OK, Some(1)));
    let (st, _) = send(s.mgmt(Method::DELETE, &format!("/subscription-plans/{id}"))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = send(s.mgmt(Method::GET, &format!("/subscription-plans/{id}"))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_open_their_api_and_stop_at_the_quota() {
    let echo = Echo::start("backend").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(
        s.deploy(&subscribed("shop", &url, &["Business", "Free"], false))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        s.deploy(&subscribed("other", &url, &[], false)).await.0,
        StatusCode::CREATED
    );
    let business = plan(
        &s,
        json!({"planName": "Business", "throttleLimitCount": 3, "throttleLimitUnit": "Min"}),
    )
    .await;
    let free = plan(&s, json!({"planName": "Free"})).await;
    let gold = plan(&s, json!({"planName": "Gold"})).await;

    let (st, _, body) = call(&s, "/shop/x", None, None).await;
    assert_eq!(st, 403, "no token: {body}");
    assert!(body.contains("forbidden"), "{body}");

    // Refusals with their fields.
    let (st, b) = post(&s, "/subscriptions", json!({"apiId": "nope"})).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{b}");
    let (st, b) = post(
        &s,
        "/subscriptions",
        json!({"apiId": "shop", "subscriptionPlanId": gold}),
    )
    .await;
    assert_eq!(
        (st, fields(&b)),
        (StatusCode::BAD_REQUEST, vec!["subscriptionPlanId".to_string()]),
        "not offered: {b}"
    );

    // Subscribe: a generated token, shown once, with how to call the API.
    let (st, b) = post(
        &s,
        "/subscriptions",
        json!({"apiId": "shop", "subscriptionPlanId": business, "applicationId": "app-1"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (id, token) = (
        b["id"].as_str().unwrap().to_string(),
        b["subscriptionToken"].as_str().unwrap().to_string(),
    );
    assert!(token.starts_with("tgsub_"));
    let inv = &b["invocation"];
    assert_eq!(
        (inv["credentialHeaderName"].as_str(), inv["credentialValue"].as_str()),
        (Some("Subscription-Key"), Some(token.as_str()))
    );
    assert!(inv["curlExample"].as_str().unwrap().contains(&token));
    let (_, got) = send(s.mgmt(Method::GET, &format!("/subscriptions/{id}"))).await;
    assert!(
        got.get("subscriptionToken").is_none() && !got.to_string().contains(&token),
        "never shown again: {got}"
    );
    let (st, _) = post(
        &s,
        "/subscriptions",
        json!({"apiId": "shop", "subscriptionToken": token}),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "same API, same token");

    // 3 a minute: the fourth is 429 with the rate-limit headers (all four in one minute).
    crate::stack::fresh_minute().await;
    for i in 0..3 {
        let (st, h, body) = call(&s, "/shop/x", Some(&token), None).await;
        assert_eq!(st, 200, "request {i}: {body}");
        assert_eq!(h["x-ratelimit-limit"], "3");
    }
    let (st, h, body) = call(&s, "/shop/x", Some(&token), None).await;
    assert_eq!(st, 429, "{body}");
    assert!(
        h.contains_key("retry-after") && h["x-ratelimit-remaining"] == "0",
        "{h:?}"
    );
    let (st, _, _) = call(&s, "/other/x", Some(&token), None).await;
    assert_eq!(st, 403, "a token opens its own API only");

    // Lifecycle on an unlimited plan: pause, resume, regenerate, delete.
    let (sid, tok) = subscribe(&s, "shop", Some(&free)).await;
    assert_eq!(call(&s, "/shop/x", Some(&tok), None).await.0, 200);
    let (st, _) = send(
        s.mgmt(Method::PUT, &format!("/subscriptions/{sid}"))
            .json(&json!({"status": "INACTIVE"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        call(&s, "/shop/x", Some(&tok), None).await.0,
        403,
        "inactive bites at once"
    );
    send(
        s.mgmt(Method::PUT, &format!("/subscriptions/{sid}"))
            .json(&json!({"status": "ACTIVE"})),
    )
    .await;
    assert_eq!(call(&s, "/shop/x", Some(&tok), None).await.0, 200);
    let (st, b) = post(&s, &format!("/subscriptions/{sid}/regenerate-token"), json!({})).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let fresh = b["subscriptionToken"].as_str().unwrap().to_string();
    assert_eq!(b["invocation"]["credentialValue"].as_str(), Some(fresh.as_str()));
    assert_eq!(
        call(&s, "/shop/x", Some(&tok), None).await.0,
        403,
        "the old token is refused at once"
    );
    assert_eq!(call(&s, "/shop/x", Some(&fresh), None).await.0, 200);
    let (st, b) = send(s.mgmt(Method::GET, "/subscriptions?apiId=shop&status=ACTIVE")).await;
    assert_eq!((st, b["count"].as_u64()), (StatusCode::OK, Some(2)), "{b}");
    let (st, _) = send(s.mgmt(Method::DELETE, &format!("/subscriptions/{sid}"))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        call(&s, "/shop/x", Some(&fresh), None).await.0,
        403,
        "deleted bites at once"
    );

    // A plan in use cannot be deleted; an inactive plan closes its subscriptions.
    let (st, _) = send(s.mgmt(Method::DELETE, &format!("/subscription-plans/{business}"))).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (s2, t2) = subscribe(&s, "shop", Some(&free)).await;
    send(
        s.mgmt(Method::PUT, &format!("/subscription-plans/{free}"))
            .json(&json!({"status": "INACTIVE"})),
    )
    .await;
    assert_eq!(call(&s, "/shop/x", Some(&t2), None).await.0, 403, "inactive plan");
    let _ = s2;

    // Deleting the API removes its subscriptions.
    send(s.mgmt(Method::DELETE, "/rest-apis/shop")).await;
    let (_, b) = send(s.mgmt(Method::GET, "/subscriptions")).await;
    assert_eq!(b["count"].as_u64(), Some(0), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_a_subscribed_application_passes_in_one_check() {
    let echo = Echo::start("backend").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(
        s.deploy(&subscribed("maps", &url, &[], true)).await.0,
        StatusCode::CREATED
    );
    let limited = plan(
        &s,
        json!({"planName": "Two", "throttleLimitCount": 2, "throttleLimitUnit": "Hour"}),
    )
    .await;
    let (st, b) = post(
        &s,
        "/rest-apis/maps/api-keys",
        json!({"name": "app-key", "applicationId": "app-9"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let key = b["apiKey"]["apiKey"].as_str().unwrap().to_string();
    let (st, _, body) = call(&s, "/maps/x", None, Some(&key)).await;
    assert_eq!(st, 403, "a key alone does not subscribe: {body}");
    let (st, b) = post(
        &s,
        "/subscriptions",
        json!({"apiId": "maps", "applicationId": "app-9", "subscriptionPlanId": limited}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (st, h, body) = call(&s, "/maps/x", None, Some(&key)).await;
    assert_eq!(st, 200, "the key's application is subscribed: {body}");
    assert_eq!(h["x-ratelimit-limit"], "2");
    let echoed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let headers = echoed["headers"].to_string();
    assert!(
        headers.contains(b["id"].as_str().unwrap()) && headers.contains("app-9"),
        "ids upstream: {headers}"
    );
    assert_eq!(call(&s, "/maps/x", None, Some(&key)).await.0, 200);
    assert_eq!(
        call(&s, "/maps/x", None, Some(&key)).await.0,
        429,
        "the application's plan applies"
    );
    assert_eq!(call(&s, "/maps/x", None, None).await.0, 401, "no key is still 401");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_are_exact_under_concurrency_and_survive_a_restart() {
    let echo = Echo::start("backend").await;
    let mut s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(
        s.deploy(&subscribed("busy", &url, &[], false)).await.0,
        StatusCode::CREATED
    );
    let ten = plan(
        &s,
        json!({"planName": "Ten", "throttleLimitCount": 10, "throttleLimitUnit": "Day"}),
    )
    .await;
    let (_, a) = subscribe(&s, "busy", Some(&ten)).await;
    let (_, b) = subscribe(&s, "busy", Some(&ten)).await;

    let calls = (0..40).map(|_| {
        let (http, port, a) = (s.http.clone(), s.port, a.clone());
        tokio::spawn(async move {
            let r = http
                .get(format!("http://127.0.0.1:{port}/busy/x"))
                .header("subscription-key", a)
                .send()
                .await;
            r.map(|r| r.status().as_u16()).unwrap_or(0)
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((ok, limited), (10, 30), "exactly the limit is admitted: {statuses:?}");
    assert_eq!(
        call(&s, "/busy/x", Some(&b), None).await.0,
        200,
        "another subscription on the plan has its own count"
    );

    // The spent day quota survives a restart of the controller (persisted every second). A probe
    // on an unlimited plan says when the restarted authz service answers, without spending.
    let free = plan(&s, json!({"planName": "Unlimited"})).await;
    let (_, probe) = subscribe(&s, "busy", Some(&free)).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    s.restart_controller().await;
    crate::stack::eventually(|| async { call(&s, "/busy/x", Some(&probe), None).await.0 == 200 }).await;
    let (st, _, body) = call(&s, "/busy/x", Some(&a), None).await;
    assert_eq!(st, 429, "the spent quota is still spent after the restart: {body}");
    for i in 0..9 {
        let (st, _, body) = call(&s, "/busy/x", Some(&b), None).await;
        assert_eq!(st, 200, "the other subscription had used 1 of 10 (request {i}): {body}");
    }
    assert_eq!(call(&s, "/busy/x", Some(&b), None).await.0, 429);
}
