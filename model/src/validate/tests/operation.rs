//! Operations: methods, simple and match-form paths, header matchers, health namespace, duplicates and
//! operation-level policies.

use super::*;

/// The minimal document with its operations replaced by this YAML list.
fn with_ops(yaml: &str) -> RestApiDoc {
    let mut doc = minimal();
    doc.spec.operations = Some(serde_yaml::from_str(yaml).expect("test operations parse"));
    doc
}

fn one_op(yaml: &str) -> Operation {
    let api = ok(&with_ops(&format!("[{yaml}]")));
    api.operations.into_iter().next().expect("one operation")
}

#[test]
fn operations_are_required() {
    let mut doc = minimal();
    doc.spec.operations = None;
    only_error(&doc, "spec.operations", "At least one operation is required");
    only_error(&with_ops("[]"), "spec.operations", "At least one operation is required");
}

#[test]
fn methods() {
    for m in ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
        assert_eq!(one_op(&format!("{{method: {m}, path: /x}}")).method.as_str(), m);
    }
    let msg = |m: &str| format!("Invalid HTTP method '{m}' (must be GET, POST, PUT, DELETE, PATCH, HEAD, or OPTIONS)");
    only_error(
        &with_ops("[{method: TRACE, path: /x}]"),
        "spec.operations[0].method",
        &msg("TRACE"),
    );
    only_error(
        &with_ops("[{method: get, path: /x}]"),
        "spec.operations[0].method",
        &msg("get"),
    );
    only_error(
        &with_ops("[{path: /x}]"),
        "spec.operations[0].method",
        "HTTP method is required",
    );
    only_error(
        &with_ops("[{method: GET, path: /x}, {match: {method: FETCH, path: {value: /y}}}]"),
        "spec.operations[1].match.method",
        &msg("FETCH"),
    );
}

#[test]
fn simple_paths() {
    for p in [
        "/",
        "/items",
        "/items/{id}",
        "/users/{userId}/orders/{order_id}",
        "/*",
        "/forecast/*",
        "/a.{ext}",
    ] {
        let op = one_op(&format!("{{method: GET, path: '{p}'}}"));
        assert_eq!((op.path.as_str(), op.kind), (p, PathKind::Template));
    }
    let field = "spec.operations[0].path";
    let bad = |p: &str| with_ops(&format!("[{{method: GET, path: '{p}'}}]"));
    only_error(&bad(""), field, "Operation path is required");
    only_error(&bad("items"), field, "Operation path must start with /");
    for p in ["/a/{id", "/a/id}", "/{a{b}}", "/}{"] {
        only_error(&bad(p), field, "Operation path has unbalanced braces in parameters");
    }
    only_error(&bad("/a/{}"), field, "Operation path has an empty parameter name '{}'");
    only_error(&bad("/a/{x/y}"), field, "Invalid path parameter name 'x/y'");
    for p in ["/a/*/b", "/a*", "/*/*", "/a/x*"] {
        only_error(
            &bad(p),
            field,
            "Wildcard '*' is only allowed as the final path segment ('/*')",
        );
    }
    only_error(
        &bad("/a?b=1"),
        field,
        "Operation path must not contain whitespace, '?' or '#'",
    );
}

#[test]
fn paths_must_avoid_the_health_namespace() {
    let msg = "path conflicts with the reserved gateway health-check namespace (/_gateway-health)";
    let mut doc = with_ops("[{method: GET, path: /_gateway-health/ready}]");
    doc.spec.context = Some("/".into());
    only_error(&doc, "spec.operations[0].path", msg);
    doc.spec.context = Some("/_gateway-health".into());
    doc.spec.operations =
        Some(serde_yaml::from_str("[{method: GET, path: /x}, {match: {method: GET, path: {value: /}}}]").expect("ops"));
    assert_eq!(
        errors(&doc),
        vec![
            ("spec.operations[0].path".into(), msg.into()),
            ("spec.operations[1].match.path.value".into(), msg.into())
        ]
    );
    // Checked after cleaning the joined path, and on segment boundaries.
    doc.spec.context = Some("/api".into());
    doc.spec.operations = Some(serde_yaml::from_str("[{method: GET, path: '/../_gateway-health'}]").expect("ops"));
    only_error(&doc, "spec.operations[0].path", msg);
    doc.spec.operations =
        Some(serde_yaml::from_str("[{method: GET, path: '/x/../../_gateway-healthz'}]").expect("ops"));
    ok(&doc);
}

