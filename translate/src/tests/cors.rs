//! The `cors` policy's routes: preflight answers and fallbacks beside each operation route, ahead
//! of every route of the path, and the CORS filter's policy on the operation routes.

use tollgate_proto::pb::envoy::config::route::v3::{Route, header_matcher, route};
use tollgate_proto::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use tollgate_proto::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;

use super::*;

fn cors(params: serde_json::Value) -> PolicyRef {
    PolicyRef {
        name: "cors".into(),
        version: "v1".into(),
        params,
    }
}

/// `/items` GET and POST plus a user OPTIONS operation, key-protected, with API-level CORS; `/own`
/// has its own CORS policy (operation over API).
fn api() -> Api {
    let mut own = op(Method::Get, "/own");
    own.policies = vec![cors(
        serde_json::json!({"allowedOrigins": ["*"], "exposedHeaders": ["X-Own"]}),
    )];
    Api {
        policies: vec![
            PolicyRef {
                name: "api-key-auth".into(),
                version: "v1".into(),
                params: serde_json::json!({"key": "X-API-Key", "in": "header"}),
            },
            cors(serde_json::json!({
                "allowedOrigins": ["http://example.com", r"https://.*\.example\.org"],
                "allowedMethods": ["GET", "OPTIONS"],
                "allowedHeaders": ["Content-Type"],
                "exposedHeaders": ["X-Custom"],
                "allowCredentials": true,
                "maxAge": 600
            })),
        ],
        operations: vec![
            op(Method::Get, "/items"),
            op(Method::Post, "/items"),
            op(Method::Options, "/items"),
            own,
        ],
        ..weather()
    }
}

/// The routes of the default virtual host, in order.
fn routes(api: &Api) -> Vec<Route> {
    let mut t = Translator::new(settings());
    t.set_api(api).unwrap();
    let store = Store::new();
    store.publish(DEFAULT_GROUP, t.all().unwrap());
    let group = store.group(DEFAULT_GROUP);
    let r = group.get(TypeKind::Route, ROUTE_CONFIG).unwrap();
    let rc = RouteConfiguration::decode(Any::decode(r.any().as_ref()).unwrap().value.as_slice()).unwrap();
    rc.virtual_hosts.into_iter().flat_map(|v| v.routes).collect()
}

fn find<'a>(routes: &'a [Route], name: &str) -> &'a Route {
    routes
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no route {name}"))
}

fn header<'a>(r: &'a Route, key: &str) -> Option<&'a str> {
    r.response_headers_to_add
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == key)
        .map(|h| h.value.as_str())
}

fn matcher(r: &Route, name: &str) -> Option<String> {
    let h = r.r#match.as_ref()?.headers.iter().find(|h| h.name == name)?;
    Some(match h.header_match_specifier.as_ref()? {
        header_matcher::HeaderMatchSpecifier::PresentMatch(_) => "present".into(),
        header_matcher::HeaderMatchSpecifier::StringMatch(m) => match m.match_pattern.as_ref()? {
            MatchPattern::Exact(v) => v.clone(),
            MatchPattern::SafeRegex(re) => format!("regex {}", re.regex),
            other => format!("{other:?}"),
        },
        other => format!("{other:?}"),
    })
}

const ITEMS: &str = "/weather/v1.0/items|*";

