//! One API operation → Envoy routes: names, path matchers, ordering and rewrites (reference
//! §3.5–§3.7).

use std::cmp::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tollgate_proto::pb::envoy::config::core::v3::DataSource;
use tollgate_proto::pb::envoy::config::core::v3::data_source::Specifier;
use tollgate_proto::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use tollgate_proto::pb::envoy::config::route::v3::{
    DirectResponseAction, HeaderMatcher, Route, RouteAction, RouteMatch, header_matcher, route, route_action,
    route_match,
};
use tollgate_proto::pb::envoy::r#type::matcher::v3::{
    RegexMatchAndSubstitute, RegexMatcher, StringMatcher, string_matcher,
};

use super::duration;

mod authz;

use authz::authz_per_route;
pub use authz::authz_policies;
use tollgate_model::path::{after_context_regex, full_path, template_regex};
use tollgate_model::{Api, HeaderMatch, Operation, PathKind};

/// A route, encoded once, with what it takes to order it.
#[derive(Clone, Debug)]
pub struct SortableRoute {
    pub encoded: Bytes,
    rank: Rank,
}

/// Ordering facts of a route, highest priority first when compared ascending.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rank {
    /// 0 exact path, 1 regex, 2 prefix.
    matcher: u8,
    /// The full path template, for segment-by-segment specificity.
    template: String,
    headers: usize,
    exact_headers: usize,
}

/// Gateway-wide defaults the routes need.
#[derive(Clone, Copy, Debug)]
pub struct RouteDefaults {
    pub timeout: Duration,
    pub idle_timeout: Duration,
    /// Whether the ext_authz filter is in the chain (so `api-key-auth` can turn it on per route).
    pub authz: bool,
}

/// The routes of operation `i` of `api` on one virtual host, to `cluster`: one, or two where a
/// path is matched natively in two forms (with and without a trailing slash).
pub fn operation_route(
    api: &Api,
    i: usize,
    vhost: &str,
    cluster: &str,
    base_path: &str,
    host_rewrite: bool,
    defaults: RouteDefaults,
) -> Vec<SortableRoute> {
    let Some(op) = api.operations.get(i) else { return vec![] };
    let template = full_path(&api.context, &op.path);
    let mut sorted = op.headers.clone();
    sorted.sort();
    let headers = header_matchers(op.method.as_str(), &sorted);
    let mut name = format!("{}|{}|{}", op.method.as_str(), template, vhost);
    if !sorted.is_empty() {
        name.push('|');
        name.push_str(&header_digest(&sorted));
    }
    let respond = api.policies_of(i).filter(|p| p.name == "respond").last();
    let per_filter: std::collections::HashMap<String, tollgate_proto::pb::google::protobuf::Any> =
        authz_policies(api, i)
            .filter(|_| defaults.authz)
            .map(|checks| authz_per_route(&api.handle, &checks))
            .into_iter()
            .collect();
    let jwt = super::jwt::route_jwt(api, i);
    let exact_headers = op.headers.iter().filter(|h| !h.regex).count();
    let cors = super::cors::Cors::of(api, i);
    let mediation = mediation_of(api, i, defaults);
    let facts = super::mediation::PathFacts {
        context: if api.context == "/" { "" } else { &api.context },
        op_path: &op.path,
        base: base_path,
    };
    path_plans(&api.context, op, base_path)
        .into_iter()
        .flat_map(|plan| {
            let (action, response_headers) = match respond {
                Some(p) => respond_action(&p.params),
                None => (
                    forward_action(api, op, cluster, plan.rewrite, host_rewrite, defaults),
                    vec![],
                ),
            };
            let mut route = Route {
                name: name.clone(),
                r#match: Some(RouteMatch {
                    path_specifier: Some(plan.specifier),
                    headers: headers.clone(),
                    ..Default::default()
                }),
                action: Some(action),
                response_headers_to_add: response_headers,
                typed_per_filter_config: per_filter.clone(),
                // The API's handle, for the access log.
                metadata: Some(super::access_log::route_metadata(&api.handle)),
                ..Default::default()
            };
            super::jwt::apply(&mut route, jwt.as_ref());
            let (template, matcher, cors) = (&template, plan.rank, cors.as_ref());
            // Mediation first (it may add a conditional twin of the route), then CORS on each; the
            // preflight routes come from the unconditional route only (they match the path alone).
            mediation
                .apply(route, facts)
                .into_iter()
                .flat_map(move |(route, conditions)| {
                    let rank = Rank {
                        matcher,
                        template: template.clone(),
                        headers: op.headers.len() + conditions,
                        exact_headers,
                    };
                    with_cors(cors, conditions == 0, op.method.as_str(), route, rank)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The mediation policies of operation `i`, with the ext_authz config that makes the service do
/// what of `request-rewrite` Envoy cannot (the operation's checks are in the same call).
fn mediation_of(api: &Api, i: usize, defaults: RouteDefaults) -> super::mediation::Mediation<'_> {
    let mediation = super::mediation::Mediation::of(api, i);
    match mediation.service_line().filter(|_| defaults.authz) {
        Some(line) => {
            let checks = authz_policies(api, i).unwrap_or_default();
            mediation.with_service(Some(authz::authz_per_route_with(&api.handle, &checks, Some(&line))))
        }
        None => mediation,
    }
}

/// The operation route `route`, after the `cors` preflight routes beside it when `cors` applies
/// (see [`super::cors`]), and with that policy's additions for actual requests.
fn with_cors(
    cors: Option<&super::cors::Cors<'_>>,
    preflight: bool,
    method: &str,
    mut route: Route,
    rank: Rank,
) -> Vec<SortableRoute> {
    let mut out = Vec::new();
    if let Some(cors) = cors {
        for (r, headers) in cors.preflight_routes(method, &route).into_iter().filter(|_| preflight) {
            out.push(SortableRoute {
                encoded: super::wire::encode_route(&r),
                rank: Rank {
                    headers,
                    ..rank.clone()
                },
            });
        }
        cors.decorate(&mut route);
    }
    out.push(SortableRoute {
        encoded: super::wire::encode_route(&route),
        rank,
    });
    out
}

/// The `:method` matcher, then one matcher per header condition (sorted, so the order in the document
/// does not change the route).
fn header_matchers(method: &str, sorted: &[HeaderMatch]) -> Vec<HeaderMatcher> {
    let mut headers = vec![HeaderMatcher {
        name: ":method".into(),
        header_match_specifier: Some(exact(method)),
        ..Default::default()
    }];
    for h in sorted {
        let spec = if h.regex {
            header_matcher::HeaderMatchSpecifier::StringMatch(StringMatcher {
                match_pattern: Some(string_matcher::MatchPattern::SafeRegex(RegexMatcher {
                    regex: h.value.clone(),
                    ..Default::default()
                })),
                ignore_case: false,
            })
        } else {
            exact(&h.value)
        };
        headers.push(HeaderMatcher {
            name: h.name.clone(),
            header_match_specifier: Some(spec),
            ..Default::default()
        });
    }
    headers
}

fn exact(value: &str) -> header_matcher::HeaderMatchSpecifier {
    header_matcher::HeaderMatchSpecifier::StringMatch(StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Exact(value.to_string())),
        ignore_case: false,
    })
}

