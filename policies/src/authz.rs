//! The `envoy.service.auth.v3.Authorization` service: API keys checked against the [`KeyIndex`].
//!
//! Per-route facts come in the route's `context_extensions` (see [`ctx`]); Envoy sends only the
//! headers the check needs. Every refusal is the same pre-built 401, whatever the reason, and no key
//! or digest is ever logged.

pub mod index;
pub mod server;
pub mod wire;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message;
use tollgate_proto::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use tollgate_proto::pb::envoy::service::auth::v3::{CheckResponse, DeniedHttpResponse, OkHttpResponse, check_response};
use tollgate_proto::pb::envoy::r#type::v3::{HttpStatus, StatusCode};
use tollgate_proto::pb::google::rpc::Status as RpcStatus;

pub use index::{COMPACT_AT, Decision, IndexWriter, KeyIndex, KeyRecord, KeyView, SharedIndex, Snapshot, digest_of};
pub use server::AuthzServer;

pub use crate::ctx;

/// The JSON body of every refusal.
pub const DENY_BODY: &str = "{\"error\":\"Unauthorized\",\"message\":\"Valid API key required\"}";
/// The header naming the key that opened the request (never the key itself).
pub const KEY_NAME_HEADER: &str = "x-tollgate-key-name";
/// The header naming the application of that key, when known.
pub const APPLICATION_HEADER: &str = "x-tollgate-application";

/// The Authorization service's decisions, made on the encoded request and answered with encoded
/// responses (see [`server`] for the gRPC side).
#[derive(Debug)]
pub struct AuthzService {
    index: Arc<SharedIndex>,
    /// The encoded refusal, shared: sending it clones a reference count, nothing else.
    deny: Bytes,
}

// === impl AuthzService ===

impl AuthzService {
    pub fn new(index: Arc<SharedIndex>) -> Self {
        AuthzService {
            index,
            deny: Bytes::from(deny_response().encode_to_vec()),
        }
    }

    /// The encoded refusal every denied check gets.
    pub fn deny(&self) -> &Bytes {
        &self.deny
    }

    /// The encoded `CheckResponse` for an encoded `CheckRequest`. A refusal allocates nothing: the
    /// request is read in place ([`wire`]) and the answer is the shared pre-encoded 401. Anything
    /// malformed or missing is refused.
    pub fn respond(&self, check_request: &[u8], now: u64) -> Bytes {
        let Some(facts) = wire::facts(check_request) else {
            return self.deny.clone();
        };
        let (Some(api), Some(name), Some(http)) = (facts.api, facts.key_name, facts.http) else {
            return self.deny.clone();
        };
        let (Ok(api), Ok(name)) = (std::str::from_utf8(api), std::str::from_utf8(name)) else {
            return self.deny.clone();
        };
        let in_query = facts.key_in == Some(b"query");
        let presented = if in_query {
            wire::path(http)
                .and_then(|p| std::str::from_utf8(p).ok())
                .and_then(|p| query_param(p, name))
                .map(str::as_bytes)
        } else {
            wire::header(http, name.as_bytes()).map(<[u8]>::trim_ascii)
        };
        let index = self.index.load();
        match presented.map(|p| index.decide(api, p, now)) {
            Some(Decision::Allow(record)) => {
                let strip = facts.strip == Some(b"true");
                Bytes::from(allow(record, strip, in_query, name).encode_to_vec())
            }
            _ => self.deny.clone(),
        }
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The value of query parameter `name` in a request target, if present.
fn query_param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let query = target.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|kv| match kv.split_once('=') {
        Some((k, v)) if k == name => Some(v),
        _ => None,
    })
}

fn header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        append_action: 2, // OVERWRITE_IF_EXISTS_OR_ADD: a client cannot forge these headers
        ..Default::default()
    }
}

fn allow(record: KeyView<'_>, strip: bool, in_query: bool, name: &str) -> CheckResponse {
    let mut ok = OkHttpResponse {
        headers: vec![header(KEY_NAME_HEADER, record.name)],
        ..Default::default()
    };
    if let Some(app) = &record.application {
        ok.headers.push(header(APPLICATION_HEADER, app));
    }
    if strip {
        if in_query {
            ok.query_parameters_to_remove.push(name.to_string());
        } else {
            ok.headers_to_remove.push(name.to_string());
        }
    }
    CheckResponse {
        status: Some(RpcStatus {
            code: 0,
            ..Default::default()
        }),
        http_response: Some(check_response::HttpResponse::OkResponse(ok)),
        ..Default::default()
    }
}

/// The one refusal: 401 with a JSON body, gRPC status UNAUTHENTICATED.
fn deny_response() -> CheckResponse {
    CheckResponse {
        status: Some(RpcStatus {
            code: 16,
            ..Default::default()
        }),
        http_response: Some(check_response::HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: StatusCode::Unauthorized as i32,
            }),
            headers: vec![header("content-type", "application/json")],
            body: DENY_BODY.into(),
        })),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
