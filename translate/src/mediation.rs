//! The mediation policies lowered to route configuration: `set-headers` and `remove-headers` as the
//! route's header lists, `host-rewrite` as a literal host rewrite, `request-rewrite` as a path rewrite
//! (with a second, gated route for its `match`) and query mutations of the header_mutation filter,
//! and `redirect` as a redirect action. No extra hop: Envoy does all of it.
//!
//! Each policy applies once per operation: the operation's own if it has one, else the API's (the
//! last of [`Api::policies_of`] wins).

use serde_json::Value;
use tollgate_policies::catalogue::mediation::{service, split_url};
use tollgate_proto::envoy_types::util::pack_any;
use tollgate_proto::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, KeyValueAppend, KeyValueMutation, KeyValuePair, header_value_option,
    key_value_append,
};
use tollgate_proto::pb::envoy::config::route::v3::{
    FilterConfig, HeaderMatcher, QueryParameterMatcher, RedirectAction, Route, header_matcher, query_parameter_matcher,
    redirect_action, route, route_action, route_match,
};
use tollgate_proto::pb::envoy::extensions::filters::http::header_mutation::v3::{
    HeaderMutation, HeaderMutationPerRoute, Mutations,
};
use tollgate_proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{HttpFilter, http_filter};
use tollgate_proto::pb::envoy::r#type::matcher::v3::{
    RegexMatchAndSubstitute, RegexMatcher, StringMatcher, string_matcher,
};
use tollgate_proto::pb::google::protobuf::Any;

use tollgate_model::Api;

/// The header mutation filter's name in the listener (disabled there; a route with query rewrites
/// turns it on).
pub const HEADER_MUTATION_FILTER: &str = "envoy.filters.http.header_mutation";

/// The header mutation filter, off unless a route turns it on (so it costs nothing elsewhere); it
/// runs after ext_authz, so a rewritten query never changes what auth saw.
pub fn header_mutation_filter() -> HttpFilter {
    HttpFilter {
        name: HEADER_MUTATION_FILTER.into(),
        disabled: true,
        config_type: Some(http_filter::ConfigType::TypedConfig(
            pack_any(HeaderMutation::default()),
        )),
        ..Default::default()
    }
}

/// The mediation policies that apply to one operation.
#[derive(Debug, Default)]
pub struct Mediation<'a> {
    set: Option<&'a Value>,
    remove: Option<&'a Value>,
    host: Option<&'a str>,
    rewrite: Option<&'a Value>,
    redirect: Option<&'a Value>,
    /// The ext_authz per-route config (filter name, config) that makes the service do the
    /// rewrite's method and in-place query edits, when it has some ([`Mediation::service_line`]).
    service: Option<(String, Any)>,
}

/// Where a route's path comes from, for the path rewrites.
#[derive(Clone, Copy, Debug)]
pub struct PathFacts<'a> {
    /// The API context, empty for `/`.
    pub context: &'a str,
    /// The operation's path, relative to the context.
    pub op_path: &'a str,
    /// The upstream's base path (empty for none).
    pub base: &'a str,
}

impl<'a> Mediation<'a> {
    /// The policies of operation `i` of `api`.
    pub fn of(api: &'a Api, i: usize) -> Self {
        let last = |name: &str| api.policies_of(i).filter(|p| p.name == name).last().map(|p| &p.params);
        Mediation {
            set: last("set-headers"),
            remove: last("remove-headers"),
            host: last("host-rewrite").and_then(|p| p.get("host")).and_then(Value::as_str),
            rewrite: last("request-rewrite"),
            redirect: last("redirect"),
            service: None,
        }
    }

    /// The `tollgate.rw` line for the ext_authz service, when `request-rewrite` asks for what
    /// Envoy cannot do alone (a method, a query value edited in place).
    pub fn service_line(&self) -> Option<String> {
        self.rewrite.and_then(service::line)
    }

    /// Sets the ext_authz per-route config carrying [`Mediation::service_line`].
    pub fn with_service(mut self, per_route: Option<(String, Any)>) -> Self {
        self.service = per_route;
        self
    }

