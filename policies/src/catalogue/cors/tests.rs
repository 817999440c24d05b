//! The `cors` policy's parameters: WSO2's schema, origin forms and the rules across parameters.

use serde_json::{Value, json};

use super::*;
use crate::Catalogue;

fn errors(params: Value) -> Vec<(String, String)> {
    let cat = Catalogue::builtin();
    let def = cat.lookup("cors", "v1").expect("cors v1");
    def.validate_params(Some(&params))
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect()
}

fn paths(params: Value) -> Vec<String> {
    errors(params).into_iter().map(|(p, _)| p).collect()
}

#[test]
fn wso2_documents_are_accepted() {
    let full = json!({
        "allowedOrigins": ["http://example.com", "https://*.example.com", "http://localhost:5000"],
        "allowedMethods": ["GET", "POST"],
        "allowedHeaders": ["Content-Type"],
        "exposedHeaders": ["X-Content-Type-Options"],
        "allowCredentials": true,
        "maxAge": 86400,
        "forwardPreflight": false
    });
    assert_eq!(errors(full), vec![]);
    assert_eq!(errors(json!({"allowedOrigins": ["*"]})), vec![]);
    assert_eq!(
        errors(json!({"allowedOrigins": ["*"], "allowedMethods": ["*"], "allowedHeaders": ["*"], "maxAge": 0})),
        vec![]
    );
}

#[test]
fn origins_are_required_and_checked_with_their_index() {
    assert_eq!(paths(json!({})), vec!["allowedOrigins"]);
    assert_eq!(paths(json!({"allowedOrigins": []})), vec!["allowedOrigins"]);
    // A regex RE2 refuses (Perl look-ahead) and an empty string, each at its own index.
    assert_eq!(
        paths(json!({"allowedOrigins": ["http://a.com", "https://(?=x).com", ""]})),
        vec!["allowedOrigins[1]", "allowedOrigins[2]"]
    );
    assert_eq!(
        paths(json!({"allowedOrigins": ["x".repeat(2049)]})),
        vec!["allowedOrigins[0]"]
    );
}

#[test]
fn origin_forms_are_told_apart() {
    assert_eq!(Origin::parse("*"), Origin::Any);
    for exact in [
        "http://example.com",
        "http://localhost:5000",
        "https://[::1]:8443",
        "app://x-y.z",
    ] {
        assert_eq!(Origin::parse(exact), Origin::Exact(exact), "{exact}");
    }
    for re in [
        "https://*.example.com",
        r"https://.*\.example\.com",
        "http://a.com/",
        "HTTP://a.com",
        "null",
    ] {
        assert_eq!(Origin::parse(re), Origin::Regex(re), "{re}");
    }
}

#[test]
fn methods_headers_and_max_age_follow_wso2s_limits() {
    let base = |extra: Value| {
        let mut p = json!({"allowedOrigins": ["http://a.com"]});
        p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        paths(p)
    };
    assert_eq!(
        base(json!({"allowedMethods": ["GET", "TRACE"]})),
        vec!["allowedMethods[1]"]
    );
    assert_eq!(base(json!({"allowedMethods": []})), vec!["allowedMethods"]);
    assert_eq!(
        base(json!({"allowedHeaders": ["ok", "bad header"]})),
        vec!["allowedHeaders[1]"]
    );
    assert_eq!(base(json!({"exposedHeaders": ["x\r\ny"]})), vec!["exposedHeaders[0]"]);
    assert_eq!(
        base(json!({"exposedHeaders": ["x".repeat(257)]})),
        vec!["exposedHeaders[0]"]
    );
    assert_eq!(base(json!({"maxAge": 86401})), vec!["maxAge"]);
    assert_eq!(base(json!({"maxAge": -1})), vec!["maxAge"]);
    assert_eq!(base(json!({"forwardPreflight": "yes"})), vec!["forwardPreflight"]);
    assert_eq!(base(json!({"allowOrigins": ["*"]})), vec!["allowOrigins"]);
}

#[test]
fn credentials_refuse_every_wildcard_as_wso2_does() {
    let errs = errors(json!({
        "allowedOrigins": ["http://a.com", "*"],
        "allowedMethods": ["*"],
        "allowedHeaders": ["*"],
        "exposedHeaders": ["x", "*"],
        "allowCredentials": true
    }));
    assert_eq!(
        errs,
        vec![
            (
                "allowedOrigins[1]".to_string(),
                "Cannot have wildcard origin with allowCredentials set to true".to_string()
            ),
            (
                "allowedMethods[0]".to_string(),
                "Cannot have wildcard methods with allowCredentials set to true".to_string()
            ),
            (
                "allowedHeaders[0]".to_string(),
                "Cannot have wildcard headers with allowCredentials set to true".to_string()
            ),
            (
                "exposedHeaders[1]".to_string(),
                "Cannot have wildcard exposed headers with allowCredentials set to true".to_string()
            ),
        ]
    );
    // Without credentials the same wildcards are fine.
    assert_eq!(
        errors(json!({"allowedOrigins": ["*"], "allowCredentials": false})),
        vec![]
    );
}

#[test]
fn origin_and_header_lists_must_fit_one_preflight_regex() {
    let many: Vec<String> = (0..200).map(|i| format!("https://{i}-host.example.com")).collect();
    assert_eq!(paths(json!({"allowedOrigins": many})), vec!["allowedOrigins"]);
    let headers: Vec<String> = (0..200).map(|i| format!("{i}-custom-header")).collect();
    assert_eq!(
        paths(json!({"allowedOrigins": ["*"], "allowedHeaders": headers})),
        vec!["allowedHeaders"]
    );
}

#[test]
fn preflight_regexes_match_what_they_should() {
    let origins = origin_regex(&["http://a.com", r"https://.*\.b\.com"]);
    assert_eq!(origins, r"^(?:http://a\.com|(?:https://.*\.b\.com))$");
    assert!(crate::regex::check(&origins).is_ok());
    let headers = request_headers_regex(&["Content-Type", "X-Api-Key"]).unwrap();
    assert_eq!(headers, r"(?i)^\s*(?:(?:content-type|x-api-key)\s*(?:,\s*|$))*$");
    assert_eq!(request_headers_regex(&["*"]), None);
    assert_eq!(request_headers_regex(&[]).as_deref(), Some(r"^\s*$"));
}
