//! What the ext_authz service checks on a route, and the per-route config that turns it on there.

use tollgate_model::Api;

/// What the ext_authz service checks on one operation: the `api-key-auth` and the enabled
/// `subscription-validation` policy that apply (each the operation's own if it has one, else the
/// API's, as the last of [`Api::policies_of`] wins).
#[derive(Debug, Default)]
pub struct AuthzChecks<'a> {
    pub key_auth: Option<&'a serde_json::Value>,
    pub subscription: Option<&'a serde_json::Value>,
    pub rate_limit: Option<super::super::ratelimit::RouteLimits>,
    pub basic_auth: Option<String>,
}

/// The checks of operation `i`; `None` when it has none (ext_authz stays off on its routes).
pub fn authz_policies(api: &Api, i: usize) -> Option<AuthzChecks<'_>> {
    let last = |name: &str| api.policies_of(i).filter(|p| p.name == name).last().map(|p| &p.params);
    let checks = AuthzChecks {
        key_auth: last("api-key-auth"),
        // `enabled: false` (at the operation, say) turns an API-level validation off.
        subscription: last("subscription-validation")
            .filter(|p| p.get("enabled").and_then(|v| v.as_bool()) != Some(false)),
        rate_limit: super::super::ratelimit::route_limits(api, i),
        basic_auth: super::super::basic_auth::route_basic_auth(api, i),
    };
    let any = checks.rate_limit.is_some() || checks.basic_auth.is_some();
    (checks.key_auth.is_some() || checks.subscription.is_some() || any).then_some(checks)
}

impl AuthzChecks<'_> {
    /// The lower-case request headers the service reads (Envoy must send them to ext_authz).
    pub fn headers(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = self.key_auth
            && p.get("in").and_then(|v| v.as_str()) != Some("query")
            && let Some(name) = p.get("key").and_then(|v| v.as_str())
        {
            out.push(name.to_ascii_lowercase());
        }
        if let Some(p) = self.subscription {
            out.push(subscription_header(p));
            if subscription_cookie(p).is_some() {
                out.push("cookie".into());
            }
        }
        out.extend(self.rate_limit.iter().flat_map(|r| r.headers.iter().cloned()));
        if self.basic_auth.is_some() {
            out.push("authorization".into());
        }
        out
    }
}

fn subscription_header(params: &serde_json::Value) -> String {
    params
        .get("subscriptionKeyHeader")
        .and_then(|v| v.as_str())
        .unwrap_or(tollgate_policies::catalogue::SUBSCRIPTION_KEY_HEADER)
        .to_ascii_lowercase()
}

fn subscription_cookie(params: &serde_json::Value) -> Option<&str> {
    params
        .get("subscriptionKeyCookie")
        .and_then(|v| v.as_str())
        .filter(|c| !c.is_empty())
}

/// One ext_authz per-route config for the route's checks: turn the (disabled by default) filter
/// on, and tell the service the route's API, where the key is and where the subscription token is.
pub(super) fn authz_per_route(
    api: &str,
    checks: &AuthzChecks<'_>,
) -> (String, tollgate_proto::pb::google::protobuf::Any) {
    authz_per_route_with(api, checks, None)
}

/// [`authz_per_route`], also asking the service for `request-rewrite`'s method and in-place query
/// edits (`rewrite`, the [`ctx::REWRITE`](tollgate_policies::ctx::REWRITE) line).
pub(super) fn authz_per_route_with(
    api: &str,
    checks: &AuthzChecks<'_>,
    rewrite: Option<&str>,
) -> (String, tollgate_proto::pb::google::protobuf::Any) {
    use tollgate_policies::ctx;
    use tollgate_proto::pb::envoy::extensions::filters::http::ext_authz::v3::{
        CheckSettings, ExtAuthzPerRoute, ext_authz_per_route,
    };
    let mut ext = vec![(ctx::API, api.to_string())];
    if let Some(params) = checks.key_auth {
        let place = params.get("in").and_then(|v| v.as_str()).unwrap_or("header");
        let name = params.get("key").and_then(|v| v.as_str()).unwrap_or_default();
        let name = if place == "header" {
            name.to_ascii_lowercase()
        } else {
            name.to_string()
        };
        let strip = params.get("stripKey").and_then(|v| v.as_bool()).unwrap_or(false);
        ext.extend([
            (ctx::KEY_IN, place.to_string()),
            (ctx::KEY_NAME, name),
            (ctx::STRIP, strip.to_string()),
        ]);
    }
    if let Some(params) = checks.subscription {
        ext.extend([
            (ctx::SUB, "true".to_string()),
            (ctx::SUB_HEADER, subscription_header(params)),
        ]);
        if let Some(cookie) = subscription_cookie(params) {
            ext.push((ctx::SUB_COOKIE, cookie.to_string()));
        }
    }
    if let Some(limits) = &checks.rate_limit {
        ext.push((ctx::RATE_LIMIT, limits.lines.clone()));
    }
    if let Some(line) = &checks.basic_auth {
        ext.push((ctx::BASIC, line.clone()));
    }
    if let Some(line) = rewrite {
        ext.push((ctx::REWRITE, line.to_string()));
    }
    let per_route = ExtAuthzPerRoute {
        r#override: Some(ext_authz_per_route::Override::CheckSettings(CheckSettings {
            context_extensions: ext.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            ..Default::default()
        })),
    };
    (
        super::super::EXT_AUTHZ_FILTER.to_string(),
        tollgate_proto::envoy_types::util::pack_any(per_route),
    )
}