    /// Applies the policies to `route` (one of the operation's routes). Returns the routes to install
    /// in order, each with how many conditions it adds (a `match` makes a gated route first, which
    /// must sort before the plain one).
    pub fn apply(&self, mut route: Route, facts: PathFacts<'_>) -> Vec<(Route, usize)> {
        self.headers(&mut route);
        let forwards = matches!(route.action, Some(route::Action::Route(_)));
        if forwards && let Some(p) = self.redirect {
            route.action = Some(route::Action::Redirect(redirect(p)));
        }
        if let (Some(host), Some(route::Action::Route(a))) = (self.host, route.action.as_mut()) {
            a.host_rewrite_specifier = Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(host.to_string()));
        }
        let Some(rw) = self
            .rewrite
            .filter(|_| matches!(route.action, Some(route::Action::Route(_))))
        else {
            return vec![(route, 0)];
        };
        let plain = route.clone();
        if let Some(route::Action::Route(a)) = route.action.as_mut()
            && let Some(p) = rw.get("pathRewrite")
        {
            let matched = route.r#match.as_ref().and_then(|m| m.path_specifier.as_ref());
            rewrite_path(a, p, matched, facts);
        }
        if let Some((filter, cfg)) = &self.service {
            route.typed_per_filter_config.insert(filter.clone(), cfg.clone());
        }
        if let Some(rules) = rw.pointer("/queryRewrite/rules").and_then(Value::as_array)
            && !service::query_needs_service(rw)
        {
            let per_route = HeaderMutationPerRoute {
                mutations: Some(Mutations {
                    query_parameter_mutations: rules.iter().filter_map(query_mutation).collect(),
                    ..Default::default()
                }),
            };
            let cfg = FilterConfig {
                config: Some(pack_any(per_route)),
                ..Default::default()
            };
            route
                .typed_per_filter_config
                .insert(HEADER_MUTATION_FILTER.to_string(), pack_any(cfg));
        }
        let Some(m) = rw.get("match") else {
            return vec![(route, 0)];
        };
        let (headers, queries) = (list(m, "headers"), list(m, "queryParams"));
        if let Some(rm) = route.r#match.as_mut() {
            rm.headers.extend(headers.iter().filter_map(header_condition));
            rm.query_parameters.extend(queries.iter().filter_map(query_condition));
        }
        vec![(route, headers.len() + queries.len()), (plain, 0)]
    }

    /// `set-headers` and `remove-headers`: set overwrites; a request `host` is the host rewrite.
    fn headers(&self, route: &mut Route) {
        let pairs = |p: Option<&'a Value>, key: &str| -> Vec<(&'a str, &'a str)> {
            list_of(p, key)
                .iter()
                .filter_map(|h| {
                    Some((
                        h.get("name")?.as_str()?,
                        h.get("value").and_then(Value::as_str).unwrap_or(""),
                    ))
                })
                .collect()
        };
        for (name, value) in pairs(self.set, "requestHeaders") {
            if name.eq_ignore_ascii_case("host") {
                if let Some(route::Action::Route(a)) = route.action.as_mut() {
                    let literal = route_action::HostRewriteSpecifier::HostRewriteLiteral(value.to_string());
                    a.host_rewrite_specifier = Some(literal);
                }
            } else {
                route.request_headers_to_add.push(overwrite(name, value));
            }
        }
        for (name, value) in pairs(self.set, "responseHeaders") {
            route.response_headers_to_add.push(overwrite(name, value));
        }
        for (name, _) in pairs(self.remove, "requestHeaders") {
            route.request_headers_to_remove.push(name.to_ascii_lowercase());
        }
        for (name, _) in pairs(self.remove, "responseHeaders") {
            route.response_headers_to_remove.push(name.to_ascii_lowercase());
        }
    }
}

fn list<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn list_of<'v>(v: Option<&'v Value>, key: &str) -> &'v [Value] {
    v.map(|v| list(v, key)).unwrap_or_default()
}

/// A header set to `value`, replacing what is there. Envoy reads the value as a format string, so a
/// literal `%` is written `%%`.
fn overwrite(name: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: name.to_ascii_lowercase(),
            value: value.replace('%', "%%"),
            ..Default::default()
        }),
        append_action: header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}

