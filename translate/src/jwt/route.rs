//! One route's `jwt-auth`: the requirement that turns `jwt_authn` on, the RBAC policy that checks
//! the verified claims against the policy's issuers, audiences, scopes and claim values, and the
//! upstream headers its `claimMappings` fill from the verified payload.

use serde_json::Value;
use tollgate_model::Api;
use tollgate_proto::envoy_types::util::pack_any;
use tollgate_proto::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use tollgate_proto::pb::envoy::config::rbac::v3::{
    Permission, Policy, Principal, Rbac, SourcedMetadata, permission, principal, rbac,
};
use tollgate_proto::pb::envoy::config::route::v3::Route;
use tollgate_proto::pb::envoy::extensions::filters::http::jwt_authn::v3::{PerRouteConfig, per_route_config};
use tollgate_proto::pb::envoy::extensions::filters::http::rbac::v3::{Rbac as RbacFilter, RbacPerRoute};
use tollgate_proto::pb::envoy::r#type::matcher::v3::{
    ListMatcher, MetadataMatcher, OrMatcher, StringMatcher, ValueMatcher, list_matcher, metadata_matcher,
    string_matcher, value_matcher,
};
use tollgate_proto::pb::google::protobuf::Any;

use super::{CLAIMS_FILTER, JWT_FILTER, PAYLOAD, REQUIREMENT};

/// What `jwt-auth` adds to one route.
#[derive(Clone, Debug, Default)]
pub struct RouteJwt {
    /// Per-filter configuration: the requirement, and the claim checks when there are any.
    pub per_filter: Vec<(String, Any)>,
    /// Upstream headers set from claims.
    pub add: Vec<HeaderValueOption>,
    /// The same headers, removed first: a client cannot supply them when the claim is absent.
    pub remove: Vec<String>,
}

/// The metadata key under which key manager `name` puts the header of a token it verified.
pub(super) fn verified_by(name: &str) -> String {
    format!("verified_by.{name}")
}

/// The `jwt-auth` of operation `i` (its own, else the API's); `None` when it has none.
pub fn route_jwt(api: &Api, i: usize) -> Option<RouteJwt> {
    let p = api
        .policies_of(i)
        .filter(|p| p.name == tollgate_policies::catalogue::JWT_AUTH)
        .last()?;
    let params = &p.params;
    let requirement = PerRouteConfig {
        requirement_specifier: Some(per_route_config::RequirementSpecifier::RequirementName(
            REQUIREMENT.into(),
        )),
    };
    let mut out = RouteJwt {
        per_filter: vec![(JWT_FILTER.to_string(), pack_any(requirement))],
        ..Default::default()
    };
    let checks = claim_checks(params);
    if !checks.is_empty() {
        let policy = Policy {
            permissions: vec![Permission {
                rule: Some(permission::Rule::Any(true)),
            }],
            principals: vec![and(checks)],
            ..Default::default()
        };
        let per_route = RbacPerRoute {
            rbac: Some(RbacFilter {
                rules: Some(Rbac {
                    action: rbac::Action::Allow as i32,
                    policies: [("jwt-auth".to_string(), policy)].into_iter().collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        out.per_filter.push((CLAIMS_FILTER.to_string(), pack_any(per_route)));
    }
    if let Some(Value::Object(map)) = params.get("claimMappings") {
        for (claim, header) in map {
            let Some(header) = header.as_str() else { continue };
            out.remove.push(header.to_ascii_lowercase());
            out.add.push(HeaderValueOption {
                header: Some(HeaderValue {
                    key: header.to_ascii_lowercase(),
                    value: format!("%DYNAMIC_METADATA({JWT_FILTER}:{PAYLOAD}:{claim})%"),
                    ..Default::default()
                }),
                append_action: 2, // OVERWRITE_IF_EXISTS_OR_ADD
                keep_empty_value: false,
                ..Default::default()
            });
        }
    }
    Some(out)
}

/// Adds `jwt` to `route`.
pub(crate) fn apply(route: &mut Route, jwt: Option<&RouteJwt>) {
    let Some(jwt) = jwt else { return };
    route.typed_per_filter_config.extend(jwt.per_filter.iter().cloned());
    route.request_headers_to_remove.extend(jwt.remove.iter().cloned());
    route.request_headers_to_add.extend(jwt.add.iter().cloned());
}

/// Every condition the route puts on a verified token, all of which must hold.
pub(super) fn claim_checks(params: &Value) -> Vec<Principal> {
    let strings = |name: &str| -> Vec<&str> {
        params
            .get(name)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    };
    let mut checks = Vec::new();
    let issuers = strings("issuers");
    if !issuers.is_empty() {
        let verified = issuers.iter().map(|n| present(&[verified_by(n).as_str()])).collect();
        checks.push(or(verified));
    }
    let audiences = strings("audiences");
    if !audiences.is_empty() {
        checks.push(or(audiences.iter().map(|a| claim_is("aud", a)).collect()));
    }
    for scope in strings("requiredScopes") {
        checks.push(or(vec![claim_is("scope", scope), claim_is("scp", scope)]));
    }
    if let Some(Value::Object(map)) = params.get("requiredClaims") {
        for (claim, want) in map {
            if let Some(want) = want.as_str() {
                checks.push(claim_is(claim, want));
            }
        }
    }
    checks
}

/// The payload's `claim` is `want`, or a list holding it.
fn claim_is(claim: &str, want: &str) -> Principal {
    let exact = ValueMatcher {
        match_pattern: Some(value_matcher::MatchPattern::StringMatch(StringMatcher {
            match_pattern: Some(string_matcher::MatchPattern::Exact(want.to_string())),
            ignore_case: false,
        })),
    };
    let in_list = ValueMatcher {
        match_pattern: Some(value_matcher::MatchPattern::ListMatch(Box::new(ListMatcher {
            match_pattern: Some(list_matcher::MatchPattern::OneOf(Box::new(exact.clone()))),
        }))),
    };
    let value = ValueMatcher {
        match_pattern: Some(value_matcher::MatchPattern::OrMatch(OrMatcher {
            value_matchers: vec![exact, in_list],
        })),
    };
    metadata(&[PAYLOAD, claim], value)
}

fn present(path: &[&str]) -> Principal {
    let value = ValueMatcher {
        match_pattern: Some(value_matcher::MatchPattern::PresentMatch(true)),
    };
    metadata(path, value)
}

fn metadata(path: &[&str], value: ValueMatcher) -> Principal {
    let matcher = MetadataMatcher {
        filter: JWT_FILTER.into(),
        path: path
            .iter()
            .map(|k| metadata_matcher::PathSegment {
                segment: Some(metadata_matcher::path_segment::Segment::Key(k.to_string())),
            })
            .collect(),
        value: Some(value),
        invert: false,
    };
    Principal {
        identifier: Some(principal::Identifier::SourcedMetadata(SourcedMetadata {
            metadata_matcher: Some(matcher),
            metadata_source: 0, // DYNAMIC
        })),
    }
}

fn or(ids: Vec<Principal>) -> Principal {
    Principal {
        identifier: Some(principal::Identifier::OrIds(principal::Set { ids })),
    }
}

fn and(ids: Vec<Principal>) -> Principal {
    Principal {
        identifier: Some(principal::Identifier::AndIds(principal::Set { ids })),
    }
}
