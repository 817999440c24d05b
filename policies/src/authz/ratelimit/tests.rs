use std::collections::HashMap;

use serde_json::json;
use tollgate_proto::pb::envoy::config::core::v3::{Address, SocketAddress, address};
use tollgate_proto::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context};

use super::*;
use crate::AuthzService;
use crate::authz::{LocalQuotas, SharedIndex};
use crate::catalogue::ratelimit::{Scope, lower};
use crate::ctx;

const AT: Scope<'static> = Scope {
    api: "orders",
    api_name: "Orders",
    api_version: "v1.0",
    route: "GET /orders/*",
    operation: false,
};

/// The `tollgate.rl` lines of `policy` with `params`.
fn lines(policy: &str, params: serde_json::Value) -> String {
    let q = lower(policy, &params, &AT);
    assert!(!q.is_empty() && q.iter().all(|l| !l.limits.is_empty()), "{q:?}");
    q.iter().map(|l| l.encode()).collect::<Vec<_>>().join("\n")
}

fn request(rl: &str, headers: &[(&str, &str)], ip: &str) -> Vec<u8> {
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(attribute_context::Peer {
                address: Some(Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address: ip.into(),
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            }),
            context_extensions: [(ctx::API, "orders"), (ctx::RATE_LIMIT, rl)]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    path: "/orders/1".into(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<HashMap<_, _>>(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

/// The HTTP status the service answers (200 when allowed), and the response headers.
fn status(s: &AuthzService, req: &[u8], now: u64) -> (u32, HashMap<String, String>, String) {
    let r = CheckResponse::decode(s.respond(req, now)).unwrap();
    let pairs = |h: &[HeaderValueOption]| -> HashMap<String, String> {
        h.iter()
            .filter_map(|o| o.header.as_ref())
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect()
    };
    match r.http_response {
        Some(check_response::HttpResponse::OkResponse(ok)) => (200, pairs(&ok.response_headers_to_add), String::new()),
        Some(check_response::HttpResponse::DeniedResponse(d)) => {
            (d.status.map_or(0, |s| s.code as u32), pairs(&d.headers), d.body)
        }
        _ => (0, HashMap::new(), String::new()),
    }
}

fn service() -> AuthzService {
    AuthzService::new(Arc::new(SharedIndex::default()))
}

#[test]
fn the_request_past_the_limit_gets_429_with_the_headers_and_wso2s_body() {
    let s = service();
    let rl = lines(
        "basic-ratelimit",
        json!({"limits": [{"requests": 3, "duration": "1m"}]}),
    );
    let now = 6_000; // a minute boundary: the window ends at 6,060
    for i in 0..3 {
        let (st, h, _) = status(&s, &request(&rl, &[], "10.0.0.1"), now + 5);
        assert_eq!(st, 200, "request {i}");
        assert_eq!(h["x-ratelimit-remaining"], (2 - i).to_string());
        assert_eq!(h["ratelimit-policy"], "\"default\";q=3;w=60");
    }
    let (st, h, body) = status(&s, &request(&rl, &[], "10.0.0.1"), now + 5);
    assert_eq!(st, 429);
    assert_eq!(body, crate::catalogue::ratelimit::DEFAULT_BODY);
    assert_eq!(
        (
            h["retry-after"].as_str(),
            h["x-ratelimit-limit"].as_str(),
            h["x-ratelimit-remaining"].as_str(),
            h["x-ratelimit-reset"].as_str(),
            h["ratelimit"].as_str(),
            h["content-type"].as_str()
        ),
        ("55", "3", "0", "55", "\"default\";r=0;t=55", "application/json")
    );
    // The next window starts afresh.
    assert_eq!(status(&s, &request(&rl, &[], "10.0.0.1"), now + 60).0, 200);
}

#[test]
fn every_limit_counts_and_the_most_restrictive_wins() {
    let s = service();
    let rl = lines(
        "basic-ratelimit",
        json!({"limits": [{"requests": 100, "duration": "1h"}, {"requests": 2, "duration": "10s"}]}),
    );
    let mut admitted = 0;
    for now in (7_200..7_260).step_by(2) {
        for _ in 0..3 {
            if status(&s, &request(&rl, &[], "a"), now).0 == 200 {
                admitted += 1;
            }
        }
    }
    // Two per 10 s window over 60 s: 12, far below the hour's 100.
    assert_eq!(admitted, 12);
    // Allowed answers report the tighter limit.
    let (_, h, _) = status(&s, &request(&rl, &[], "a"), 7_260);
    assert_eq!(
        (h["x-ratelimit-limit"].as_str(), h["x-ratelimit-remaining"].as_str()),
        ("2", "1")
    );

    // With the hour the tighter one, it refuses once spent, whatever the short window says.
    let s = service();
    let rl = lines(
        "basic-ratelimit",
        json!({"limits": [{"requests": 3, "duration": "1h"}, {"requests": 2, "duration": "1s"}]}),
    );
    let ok: Vec<u32> = (0..6)
        .map(|i| status(&s, &request(&rl, &[], "a"), 3_600 + i * 10).0)
        .collect();
    assert_eq!(ok, [200, 200, 200, 429, 429, 429]);
}

#[test]
fn advanced_keys_count_apart_and_refuse_with_the_configured_answer() {
    let s = service();
    let rl = lines(
        "advanced-ratelimit",
        json!({
            "quotas": [{"name": "per-user", "limits": [{"limit": 1, "duration": "1h"}],
                        "keyExtraction": [{"type": "header", "key": "X-User"}, {"type": "ip"}]}],
            "onRateLimitExceeded": {"statusCode": 503, "body": "slow down", "bodyFormat": "plain"}
        }),
    );
    let call = |user: Option<&str>, ip: &str| {
        let headers: Vec<(&str, &str)> = user.map(|u| ("x-user", u)).into_iter().collect();
        status(&s, &request(&rl, &headers, ip), 3_600)
    };
    assert_eq!(call(Some("alice"), "1.1.1.1").0, 200);
    let (st, h, body) = call(Some("alice"), "1.1.1.1");
    assert_eq!(
        (st, body.as_str(), h["content-type"].as_str()),
        (503, "slow down", "text/plain")
    );
    assert_eq!(h["ratelimit"], "\"per-user\";r=0;t=3600");
    // Another user, the same user elsewhere, no user and an empty user: four more keys.
    assert_eq!(call(Some("bob"), "1.1.1.1").0, 200);
    assert_eq!(call(Some("alice"), "2.2.2.2").0, 200);
    assert_eq!(call(None, "1.1.1.1").0, 200);
    assert_eq!(call(Some(""), "1.1.1.1").0, 200);
    assert_eq!(call(None, "1.1.1.1").0, 503);
}

#[test]
fn api_level_counts_per_api_and_operation_level_per_route() {
    let params = json!({"limits": [{"requests": 1, "duration": "1h"}]});
    let api = |route| lower("basic-ratelimit", &params, &Scope { route, ..AT });
    let op = |route| {
        lower(
            "basic-ratelimit",
            &params,
            &Scope {
                route,
                operation: true,
                ..AT
            },
        )
    };
    assert_eq!(api("GET /a")[0].scope, api("GET /b")[0].scope);
    assert_ne!(op("GET /a")[0].scope, op("GET /b")[0].scope);
    assert_ne!(op("GET /a")[0].scope, api("GET /a")[0].scope);
    // advanced-ratelimit keys by route by default, by API with `apiname` alone.
    let adv = |keys: serde_json::Value, route| {
        lower(
            "advanced-ratelimit",
            &json!({"quotas": [{"limits": [{"limit": 1, "duration": "1s"}]}], "keyExtraction": keys}),
            &Scope { route, ..AT },
        )[0]
        .scope
        .clone()
    };
    assert_ne!(adv(json!([]), "GET /a"), adv(json!([]), "GET /b"));
    let by_api = json!([{"type": "apiname"}]);
    assert_eq!(adv(by_api.clone(), "GET /a"), adv(by_api, "GET /b"));
}

#[test]
fn the_map_of_keys_stays_bounded_under_a_flood() {
    let s = service().with_rate_limit_entries(640);
    let rl = lines(
        "advanced-ratelimit",
        json!({"quotas": [{"limits": [{"limit": 1, "duration": "1h"}], "keyExtraction": [{"type": "header", "key": "x-k"}]}]}),
    );
    for i in 0..5_000 {
        let k = i.to_string();
        assert_eq!(status(&s, &request(&rl, &[("x-k", &k)], "a"), 3_600).0, 200);
    }
    assert!(s.rate_limits.len() <= 640, "{}", s.rate_limits.len());
    // Spent keys whose window is over are dropped first.
    let limits = RateLimits::new(64);
    let backend = LocalQuotas;
    let raw = lines(
        "basic-ratelimit",
        json!({"limits": [{"requests": 1, "duration": "1s"}]}),
    );
    limits.check(&raw, &[], None, &backend, 10).unwrap();
    assert_eq!(limits.len(), 1);
    let mut map = limits.shards[0].lock().unwrap();
    evict(&mut map, 0, 20);
    assert!(map.is_empty());
}

#[test]
fn a_malformed_line_is_refused() {
    let s = service();
    assert_eq!(status(&s, &request("nonsense", &[], "a"), 10).0, 401);
    assert_eq!(status(&s, &request("s 1/0 - n 429 json b", &[], "a"), 10).0, 401);
}
