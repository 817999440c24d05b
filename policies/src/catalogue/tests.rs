//! Unit tests of the policy catalogue: lookups, listing and parameter validation.

use serde_json::json;

use super::*;

fn errors(name: &str, params: Value) -> Vec<(String, String)> {
    let cat = Catalogue::builtin();
    let def = cat.lookup(name, "v1").expect("builtin policy");
    def.validate_params(Some(&params))
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect()
}

fn pair(path: &str, message: &str) -> (String, String) {
    (path.to_string(), message.to_string())
}

#[test]
fn lookup_distinguishes_unknown_name_from_unknown_version() {
    let cat = Catalogue::builtin();
    let def = cat.lookup("respond", "v1").expect("respond v1");
    assert_eq!((def.name(), def.version()), ("respond", "v1"));
    assert_eq!(
        cat.lookup("policy-does-not-exist", "v1").err(),
        Some(Lookup::UnknownName)
    );
    assert_eq!(cat.lookup("respond", "v2").err(), Some(Lookup::UnknownVersion));
    // Only major versions are catalogued; a full semver never matches.
    assert_eq!(cat.lookup("api-key-auth", "v1.0.0").err(), Some(Lookup::UnknownVersion));
}

#[test]
fn list_is_sorted_and_complete() {
    assert_eq!(
        Catalogue::builtin().list(),
        vec![
            ("advanced-ratelimit", "v1"),
            ("api-key-auth", "v1"),
            ("basic-auth", "v1"),
            ("basic-ratelimit", "v1"),
            ("cors", "v1"),
            ("host-rewrite", "v1"),
            ("jwt-auth", "v1"),
            ("redirect", "v1"),
            ("remove-headers", "v1"),
            ("request-rewrite", "v1"),
            ("respond", "v1"),
            ("set-headers", "v1"),
            ("subscription-validation", "v1")
        ]
    );
    assert!(Catalogue::default().list().is_empty());
}

#[test]
fn api_key_auth_accepts_valid_params() {
    assert!(errors("api-key-auth", json!({"key": "X-API-Key", "in": "header"})).is_empty());
    assert!(
        errors(
            "api-key-auth",
            json!({"key": "api_key", "in": "query", "stripKey": true})
        )
        .is_empty()
    );
}

#[test]
fn api_key_auth_reports_missing_and_bad_values() {
    let cat = Catalogue::builtin();
    let def = cat.lookup("api-key-auth", "v1").expect("builtin");
    let got: Vec<_> = def
        .validate_params(None)
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect();
    assert_eq!(
        got,
        vec![
            pair("key", "Required parameter 'key' is missing"),
            pair("in", "Required parameter 'in' is missing")
        ]
    );
    assert_eq!(
        errors(
            "api-key-auth",
            json!({"key": "X API", "in": "cookie", "stripKey": "yes"})
        ),
        vec![
            pair(
                "key",
                "Invalid value 'X API' (must contain only letters, digits, '-' and '_')"
            ),
            pair("in", "Invalid value 'cookie' (must be one of: header, query)"),
            pair("stripKey", "Invalid type: expected boolean, got string"),
        ]
    );
    assert_eq!(
        errors("api-key-auth", json!({"key": "", "in": "header"})),
        vec![pair("key", "Value must not be empty")]
    );
}

#[test]
fn unknown_parameters_are_errors() {
    assert_eq!(
        errors("api-key-auth", json!({"key": "k", "in": "header", "extra": 1})),
        vec![pair("extra", "Unknown parameter 'extra'")]
    );
}

#[test]
fn respond_checks_status_code_type_and_range() {
    assert!(errors("respond", json!({"statusCode": 201})).is_empty());
    assert_eq!(
        errors("respond", json!({"statusCode": "201"})),
        vec![pair("statusCode", "Invalid type: expected integer, got string")]
    );
    assert_eq!(
        errors("respond", json!({"statusCode": 20.5})),
        vec![pair("statusCode", "Invalid type: expected integer, got number")]
    );
    assert_eq!(
        errors("respond", json!({"statusCode": 99})),
        vec![pair(
            "statusCode",
            "Value 99 is out of range (must be between 200 and 599)"
        )]
    );
    assert_eq!(
        errors("respond", json!({"statusCode": u64::MAX})),
        vec![pair(
            "statusCode",
            "Value 18446744073709551615 is out of range (must be between 200 and 599)"
        )]
    );
    assert!(errors("respond", json!({"statusCode": 599})).is_empty());
}

