//! Unit tests of the jwt-auth lowering: the listener part depends on the key managers only, a
//! route gets the requirement, the claim checks it asks for, and its claim headers.

use serde_json::json;
use tollgate_model::{Api, Method, Operation, PathKind, PolicyRef, Resilience, Upstream};

use super::*;

fn api(api_params: Option<serde_json::Value>, op_params: Option<serde_json::Value>) -> Api {
    let policy = |params| PolicyRef {
        name: "jwt-auth".into(),
        version: "v1".into(),
        params,
    };
    Api {
        handle: "orders".into(),
        display_name: "Orders".into(),
        version: "v1".into(),
        context: "/orders".into(),
        deployed: true,
        main_vhosts: vec!["*".into()],
        sandbox_vhost: None,
        main: Upstream {
            tls: false,
            host: "10.0.0.1".into(),
            port: 80,
            base_path: String::new(),
            host_rewrite: false,
            connect_timeout: None,
        },
        sandbox: None,
        policies: api_params.into_iter().map(policy).collect(),
        resilience: Resilience::default(),
        operations: vec![Operation {
            method: Method::Get,
            path: "/items".into(),
            kind: PathKind::Template,
            headers: vec![],
            resilience: Resilience::default(),
            policies: op_params.into_iter().map(policy).collect(),
        }],
    }
}

fn settings(names: &[&str]) -> JwtSettings {
    JwtSettings {
        key_managers: names
            .iter()
            .map(|n| KeyManager {
                name: n.to_string(),
                issuer: None,
                jwks: Jwks::Remote(JwksEndpoint {
                    uri: format!("https://{n}.example/jwks"),
                    tls: true,
                    host: format!("{n}.example"),
                    port: 443,
                    ca_path: None,
                    skip_tls_verify: false,
                }),
            })
            .collect(),
        ..JwtSettings::default()
    }
}

#[test]
fn without_key_managers_nothing_reaches_the_listener() {
    let s = JwtSettings::default();
    assert!(s.filters().is_empty());
    assert!(s.local_reply().is_none());
    assert!(s.deps().is_empty());
    assert!(s.clusters("ca.pem").unwrap().is_empty());
}

#[test]
fn each_remote_key_manager_gets_a_cluster_the_listener_waits_for() {
    let s = settings(&["a", "b"]);
    let names: Vec<String> = s
        .clusters("ca.pem")
        .unwrap()
        .iter()
        .map(|r| r.name().to_string())
        .collect();
    assert_eq!(names, ["tollgate_jwks_a", "tollgate_jwks_b"]);
    assert_eq!(s.deps().len(), 2);
    let filters: Vec<String> = s.filters().into_iter().map(|f| f.name).collect();
    assert_eq!(filters, [JWT_FILTER, CLAIMS_FILTER]);
    assert!(s.filters().iter().all(|f| f.disabled), "routes turn the filters on");
}

#[test]
fn a_route_without_jwt_auth_is_untouched() {
    assert!(route_jwt(&api(None, None), 0).is_none());
}

#[test]
fn a_bare_policy_only_requires_a_verified_token() {
    let jwt = route_jwt(&api(Some(json!({})), None), 0).unwrap();
    let names: Vec<&str> = jwt.per_filter.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [JWT_FILTER]);
    assert!(jwt.add.is_empty() && jwt.remove.is_empty());
}

#[test]
fn claims_are_checked_and_mapped_and_the_operation_wins() {
    let params = json!({"issuers": ["a"], "requiredScopes": ["read"], "claimMappings": {"sub": "X-User"}});
    let jwt = route_jwt(&api(Some(json!({})), Some(params)), 0).unwrap();
    let names: Vec<&str> = jwt.per_filter.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [JWT_FILTER, CLAIMS_FILTER]);
    assert_eq!(jwt.remove, ["x-user"]);
    let header = jwt.add[0].header.as_ref().unwrap();
    assert_eq!(
        header.value,
        "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload:sub)%"
    );
    let checks = claim_checks(
        &json!({"issuers": ["a", "b"], "audiences": ["x"], "requiredScopes": ["r", "w"],
        "requiredClaims": {"t": "acme"}}),
    );
    // issuers (one of), audiences (one of), each scope, each claim.
    assert_eq!(checks.len(), 5);
}
