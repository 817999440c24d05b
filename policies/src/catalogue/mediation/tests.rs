//! Validation of the mediation policies: WSO2's shapes accepted, bad values refused with their paths.

use serde_json::{Value, json};

use super::split_url;
use crate::Catalogue;

fn errors(name: &str, params: Value) -> Vec<(String, String)> {
    let cat = Catalogue::builtin();
    let def = cat.lookup(name, "v1").expect("builtin policy");
    def.validate_params(Some(&params))
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect()
}

fn paths(name: &str, params: Value) -> Vec<String> {
    errors(name, params).into_iter().map(|(p, _)| p).collect()
}

#[test]
fn set_headers_takes_wso2_shapes() {
    let ok = json!({"requestHeaders": [{"name": "X-Team_1", "value": "50% blue"}, {"name": "Host", "value": "a:1"}],
                    "responseHeaders": [{"name": "x-served-by", "value": ""}]});
    assert!(errors("set-headers", ok).is_empty());
    assert!(errors("set-headers", json!({"responseHeaders": []})).is_empty());
}

#[test]
fn set_headers_refuses_bad_names_values_and_no_list() {
    assert_eq!(
        errors("set-headers", json!({})),
        vec![(
            String::new(),
            "At least one of 'requestHeaders' or 'responseHeaders' is required".into()
        )]
    );
    let long = "a".repeat(257);
    let bad = json!({"requestHeaders": [{"name": "x ok", "value": "v"}, {"name": long, "value": "v"},
                                        {"name": "x", "value": "a\r\nb"}, {"name": "y", "value": "v".repeat(8193)},
                                        {"name": "X-Tollgate-Application", "value": "forged"}],
                     "responseHeaders": [{"name": "Host", "value": "v"}, {"value": "v"}]});
    assert_eq!(
        paths("set-headers", bad),
        [
            "requestHeaders[0].name",
            "requestHeaders[1].name",
            "requestHeaders[2].value",
            "requestHeaders[3].value",
            "requestHeaders[4].name",
            "responseHeaders[0].name",
            "responseHeaders[1].name",
        ]
    );
}

#[test]
fn remove_headers_needs_items_and_keeps_host() {
    assert!(errors("remove-headers", json!({"requestHeaders": [{"name": "X-Debug"}]})).is_empty());
    assert_eq!(
        paths(
            "remove-headers",
            json!({"requestHeaders": [], "responseHeaders": [{"name": "host"}]})
        ),
        ["requestHeaders", "responseHeaders[0].name"]
    );
    assert_eq!(
        errors("remove-headers", json!({"requestHeaders": [{"name": "Host"}]}))[0].1,
        "The host header cannot be removed (use host-rewrite to change it)"
    );
}

#[test]
fn host_rewrite_follows_wso2_pattern() {
    assert!(errors("host-rewrite", json!({"host": "api.example.com:8443"})).is_empty());
    assert_eq!(paths("host-rewrite", json!({})), ["host"]);
    assert_eq!(paths("host-rewrite", json!({"host": ""})), ["host"]);
    assert_eq!(paths("host-rewrite", json!({"host": "a/b"})), ["host"]);
    assert_eq!(paths("host-rewrite", json!({"host": "a".repeat(256)})), ["host"]);
    assert_eq!(paths("host-rewrite", json!({"host": "a", "port": 1})), ["port"]);
}

#[test]
fn request_rewrite_accepts_every_native_form() {
    let ok = json!({
        "match": {"headers": [{"name": "X-Mode", "type": "Regex", "value": "^v[0-9]+$"}, {"name": "x-a", "type": "Present"}],
                  "queryParams": [{"name": "t", "type": "Exact", "value": "acme"}]},
        "pathRewrite": {"type": "ReplacePrefixMatch", "replacePrefixMatch": ""},
        "queryRewrite": {"rules": [{"action": "Replace", "name": "p", "value": "1"}, {"action": "Remove", "name": "d"},
                                   {"action": "Add", "name": "s", "value": ""}]}
    });
    assert!(errors("request-rewrite", ok).is_empty());
    let regex = json!({"pathRewrite": {"type": "ReplaceRegexMatch",
                                       "replaceRegexMatch": {"pattern": "^/a/(.*)$", "substitution": "/b/\\1\\\\"}}});
    assert!(errors("request-rewrite", regex).is_empty());
}

