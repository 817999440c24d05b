//! The `cors` policy lowered to Envoy: preflights answered by routes, actual requests decorated by
//! Envoy's CORS filter.
//!
//! Our routes match `:method`, so a preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) finds no operation route. Each route of an operation under
//! `cors` therefore gets two more routes on the same path, ranked before every route there:
//!
//! - the **answer**: `OPTIONS`, `Access-Control-Request-Method` equal to the operation's method
//!   (when the policy allows it), `Origin` among the allowed origins and every requested header
//!   allowed (one regex each) → a direct `204` with the `Access-Control-Allow-*` headers. The
//!   operation's own policy (operation over API) decides, because the route is the operation's.
//! - the **fallback**: any other preflight on that path → `204` with no CORS header, or with
//!   `forwardPreflight` the operation's own action (through its auth, like any request).
//!
//! Direct responses run no ext_authz (it is off unless a route turns it on), so a browser's
//! preflight, which never carries credentials, is answered before any auth. Envoy's own CORS filter
//! answers preflights with `200` and sends the allow headers even to a refused origin; the routes
//! give WSO2's `204` and nothing to a refused origin, method or header.
//!
//! Actual requests keep the operation route. With listed origins it carries a `CorsPolicy` for the
//! CORS filter (first in the chain, before ext_authz, so a `401` is readable by the page too), which
//! echoes an allowed `Origin` with the credentials and exposed headers, plus `Vary: Origin`. With
//! `*` the route adds `Access-Control-Allow-Origin: *` (and the exposed headers) itself, as WSO2
//! answers `*` rather than the echoed origin.

use serde_json::Value;
use tollgate_model::Api;
use tollgate_policies::catalogue::cors::{
    DEFAULT_MAX_AGE, DEFAULT_METHODS, Origin, origin_regex, request_headers_regex,
};
use tollgate_proto::envoy_types::util::pack_any;
use tollgate_proto::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use tollgate_proto::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use tollgate_proto::pb::envoy::config::route::v3::{
    DirectResponseAction, HeaderMatcher, Route, RouteMatch, header_matcher, route,
};
use tollgate_proto::pb::envoy::extensions::filters::http::cors::v3::{Cors as CorsFilter, CorsPolicy};
use tollgate_proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{HttpFilter, http_filter};
use tollgate_proto::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher, string_matcher};
use tollgate_proto::pb::google::protobuf::BoolValue;

/// The name of Envoy's CORS filter, in the chain and in per-route configs.
pub const CORS_FILTER: &str = "envoy.filters.http.cors";

/// Where a preflight route ranks among routes of the same path: before any operation route (which
/// match at most the method and the operation's few header conditions), answers before fallbacks.
pub const ANSWER_RANK: usize = 1001;
/// See [`ANSWER_RANK`].
pub const FALLBACK_RANK: usize = 1000;

/// The `cors` policy that applies to one operation, with WSO2's defaults filled in.
#[derive(Debug)]
pub struct Cors<'a> {
    origins: Vec<&'a str>,
    any_origin: bool,
    methods: Vec<&'a str>,
    headers: Vec<&'a str>,
    exposed: Vec<&'a str>,
    credentials: bool,
    max_age: i64,
    forward: bool,
}

/// The CORS filter for the listeners. Inert on routes without a `CorsPolicy`; placed before ext_authz.
pub fn http_filter() -> HttpFilter {
    HttpFilter {
        name: CORS_FILTER.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(CorsFilter::default()))),
        ..Default::default()
    }
}

// === impl Cors ===