#[test]
fn match_form_path_types() {
    let op = one_op("{match: {method: POST, path: {value: /items}}}");
    assert_eq!(
        (op.method, op.path.as_str(), op.kind),
        (Method::Post, "/items", PathKind::Exact)
    );
    let op = one_op("{match: {method: GET, path: {value: /items, type: PathPrefix}}}");
    assert_eq!(op.kind, PathKind::Template);
    // Wildcard, parameter and root paths keep template matching under Exact.
    for p in ["/items/*", "/items/{id}", "/"] {
        assert_eq!(
            one_op(&format!(
                "{{match: {{method: GET, path: {{value: '{p}', type: Exact}}}}}}"
            ))
            .kind,
            PathKind::Template
        );
    }
    // `match` is authoritative: simple-form fields beside it are ignored.
    let op = one_op("{method: DELETE, path: /ignored, match: {method: GET, path: {value: /used}}}");
    assert_eq!((op.method, op.path.as_str()), (Method::Get, "/used"));
    only_error(
        &with_ops("[{match: {method: GET, path: {value: /x, type: Regex}}}]"),
        "spec.operations[0].match.path.type",
        "Invalid path match type 'Regex' (must be Exact or PathPrefix)",
    );
    only_error(
        &with_ops("[{match: {method: GET}}]"),
        "spec.operations[0].match.path.value",
        "Operation path is required",
    );
    only_error(
        &with_ops("[{match: {method: GET, path: {value: 'a/{b'}}}]"),
        "spec.operations[0].match.path.value",
        "Operation path must start with /",
    );
}

#[test]
fn header_matchers() {
    let op = one_op(
        "{match: {method: GET, path: {value: /pick}, headers: [
            {name: X-Variant, value: alpha},
            {name: x-v, type: RegularExpression, value: '^v[0-9]+$'}]}}",
    );
    assert_eq!(
        op.headers,
        vec![
            HeaderMatch {
                name: "x-variant".into(),
                value: "alpha".into(),
                regex: false
            },
            HeaderMatch {
                name: "x-v".into(),
                value: "^v[0-9]+$".into(),
                regex: true
            },
        ]
    );
    let bad = |h: &str| {
        with_ops(&format!(
            "[{{match: {{method: GET, path: {{value: /p}}, headers: [{h}]}}}}]"
        ))
    };
    let at = "spec.operations[0].match.headers[0]";
    only_error(&bad("{value: a}"), &format!("{at}.name"), "Header name is required");
    only_error(
        &bad("{name: 'x y', value: a}"),
        &format!("{at}.name"),
        "Invalid header name 'x y'",
    );
    only_error(&bad("{name: x}"), &format!("{at}.value"), "Header value is required");
    only_error(
        &bad("{name: x, value: a, type: Prefix}"),
        &format!("{at}.type"),
        "Invalid header match type 'Prefix' (must be Exact or RegularExpression)",
    );
    for re in [
        "", "(a", "a)", "[a-z", "*a", "(?=a)", "(a)\\1", "a\\", "(+)", "?a", "a|*b",
    ] {
        let doc = bad(&format!("{{name: x, type: RegularExpression, value: '{re}'}}"));
        let errs = errors(&doc);
        assert_eq!(errs.len(), 1, "{re}: {errs:?}");
        assert_eq!(errs[0].0, format!("{at}.value"));
        // The message names the regex, then says what RE2 would object to.
        let prefix = format!("Invalid regular expression '{re}': ");
        assert!(
            errs[0].1.starts_with(&prefix) && errs[0].1.len() > prefix.len(),
            "{re}: {}",
            errs[0].1
        );
    }
    for re in [
        "^t-[0-9]+$",
        "[]a]",
        "[^]]x",
        "\\(a",
        "(a|b)*",
        "a{2,3}",
        "[(]",
        "(?i)abc",
        "(?:a|b)",
    ] {
        ok(&bad(&format!("{{name: x, type: RegularExpression, value: '{re}'}}")));
    }
    // An exact value may be empty (matches a present, empty header).
    ok(&bad("{name: x, value: ''}"));
}

