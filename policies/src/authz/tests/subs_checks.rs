//! The decision with subscription validation and quotas, on encoded requests as Envoy sends them.

use super::*;

const NOW: u64 = 1_767_225_600 + 10; // 2026-01-01T00:00:10Z

fn record(
    id: &str,
    api: &str,
    app: Option<&str>,
    expires: Option<u64>,
    limit: Option<PlanLimit>,
) -> SubscriptionRecord {
    SubscriptionRecord {
        id: id.into(),
        api: api.into(),
        application: app.map(Into::into),
        plan_expires_at: expires,
        limit,
    }
}

fn per_minute(count: u64, stop_on_reach: bool) -> Option<PlanLimit> {
    Some(PlanLimit {
        count,
        unit: QuotaUnit::Minute,
        stop_on_reach,
    })
}

/// Keys: `apip_good` (application shop), `apip_solo` (no application), `apip_app2` (shop2).
/// Subscriptions: s1 (token sub_good, shop), s2 (sub_quota, 3/min), s3 (sub_soft, 1/min, soft),
/// s4 (sub_expired, expires at NOW), s5 (sub_billing, API billing), s6 (no token, shop2).
fn service() -> (AuthzService, SubscriptionWriter) {
    let index = Arc::new(SharedIndex::default());
    let key = |name: &str, app: Option<&str>| KeyRecord {
        api: "orders".into(),
        name: name.into(),
        application: app.map(Into::into),
        expires_at: None,
    };
    index.store(KeyIndex::new([
        (digest_of(b"apip_good"), key("ci-key", Some("shop"))),
        (digest_of(b"apip_solo"), key("solo", None)),
        (digest_of(b"apip_app2"), key("k2", Some("shop2"))),
    ]));
    let subs = Arc::new(SharedSubscriptions::default());
    let mut w = SubscriptionWriter::new(subs.clone());
    w.replace_all([
        (
            Some(digest_of(b"sub_good")),
            record("s1", "orders", Some("shop"), None, None),
        ),
        (
            Some(digest_of(b"sub_quota")),
            record("s2", "orders", None, None, per_minute(3, true)),
        ),
        (
            Some(digest_of(b"sub_soft")),
            record("s3", "orders", None, None, per_minute(1, false)),
        ),
        (
            Some(digest_of(b"sub_expired")),
            record("s4", "orders", None, Some(NOW), None),
        ),
        (
            Some(digest_of(b"sub_billing")),
            record("s5", "billing", None, None, None),
        ),
        (None, record("s6", "orders", Some("shop2"), None, None)),
    ]);
    (AuthzService::with_subscriptions(index, subs), w)
}

const SUB_ROUTE: &[(&str, &str)] = &[
    (ctx::API, "orders"),
    (ctx::SUB, "true"),
    (ctx::SUB_HEADER, "subscription-key"),
];

fn both_route() -> Vec<(&'static str, &'static str)> {
    let mut r = HEADER_ROUTE.to_vec();
    r.extend_from_slice(&SUB_ROUTE[1..]);
    r
}

fn ok(r: CheckResponse) -> tollgate_proto::pb::envoy::service::auth::v3::OkHttpResponse {
    assert_eq!(r.status.as_ref().map(|s| s.code), Some(0), "{r:?}");
    match r.http_response {
        Some(check_response::HttpResponse::OkResponse(ok)) => ok,
        other => panic!("not an OK answer: {other:?}"),
    }
}

fn pairs(h: &[tollgate_proto::pb::envoy::config::core::v3::HeaderValueOption]) -> Vec<(String, String)> {
    h.iter()
        .filter_map(|h| h.header.as_ref().map(|h| (h.key.clone(), h.value.clone())))
        .collect()
}

fn value(h: &[(String, String)], name: &str) -> Option<String> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

#[test]
fn a_valid_subscription_token_is_allowed_and_named_upstream() {
    let (s, _w) = service();
    let r = answer(&s, &request(SUB_ROUTE, &[("subscription-key", " sub_good ")], "/"), NOW);
    let up = pairs(&ok(r).headers);
    assert_eq!(value(&up, SUBSCRIPTION_HEADER).as_deref(), Some("s1"));
    assert_eq!(value(&up, APPLICATION_HEADER).as_deref(), Some("shop"));
    assert_eq!(value(&up, KEY_NAME_HEADER), None, "no key on this route");
}

