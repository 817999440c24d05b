//! The ext_authz hot path: an encoded `CheckRequest` as Envoy would send it, read in place by the
//! wire walker (`tollgate_policies::authz::wire`) and answered by `AuthzService::respond` against a
//! small key index. Nothing may panic; every answer is a well-formed `CheckResponse`; a refusal is the
//! one shared 401; an allow names the key's record and can only happen when the key itself (which
//! the walker never decodes or copies) is in the request.
//!
//! Input: the encoded request, exactly as it comes off the gRPC stream.

#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use prost::Message;
use tollgate_policies::authz::{AuthzService, KeyIndex, KeyRecord, SharedIndex, digest_of, wire};
use tollgate_proto::pb::envoy::service::auth::v3::{CheckResponse, check_response};

const GOOD: &[u8] = b"apip_good";
const EXPIRED: &[u8] = b"apip_old";
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
    AuthzService::new(index)
});

fuzz_target!(|data: &[u8]| {
    // The walker's parts on their own, with a header name taken from the request itself.
    if let Some(facts) = wire::facts(data)
        && let Some(http) = facts.http
    {
        let _ = wire::path(http);
        let _ = wire::header(http, facts.key_name.unwrap_or(b"x-api-key"));
    }

    let answer = SERVICE.respond(data, NOW);
    let response = CheckResponse::decode(answer.clone()).expect("every answer decodes");
    let code = response.status.as_ref().map(|s| s.code);
    match response.http_response {
        Some(check_response::HttpResponse::OkResponse(ok)) => {
            assert_eq!(code, Some(0), "an allow has gRPC status OK");
            assert!(contains(data, GOOD), "an allow without the key in the request");
            assert!(
                contains(data, b"orders"),
                "an allow without the key's API in the request"
            );
            let named = ok
                .headers
                .iter()
                .filter_map(|h| h.header.as_ref())
                .any(|h| h.key == "x-tollgate-key-name" && h.value == "ci-key");
            assert!(named, "an allow names the key");
        }
        _ => assert_eq!(&answer, SERVICE.deny(), "every refusal is the shared 401"),
    }
});

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
