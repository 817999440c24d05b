//! The ext_authz per-route configuration of `api-key-auth` and `subscription-validation`, and the
//! headers the listener's ext_authz filter sends to the service.

use std::collections::HashMap;

use tollgate_policies::ctx;
use tollgate_proto::pb::envoy::extensions::filters::http::ext_authz::v3::{ExtAuthzPerRoute, ext_authz_per_route};

use super::*;

fn policy(name: &str, params: serde_json::Value) -> PolicyRef {
    PolicyRef {
        name: name.into(),
        version: "v1".into(),
        params,
    }
}

/// The API: `/open` (no policy of its own), `/both` (its own key auth), `/off` (validation off).
fn api(api_level: Vec<PolicyRef>) -> Api {
    let mut both = op(Method::Get, "/both");
    both.policies = vec![policy(
        "api-key-auth",
        serde_json::json!({"key": "X-API-Key", "in": "header"}),
    )];
    let mut off = op(Method::Get, "/off");
    off.policies = vec![policy("subscription-validation", serde_json::json!({"enabled": false}))];
    Api {
        policies: api_level,
        operations: vec![op(Method::Get, "/open"), both, off],
        ..weather()
    }
}

fn store(settings: Settings, api: &Api) -> Store {
    let mut t = Translator::new(settings);
    t.set_api(api).unwrap();
    let store = Store::new();
    store.publish(DEFAULT_GROUP, t.all().unwrap());
    store
}

/// The context extensions of the route for `path` (GET), `None` if ext_authz stays off there.
fn extensions(store: &Store, path: &str) -> Option<HashMap<String, String>> {
    let group = store.group(DEFAULT_GROUP);
    let r = group.get(TypeKind::Route, ROUTE_CONFIG).unwrap();
    let rc = RouteConfiguration::decode(Any::decode(r.any().as_ref()).unwrap().value.as_slice()).unwrap();
    let route = rc
        .virtual_hosts
        .iter()
        .flat_map(|v| v.routes.iter())
        .find(|r| r.name.starts_with(&format!("GET|/weather/v1.0{path}|")))
        .unwrap_or_else(|| panic!("a route for {path}"));
    let any = route.typed_per_filter_config.get(EXT_AUTHZ_FILTER)?;
    let per_route = ExtAuthzPerRoute::decode(any.value.as_slice()).unwrap();
    match per_route.r#override {
        Some(ext_authz_per_route::Override::CheckSettings(c)) => Some(c.context_extensions),
        other => panic!("unexpected override {other:?}"),
    }
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Whether the HTTP listener's encoded bytes hold `needle` (the ext_authz allowed headers).
fn listener_has(store: &Store, needle: &str) -> bool {
    let group = store.group(DEFAULT_GROUP);
    let l = group.get(TypeKind::Listener, "listener_http_8080").unwrap();
    let bytes = l.any().as_ref();
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn subscription_validation_alone_turns_ext_authz_on() {
    let s = store(
        settings(),
        &api(vec![policy("subscription-validation", serde_json::json!({}))]),
    );
    assert_eq!(
        extensions(&s, "/open"),
        Some(map(&[
            (ctx::API, "weather"),
            (ctx::SUB, "true"),
            (ctx::SUB_HEADER, "subscription-key"),
        ])),
        "the default header, lower-cased, and no key facts"
    );
    assert_eq!(
        extensions(&s, "/both"),
        Some(map(&[
            (ctx::API, "weather"),
            (ctx::KEY_IN, "header"),
            (ctx::KEY_NAME, "x-api-key"),
            (ctx::STRIP, "false"),
            (ctx::SUB, "true"),
            (ctx::SUB_HEADER, "subscription-key"),
        ])),
        "one configuration for both checks"
    );
    assert_eq!(extensions(&s, "/off"), None, "the operation turned validation off");
    assert!(listener_has(&s, "subscription-key"));
    assert!(!listener_has(&s, "cookie"), "no cookie configured");
}

#[test]
fn operation_level_validation_overrides_the_apis() {
    let api_level = policy(
        "subscription-validation",
        serde_json::json!({"subscriptionKeyHeader": "X-Sub", "subscriptionKeyCookie": "sk"}),
    );
    let mut a = api(vec![api_level]);
    a.operations[1].policies.push(policy(
        "subscription-validation",
        serde_json::json!({"subscriptionKeyHeader": "X-Other"}),
    ));
    let s = store(settings(), &a);
    let open = extensions(&s, "/open").unwrap();
    assert_eq!(open[ctx::SUB_HEADER], "x-sub");
    assert_eq!(open[ctx::SUB_COOKIE], "sk");
    let both = extensions(&s, "/both").unwrap();
    assert_eq!(both[ctx::SUB_HEADER], "x-other");
    assert!(
        !both.contains_key(ctx::SUB_COOKIE),
        "the operation's policy replaces the API's"
    );
    for h in ["x-sub", "x-other", "cookie"] {
        assert!(listener_has(&s, h), "{h} reaches the service");
    }
}

#[test]
fn without_the_ext_authz_filter_no_route_turns_it_on() {
    let a = api(vec![policy("subscription-validation", serde_json::json!({}))]);
    let mut off = settings();
    off.authz = None;
    off.routes.authz = false;
    let s = store(off, &a);
    assert_eq!(extensions(&s, "/open"), None);
    assert_eq!(extensions(&s, "/both"), None);
    // Key auth alone is as before: no subscription facts.
    let s = store(settings(), &api(vec![]));
    assert_eq!(extensions(&s, "/open"), None);
    let both = extensions(&s, "/both").unwrap();
    assert!(!both.contains_key(ctx::SUB) && !both.contains_key(ctx::SUB_HEADER));
    // WSO2's default subscription header is always sent, so the first subscribed API does not
    // change the listener; a cookie is sent only when a route reads one.
    assert!(listener_has(&s, "subscription-key") && !listener_has(&s, "cookie"));
}