#[test]
fn request_rewrite_refuses_with_field_paths() {
    assert_eq!(
        paths("request-rewrite", json!({"match": {"headers": []}})),
        ["match.headers"]
    );
    assert_eq!(
        paths(
            "request-rewrite",
            json!({"match": {"headers": [{"name": "x", "type": "Present"}]}})
        ),
        [""]
    );
    assert_eq!(
        paths(
            "request-rewrite",
            json!({"pathRewrite": {"type": "ReplaceFullPath", "replaceFullPath": "no-slash"}})
        ),
        ["pathRewrite.replaceFullPath"]
    );
    assert_eq!(
        paths("request-rewrite", json!({"pathRewrite": {"type": "ReplaceFullPath"}})),
        ["pathRewrite.replaceFullPath"]
    );
    assert_eq!(
        paths(
            "request-rewrite",
            json!({"pathRewrite": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/a?b"}})
        ),
        ["pathRewrite.replacePrefixMatch"]
    );
    assert_eq!(
        paths(
            "request-rewrite",
            json!({"pathRewrite": {"type": "ReplaceRegexMatch", "replaceRegexMatch": {"pattern": "", "substitution": "\\x"}}})
        ),
        [
            "pathRewrite.replaceRegexMatch.pattern",
            "pathRewrite.replaceRegexMatch.substitution"
        ]
    );
    let m = json!({"match": {"headers": [{"name": "x", "type": "Exact"}, {"name": ":path", "type": "Present"},
                                         {"name": "y", "type": "Present", "value": "v"}]},
                   "pathRewrite": {"type": "ReplaceFullPath", "replaceFullPath": "/"}});
    assert_eq!(
        paths("request-rewrite", m),
        [
            "match.headers[0].value",
            "match.headers[1].name",
            "match.headers[2].value"
        ]
    );
    let q = json!({"queryRewrite": {"rules": [{"action": "Replace", "name": "p"}, {"action": "Append", "name": "a", "value": "x"},
                                              {"action": "ReplaceRegexMatch", "name": "r", "pattern": "a", "substitution": "b"},
                                              {"action": "Append", "name": "a"},
                                              {"action": "ReplaceRegexMatch", "name": "r", "pattern": "a("}]}});
    assert_eq!(
        paths("request-rewrite", q),
        [
            "queryRewrite.rules[0].value",
            "queryRewrite.rules[3].value",
            // (The pattern is checked as RE2 by the model, from `regexes`, like every pattern.)
            "queryRewrite.rules[4].substitution"
        ]
    );
    assert!(paths("request-rewrite", json!({"methodRewrite": "POST"})).is_empty());
    assert_eq!(
        paths("request-rewrite", json!({"methodRewrite": "TRACE"})),
        ["methodRewrite"]
    );
}

#[test]
fn regexes_are_named_for_the_model() {
    let cat = Catalogue::builtin();
    let def = cat.lookup("request-rewrite", "v1").unwrap();
    let p = json!({"match": {"headers": [{"name": "a", "type": "Exact", "value": "x"}, {"name": "b", "type": "Regex", "value": "r1"}]},
                   "pathRewrite": {"type": "ReplaceRegexMatch", "replaceRegexMatch": {"pattern": "r2", "substitution": ""}}});
    assert_eq!(
        def.regexes(&p),
        vec![
            ("pathRewrite.replaceRegexMatch.pattern".to_string(), "r2"),
            ("match.headers[1].value".to_string(), "r1")
        ]
    );
}

#[test]
fn redirect_urls_and_codes() {
    assert!(
        errors(
            "redirect",
            json!({"url": "https://example.com:8443/new?x=1", "statusCode": 308})
        )
        .is_empty()
    );
    assert!(errors("redirect", json!({"url": "/same/host"})).is_empty());
    for bad in [
        "ftp://x/",
        "https://user@x/",
        "https://x/#frag",
        "https://x:0/",
        "https:///p",
        "relative",
        "/a b",
    ] {
        assert_eq!(paths("redirect", json!({"url": bad})), ["url"], "{bad}");
    }
    assert_eq!(
        paths("redirect", json!({"url": "/", "statusCode": 304})),
        ["statusCode"]
    );
    assert_eq!(
        paths("redirect", json!({"url": "/", "statusCode": 200})),
        ["statusCode"]
    );
    let t = split_url("HTTP://h.example").unwrap();
    assert_eq!(
        (t.scheme, t.host, t.port, t.path),
        (Some("http"), Some("h.example"), None, "/")
    );
}
