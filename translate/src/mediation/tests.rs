//! What each mediation policy becomes in a route.

use serde_json::json;
use tollgate_model::{Method, Operation, PathKind, PolicyRef, Resilience, Upstream};
use tollgate_proto::pb::envoy::config::route::v3::{RouteAction, RouteMatch};

use super::*;

fn policy(name: &str, params: Value) -> PolicyRef {
    PolicyRef {
        name: name.into(),
        version: "v1".into(),
        params,
    }
}

fn api(api_policies: Vec<PolicyRef>, op_policies: Vec<PolicyRef>) -> Api {
    Api {
        handle: "m".into(),
        display_name: "M".into(),
        version: "v1".into(),
        context: "/ctx".into(),
        deployed: true,
        main_vhosts: vec!["*".into()],
        sandbox_vhost: None,
        main: Upstream {
            tls: false,
            host: "10.0.0.1".into(),
            port: 80,
            base_path: "/base".into(),
            host_rewrite: true,
            connect_timeout: None,
        },
        sandbox: None,
        policies: api_policies,
        resilience: Resilience::default(),
        operations: vec![Operation {
            method: Method::Get,
            path: "/items/*".into(),
            kind: PathKind::Template,
            headers: vec![],
            resilience: Resilience::default(),
            policies: op_policies,
        }],
    }
}

const FACTS: PathFacts<'static> = PathFacts {
    context: "/ctx",
    op_path: "/items/*",
    base: "/base",
};

/// A forwarding route as `operation_route` makes it, matching `spec` and rewriting to `to`.
fn route(spec: route_match::PathSpecifier, to: &str) -> Route {
    Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(spec),
            ..Default::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            prefix_rewrite: to.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn prefix_route() -> Route {
    route(
        route_match::PathSpecifier::PathSeparatedPrefix("/ctx/items".into()),
        "/base/items",
    )
}

fn action(r: &Route) -> &RouteAction {
    match r.action.as_ref() {
        Some(route::Action::Route(a)) => a,
        other => panic!("not a forward: {other:?}"),
    }
}

fn regex_of(a: &RouteAction) -> (String, String) {
    let rw = a.regex_rewrite.as_ref().expect("a regex rewrite");
    (rw.pattern.as_ref().unwrap().regex.clone(), rw.substitution.clone())
}

#[test]
fn headers_and_host_become_route_fields() {
    let a = api(
        vec![
            policy(
                "set-headers",
                json!({"requestHeaders": [{"name": "X-Team", "value": "50%"}, {"name": "Host", "value": "h:1"}],
                       "responseHeaders": [{"name": "X-Out", "value": "v"}]}),
            ),
            policy(
                "remove-headers",
                json!({"requestHeaders": [{"name": "X-Debug"}], "responseHeaders": [{"name": "Server"}]}),
            ),
        ],
        vec![],
    );
    let out = Mediation::of(&a, 0).apply(prefix_route(), FACTS);
    assert_eq!(out.len(), 1);
    let r = &out[0].0;
    let added = r.request_headers_to_add[0].header.as_ref().unwrap();
    assert_eq!((added.key.as_str(), added.value.as_str()), ("x-team", "50%%"));
    assert_eq!(
        r.request_headers_to_add[0].append_action,
        header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd as i32
    );
    assert_eq!(r.request_headers_to_add.len(), 1, "host is a rewrite, not a header");
    assert_eq!(
        action(r).host_rewrite_specifier,
        Some(route_action::HostRewriteSpecifier::HostRewriteLiteral("h:1".into()))
    );
    assert_eq!(r.response_headers_to_add[0].header.as_ref().unwrap().key, "x-out");
    assert_eq!(r.request_headers_to_remove, ["x-debug"]);
    assert_eq!(r.response_headers_to_remove, ["server"]);
}

#[test]
fn the_operation_policy_replaces_the_apis_of_the_same_name() {
    let a = api(
        vec![
            policy("host-rewrite", json!({"host": "api-level"})),
            policy("set-headers", json!({"requestHeaders": [{"name": "a", "value": "1"}]})),
        ],
        vec![policy("host-rewrite", json!({"host": "op-level"}))],
    );
    let out = Mediation::of(&a, 0).apply(prefix_route(), FACTS);
    let r = &out[0].0;
    assert_eq!(
        action(r).host_rewrite_specifier,
        Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(
            "op-level".into()
        ))
    );
    assert_eq!(
        r.request_headers_to_add.len(),
        1,
        "other API-level policies still apply"
    );
}