#[test]
fn allowed_methods_get_an_answer_others_only_the_fallback() {
    let rs = routes(&api());
    let answer = find(&rs, &format!("GET|{ITEMS}|preflight"));
    assert_eq!(matcher(answer, ":method").as_deref(), Some("OPTIONS"));
    assert_eq!(matcher(answer, "access-control-request-method").as_deref(), Some("GET"));
    assert_eq!(
        matcher(answer, "origin").as_deref(),
        Some(r"regex ^(?:http://example\.com|(?:https://.*\.example\.org))$")
    );
    assert_eq!(
        matcher(answer, "access-control-request-headers").as_deref(),
        Some(r"regex (?i)^\s*(?:(?:content-type)\s*(?:,\s*|$))*$")
    );
    assert!(matches!(answer.action, Some(route::Action::DirectResponse(ref d)) if d.status == 204));
    assert_eq!(header(answer, "access-control-allow-origin"), Some("%REQ(origin)%"));
    assert_eq!(header(answer, "access-control-allow-methods"), Some("GET,OPTIONS"));
    assert_eq!(header(answer, "access-control-allow-headers"), Some("Content-Type"));
    assert_eq!(header(answer, "access-control-max-age"), Some("600"));
    assert_eq!(header(answer, "access-control-allow-credentials"), Some("true"));
    // No auth on a preflight: browsers send none.
    assert!(answer.typed_per_filter_config.is_empty());
    // POST is not allowed: its preflights meet the refusing fallback only.
    assert!(!rs.iter().any(|r| r.name == format!("POST|{ITEMS}|preflight")));
    let refused = find(&rs, &format!("POST|{ITEMS}|preflight-refused"));
    assert!(matches!(refused.action, Some(route::Action::DirectResponse(ref d)) if d.status == 204));
    assert!(refused.response_headers_to_add.is_empty());
}

#[test]
fn preflights_rank_before_every_route_of_their_path() {
    let rs = routes(&api());
    let at = |name: String| rs.iter().position(|r| r.name == name).unwrap();
    let last_preflight = at(format!("POST|{ITEMS}|preflight-refused"));
    for m in ["GET", "POST", "OPTIONS"] {
        assert!(at(format!("{m}|{ITEMS}")) > last_preflight, "{m} after the preflights");
    }
    assert!(at(format!("GET|{ITEMS}|preflight")) < at(format!("GET|{ITEMS}|preflight-refused")));
}

#[test]
fn operation_routes_carry_the_filter_policy_or_the_wildcard_headers() {
    let rs = routes(&api());
    let get = find(&rs, &format!("GET|{ITEMS}"));
    let any = get
        .typed_per_filter_config
        .get("envoy.filters.http.cors")
        .expect("a CORS policy");
    let policy = CorsPolicy::decode(any.value.as_slice()).unwrap();
    assert_eq!(policy.allow_origin_string_match.len(), 2);
    assert_eq!(policy.expose_headers, "X-Custom");
    assert_eq!(policy.allow_credentials.map(|b| b.value), Some(true));
    assert_eq!(header(get, "vary"), Some("Origin"));
    assert!(get.typed_per_filter_config.contains_key(EXT_AUTHZ_FILTER));
    // The operation's own `*` policy: no filter policy, the route says `*` itself.
    let own = find(&rs, "GET|/weather/v1.0/own|*");
    assert!(!own.typed_per_filter_config.contains_key("envoy.filters.http.cors"));
    assert_eq!(header(own, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(own, "access-control-expose-headers"), Some("X-Own"));
    let own_answer = find(&rs, "GET|/weather/v1.0/own|*|preflight");
    assert_eq!(matcher(own_answer, "origin").as_deref(), Some("present"));
    // Default allowedHeaders is empty: only preflights asking for no header are answered.
    assert_eq!(
        matcher(own_answer, "access-control-request-headers").as_deref(),
        Some(r"regex ^\s*$")
    );
}

#[test]
fn forward_preflight_sends_refused_preflights_through_the_operation() {
    let mut a = api();
    a.policies[1] = cors(serde_json::json!({"allowedOrigins": ["http://a.com"], "forwardPreflight": true}));
    let rs = routes(&a);
    let fwd = find(&rs, &format!("GET|{ITEMS}|preflight-forward"));
    assert!(matches!(fwd.action, Some(route::Action::Route(_))));
    // Through the operation's auth, and without the CORS headers of an answer.
    assert!(fwd.typed_per_filter_config.contains_key(EXT_AUTHZ_FILTER));
    assert!(!fwd.typed_per_filter_config.contains_key("envoy.filters.http.cors"));
    assert_eq!(header(fwd, "access-control-allow-origin"), None);
}

#[test]
fn without_cors_nothing_changes() {
    let rs = routes(&weather());
    assert!(!rs.iter().any(|r| r.name.contains("preflight")));
    assert!(
        rs.iter()
            .all(|r| !r.typed_per_filter_config.contains_key("envoy.filters.http.cors"))
    );
}