/// First 16 hex characters of SHA-256 over the canonical header list (names lower-cased, sorted).
fn header_digest(headers: &[HeaderMatch]) -> String {
    let mut canon = String::new();
    for h in headers {
        canon.push_str(&h.name);
        canon.push('\u{0}');
        canon.push_str(if h.regex { "RegularExpression" } else { "Exact" });
        canon.push('\u{0}');
        canon.push_str(&h.value);
        canon.push('\n');
    }
    let d = ring::digest::digest(&ring::digest::SHA256, canon.as_bytes());
    tollgate_proto::hex::encode(&d.as_ref()[..8])
}

/// How one route matches its path and rewrites it for the upstream.
struct PathPlan {
    specifier: route_match::PathSpecifier,
    /// 0 exact path, 1 regex, 2 prefix.
    rank: u8,
    rewrite: Rewrite,
}

/// The upstream path: the matched prefix (or whole path) replaced, or a regex substitution.
enum Rewrite {
    None,
    Prefix(String),
    Regex { pattern: String, substitution: String },
}

/// Path matching of reference §3.5, with Envoy's native matchers wherever they express it exactly
/// (RE2 programs are compiled for every regex route on every route-table update, so avoiding them
/// keeps Envoy's update cost down): literals and roots as exact paths (with and without the
/// trailing slash), `/*` as a path-separated prefix, `{param}` as a regex.
fn path_plans(context: &str, op: &Operation, base: &str) -> Vec<PathPlan> {
    let ctx = if context == "/" { "" } else { context };
    let exact = |path: String, to: String| PathPlan {
        specifier: route_match::PathSpecifier::Path(path),
        rank: 0,
        rewrite: Rewrite::Prefix(to),
    };
    if op.kind == PathKind::Exact {
        return vec![exact(format!("{ctx}{}", op.path), format!("{base}{}", op.path))];
    }
    if op.path.contains('{') {
        let full = full_path(context, &op.path);
        return vec![PathPlan {
            specifier: route_match::PathSpecifier::SafeRegex(RegexMatcher {
                regex: template_regex(&full),
                ..Default::default()
            }),
            rank: 1,
            rewrite: Rewrite::Regex {
                pattern: after_context_regex(ctx),
                substitution: format!("{base}\\1"),
            },
        }];
    }
    if op.path == "/" {
        let mut plans = vec![exact(format!("{ctx}/"), format!("{base}/"))];
        if !ctx.is_empty() {
            plans.push(exact(ctx.to_string(), format!("{base}/")));
        }
        return plans;
    }
    if let Some(p) = op.path.strip_suffix("/*") {
        let prefix = format!("{ctx}{p}");
        let to = format!("{base}{p}");
        let prefix_plan = |specifier, rewrite| PathPlan {
            specifier,
            rank: 2,
            rewrite,
        };
        return if prefix.is_empty() {
            let rewrite = if base.is_empty() {
                Rewrite::None
            } else {
                Rewrite::Prefix(format!("{base}/"))
            };
            vec![prefix_plan(route_match::PathSpecifier::Prefix("/".into()), rewrite)]
        } else if !to.is_empty() {
            vec![prefix_plan(
                route_match::PathSpecifier::PathSeparatedPrefix(prefix),
                Rewrite::Prefix(to),
            )]
        } else {
            // `/ctx/*` to an upstream root: `/ctx` → `/`, `/ctx/x` → `/x`.
            vec![
                exact(prefix.clone(), "/".into()),
                prefix_plan(
                    route_match::PathSpecifier::Prefix(format!("{prefix}/")),
                    Rewrite::Prefix("/".into()),
                ),
            ]
        };
    }
    let full = format!("{ctx}{}", op.path);
    let mut plans = vec![exact(full.clone(), format!("{base}{}", op.path))];
    if !full.ends_with('/') {
        plans.push(exact(format!("{full}/"), format!("{base}{}/", op.path)));
    }
    plans
}