#[test]
fn path_rewrites_keep_the_base_path() {
    let rw = |p: Value| api(vec![], vec![policy("request-rewrite", json!({ "pathRewrite": p }))]);
    let prefix = rw(json!({"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}));
    let out = Mediation::of(&prefix, 0).apply(prefix_route(), FACTS);
    let a = action(&out[0].0);
    assert_eq!(
        (a.prefix_rewrite.as_str(), a.regex_rewrite.is_none()),
        ("/base/v2", true)
    );
    // A plain prefix route (`/ctx/` of an operation `/*`) may hold more than the operation's path.
    let wide = route(route_match::PathSpecifier::Prefix("/ctx/".into()), "/");
    let out = Mediation::of(&prefix, 0).apply(wide, PathFacts { op_path: "/*", ..FACTS });
    let a = action(&out[0].0);
    assert_eq!(a.prefix_rewrite, "");
    assert_eq!(regex_of(a), ("^/ctx(.*)$".into(), "/base/v2\\1".into()));
    // On an exact route the result is known: a plain prefix rewrite.
    let exact = route(route_match::PathSpecifier::Path("/ctx/items".into()), "/base/items");
    let out = Mediation::of(&prefix, 0).apply(exact, FACTS);
    assert_eq!(action(&out[0].0).prefix_rewrite, "/base/v2");

    let full = rw(json!({"type": "ReplaceFullPath", "replaceFullPath": "/x"}));
    let out = Mediation::of(&full, 0).apply(prefix_route(), FACTS);
    assert_eq!(regex_of(action(&out[0].0)), ("^.*$".into(), "/base/x".into()));

    // An anchored pattern is about the path after the context, as in WSO2.
    let regex = rw(json!({"type": "ReplaceRegexMatch",
                          "replaceRegexMatch": {"pattern": "^/items/([^/]*)$", "substitution": "/v/\\1"}}));
    let out = Mediation::of(&regex, 0).apply(prefix_route(), FACTS);
    assert_eq!(
        regex_of(action(&out[0].0)),
        ("^/ctx(?:/items/([^/]*)$)".into(), "/base/v/\\1".into())
    );
    // Any other runs on the whole path.
    let regex = rw(json!({"type": "ReplaceRegexMatch",
                          "replaceRegexMatch": {"pattern": "old|^x", "substitution": "new"}}));
    let out = Mediation::of(&regex, 0).apply(prefix_route(), FACTS);
    assert_eq!(regex_of(action(&out[0].0)), ("old|^x".into(), "new".into()));
}

#[test]
fn a_prefix_rewrite_to_nothing_still_sends_a_path() {
    let a = api(
        vec![],
        vec![policy(
            "request-rewrite",
            json!({"pathRewrite": {"type": "ReplacePrefixMatch", "replacePrefixMatch": ""}}),
        )],
    );
    let facts = PathFacts { base: "", ..FACTS };
    let out = Mediation::of(&a, 0).apply(prefix_route(), facts);
    assert_eq!(
        regex_of(action(&out[0].0)),
        ("^/ctx/items/?(.*)$".into(), "/\\1".into())
    );
}

#[test]
fn a_match_adds_a_gated_route_before_the_plain_one() {
    let a = api(
        vec![],
        vec![policy(
            "request-rewrite",
            json!({"match": {"headers": [{"name": "X-M", "type": "Present"}],
                             "queryParams": [{"name": "q", "type": "Regex", "value": "^a"}]},
                   "queryRewrite": {"rules": [{"action": "Remove", "name": "d"}]}}),
        )],
    );
    let out = Mediation::of(&a, 0).apply(prefix_route(), FACTS);
    assert_eq!(out.len(), 2);
    let (gated, conditions) = &out[0];
    assert_eq!(*conditions, 2);
    let m = gated.r#match.as_ref().unwrap();
    assert_eq!(m.headers[0].name, "x-m");
    assert_eq!(m.query_parameters[0].name, "q");
    assert!(gated.typed_per_filter_config.contains_key(HEADER_MUTATION_FILTER));
    let (plain, none) = &out[1];
    assert_eq!(*none, 0);
    assert_eq!(plain, &prefix_route(), "the plain route is the operation's own");
}

#[test]
fn redirect_replaces_forwarding() {
    let a = api(
        vec![],
        vec![policy(
            "redirect",
            json!({"url": "https://example.com:8443/new?x=1", "statusCode": 301}),
        )],
    );
    let out = Mediation::of(&a, 0).apply(prefix_route(), FACTS);
    let Some(route::Action::Redirect(r)) = out[0].0.action.as_ref() else {
        panic!("no redirect")
    };
    assert_eq!(r.host_redirect, "example.com");
    assert_eq!(r.port_redirect, 8443);
    assert_eq!(
        r.path_rewrite_specifier,
        Some(redirect_action::PathRewriteSpecifier::PathRedirect("/new?x=1".into()))
    );
    assert_eq!(
        r.response_code,
        redirect_action::RedirectResponseCode::MovedPermanently as i32
    );
    assert!(r.strip_query);
}

#[test]
fn the_service_does_the_method_and_in_place_query_edits() {
    use prost::Message;
    use tollgate_proto::pb::envoy::extensions::filters::http::ext_authz::v3::{ExtAuthzPerRoute, ext_authz_per_route};
    let params = json!({"methodRewrite": "POST",
                        "queryRewrite": {"rules": [{"action": "Append", "name": "q", "value": "x", "separator": ","}]},
                        "match": {"headers": [{"name": "x-a", "type": "Present"}]}});
    let a = api(vec![], vec![policy("request-rewrite", params.clone())]);
    let defaults = crate::routes::RouteDefaults {
        timeout: std::time::Duration::from_secs(15),
        idle_timeout: std::time::Duration::from_secs(300),
        authz: true,
    };
    let routes: Vec<Route> = crate::routes::operation_route(&a, 0, "*", "c", "/base", false, defaults)
        .iter()
        .map(|r| Route::decode(r.encoded.clone()).unwrap())
        .collect();
    assert_eq!(routes.len(), 2, "the gated route and the plain one");
    let (gated, plain) = (&routes[0], &routes[1]);
    assert!(gated.r#match.as_ref().unwrap().headers.iter().any(|h| h.name == "x-a"));
    let authz = gated
        .typed_per_filter_config
        .get(crate::EXT_AUTHZ_FILTER)
        .expect("ext_authz on");
    let per_route = ExtAuthzPerRoute::decode(authz.value.as_slice()).unwrap();
    let Some(ext_authz_per_route::Override::CheckSettings(settings)) = per_route.r#override else {
        panic!("check settings expected")
    };
    let line = &settings.context_extensions[tollgate_policies::ctx::REWRITE];
    assert_eq!(
        serde_json::from_str::<Value>(line).unwrap()["query"],
        params["queryRewrite"]["rules"]
    );
    assert_eq!(settings.context_extensions[tollgate_policies::ctx::API], "m");
    assert!(
        !gated.typed_per_filter_config.contains_key(HEADER_MUTATION_FILTER),
        "the service edits the query, so Envoy must not edit it as well"
    );
    assert!(plain.typed_per_filter_config.is_empty(), "no rewrite without the match");
}
