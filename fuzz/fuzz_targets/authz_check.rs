//! The ext_authz hot path: an encoded `CheckRequest` as Envoy would send it, read in place by the
//! wire walker (`tollgate_policies::authz::wire`) and answered by `AuthzService::respond` against a
//! small key index and subscription index. Nothing may panic; every answer is a well-formed
//! `CheckResponse`; a refusal is the shared 401, one of the shared 403s or a 429; an allow can only
//! happen when a key or a subscription token (which the walker never decodes or copies) is in the
//! request, and names the key's record when it names a key.
//!
//! Input: the encoded request, exactly as it comes off the gRPC stream.

#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use prost::Message;
use tollgate_policies::authz::{
    AuthzService, KeyIndex, KeyRecord, PlanLimit, QuotaUnit, Refusal, SharedIndex, SharedSubscriptions,
    SubscriptionRecord, SubscriptionWriter, digest_of, wire,
};
use tollgate_proto::pb::envoy::service::auth::v3::{CheckResponse, check_response};

const GOOD: &[u8] = b"apip_good";
const EXPIRED: &[u8] = b"apip_old";
const TOKEN: &[u8] = b"sub_good";
const QUOTA_TOKEN: &[u8] = b"sub_quota";
const NOW: u64 = 1_000;

static SERVICE: LazyLock<AuthzService> = LazyLock::new(|| {
    let index = Arc::new(SharedIndex::default());
    index.store(KeyIndex::new([
        (
            digest_of(GOOD),
            KeyRecord {
                api: "orders".into(),
                name: "ci-key".into(),
                application: Some("shop".into()),
                expires_at: None,
            },
        ),
        (
            digest_of(EXPIRED),
            KeyRecord {
                api: "orders".into(),
                name: "old".into(),
                application: None,
                expires_at: Some(10),
            },
        ),
    ]));
    let subs = Arc::new(SharedSubscriptions::default());
    let mut writer = SubscriptionWriter::new(subs.clone());
    let sub = |id: &str, application: Option<&str>, limit| SubscriptionRecord {
        id: id.into(),
        api: "orders".into(),
        application: application.map(Into::into),
        plan_expires_at: None,
        limit,
    };
    let one_a_minute = Some(PlanLimit {
        count: 1,
        unit: QuotaUnit::Minute,
        stop_on_reach: true,
    });
    writer.replace_all([
        (Some(digest_of(TOKEN)), sub("s1", Some("shop"), None)),
        (Some(digest_of(QUOTA_TOKEN)), sub("s2", None, one_a_minute)),
    ]);
    AuthzService::with_subscriptions(index, subs)
});

fuzz_target!(|data: &[u8]| {
    // The walker's parts on their own, with a header name taken from the request itself.
    if let Some(facts) = wire::facts(data)
        && let Some(http) = facts.http
    {
        let _ = wire::path(http);
        let _ = wire::header(http, facts.key_name.unwrap_or(b"x-api-key"));
        if let Some(cookie) = wire::header(http, b"cookie") {
            let _ = wire::cookie(cookie, facts.sub_cookie.unwrap_or(b"sk"));
        }
    }

    let answer = SERVICE.respond(data, NOW);
    let response = CheckResponse::decode(answer.clone()).expect("every answer decodes");
    let code = response.status.as_ref().map(|s| s.code);
    match response.http_response {
        Some(check_response::HttpResponse::OkResponse(ok)) => {
            assert_eq!(code, Some(0), "an allow has gRPC status OK");
            let key_or_token = [GOOD, TOKEN, QUOTA_TOKEN].iter().any(|k| contains(data, k));
            assert!(key_or_token, "an allow without a key or token in the request");
            assert!(
                contains(data, b"orders"),
                "an allow without the key's API in the request"
            );
            for h in ok.headers.iter().filter_map(|h| h.header.as_ref()) {
                if h.key == "x-tollgate-key-name" {
                    assert!(contains(data, GOOD) && h.value == "ci-key", "a named key is the key sent");
                }
            }
        }
        _ if code == Some(8) => assert!(contains(data, QUOTA_TOKEN), "a 429 is the quota token's"),
        _ => {
            let shared = [Refusal::Missing, Refusal::Invalid, Refusal::Expired].map(|r| SERVICE.forbidden(r));
            assert!(
                &answer == SERVICE.deny() || shared.contains(&&answer),
                "every other refusal is a shared 401 or 403"
            );
        }
    }
});

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
