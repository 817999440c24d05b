//! The `CheckResponse`s the service answers: the pre-built refusals (401, the 403s), the 429 of a
//! spent quota and the allowed answer with its identity and rate-limit headers.
//!
//! Rate-limit headers: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds
//! to the reset), plus the IETF fields in the syntax of draft-ietf-httpapi-ratelimit-headers-09/10
//! (structured-field lists): `RateLimit-Policy: "plan";q=<limit>;w=<window seconds>` and
//! `RateLimit: "plan";r=<remaining>;t=<seconds to reset>`.

use tollgate_proto::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use tollgate_proto::pb::envoy::service::auth::v3::{CheckResponse, DeniedHttpResponse, OkHttpResponse, check_response};
use tollgate_proto::pb::envoy::r#type::v3::HttpStatus;
use tollgate_proto::pb::google::rpc::Status as RpcStatus;

use super::quota::Take;

/// The JSON body of every 401.
pub const DENY_BODY: &str = "{\"error\":\"Unauthorized\",\"message\":\"Valid API key required\"}";
/// The 403 body when no subscription token was presented.
pub const MISSING_BODY: &str = "{\"error\":\"forbidden\",\"message\":\"Subscription key required\"}";
/// The 403 body for an unknown token, another API's, or a subscription that is not usable.
pub const INVALID_BODY: &str = "{\"error\":\"forbidden\",\"message\":\"No active subscription for this API\"}";
/// The 403 body when the subscription's plan has expired.
pub const EXPIRED_BODY: &str = "{\"error\":\"forbidden\",\"message\":\"Subscription plan has expired\"}";
/// The 429 body.
pub const QUOTA_BODY: &str = "{\"error\":\"too_many_requests\",\"message\":\"Subscription quota exceeded\"}";

/// gRPC status codes of the answers.
const OK: i32 = 0;
const PERMISSION_DENIED: i32 = 7;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAUTHENTICATED: i32 = 16;

/// The policy name in the IETF fields.
const POLICY: &str = "plan";

/// A header to set, replacing any the request (or response) already has, so a client cannot
/// forge what we add.
pub(super) fn header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        append_action: 2, // OVERWRITE_IF_EXISTS_OR_ADD
        ..Default::default()
    }
}

fn denied(grpc: i32, http: u32, body: &str, mut headers: Vec<HeaderValueOption>) -> CheckResponse {
    headers.insert(0, header("content-type", "application/json"));
    CheckResponse {
        status: Some(RpcStatus {
            code: grpc,
            ..Default::default()
        }),
        http_response: Some(check_response::HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: http as i32 }),
            headers,
            body: body.into(),
        })),
        ..Default::default()
    }
}

/// 401 with a JSON body, gRPC status UNAUTHENTICATED.
pub(super) fn unauthorized() -> CheckResponse {
    denied(UNAUTHENTICATED, 401, DENY_BODY, vec![])
}

/// 403 with `body`, gRPC status PERMISSION_DENIED.
pub(super) fn forbidden(body: &str) -> CheckResponse {
    denied(PERMISSION_DENIED, 403, body, vec![])
}

/// 429 with `Retry-After` and the rate-limit headers, gRPC status RESOURCE_EXHAUSTED.
pub(super) fn too_many(take: &Take, now: u64) -> CheckResponse {
    let mut headers = vec![header("retry-after", &reset_in(take, now).to_string())];
    headers.extend(rate_headers(take, now));
    denied(RESOURCE_EXHAUSTED, 429, QUOTA_BODY, headers)
}

fn reset_in(take: &Take, now: u64) -> u64 {
    take.window_end.saturating_sub(now).max(1)
}

/// The rate-limit headers of a counted request.
pub(super) fn rate_headers(take: &Take, now: u64) -> [HeaderValueOption; 5] {
    let remaining = take.limit.saturating_sub(take.used);
    let reset = reset_in(take, now);
    let window = take.window_end - take.window_start;
    [
        header("x-ratelimit-limit", &take.limit.to_string()),
        header("x-ratelimit-remaining", &remaining.to_string()),
        header("x-ratelimit-reset", &reset.to_string()),
        header("ratelimit", &format!("\"{POLICY}\";r={remaining};t={reset}")),
        header("ratelimit-policy", &format!("\"{POLICY}\";q={};w={window}", take.limit)),
    ]
}

/// What an allowed request carries (no heap until the answer is built, so that a refusal found
/// after the key check still allocates nothing).
#[derive(Debug, Default)]
pub(super) struct Allowed<'a> {
    /// Upstream identity headers, each `(name, value)`: key name, application, subscription.
    pub key_name: Option<(&'a str, &'a str)>,
    pub application: Option<(&'a str, &'a str)>,
    pub subscription: Option<(&'a str, &'a str)>,
    /// Request headers and query parameters to remove (a stripped key).
    pub remove_header: Option<&'a str>,
    pub remove_query: Option<&'a str>,
    /// The quota counted, for the client's rate-limit headers.
    pub quota: Option<Take>,
    /// More response headers (a rate-limit policy's, when no quota sets them).
    pub response_headers: Vec<HeaderValueOption>,
    /// Request headers a rewrite sets (`:method`, `:path`).
    pub rewrite: Vec<HeaderValueOption>,
}

/// The OK answer.
pub(super) fn allow(a: &Allowed<'_>, now: u64) -> CheckResponse {
    let ok = OkHttpResponse {
        headers: [a.key_name, a.application, a.subscription]
            .into_iter()
            .flatten()
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| header(k, v))
            .chain(a.rewrite.iter().cloned())
            .collect(),
        headers_to_remove: a.remove_header.map(str::to_string).into_iter().collect(),
        query_parameters_to_remove: a.remove_query.map(str::to_string).into_iter().collect(),
        response_headers_to_add: match a.quota {
            Some(t) => rate_headers(&t, now).to_vec(),
            None => a.response_headers.clone(),
        },
        ..Default::default()
    };
    CheckResponse {
        status: Some(RpcStatus {
            code: OK,
            ..Default::default()
        }),
        http_response: Some(check_response::HttpResponse::OkResponse(ok)),
        ..Default::default()
    }
}