fn forward_action(
    api: &Api,
    op: &Operation,
    cluster: &str,
    rewrite: Rewrite,
    host_rewrite: bool,
    defaults: RouteDefaults,
) -> route::Action {
    let timeout = op
        .resilience
        .timeout
        .or(api.resilience.timeout)
        .unwrap_or(defaults.timeout);
    let idle = op
        .resilience
        .idle_timeout
        .or(api.resilience.idle_timeout)
        .unwrap_or(defaults.idle_timeout);
    let mut action = RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.to_string())),
        host_rewrite_specifier: host_rewrite.then_some(route_action::HostRewriteSpecifier::AutoHostRewrite(
            tollgate_proto::pb::google::protobuf::BoolValue { value: true },
        )),
        timeout: Some(duration(timeout)),
        idle_timeout: Some(duration(idle)),
        ..Default::default()
    };
    match rewrite {
        Rewrite::None => {}
        Rewrite::Prefix(to) => action.prefix_rewrite = to,
        Rewrite::Regex { pattern, substitution } => {
            action.regex_rewrite = Some(RegexMatchAndSubstitute {
                pattern: Some(RegexMatcher {
                    regex: pattern,
                    ..Default::default()
                }),
                substitution,
            })
        }
    }
    route::Action::Route(action)
}

