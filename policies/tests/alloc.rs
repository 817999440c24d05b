//! Refusals allocate nothing: the 401, the 403s and (after its first encoding in a second) the
//! 429, measured with a counting global allocator. One test in this binary, so no other test's
//! allocations are counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::sync::Arc;

use prost::Message;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tollgate_policies::authz::{
    AuthzService, KeyIndex, KeyRecord, PlanLimit, QuotaUnit, SharedIndex, SharedSubscriptions, SubscriptionRecord,
    SubscriptionWriter, ctx, digest_of,
};
use tollgate_proto::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const NOW: u64 = 1_767_225_610;

fn request(ext: &[(&str, &str)], headers: &[(&str, &str)]) -> Vec<u8> {
    CheckRequest {
        attributes: Some(AttributeContext {
            context_extensions: ext.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    path: "/orders".into(),
                    headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

fn service() -> AuthzService {
    let index = Arc::new(SharedIndex::default());
    index.store(KeyIndex::new((0..1000u32).map(|i| {
        let record = KeyRecord {
            api: "orders".into(),
            name: format!("k{i}").into(),
            application: Some(format!("app{i}").into()),
            expires_at: None,
        };
        (digest_of(format!("apip_{i}").as_bytes()), record)
    })));
    let subs = Arc::new(SharedSubscriptions::default());
    let mut w = SubscriptionWriter::new(subs.clone());
    w.replace_all((0..1000u32).map(|i| {
        let record = SubscriptionRecord {
            id: format!("s{i}").into(),
            api: "orders".into(),
            application: Some(format!("app{i}").into()),
            plan_expires_at: (i == 7).then_some(NOW),
            limit: Some(PlanLimit {
                count: 1,
                unit: QuotaUnit::Day,
                stop_on_reach: true,
            }),
        };
        (Some(digest_of(format!("sub_{i}").as_bytes())), record)
    }));
    AuthzService::with_subscriptions(index, subs)
}

/// Allocations made by `n` answers to `req` at `now`.
fn allocations(s: &AuthzService, req: &[u8], now: u64, n: usize) -> usize {
    let region = Region::new(GLOBAL);
    let mut bytes = 0;
    for _ in 0..n {
        bytes += s.respond(req, now).len();
    }
    std::hint::black_box(bytes);
    region.change().allocations
}

#[test]
fn refusals_allocate_nothing() {
    let s = service();
    let key_route = [
        (ctx::API, "orders"),
        (ctx::KEY_IN, "header"),
        (ctx::KEY_NAME, "x-api-key"),
    ];
    let sub_route = [
        (ctx::API, "orders"),
        (ctx::SUB, "true"),
        (ctx::SUB_HEADER, "subscription-key"),
        (ctx::SUB_COOKIE, "sk"),
    ];
    let refusals = [
        ("401 unknown key", request(&key_route, &[("x-api-key", "apip_nope")])),
        ("403 no token", request(&sub_route, &[("cookie", "a=b")])),
        (
            "403 unknown token",
            request(&sub_route, &[("subscription-key", "sub_nope")]),
        ),
        ("403 expired plan", request(&sub_route, &[("cookie", "sk=sub_7")])),
    ];
    for (case, req) in &refusals {
        assert!(!s.respond(req, NOW).is_empty());
        assert_eq!(allocations(&s, req, NOW, 1000), 0, "{case}");
    }
    // The quota of s1 is one a day: the first passes (and allocates its OK answer), the second is
    // the 429, encoded once for this second; every further one in the second reuses it.
    let spent = request(&sub_route, &[("subscription-key", "sub_1")]);
    assert!(allocations(&s, &spent, NOW, 1) > 0, "the allowed answer is built");
    let first = s.respond(&spent, NOW);
    assert_eq!(allocations(&s, &spent, NOW, 1000), 0, "429");
    assert_eq!(s.respond(&spent, NOW), first);
}