#[test]
fn respond_checks_body_and_headers() {
    let ok = json!({"statusCode": 200, "body": "hi", "headers": [{"name": "x-a", "value": "1"}]});
    assert!(errors("respond", ok).is_empty());
    assert_eq!(
        errors(
            "respond",
            json!({"statusCode": 200, "body": 3, "headers": [{"name": "a", "value": "b"}, {"value": 1}]})
        ),
        vec![
            pair("body", "Invalid type: expected string, got integer"),
            pair("headers[1].name", "Required parameter 'name' is missing"),
            pair("headers[1].value", "Invalid type: expected string, got integer"),
        ]
    );
    assert_eq!(
        errors("respond", json!({"statusCode": 200, "headers": {"name": "a"}})),
        vec![pair("headers", "Invalid type: expected array, got object")]
    );
    assert_eq!(
        errors(
            "respond",
            json!({"statusCode": 200, "headers": ["x", {"name": "a", "value": "b", "z": 1}]})
        ),
        vec![
            pair("headers[0]", "Invalid type: expected object, got string"),
            pair("headers[1].z", "Unknown parameter 'z'")
        ]
    );
}

#[test]
fn params_must_be_an_object() {
    assert_eq!(
        errors("respond", json!([1])),
        vec![pair("", "Invalid type: expected object, got array")]
    );
    // An explicit null is the same as absent.
    assert_eq!(
        errors("respond", Value::Null),
        vec![pair("statusCode", "Required parameter 'statusCode' is missing")]
    );
    assert_eq!(
        errors("respond", json!({"statusCode": null})),
        vec![pair("statusCode", "Required parameter 'statusCode' is missing")]
    );
}

#[test]
fn respond_params_are_what_envoy_accepts() {
    let one = |params: Value| errors("respond", params);
    assert_eq!(
        one(json!({"statusCode": 100})),
        vec![pair(
            "statusCode",
            "Value 100 is out of range (must be between 200 and 599)"
        )]
    );
    assert!(one(json!({"statusCode": 200, "body": "x".repeat(4096)})).is_empty());
    assert_eq!(
        one(json!({"statusCode": 200, "body": "x".repeat(4097)})),
        vec![pair("body", "Value is 4097 bytes long (at most 4096 are allowed)")]
    );
    for name in ["", ":status", "x y", "a\nb", "Host", "host"] {
        let e = one(json!({"statusCode": 200, "headers": [{"name": name, "value": "v"}]}));
        assert_eq!(e.len(), 1, "{name:?}: {e:?}");
        assert_eq!(e[0].0, "headers[0].name");
    }
    for value in ["a\nb", "a\rb", "a\u{0}b"] {
        let e = one(json!({"statusCode": 200, "headers": [{"name": "x-a", "value": value}]}));
        assert_eq!(e.len(), 1, "{value:?}: {e:?}");
        assert_eq!(e[0].0, "headers[0].value");
    }
    assert!(one(json!({"statusCode": 200, "headers": [{"name": "X-Discount", "value": "50%"}]})).is_empty());
}

#[test]
fn subscription_validation_takes_wso2s_parameters_all_optional() {
    let sv = |params: Value| errors("subscription-validation", params);
    assert!(sv(json!({})).is_empty(), "every parameter has a default");
    assert!(
        Catalogue::builtin()
            .lookup("subscription-validation", "v1")
            .unwrap()
            .validate_params(None)
            .is_empty()
    );
    assert!(sv(json!({"enabled": false, "subscriptionKeyHeader": "Subscription-Key"})).is_empty());
    assert!(sv(json!({"subscriptionKeyCookie": ""})).is_empty(), "empty: no cookie");
    assert!(sv(json!({"subscriptionKeyCookie": "sub_key.v1"})).is_empty());
    assert_eq!(
        sv(json!({"enabled": "yes", "subscriptionKeyHeader": "", "subscriptionKeyCookie": "a b"})),
        vec![
            pair("enabled", "Invalid type: expected boolean, got string"),
            pair("subscriptionKeyHeader", "Value must not be empty"),
            pair("subscriptionKeyCookie", "Invalid cookie name 'a b'"),
        ]
    );
    assert_eq!(
        sv(json!({"subscriptionKeyHeader": "Sub Key", "subscriptionKeyCookie": 1, "key": "x"})),
        vec![
            pair(
                "subscriptionKeyHeader",
                "Invalid value 'Sub Key' (must contain only letters, digits, '-' and '_')"
            ),
            pair("subscriptionKeyCookie", "Invalid type: expected string, got integer"),
            pair("key", "Unknown parameter 'key'"),
        ]
    );
    for bad in ["a;b", "a=b", "a,b", "\"q\""] {
        assert_eq!(sv(json!({"subscriptionKeyCookie": bad})).len(), 1, "{bad}");
    }
}