#[test]
fn subscription_refusals_are_pre_built_403s() {
    let (s, _w) = service();
    let cases = [
        (vec![], Refusal::Missing),
        (vec![("subscription-key", "  ")], Refusal::Missing),
        (vec![("subscription-key", "sub_unknown")], Refusal::Invalid),
        (vec![("subscription-key", "sub_billing")], Refusal::Invalid),
        (vec![("subscription-key", "sub_expired")], Refusal::Expired),
        (vec![("x-api-key", "sub_good")], Refusal::Missing),
    ];
    for (i, (headers, why)) in cases.iter().enumerate() {
        let got = s.respond(&request(SUB_ROUTE, headers, "/").encode_to_vec(), NOW);
        assert_eq!(&got, s.forbidden(*why), "case {i}");
        assert_eq!(got.as_ptr(), s.forbidden(*why).as_ptr(), "case {i}: the shared bytes");
    }
    let r = CheckResponse::decode(s.forbidden(Refusal::Invalid).clone()).unwrap();
    assert_eq!(r.status.unwrap().code, 7, "PERMISSION_DENIED");
    let Some(check_response::HttpResponse::DeniedResponse(d)) = r.http_response else {
        panic!()
    };
    assert_eq!(d.status.unwrap().code, 403);
    let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(body["error"], "forbidden");
    // The plan expires at NOW: a second earlier the same token passes.
    let r = answer(
        &s,
        &request(SUB_ROUTE, &[("subscription-key", "sub_expired")], "/"),
        NOW - 1,
    );
    ok(r);
}

#[test]
fn the_token_can_come_from_a_cookie_after_the_header() {
    let (s, _w) = service();
    let mut route = SUB_ROUTE.to_vec();
    route.push((ctx::SUB_COOKIE, "sk"));
    let r = answer(&s, &request(&route, &[("cookie", "a=1; sk=sub_good")], "/"), NOW);
    assert_eq!(
        value(&pairs(&ok(r).headers), SUBSCRIPTION_HEADER).as_deref(),
        Some("s1")
    );
    // The header wins over the cookie.
    let r = answer(
        &s,
        &request(
            &route,
            &[("cookie", "sk=sub_good"), ("subscription-key", "sub_quota")],
            "/",
        ),
        NOW,
    );
    assert_eq!(
        value(&pairs(&ok(r).headers), SUBSCRIPTION_HEADER).as_deref(),
        Some("s2")
    );
    // Without the cookie name on the route, the cookie is not read.
    let got = s.respond(
        &request(SUB_ROUTE, &[("cookie", "sk=sub_good")], "/").encode_to_vec(),
        NOW,
    );
    assert_eq!(&got, s.forbidden(Refusal::Missing));
}

#[test]
fn key_and_subscription_together() {
    let (s, _w) = service();
    let route = both_route();
    // A bad key is the 401 whatever the token.
    let got = s.respond(
        &request(&route, &[("x-api-key", "wrong"), ("subscription-key", "sub_good")], "/").encode_to_vec(),
        NOW,
    );
    assert_eq!(&got, s.deny());
    // A key of application shop2 and no token: shop2's subscription (s6, which has no token).
    let r = answer(&s, &request(&route, &[("x-api-key", "apip_app2")], "/"), NOW);
    let up = pairs(&ok(r).headers);
    assert_eq!(value(&up, SUBSCRIPTION_HEADER).as_deref(), Some("s6"));
    assert_eq!(value(&up, KEY_NAME_HEADER).as_deref(), Some("k2"));
    assert_eq!(value(&up, APPLICATION_HEADER).as_deref(), Some("shop2"));
    // A key without an application and no token: nothing stands in for the token.
    let got = s.respond(
        &request(&route, &[("x-api-key", "apip_solo")], "/").encode_to_vec(),
        NOW,
    );
    assert_eq!(&got, s.forbidden(Refusal::Missing));
    // A key and a token: the token decides the subscription.
    let r = answer(
        &s,
        &request(
            &route,
            &[("x-api-key", "apip_solo"), ("subscription-key", "sub_good")],
            "/",
        ),
        NOW,
    );
    let up = pairs(&ok(r).headers);
    assert_eq!(value(&up, SUBSCRIPTION_HEADER).as_deref(), Some("s1"));
    assert_eq!(value(&up, KEY_NAME_HEADER).as_deref(), Some("solo"));
}

