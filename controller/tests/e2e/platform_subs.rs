//! WSO2's subscription-validation scenario (reference §8.5) over the platform link: a plan made
//! here, an API offering it, and the subscription arriving as a `subscription.created` event from
//! the fake platform API: 403 before it, 200 after it with `Subscription-Key`, 429 past the plan's
//! limit. Plans pushed by the platform drive enforcement the same way.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tollgate_testkit::Echo;
use tollgate_testkit::platform::FakePlatform;

use crate::platform::{TOKEN, WAIT, link_to};
use crate::stack::{Stack, eventually, send};
use crate::subscriptions::{call, post, subscribed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_validation_feature_with_the_platform_link() {
    let echo = Echo::start("backend").await;
    let fake = FakePlatform::start(TOKEN).await;
    let s = Stack::with(|c| link_to(&fake, c)).await;
    fake.wait_connections(1, WAIT).await;
    let url = format!("http://127.0.0.1:{}", echo.port);

    let (st, plan) = post(
        &s,
        "/subscription-plans",
        json!({"planName": "Business", "throttleLimitCount": 3, "throttleLimitUnit": "Min"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{plan}");
    let (st, api) = s.deploy(&subscribed("sv-api", &url, &["Business"], false)).await;
    assert_eq!(st, StatusCode::CREATED, "{api}");
    let api_id = api["status"]["uuid"].as_str().unwrap().to_string();
    s.wait_status("/sv-api/health", None, 403).await;
    assert_eq!(call(&s, "/sv-api/health", None, None).await.0, 403);

    let token = "mock-subscription-token-for-it-test";
    let sub = json!({"id": "sub-it-1", "apiId": api_id, "subscriptionToken": token,
                     "subscriptionPlanId": plan["id"], "status": "ACTIVE"});
    // The four counted requests below must fall in one minute of the 3-a-minute plan.
    crate::stack::fresh_minute().await;
    fake.push(&fake.subscription_event("subscription.created", &sub));
    eventually(|| async { call(&s, "/sv-api/health", Some(token), None).await.0 == 200 }).await;
    assert_eq!(call(&s, "/sv-api/health", Some(token), None).await.0, 200);
    assert_eq!(call(&s, "/sv-api/health", Some(token), None).await.0, 200);
    let (st, headers, body) = call(&s, "/sv-api/health", Some(token), None).await;
    assert_eq!(st, 429, "the fourth request of a 3-a-minute plan: {body}");
    assert!(headers.contains_key("retry-after"));

    // The subscription shows up over REST as the platform's, never with its token.
    let (_, listed) = send(s.mgmt(Method::GET, "/subscriptions?apiId=sv-api")).await;
    assert_eq!(listed["subscriptions"][0]["origin"], "control_plane", "{listed}");
    assert!(!listed.to_string().contains(token));

    // A plan pushed by the platform, and a subscription on it: its limit applies; an INACTIVE
    // update of the plan closes the subscription.
    let pushed_plan = json!({"id": "plan-cp-1", "handle": "tiny", "planName": "Tiny", "throttleLimitCount": 1,
                             "throttleLimitUnit": "HOUR", "stopOnQuotaReach": true});
    fake.push(&fake.plan_event("subscriptionPlan.created", &pushed_plan));
    let (st, _) = s.deploy(&subscribed("sv-two", &url, &[], false)).await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, two) = send(s.mgmt(Method::GET, "/rest-apis/sv-two")).await;
    let sub2 = json!({"id": "sub-it-2", "apiId": two["status"]["uuid"], "subscriptionToken": "second-token-0123456789",
                      "subscriptionPlanId": "plan-cp-1", "status": "ACTIVE"});
    fake.push(&fake.subscription_event("subscription.created", &sub2));
    eventually(|| async { call(&s, "/sv-two/x", Some("second-token-0123456789"), None).await.0 == 200 }).await;
    assert_eq!(
        call(&s, "/sv-two/x", Some("second-token-0123456789"), None).await.0,
        429,
        "1 an hour"
    );
    let inactive = json!({"id": "plan-cp-1", "handle": "tiny", "planName": "Tiny", "status": "INACTIVE"});
    fake.push(&fake.plan_event("subscriptionPlan.updated", &inactive));
    eventually(|| async { call(&s, "/sv-two/x", Some("second-token-0123456789"), None).await.0 == 403 }).await;

    // subscription.deleted closes the first one.
    fake.push(&fake.subscription_event("subscription.deleted", &sub));
    eventually(|| async { call(&s, "/sv-api/health", Some(token), None).await.0 == 403 }).await;
}