/// The `respond` policy: a direct response with the configured status, body and headers.
fn respond_action(params: &serde_json::Value) -> (route::Action, Vec<HeaderValueOption>) {
    let status = params.get("statusCode").and_then(|v| v.as_u64()).unwrap_or(200) as u32;
    let body = params.get("body").and_then(|v| v.as_str()).map(|b| DataSource {
        specifier: Some(Specifier::InlineString(b.to_string())),
        ..Default::default()
    });
    let headers = params
        .get("headers")
        .and_then(|h| h.as_array())
        .into_iter()
        .flatten()
        .filter_map(|h| {
            Some(HeaderValueOption {
                header: Some(HeaderValue {
                    key: h.get("name")?.as_str()?.to_string(),
                    // Envoy reads added header values as format strings: `%%` is a literal `%`.
                    value: h.get("value")?.as_str()?.replace('%', "%%"),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
        .collect();
    (
        route::Action::DirectResponse(DirectResponseAction {
            status,
            body,
            ..Default::default()
        }),
        headers,
    )
}

/// Sorts routes highest priority first; ties keep their input order (reference §3.7).
pub fn sort_routes(routes: &mut [&SortableRoute]) {
    routes.sort_by(|a, b| compare(&a.rank, &b.rank));
}

/// Template specificity decides; the matcher kind (exact, regex, prefix) breaks ties, so that the
/// native matchers order exactly as the regexes they replace.
fn compare(a: &Rank, b: &Rank) -> Ordering {
    compare_templates(&a.template, &b.template)
        .then_with(|| a.matcher.cmp(&b.matcher))
        .then_with(|| b.headers.cmp(&a.headers))
        .then_with(|| b.exact_headers.cmp(&a.exact_headers))
}

/// Segment by segment: literal > mixed (more literal characters first) > `{param}` > end > `*`.
fn compare_templates(a: &str, b: &str) -> Ordering {
    let (mut sa, mut sb) = (a.split('/').skip(1), b.split('/').skip(1));
    loop {
        match (sa.next(), sb.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => {
                let o = segment_rank(x).cmp(&segment_rank(y));
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// Lower is more specific. Mixed segments rank by literal length (longer first).
fn segment_rank(s: Option<&str>) -> (u8, usize) {
    match s {
        None => (3, 0),
        Some("*") => (4, 0),
        Some(seg) if seg.starts_with('{') && seg.ends_with('}') && seg.matches('{').count() == 1 => (2, 0),
        Some(seg) if seg.contains('{') => {
            let literal: usize = seg.split(['{', '}']).step_by(2).map(str::len).sum();
            (1, usize::MAX - literal)
        }
        Some(_) => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_kinds(context: &str, path: &str, base: &str) -> Vec<(String, String)> {
        let op = Operation {
            method: tollgate_model::Method::Get,
            path: path.into(),
            kind: PathKind::Template,
            headers: vec![],
            resilience: Default::default(),
            policies: vec![],
        };
        path_plans(context, &op, base)
            .into_iter()
            .map(|p| {
                let m = match p.specifier {
                    route_match::PathSpecifier::Path(x) => format!("path {x}"),
                    route_match::PathSpecifier::PathSeparatedPrefix(x) => format!("sep {x}"),
                    route_match::PathSpecifier::Prefix(x) => format!("prefix {x}"),
                    route_match::PathSpecifier::SafeRegex(r) => format!("regex {}", r.regex),
                    _ => "other".into(),
                };
                let r = match p.rewrite {
                    Rewrite::None => "-".to_string(),
                    Rewrite::Prefix(to) => format!("to {to}"),
                    Rewrite::Regex { pattern, substitution } => format!("re {pattern} {substitution}"),
                };
                (m, r)
            })
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn native_matchers_replace_regexes_except_for_parameters() {
        assert_eq!(
            plan_kinds("/c", "/w", "/b"),
            pairs(&[("path /c/w", "to /b/w"), ("path /c/w/", "to /b/w/")])
        );
        assert_eq!(plan_kinds("/c", "/f/*", ""), pairs(&[("sep /c/f", "to /f")]));
        assert_eq!(plan_kinds("/c", "/*", "/b"), pairs(&[("sep /c", "to /b")]));
        assert_eq!(
            plan_kinds("/c", "/*", ""),
            pairs(&[("path /c", "to /"), ("prefix /c/", "to /")])
        );
        assert_eq!(plan_kinds("/", "/*", ""), pairs(&[("prefix /", "-")]));
        assert_eq!(
            plan_kinds("/c", "/", "/b"),
            pairs(&[("path /c/", "to /b/"), ("path /c", "to /b/")])
        );
        assert_eq!(plan_kinds("/", "/", ""), pairs(&[("path /", "to /")]));
        assert_eq!(
            plan_kinds("/c", "/u/{id}", "/b"),
            pairs(&[("regex ^/c/u/[^/]+$", "re ^/c(.*)$ /b\\1")])
        );
    }

    #[test]
    fn literal_beats_param_beats_end_beats_wildcard() {
        let mut v = vec!["/a/*", "/a", "/a/{x}", "/a/b", "/a/x{y}"];
        v.sort_by(|a, b| compare_templates(a, b));
        assert_eq!(v, vec!["/a/b", "/a/x{y}", "/a/{x}", "/a", "/a/*"]);
    }

    #[test]
    fn respond_header_values_keep_a_literal_percent() {
        let params = serde_json::json!({"statusCode": 200, "headers": [{"name": "x-discount", "value": "50% off"}]});
        let (_, headers) = respond_action(&params);
        let h = headers[0].header.as_ref().unwrap();
        // Envoy reads the value as a format string, where a lone % is an error (it NACKed "50%").
        assert_eq!(h.value, "50%% off");
    }
}