impl<'a> Cors<'a> {
    /// The policy of operation `i`: its own `cors`, else the API's.
    pub fn of(api: &'a Api, i: usize) -> Option<Cors<'a>> {
        let p = &api.policies_of(i).filter(|p| p.name == "cors").last()?.params;
        let strings = |name: &str| -> Option<Vec<&'a str>> {
            p.get(name)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
        };
        let origins = strings("allowedOrigins").unwrap_or_else(|| vec!["*"]);
        Some(Cors {
            any_origin: origins.iter().any(|o| Origin::parse(o) == Origin::Any),
            origins,
            methods: strings("allowedMethods").unwrap_or_else(|| DEFAULT_METHODS.to_vec()),
            headers: strings("allowedHeaders").unwrap_or_default(),
            exposed: strings("exposedHeaders").unwrap_or_default(),
            credentials: p.get("allowCredentials").and_then(Value::as_bool).unwrap_or(false),
            max_age: p.get("maxAge").and_then(Value::as_i64).unwrap_or(DEFAULT_MAX_AGE),
            forward: p.get("forwardPreflight").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// The preflight routes beside `route`, an operation route for `method` (built without CORS):
    /// each with its rank among the routes of its path.
    pub fn preflight_routes(&self, method: &str, route: &Route) -> Vec<(Route, usize)> {
        let path = route.r#match.as_ref().and_then(|m| m.path_specifier.clone());
        let with = |headers: Vec<HeaderMatcher>| RouteMatch {
            path_specifier: path.clone(),
            headers,
            ..Default::default()
        };
        let mut out = Vec::new();
        if self.methods.iter().any(|m| *m == "*" || *m == method) {
            let mut headers = vec![
                exact(":method", "OPTIONS"),
                exact("access-control-request-method", method),
            ];
            headers.push(if self.any_origin {
                present("origin")
            } else {
                regex("origin", origin_regex(&self.origins), false)
            });
            if let Some(re) = request_headers_regex(&self.headers) {
                headers.push(regex("access-control-request-headers", re, true));
            }
            let answer = Route {
                name: format!("{}|preflight", route.name),
                r#match: Some(with(headers)),
                action: Some(no_content()),
                response_headers_to_add: self.preflight_headers(),
                metadata: route.metadata.clone(),
                ..Default::default()
            };
            out.push((answer, ANSWER_RANK));
        }
        let headers = vec![
            exact(":method", "OPTIONS"),
            present("origin"),
            present("access-control-request-method"),
        ];
        let fallback = if self.forward {
            Route {
                name: format!("{}|preflight-forward", route.name),
                r#match: Some(with(headers)),
                ..route.clone()
            }
        } else {
            Route {
                name: format!("{}|preflight-refused", route.name),
                r#match: Some(with(headers)),
                action: Some(no_content()),
                metadata: route.metadata.clone(),
                ..Default::default()
            }
        };
        out.push((fallback, FALLBACK_RANK));
        out
    }

    /// Adds what actual requests need to an operation route: the CORS filter's policy and
    /// `Vary: Origin`, or with `*` the allow headers themselves.
    pub fn decorate(&self, route: &mut Route) {
        let headers = &mut route.response_headers_to_add;
        if self.any_origin {
            headers.push(set("access-control-allow-origin", "*"));
            if !self.exposed.is_empty() {
                headers.push(set("access-control-expose-headers", &self.exposed.join(",")));
            }
            return;
        }
        headers.push(append("vary", "Origin"));
        route
            .typed_per_filter_config
            .insert(CORS_FILTER.into(), pack_any(self.policy()));
    }

    /// The CORS filter's policy for actual requests (preflights never reach it).
    fn policy(&self) -> CorsPolicy {
        let matchers = self
            .origins
            .iter()
            .map(|o| StringMatcher {
                match_pattern: Some(match Origin::parse(o) {
                    Origin::Regex(re) => string_matcher::MatchPattern::SafeRegex(RegexMatcher {
                        regex: re.to_string(),
                        ..Default::default()
                    }),
                    Origin::Exact(_) | Origin::Any => string_matcher::MatchPattern::Exact(o.to_string()),
                }),
                ignore_case: false,
            })
            .collect();
        CorsPolicy {
            allow_origin_string_match: matchers,
            expose_headers: self.exposed.join(","),
            allow_credentials: self.credentials.then_some(BoolValue { value: true }),
            ..Default::default()
        }
    }

    /// The headers of an answered preflight.
    fn preflight_headers(&self) -> Vec<HeaderValueOption> {
        let mut out = Vec::new();
        if self.any_origin {
            out.push(set("access-control-allow-origin", "*"));
        } else {
            out.push(formatted("access-control-allow-origin", "%REQ(origin)%"));
            out.push(append("vary", "Origin"));
        }
        out.push(set("access-control-allow-methods", &self.methods.join(",")));
        if self.headers.contains(&"*") {
            out.push(formatted(
                "access-control-allow-headers",
                "%REQ(access-control-request-headers)%",
            ));
        } else if !self.headers.is_empty() {
            out.push(set("access-control-allow-headers", &self.headers.join(",")));
        }
        out.push(set("access-control-max-age", &self.max_age.to_string()));
        if self.credentials {
            out.push(set("access-control-allow-credentials", "true"));
        }
        out
    }
}

/// WSO2 answers preflights with `204 No Content`.
fn no_content() -> route::Action {
    route::Action::DirectResponse(DirectResponseAction {
        status: 204,
        ..Default::default()
    })
}

fn exact(name: &str, value: &str) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(string_matcher::MatchPattern::Exact(value.into())),
            ignore_case: false,
        })),
        ..Default::default()
    }
}

fn present(name: &str) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::PresentMatch(true)),
        ..Default::default()
    }
}

/// A regex header match; `missing_as_empty` lets an absent header match as the empty string.
fn regex(name: &str, regex: String, missing_as_empty: bool) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        treat_missing_header_as_empty: missing_as_empty,
        header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(string_matcher::MatchPattern::SafeRegex(RegexMatcher {
                regex,
                ..Default::default()
            })),
            ignore_case: false,
        })),
        ..Default::default()
    }
}

/// A header replacing any the upstream sent; Envoy reads values as format strings, so a literal
/// `%` is doubled.
fn set(key: &str, value: &str) -> HeaderValueOption {
    header(
        key,
        &value.replace('%', "%%"),
        HeaderAppendAction::OverwriteIfExistsOrAdd,
    )
}

/// A header whose value is an Envoy format string such as `%REQ(origin)%`.
fn formatted(key: &str, value: &str) -> HeaderValueOption {
    header(key, value, HeaderAppendAction::OverwriteIfExistsOrAdd)
}

fn append(key: &str, value: &str) -> HeaderValueOption {
    header(key, value, HeaderAppendAction::AppendIfExistsOrAdd)
}

fn header(key: &str, value: &str, action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    }
}
