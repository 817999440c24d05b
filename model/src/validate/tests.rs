//! Tests of document validation and resolution: one group per rule family, with exact field paths and
//! messages. Upstream and operation rules live in the `upstream` and `operation` submodules.

mod operation;
mod upstream;
mod vhost;

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::document;
use crate::{HeaderMatch, Method, Operation, PathKind, PolicyRef, Resilience, Upstream};

/// The example of reference §2.10, except that the header name is written `X-Tenant` to check lower-casing.
const EXAMPLE: &str = r#"
apiVersion: gateway.api-platform.wso2.com/v1
kind: RestApi
metadata:
  name: inventory-v2.1
  labels: {team: retail}
  annotations:
    gateway.api-platform.wso2.com/project-id: demo
spec:
  displayName: Inventory API
  version: v2.1
  context: /inventory/$version
  vhosts:
    main: api.shop.example;*.shop.example
    sandbox: sandbox.shop.example
  upstreamDefinitions:
    - name: inv-primary
      basePath: /svc/inventory
      timeout: {connect: 3s}
      upstreams:
        - url: http://inventory-a:8000
  upstream:
    main: {ref: inv-primary}
    sandbox: {url: "http://inventory-sbx:8000/svc/inventory"}
  resilience: {timeout: 20s}
  policies:
    - name: api-key-auth
      version: v1
      params: {key: X-API-Key, in: header}
  operations:
    - {method: GET, path: /items}
    - method: GET
      path: /items/{itemId}
      resilience: {timeout: 5s, idleTimeout: 0s}
    - match:
        method: POST
        path: {value: /items, type: Exact}
        headers:
          - {name: X-Tenant, type: RegularExpression, value: "^t-[0-9]+$"}
    - {method: DELETE, path: /items/*}
"#;

/// The smallest valid document.
const MINIMAL: &str = r#"
metadata: {name: weather}
spec:
  displayName: Weather
  version: v1.0
  context: /weather/$version
  upstream: {main: {url: "http://sample-backend:9080/api/v2"}}
  operations:
    - {method: GET, path: "/{country_code}/{city}"}
"#;

pub(super) fn defaults() -> VhostDefaults {
    VhostDefaults {
        main: "*".into(),
        main_domains: vec![],
        sandbox: "sandbox-*".into(),
        sandbox_domains: vec![],
        upstreams: crate::UpstreamGuard::default(),
    }
}

pub(super) fn parse(yaml: &str) -> RestApiDoc {
    serde_yaml::from_str(yaml).expect("test document parses")
}

pub(super) fn minimal() -> RestApiDoc {
    parse(MINIMAL)
}

pub(super) fn ok(doc: &RestApiDoc) -> Api {
    match resolve(doc, &defaults(), &Catalogue::builtin()) {
        Ok(api) => api,
        Err(errs) => panic!("expected a valid document, got {errs:#?}"),
    }
}

/// All errors as (field, message) pairs.
pub(super) fn errors(doc: &RestApiDoc) -> Vec<(String, String)> {
    match resolve(doc, &defaults(), &Catalogue::builtin()) {
        Ok(api) => panic!("expected errors, got {api:#?}"),
        Err(errs) => errs.into_iter().map(|e| (e.field, e.message)).collect(),
    }
}

/// Asserts that the document fails with exactly this one error.
pub(super) fn only_error(doc: &RestApiDoc, field: &str, message: &str) {
    assert_eq!(errors(doc), vec![(field.to_string(), message.to_string())]);
}

pub(super) fn parse_upstreams(yaml: &str) -> document::Upstreams {
    serde_yaml::from_str(yaml).expect("test upstreams parse")
}

pub(super) fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

fn example_operations() -> Vec<Operation> {
    let api_res = Resilience {
        timeout: secs(20),
        idle_timeout: None,
    };
    let op = |method, path: &str, kind, headers, resilience| Operation {
        method,
        path: path.into(),
        kind,
        headers,
        resilience,
        policies: vec![],
    };
    let tenant = HeaderMatch {
        name: "x-tenant".into(),
        value: "^t-[0-9]+$".into(),
        regex: true,
    };
    vec![
        op(Method::Get, "/items", PathKind::Template, vec![], api_res),
        op(
            Method::Get,
            "/items/{itemId}",
            PathKind::Template,
            vec![],
            Resilience {
                timeout: secs(5),
                idle_timeout: secs(0),
            },
        ),
        op(Method::Post, "/items", PathKind::Exact, vec![tenant], api_res),
        op(Method::Delete, "/items/*", PathKind::Template, vec![], api_res),
    ]
}

#[test]
fn example_document_resolves_to_the_expected_api() {
    let expected = Api {
        handle: "inventory-v2.1".into(),
        display_name: "Inventory API".into(),
        version: "v2.1".into(),
        context: "/inventory/v2.1".into(),
        deployed: true,
        main_vhosts: vec!["api.shop.example".into(), "*.shop.example".into()],
        sandbox_vhost: Some("sandbox.shop.example".into()),
        main: Upstream {
            tls: false,
            host: "inventory-a".into(),
            port: 8000,
            base_path: "/svc/inventory".into(),
            host_rewrite: true,
            connect_timeout: secs(3),
        },
        sandbox: Some(Upstream {
            tls: false,
            host: "inventory-sbx".into(),
            port: 8000,
            base_path: "/svc/inventory".into(),
            host_rewrite: true,
            connect_timeout: None,
        }),
        policies: vec![PolicyRef {
            name: "api-key-auth".into(),
            version: "v1".into(),
            params: json!({"key": "X-API-Key", "in": "header"}),
        }],
        resilience: Resilience {
            timeout: secs(20),
            idle_timeout: None,
        },
        operations: example_operations(),
    };
    assert_eq!(ok(&parse(EXAMPLE)), expected);
}

#[test]
fn minimal_document_resolves_with_gateway_defaults() {
    let api = ok(&minimal());
    assert_eq!(api.context, "/weather/v1.0");
    assert_eq!(api.main_vhosts, vec!["*".to_string()]);
    assert_eq!((api.sandbox.as_ref(), api.sandbox_vhost.as_ref()), (None, None));
    assert_eq!(api.main.base_path, "/api/v2");
    assert_eq!((api.main.host.as_str(), api.main.port), ("sample-backend", 9080));
    assert!(api.deployed && api.policies.is_empty());
    assert_eq!(api.resilience, Resilience::default());
    assert_eq!(api.operations[0].resilience, Resilience::default());
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let mut doc = minimal();
    doc.metadata.name = None;
    doc.spec.context = None;
    doc.spec.operations = Some(vec![]);
    doc.spec.version = Some("v1.0.0-beta".into());
    assert_eq!(
        errors(&doc),
        vec![
            ("metadata.name".into(), "Metadata name is required".into()),
            (
                "spec.version".into(),
                "API version must follow semantic versioning pattern (e.g., v1.0, v2.1.3)".into()
            ),
            ("spec.context".into(), "Context is required".into()),
            ("spec.operations".into(), "At least one operation is required".into()),
        ]
    );
}

#[test]
fn kind_must_be_rest_api_when_given() {
    let mut doc = minimal();
    doc.kind = Some("RestApi".into());
    ok(&doc);
    doc.kind = Some("Mcp".into());
    only_error(&doc, "kind", "Unsupported kind (must be 'RestApi')");
}

#[test]
fn metadata_name_is_required_and_path_safe() {
    let mut doc = minimal();
    doc.metadata.name = Some("  ".into());
    only_error(&doc, "metadata.name", "Metadata name is required");
    let msg = "Metadata name must not contain whitespace, '/', '}' or control characters";
    for bad in ["a b", "a/b", "a}b", "a\u{7}b"] {
        doc.metadata.name = Some(bad.into());
        only_error(&doc, "metadata.name", msg);
    }
    doc.metadata.name = Some("inventory-v2.1_x".into());
    assert_eq!(ok(&doc).handle, "inventory-v2.1_x");
}

#[test]
fn label_keys_must_not_contain_whitespace() {
    let mut doc = minimal();
    doc.metadata.labels.insert("environment".into(), "production".into());
    ok(&doc);
    doc.metadata.labels.insert("My Label".into(), "x".into());
    only_error(
        &doc,
        "metadata.labels",
        "Label key 'My Label' contains whitespace characters. Label keys must not contain whitespace",
    );
}

#[test]
fn display_name_rules() {
    let mut doc = minimal();
    doc.spec.display_name = Some("My Display Name API-1_2.3".into());
    ok(&doc);
    doc.spec.display_name = None;
    only_error(&doc, "spec.displayName", "API display name is required");
    doc.spec.display_name = Some("a".repeat(101));
    only_error(&doc, "spec.displayName", "API display name must be 1-100 characters");
    doc.spec.display_name = Some("a".repeat(100));
    ok(&doc);
    doc.spec.display_name = Some("Weather@Home".into());
    only_error(&doc, "spec.displayName", DISPLAY_NAME_CHARS);
}

#[test]
fn version_follows_the_runtime_pattern() {
    let mut doc = minimal();
    for good in ["v1", "v1.0", "v99.88.77", "2.0", "3"] {
        doc.spec.version = Some(good.into());
        assert_eq!(ok(&doc).version, good);
    }
    let msg = "API version must follow semantic versioning pattern (e.g., v1.0, v2.1.3)";
    for bad in ["v1.0.0-beta", "v1.2.3.4", "v", "v1.", "version1", "V1"] {
        doc.spec.version = Some(bad.into());
        only_error(&doc, "spec.version", msg);
    }
    doc.spec.version = None;
    only_error(&doc, "spec.version", "API version is required");
}

#[test]
fn context_rules_and_version_substitution() {
    let mut doc = minimal();
    doc.spec.context = Some("/".into());
    assert_eq!(ok(&doc).context, "/");
    doc.spec.context = Some("/api/$version/x".into());
    assert_eq!(ok(&doc).context, "/api/v1.0/x");
    doc.spec.context = Some("api".into());
    only_error(&doc, "spec.context", "Context must start with /");
    doc.spec.context = Some("/api/".into());
    only_error(
        &doc,
        "spec.context",
        "Context cannot end with / (except for root context)",
    );
    doc.spec.context = Some(format!("/{}", "a".repeat(200)));
    only_error(&doc, "spec.context", "Context must be 1-200 characters");
    doc.spec.context = Some(format!("/{}", "a".repeat(199)));
    ok(&doc);
    doc.spec.context = Some("/a b".into());
    only_error(
        &doc,
        "spec.context",
        "Context must not contain whitespace, '?', '#', '{' or '}'",
    );
    doc.spec.context = Some(String::new());
    only_error(&doc, "spec.context", "Context is required");
}

#[test]
fn deployment_state_and_subscription_plans() {
    let mut doc = minimal();
    doc.spec.deployment_state = Some("undeployed".into());
    assert!(!ok(&doc).deployed);
    doc.spec.deployment_state = Some("deployed".into());
    assert!(ok(&doc).deployed);
    doc.spec.deployment_state = Some("paused".into());
    only_error(
        &doc,
        "spec.deploymentState",
        "Invalid deployment state 'paused' (must be 'deployed' or 'undeployed')",
    );
    doc.spec.deployment_state = None;
    doc.spec.subscription_plans = vec!["Gold".into(), " ".into()];
    only_error(
        &doc,
        "spec.subscriptionPlans[1]",
        "Subscription plan name must not be empty",
    );
}

#[test]
fn durations_are_single_unit() {
    let ms = |n| Some(Duration::from_millis(n));
    // Envoy holds durations as signed 64-bit nanoseconds and refuses longer ones.
    assert_eq!(duration::parse("2562047h"), secs(2_562_047 * 3600));
    assert_eq!(duration::parse("2562048h"), None);
    assert_eq!(duration::parse("500ms"), ms(500));
    assert_eq!(duration::parse("1.5s"), ms(1500));
    assert_eq!(duration::parse("0.1s"), ms(100));
    assert_eq!(duration::parse("2m"), secs(120));
    assert_eq!(duration::parse("1h"), secs(3600));
    assert_eq!(duration::parse("0s"), Some(Duration::ZERO));
    for bad in [
        "",
        "5",
        "s",
        "-1s",
        "1m30s",
        "1.s",
        ".5s",
        "1.2.3s",
        "5 s",
        "5sec",
        "1d",
        "99999999999999999999999h",
    ] {
        assert_eq!(duration::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn resilience_is_checked_and_overridden_per_field() {
    let mut doc = minimal();
    doc.spec.resilience = Some(document::Resilience {
        timeout: Some("10s".into()),
        idle_timeout: Some("1m".into()),
    });
    let op = doc
        .spec
        .operations
        .as_mut()
        .and_then(|o| o.first_mut())
        .expect("one operation");
    op.resilience = Some(document::Resilience {
        timeout: Some("2s".into()),
        idle_timeout: None,
    });
    let api = ok(&doc);
    assert_eq!(
        api.resilience,
        Resilience {
            timeout: secs(10),
            idle_timeout: secs(60)
        }
    );
    assert_eq!(
        api.operations[0].resilience,
        Resilience {
            timeout: secs(2),
            idle_timeout: secs(60)
        }
    );

    doc.spec.resilience = Some(document::Resilience {
        timeout: Some("10".into()),
        idle_timeout: Some("1m30s".into()),
    });
    let op = doc
        .spec
        .operations
        .as_mut()
        .and_then(|o| o.first_mut())
        .expect("one operation");
    op.resilience = Some(document::Resilience {
        timeout: None,
        idle_timeout: Some("-1s".into()),
    });
    let msg = |v: &str| format!("Invalid duration '{v}' (expected a number and one unit of ms, s, m or h, e.g. 30s)");
    assert_eq!(
        errors(&doc),
        vec![
            ("spec.resilience.timeout".into(), msg("10")),
            ("spec.resilience.idleTimeout".into(), msg("1m30s")),
            ("spec.operations[0].resilience.idleTimeout".into(), msg("-1s")),
        ]
    );
}

#[test]
fn api_level_policies_are_checked_against_the_catalogue() {
    let mut doc = minimal();
    let policy = |yaml: &str| -> document::Policy { serde_yaml::from_str(yaml).expect("test policy parses") };
    doc.spec.policies = vec![policy("{name: policy-does-not-exist, version: v1}")];
    only_error(
        &doc,
        "spec.policies[0].version",
        "Policy 'policy-does-not-exist' version 'v1' not found in loaded policy definitions",
    );
    doc.spec.policies = vec![policy("{name: respond, version: v7, params: {statusCode: 200}}")];
    only_error(
        &doc,
        "spec.policies[0].version",
        "Policy 'respond' version 'v7' not found in loaded policy definitions",
    );
    doc.spec.policies = vec![policy("{name: respond, version: v1.0.0, params: {statusCode: 200}}")];
    only_error(
        &doc,
        "spec.policies[0].version",
        "Policy version 'v1.0.0' must be a major version only (e.g., v1)",
    );
    doc.spec.policies = vec![policy("{version: v1}"), policy("{name: respond}")];
    assert_eq!(
        errors(&doc),
        vec![
            ("spec.policies[0].name".into(), "Policy name is required".into()),
            ("spec.policies[1].version".into(), "Policy version is required".into()),
        ]
    );
    doc.spec.policies = vec![policy(
        "{name: respond, version: v1, params: {statusCode: '200', extra: 1}}",
    )];
    assert_eq!(
        errors(&doc),
        vec![
            (
                "spec.policies[0].params.statusCode".into(),
                "Invalid type: expected integer, got string".into()
            ),
            (
                "spec.policies[0].params.extra".into(),
                "Unknown parameter 'extra'".into()
            ),
        ]
    );
    doc.spec.policies = vec![policy("{name: respond, version: v1, params: [1]}")];
    only_error(
        &doc,
        "spec.policies[0].params",
        "Invalid type: expected object, got array",
    );
    doc.spec.policies = vec![policy("{name: respond, version: v1, params: {statusCode: 418}}")];
    let api = ok(&doc);
    assert_eq!(api.policies[0].params, json!({"statusCode": 418}));
}

#[test]
fn operation_count_is_limited() {
    let doc = parse(&format!(
        "{MINIMAL}    - {{method: GET, path: /a}}\n    - {{method: GET, path: /b}}\n"
    ));
    let limits = Limits { max_operations: 2 };
    let got = resolve_with(&doc, &defaults(), &Catalogue::builtin(), limits)
        .map_err(|e| e.into_iter().map(|e| e.message).collect::<Vec<_>>());
    assert_eq!(
        got.err(),
        Some(vec!["Too many operations (3; at most 2 are allowed)".to_string()])
    );
    assert_eq!(ok(&doc).operations.len(), 3);
    assert_eq!(Limits::default().max_operations, 1000);
}

#[test]
fn policy_regexes_are_judged_as_re2() {
    let mut doc = minimal();
    let policy = |yaml: &str| -> document::Policy { serde_yaml::from_str(yaml).expect("test policy parses") };
    doc.spec.policies = vec![policy(
        r#"{name: request-rewrite, version: v1, params: {
            match: {queryParams: [{name: t, type: Regex, value: "(?=x)"}]},
            pathRewrite: {type: ReplaceRegexMatch, replaceRegexMatch: {pattern: "a{99999}", substitution: ""}}}}"#,
    )];
    let got = errors(&doc);
    let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.policies[0].params.pathRewrite.replaceRegexMatch.pattern",
            "spec.policies[0].params.match.queryParams[0].value"
        ],
        "{got:?}"
    );
    assert!(got[0].1.starts_with("Invalid regular expression 'a{99999}'"), "{got:?}");
    doc.spec.policies = vec![policy(
        r#"{name: request-rewrite, version: v1, params: {pathRewrite: {type: ReplaceRegexMatch, replaceRegexMatch: {pattern: "^/a/(.*)$", substitution: "/b/\\1"}}}}"#,
    )];
    ok(&doc);
    doc.spec.policies = vec![policy(
        r#"{name: request-rewrite, version: v1, params: {pathRewrite: {type: ReplaceRegexMatch, replaceRegexMatch: {pattern: "^/a/(.*)$", substitution: "/b/\\\\2/\\2"}}}}"#,
    )];
    only_error(
        &doc,
        "spec.policies[0].params.pathRewrite.replaceRegexMatch.substitution",
        "Group \\2 is not in the pattern (it has 1)",
    );
}