#[test]
fn duplicate_operations_are_rejected() {
    let doc =
        with_ops("[{method: GET, path: /a}, {method: POST, path: /a}, {match: {method: GET, path: {value: /a}}}]");
    only_error(
        &doc,
        "spec.operations[2]",
        "Duplicate operation: GET /a is already declared by spec.operations[0]",
    );
    // Different header conditions make different routes (reference §8.7).
    ok(&with_ops(
        "[{method: GET, path: /a}, {match: {method: GET, path: {value: /a}, headers: [{name: x, value: a}]}}]",
    ));
    let doc = with_ops(
        "[{match: {method: GET, path: {value: /a}, headers: [{name: x, value: a}, {name: y, value: b}]}},
          {match: {method: GET, path: {value: /a}, headers: [{name: Y, value: b}, {name: x, value: a}]}}]",
    );
    only_error(
        &doc,
        "spec.operations[1]",
        "Duplicate operation: GET /a is already declared by spec.operations[0]",
    );
}

#[test]
fn operation_policies_and_errors_in_several_operations() {
    let op = one_op(
        "{method: GET, path: /r, policies: [
            {name: respond, version: v1, params: {statusCode: 201, headers: [{name: a, value: b}]}}]}",
    );
    assert_eq!(
        op.policies,
        vec![PolicyRef {
            name: "respond".into(),
            version: "v1".into(),
            params: json!({"statusCode": 201, "headers": [{"name": "a", "value": "b"}]})
        }]
    );
    let doc = with_ops(
        "[{method: GET, path: /ok},
          {method: GET, path: /r, policies: [
              {name: respond, version: v1, params: {statusCode: 201, headers: [{value: b}]}}]},
          {method: BAD, path: x}]",
    );
    assert_eq!(
        errors(&doc),
        vec![
            (
                "spec.operations[1].policies[0].params.headers[0].name".into(),
                "Required parameter 'name' is missing".into()
            ),
            (
                "spec.operations[2].method".into(),
                "Invalid HTTP method 'BAD' (must be GET, POST, PUT, DELETE, PATCH, HEAD, or OPTIONS)".into()
            ),
            (
                "spec.operations[2].path".into(),
                "Operation path must start with /".into()
            ),
        ]
    );
}

#[test]
fn header_regexes_are_judged_as_re2_would() {
    let bad = |re: &str| {
        errors(&with_ops(&format!(
            "[{{match: {{method: GET, path: {{value: /x}}, headers: [{{name: x, type: RegularExpression, value: '{re}'}}]}}}}]"
        )))
    };
    // The repro of issue #12: Envoy NACKed this with "invalid repetition size".
    let errs = bad("a{99999}");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, "spec.operations[0].match.headers[0].value");
    assert!(errs[0].1.contains("repetition count above 1000"), "{}", errs[0].1);
    assert!(bad("[a-z]{999}")[0].1.contains("too complex"));
}

#[test]
fn a_path_whose_regex_is_too_complex_is_refused() {
    let path: String = (0..40).map(|i| format!("/{{p{i}}}")).collect();
    let errs = errors(&with_ops(&format!("[{{method: GET, path: '{path}'}}]")));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, "spec.operations[0].path");
    assert!(errs[0].1.starts_with("Operation path is too complex"), "{}", errs[0].1);
    // A handful of parameters is fine.
    ok(&with_ops("[{method: GET, path: '/a/{b}/c/{d}/{e}'}]"));
}