fn redirect(p: &Value) -> RedirectAction {
    use redirect_action::RedirectResponseCode as Code;
    let code = match p.get("statusCode").and_then(Value::as_i64).unwrap_or(302) {
        301 => Code::MovedPermanently,
        303 => Code::SeeOther,
        307 => Code::TemporaryRedirect,
        308 => Code::PermanentRedirect,
        _ => Code::Found,
    };
    let url = p.get("url").and_then(Value::as_str).unwrap_or("/");
    let Some(t) = split_url(url) else {
        return RedirectAction::default();
    };
    RedirectAction {
        scheme_rewrite_specifier: t
            .scheme
            .map(|s| redirect_action::SchemeRewriteSpecifier::SchemeRedirect(s.to_string())),
        host_redirect: t.host.unwrap_or_default().to_string(),
        port_redirect: t.port.map(u32::from).unwrap_or_default(),
        path_rewrite_specifier: Some(redirect_action::PathRewriteSpecifier::PathRedirect(t.path.to_string())),
        response_code: code as i32,
        // The Location is the URL as configured: the request's query is not carried over.
        strip_query: true,
    }
}

/// Lowers `pathRewrite`. WSO2 rewrites the path after the context and forwards it under the upstream
/// base path. An exact-path route knows that path, so the result is computed here; other routes get
/// an RE2 rewrite. `ReplaceRegexMatch` runs on the whole path as the client sent it (see README).
fn rewrite_path(
    a: &mut tollgate_proto::pb::envoy::config::route::v3::RouteAction,
    p: &Value,
    matched: Option<&route_match::PathSpecifier>,
    f: PathFacts<'_>,
) {
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default();
    let op_prefix = f.op_path.strip_suffix("/*").unwrap_or(f.op_path);
    let regex = |pattern: String, substitution: String| {
        Some(RegexMatchAndSubstitute {
            pattern: Some(RegexMatcher {
                regex: pattern,
                ..Default::default()
            }),
            substitution,
        })
    };
    let (prefix, regex_rw) = match (s("type"), matched) {
        ("ReplaceFullPath", _) => (format!("{}{}", f.base, s("replaceFullPath")), None),
        ("ReplacePrefixMatch", _) if f.op_path.contains('{') => return, // WSO2 compares the literal template
        ("ReplacePrefixMatch", Some(route_match::PathSpecifier::Path(full))) => {
            let rel = full.strip_prefix(f.context).filter(|r| !r.is_empty()).unwrap_or("/");
            let Some(rest) = rel.strip_prefix(op_prefix) else {
                return;
            };
            (nonempty(format!("{}{}{rest}", f.base, s("replacePrefixMatch"))), None)
        }
        ("ReplacePrefixMatch", Some(route_match::PathSpecifier::PathSeparatedPrefix(_)))
            if !format!("{}{}", f.base, s("replacePrefixMatch")).is_empty() =>
        {
            // The route's prefix is the context and the operation's path: Envoy replaces just that,
            // with no regex to compile.
            a.regex_rewrite = None;
            a.prefix_rewrite = format!("{}{}", f.base, s("replacePrefixMatch"));
            return;
        }
        ("ReplacePrefixMatch", _) => {
            let to = format!("{}{}", f.base, s("replacePrefixMatch"));
            let from = escape(&format!("{}{op_prefix}", f.context));
            let rw = if to.is_empty() {
                regex(format!("^{from}/?(.*)$"), "/\\1".into())
            } else {
                regex(format!("^{from}(.*)$"), format!("{}\\1", to.replace('\\', "\\\\")))
            };
            (String::new(), rw)
        }
        _ => {
            let re = p.get("replaceRegexMatch");
            let g = |k: &str| {
                re.and_then(|r| r.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let (pattern, substitution) = relative_regex(&g("pattern"), &g("substitution"), f);
            (String::new(), regex(pattern, substitution))
        }
    };
    if regex_rw.is_some() {
        a.prefix_rewrite.clear();
        a.regex_rewrite = regex_rw;
    } else if matches!(matched, Some(route_match::PathSpecifier::Path(_))) {
        // An exact match is a prefix of itself: the whole path is replaced.
        a.regex_rewrite = None;
        a.prefix_rewrite = nonempty(prefix);
    } else {
        a.prefix_rewrite.clear();
        a.regex_rewrite = regex("^.*$".into(), nonempty(prefix).replace('\\', "\\\\"));
    }
}

/// WSO2 matches `pattern` against the path after the context and puts the base path in front. A
/// pattern anchored once at its start (`^/users/(.*)`, the usual form) says the same about the whole
/// path once the context is put after the anchor and the base path before the substitution; any other
/// pattern runs on the whole path as sent (see README).
fn relative_regex(pattern: &str, substitution: &str, f: PathFacts<'_>) -> (String, String) {
    let whole = || (pattern.to_string(), substitution.to_string());
    // A `^` other than a class's negation, or a `|`, could anchor or branch outside the first anchor.
    let once = |r: &&str| !r.replace("[^", "[").contains(['^', '|']);
    let Some(rest) = pattern.strip_prefix('^').filter(once) else {
        return whole();
    };
    let relative = format!("^{}(?:{rest})", escape(f.context));
    // The context makes the program longer: past Envoy's limit, keep the pattern the validator passed.
    if tollgate_model::validate::regex::check(&relative).is_err() {
        return whole();
    }
    (relative, format!("{}{substitution}", f.base.replace('\\', "\\\\")))
}

fn nonempty(path: String) -> String {
    if path.is_empty() { "/".into() } else { path }
}

/// `s` as an RE2 literal.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One `queryRewrite` rule as a query mutation (only the actions the catalogue accepts).
fn query_mutation(rule: &Value) -> Option<KeyValueMutation> {
    use key_value_append::KeyValueAppendAction as Act;
    let name = rule.get("name")?.as_str()?;
    let value = rule.get("value").and_then(Value::as_str).unwrap_or_default();
    let append = |action: Act| KeyValueMutation {
        append: Some(KeyValueAppend {
            record: Some(KeyValuePair {
                key: name.to_string(),
                // A format string, as header values are.
                value: Some(tollgate_proto::pb::google::protobuf::Value {
                    kind: Some(tollgate_proto::pb::google::protobuf::value::Kind::StringValue(
                        value.replace('%', "%%"),
                    )),
                }),
            }),
            action: action as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    match rule.get("action")?.as_str()? {
        "Replace" => Some(append(Act::OverwriteIfExistsOrAdd)),
        "Add" => Some(append(Act::AppendIfExistsOrAdd)),
        "Remove" => Some(KeyValueMutation {
            remove: name.to_string(),
            ..Default::default()
        }),
        _ => None,
    }
}

fn string_match(m: &Value) -> Option<StringMatcher> {
    let value = m.get("value")?.as_str()?.to_string();
    let pattern = match m.get("type")?.as_str()? {
        "Regex" => string_matcher::MatchPattern::SafeRegex(RegexMatcher {
            regex: value,
            ..Default::default()
        }),
        _ => string_matcher::MatchPattern::Exact(value),
    };
    Some(StringMatcher {
        match_pattern: Some(pattern),
        ignore_case: false,
    })
}

fn is_present(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("Present")
}

fn header_condition(m: &Value) -> Option<HeaderMatcher> {
    let spec = if is_present(m) {
        header_matcher::HeaderMatchSpecifier::PresentMatch(true)
    } else {
        header_matcher::HeaderMatchSpecifier::StringMatch(string_match(m)?)
    };
    Some(HeaderMatcher {
        name: m.get("name")?.as_str()?.to_ascii_lowercase(),
        header_match_specifier: Some(spec),
        ..Default::default()
    })
}

fn query_condition(m: &Value) -> Option<QueryParameterMatcher> {
    let spec = if is_present(m) {
        query_parameter_matcher::QueryParameterMatchSpecifier::PresentMatch(true)
    } else {
        query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(string_match(m)?)
    };
    Some(QueryParameterMatcher {
        name: m.get("name")?.as_str()?.to_string(),
        query_parameter_match_specifier: Some(spec),
    })
}

#[cfg(test)]
mod tests;