#[test]
fn a_spent_quota_is_a_429_with_rate_limit_headers() {
    let (s, _w) = service();
    let req = request(SUB_ROUTE, &[("subscription-key", "sub_quota")], "/").encode_to_vec();
    for remaining in ["2", "1", "0"] {
        let ok = ok(CheckResponse::decode(s.respond(&req, NOW)).unwrap());
        let client = pairs(&ok.response_headers_to_add);
        assert_eq!(value(&client, "x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(value(&client, "x-ratelimit-remaining").as_deref(), Some(remaining));
        assert_eq!(value(&client, "x-ratelimit-reset").as_deref(), Some("50"));
        assert_eq!(value(&client, "ratelimit-policy").as_deref(), Some("\"plan\";q=3;w=60"));
        assert_eq!(
            value(&client, "ratelimit").as_deref(),
            Some(format!("\"plan\";r={remaining};t=50").as_str())
        );
    }
    let refused = s.respond(&req, NOW);
    let r = CheckResponse::decode(refused.clone()).unwrap();
    assert_eq!(r.status.as_ref().unwrap().code, 8, "RESOURCE_EXHAUSTED");
    let Some(check_response::HttpResponse::DeniedResponse(d)) = r.http_response else {
        panic!()
    };
    assert_eq!(d.status.unwrap().code, 429);
    assert_eq!(d.body, QUOTA_BODY);
    let h = pairs(&d.headers);
    assert_eq!(value(&h, "retry-after").as_deref(), Some("50"));
    assert_eq!(value(&h, "x-ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(value(&h, "ratelimit").as_deref(), Some("\"plan\";r=0;t=50"));
    assert_eq!(value(&h, "content-type").as_deref(), Some("application/json"));
    // The same second: the same encoded answer, shared.
    assert_eq!(s.respond(&req, NOW).as_ptr(), refused.as_ptr());
    // The next second counts down; the next minute is a new window.
    let r = CheckResponse::decode(s.respond(&req, NOW + 1)).unwrap();
    let Some(check_response::HttpResponse::DeniedResponse(d)) = r.http_response else {
        panic!()
    };
    assert_eq!(value(&pairs(&d.headers), "retry-after").as_deref(), Some("49"));
    ok(CheckResponse::decode(s.respond(&req, NOW + 50)).unwrap());
}

#[test]
fn a_soft_quota_passes_and_says_it_is_spent() {
    let (s, _w) = service();
    let req = request(SUB_ROUTE, &[("subscription-key", "sub_soft")], "/").encode_to_vec();
    for remaining in ["0", "0", "0"] {
        let ok = ok(CheckResponse::decode(s.respond(&req, NOW)).unwrap());
        let client = pairs(&ok.response_headers_to_add);
        assert_eq!(value(&client, "x-ratelimit-remaining").as_deref(), Some(remaining));
    }
}

#[test]
fn changes_are_seen_by_the_next_check_and_counts_survive_them() {
    let (s, mut w) = service();
    let req = request(SUB_ROUTE, &[("subscription-key", "sub_quota")], "/").encode_to_vec();
    ok(CheckResponse::decode(s.respond(&req, NOW)).unwrap());
    ok(CheckResponse::decode(s.respond(&req, NOW)).unwrap());
    // The plan changes (same subscription id): the count is kept.
    w.upsert(
        Some(digest_of(b"sub_quota")),
        record("s2", "orders", None, None, per_minute(2, true)),
    );
    let r = CheckResponse::decode(s.respond(&req, NOW)).unwrap();
    assert_eq!(r.status.unwrap().code, 8, "two counted, limit now two");
    // Revoked: the next check is a 403.
    let good = request(SUB_ROUTE, &[("subscription-key", "sub_good")], "/").encode_to_vec();
    ok(CheckResponse::decode(s.respond(&good, NOW)).unwrap());
    assert!(w.remove("s1"));
    assert_eq!(&s.respond(&good, NOW), s.forbidden(Refusal::Invalid));
}

#[test]
fn upstream_header_names_are_configurable() {
    let (s, _w) = service();
    let s = s.with_header_names(HeaderNames {
        key_name: "X-Key".into(),
        application: "x-app".into(),
        subscription: "x-sub".into(),
    });
    let route = both_route();
    let r = answer(
        &s,
        &request(
            &route,
            &[("x-api-key", "apip_good"), ("subscription-key", "sub_good")],
            "/",
        ),
        NOW,
    );
    let up = pairs(&ok(r).headers);
    assert_eq!(value(&up, "x-key").as_deref(), Some("ci-key"));
    assert_eq!(value(&up, "x-app").as_deref(), Some("shop"));
    assert_eq!(value(&up, "x-sub").as_deref(), Some("s1"));
    assert_eq!(up.len(), 3, "the application once: {up:?}");
    let (s, _w) = service();
    let s = s.with_header_names(HeaderNames {
        application: String::new(),
        ..HeaderNames::default()
    });
    let r = answer(&s, &request(SUB_ROUTE, &[("subscription-key", "sub_good")], "/"), NOW);
    let up = pairs(&ok(r).headers);
    assert_eq!(
        up,
        vec![(SUBSCRIPTION_HEADER.to_string(), "s1".to_string())],
        "an empty name is no header"
    );
}

#[test]
fn a_route_with_nothing_to_check_is_refused() {
    let (s, _w) = service();
    let got = s.respond(&request(&[(ctx::API, "orders")], &[], "/").encode_to_vec(), NOW);
    assert_eq!(&got, s.deny());
    let got = s.respond(
        &request(
            &[(ctx::API, "orders"), (ctx::SUB, "false")],
            &[("subscription-key", "sub_good")],
            "/",
        )
        .encode_to_vec(),
        NOW,
    );
    assert_eq!(&got, s.deny());
}
