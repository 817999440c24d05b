//! One API operation → Envoy routes: names, path matchers, ordering and rewrites (reference
//! §3.5–§3.7).

use std::cmp::Ordering;
use std::time::Duration;

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
use crate::model::{Api, Operation, PathKind};

/// A route with what it takes to order it.
#[derive(Clone, Debug)]
pub struct SortableRoute {
    pub route: Route,
    rank: Rank,
}

/// Ordering facts of a route, highest priority first when compared ascending.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rank {
    /// 0 exact path, 1 regex.
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
}

/// The full path template of an operation: context + operation path, without a doubled slash.
pub fn full_path(context: &str, path: &str) -> String {
    if context == "/" {
        return path.to_string();
    }
    if path == "/" {
        return format!("{context}/");
    }
    format!("{context}{path}")
}

/// The routes of operation `i` of `api` on one virtual host, to `cluster`.
pub fn operation_route(
    api: &Api,
    i: usize,
    vhost: &str,
    cluster: &str,
    base_path: &str,
    host_rewrite: bool,
    defaults: RouteDefaults,
) -> Option<SortableRoute> {
    let op = api.operations.get(i)?;
    let template = full_path(&api.context, &op.path);
    let (path_specifier, matcher) = path_matcher(&api.context, op);
    let mut headers = vec![HeaderMatcher {
        name: ":method".into(),
        header_match_specifier: Some(exact(op.method.as_str())),
        ..Default::default()
    }];
    let mut sorted = op.headers.clone();
    sorted.sort();
    for h in &sorted {
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
    let mut name = format!("{}|{}|{}", op.method.as_str(), template, vhost);
    if !sorted.is_empty() {
        name.push('|');
        name.push_str(&header_digest(&sorted));
    }
    let respond = api.policies_of(i).filter(|p| p.name == "respond").last();
    let (action, response_headers) = match respond {
        Some(p) => respond_action(&p.params),
        None => (
            forward_action(api, op, &template, cluster, base_path, host_rewrite, defaults),
            vec![],
        ),
    };
    let route = Route {
        name,
        r#match: Some(RouteMatch {
            path_specifier: Some(path_specifier),
            headers,
            ..Default::default()
        }),
        action: Some(action),
        response_headers_to_add: response_headers,
        ..Default::default()
    };
    let exact_headers = op.headers.iter().filter(|h| !h.regex).count();
    Some(SortableRoute {
        route,
        rank: Rank {
            matcher,
            template,
            headers: op.headers.len(),
            exact_headers,
        },
    })
}

fn exact(value: &str) -> header_matcher::HeaderMatchSpecifier {
    header_matcher::HeaderMatchSpecifier::StringMatch(StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Exact(value.to_string())),
        ignore_case: false,
    })
}

/// First 16 hex characters of SHA-256 over the canonical header list (names lower-cased, sorted).
fn header_digest(headers: &[crate::model::HeaderMatch]) -> String {
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
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The path specifier and its matcher rank (reference §3.5 table).
fn path_matcher(context: &str, op: &Operation) -> (route_match::PathSpecifier, u8) {
    let full = full_path(context, &op.path);
    if op.kind == PathKind::Exact {
        return (route_match::PathSpecifier::Path(full), 0);
    }
    let regex = if let Some(prefix) = full.strip_suffix("/*") {
        format!("^{}(?:/.*)?$", re_escape(prefix))
    } else if op.path.contains('{') {
        format!("^{}$", param_regex(&full))
    } else if op.path == "/" {
        let ctx = if context == "/" { "" } else { context };
        format!("^{}/?$", re_escape(ctx))
    } else {
        format!("^{}/?$", re_escape(&full))
    };
    (
        route_match::PathSpecifier::SafeRegex(RegexMatcher {
            regex,
            ..Default::default()
        }),
        1,
    )
}

/// `{param}` segments become `[^/]+`; everything else is literal.
fn param_regex(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&re_escape(&rest[..open]));
        match rest[open..].find('}') {
            Some(close) => {
                out.push_str("[^/]+");
                rest = &rest[open + close + 1..];
            }
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(&re_escape(rest));
    out
}

/// Escapes RE2 metacharacters.
pub fn re_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn forward_action(
    api: &Api,
    op: &Operation,
    template: &str,
    cluster: &str,
    base_path: &str,
    host_rewrite: bool,
    defaults: RouteDefaults,
) -> route::Action {
    let ctx = if api.context == "/" { "" } else { api.context.as_str() };
    let (pattern, substitution) = if op.path == "/" {
        (format!("^{}/?$", re_escape(ctx)), format!("{base_path}/"))
    } else if template.ends_with("/*") && base_path.is_empty() {
        (format!("^{}/?(.*)$", re_escape(ctx)), "/\\1".to_string())
    } else {
        (format!("^{}(.*)$", re_escape(ctx)), format!("{base_path}\\1"))
    };
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
    route::Action::Route(RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.to_string())),
        host_rewrite_specifier: host_rewrite.then_some(route_action::HostRewriteSpecifier::AutoHostRewrite(
            tollgate_proto::pb::google::protobuf::BoolValue { value: true },
        )),
        regex_rewrite: Some(RegexMatchAndSubstitute {
            pattern: Some(RegexMatcher {
                regex: pattern,
                ..Default::default()
            }),
            substitution,
        }),
        timeout: Some(duration(timeout)),
        idle_timeout: Some(duration(idle)),
        ..Default::default()
    })
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
                    value: h.get("value")?.as_str()?.to_string(),
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
pub fn sort_routes(routes: &mut [SortableRoute]) {
    routes.sort_by(|a, b| compare(&a.rank, &b.rank));
}

fn compare(a: &Rank, b: &Rank) -> Ordering {
    a.matcher
        .cmp(&b.matcher)
        .then_with(|| compare_templates(&a.template, &b.template))
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

    #[test]
    fn full_paths_never_double_slashes() {
        assert_eq!(full_path("/", "/a"), "/a");
        assert_eq!(full_path("/ctx", "/"), "/ctx/");
        assert_eq!(full_path("/ctx", "/a/{b}"), "/ctx/a/{b}");
    }

    #[test]
    fn params_become_segment_classes_and_literals_are_escaped() {
        assert_eq!(param_regex("/w/v1.0/{c}/{city}"), "/w/v1\\.0/[^/]+/[^/]+");
        assert_eq!(re_escape("/a+b(c)"), "/a\\+b\\(c\\)");
    }

    #[test]
    fn literal_beats_param_beats_end_beats_wildcard() {
        let mut v = vec!["/a/*", "/a", "/a/{x}", "/a/b", "/a/x{y}"];
        v.sort_by(|a, b| compare_templates(a, b));
        assert_eq!(v, vec!["/a/b", "/a/x{y}", "/a/{x}", "/a", "/a/*"]);
    }
}
