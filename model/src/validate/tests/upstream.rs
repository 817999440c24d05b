//! Upstream targets, upstream definitions and the URL parser.

use std::time::Duration;

use super::super::url::{self, Url, UrlError};
use super::*;

fn with_upstreams(yaml: &str) -> RestApiDoc {
    let mut doc = minimal();
    doc.spec.upstream = Some(parse_upstreams(yaml));
    doc
}

fn with_definitions(defs: &str, upstreams: &str) -> RestApiDoc {
    let mut doc = with_upstreams(upstreams);
    doc.spec.upstream_definitions = serde_yaml::from_str(defs).expect("test definitions parse");
    doc
}

#[test]
fn url_parser_accepts_hosts_ports_and_ipv6() {
    let url = |tls, host: &str, port, path: &str| Url {
        tls,
        host: host.into(),
        port,
        path: path.into(),
        query: false,
        fragment: false,
    };
    assert_eq!(url::parse("http://b"), Ok(url(false, "b", 80, "")));
    assert_eq!(
        url::parse("HTTPS://b.example.com/x/"),
        Ok(url(true, "b.example.com", 443, "/x/"))
    );
    assert_eq!(url::parse("http://b:"), Ok(url(false, "b", 80, "")));
    assert_eq!(
        url::parse("http://10.0.0.1:9080/a"),
        Ok(url(false, "10.0.0.1", 9080, "/a"))
    );
    assert_eq!(url::parse("https://[::1]:8443/p"), Ok(url(true, "::1", 8443, "/p")));
    assert_eq!(url::parse("http://[fe80::1]"), Ok(url(false, "fe80::1", 80, "")));
    let q = url::parse("http://b/p?x#y").expect("parses");
    assert_eq!((q.path.as_str(), q.query, q.fragment), ("/p", true, true));
    let f = url::parse("http://b#frag?x").expect("parses");
    assert_eq!((f.path.as_str(), f.query, f.fragment), ("", false, true));
}

#[test]
fn url_parser_refusals() {
    let cases = [
        ("ftp://b", UrlError::Scheme),
        ("b:8080", UrlError::Scheme),
        ("//b", UrlError::Scheme),
        ("http://", UrlError::MissingHost),
        ("http://:80", UrlError::MissingHost),
        ("http:///path", UrlError::MissingHost),
        ("http://b:0", UrlError::Port),
        ("http://b:70000", UrlError::Port),
        ("http://b:+80", UrlError::Port),
        ("http://b:x", UrlError::Port),
        ("http://::1", UrlError::MissingHost),
        ("http://[::1", UrlError::InvalidHost),
        ("http://[::1]x", UrlError::InvalidHost),
        ("http://[zz]", UrlError::InvalidHost),
        ("http://b$d", UrlError::InvalidHost),
        ("http://u:p@b", UrlError::Credentials),
        ("http://b /x", UrlError::Whitespace),
    ];
    for (input, err) in cases {
        assert_eq!(url::parse(input), Err(err), "{input}");
    }
}

#[test]
fn main_upstream_is_required() {
    let mut doc = minimal();
    doc.spec.upstream = None;
    only_error(&doc, "spec.upstream.main", "Main upstream is required");
    let doc = with_upstreams("{sandbox: {url: 'http://b'}}");
    only_error(&doc, "spec.upstream.main", "Main upstream is required");
}

#[test]
fn exactly_one_of_url_or_ref() {
    let doc = with_upstreams("{main: {url: 'http://b', ref: x}}");
    only_error(&doc, "spec.upstream.main", "Specify exactly one of 'url' or 'ref'");
    let doc = with_upstreams("{main: {hostRewrite: auto}}");
    only_error(&doc, "spec.upstream.main", "Must specify either 'url' or 'ref'");
    let doc = with_upstreams("{main: {url: 'http://b'}, sandbox: {url: ''}}");
    only_error(&doc, "spec.upstream.sandbox", "Must specify either 'url' or 'ref'");
}

#[test]
fn direct_url_path_becomes_the_base_path() {
    let main = |yaml: &str| ok(&with_upstreams(yaml)).main;
    let u = main("{main: {url: 'http://echo-backend:80/anything/'}}");
    assert_eq!(
        (u.host.as_str(), u.port, u.base_path.as_str(), u.tls),
        ("echo-backend", 80, "/anything", false)
    );
    assert_eq!(main("{main: {url: 'http://b/'}}").base_path, "");
    assert_eq!(main("{main: {url: 'http://b'}}").base_path, "");
    let u = main("{main: {url: 'https://[2001:db8::1]/v1'}}");
    assert_eq!(
        (u.host.as_str(), u.port, u.base_path.as_str(), u.tls),
        ("2001:db8::1", 443, "/v1", true)
    );
    assert!(main("{main: {url: 'http://b'}}").host_rewrite);
    assert!(!main("{main: {url: 'http://b', hostRewrite: manual}}").host_rewrite);
    assert_eq!(main("{main: {url: 'http://b'}}").connect_timeout, None);
}

#[test]
fn direct_url_errors() {
    let field = "spec.upstream.main.url";
    only_error(
        &with_upstreams("{main: {url: 'tcp://b'}}"),
        field,
        "Upstream URL must use http or https scheme",
    );
    only_error(
        &with_upstreams("{main: {url: 'http://'}}"),
        field,
        "Upstream URL must include a host",
    );
    assert_eq!(
        errors(&with_upstreams("{main: {url: 'http://b/x?a=1#top'}}")),
        vec![
            (
                field.into(),
                "Upstream URL must not include a query string; only scheme, host[:port] and path are used".into()
            ),
            (
                field.into(),
                "Upstream URL must not include a fragment; only scheme, host[:port] and path are used".into()
            ),
        ]
    );
    only_error(
        &with_upstreams("{main: {url: 'http://b'}, sandbox: {url: 'http://b', hostRewrite: sometimes}}"),
        "spec.upstream.sandbox.hostRewrite",
        "Invalid hostRewrite 'sometimes' (must be 'auto' or 'manual')",
    );
}

#[test]
fn ref_uses_the_first_upstream_base_path_and_connect_timeout() {
    let defs = "[{name: pool, basePath: /svc, timeout: {connect: 250ms},
                  upstreams: [{url: 'https://a:8443', weight: 80}, {url: 'http://b', weight: 20}]}]";
    let api = ok(&with_definitions(defs, "{main: {ref: pool, hostRewrite: manual}}"));
    let expected = Upstream {
        tls: true,
        host: "a".into(),
        port: 8443,
        base_path: "/svc".into(),
        host_rewrite: false,
        connect_timeout: Some(Duration::from_millis(250)),
    };
    assert_eq!(api.main, expected);
    let api = ok(&with_definitions(
        "[{name: pool, upstreams: [{url: 'http://a/'}]}]",
        "{main: {ref: pool}}",
    ));
    assert_eq!((api.main.base_path.as_str(), api.main.connect_timeout), ("", None));
}

#[test]
fn ref_must_name_a_definition() {
    let doc = with_definitions("[{name: pool, upstreams: [{url: 'http://a'}]}]", "{main: {ref: other}}");
    only_error(
        &doc,
        "spec.upstream.main.ref",
        "Referenced upstream definition 'other' not found in spec.upstreamDefinitions",
    );
    // A reference to an invalid definition reports only the definition's own problem.
    let doc = with_definitions(
        "[{name: pool, upstreams: [{url: 'http://a', weight: 101}]}]",
        "{main: {ref: pool}}",
    );
    only_error(
        &doc,
        "spec.upstreamDefinitions[0].upstreams[0].weight",
        "Weight must be between 0 and 100",
    );
}

#[test]
fn definition_urls_carry_host_and_port_only() {
    let field = "spec.upstreamDefinitions[0].upstreams[0].url";
    let query = "URL must not include a query string; only host[:port] is used";
    let fragment = "URL must not include a fragment; only host[:port] is used";
    let doc = |url: &str| {
        with_definitions(
            &format!("[{{name: pool, upstreams: [{{url: '{url}'}}]}}]"),
            "{main: {url: 'http://b'}}",
        )
    };
    only_error(&doc("http://a:80?region=eu"), field, query);
    only_error(&doc("http://a:80?"), field, query);
    only_error(&doc("http://a:80#section"), field, fragment);
    assert_eq!(
        errors(&doc("http://a?a=1#top")),
        vec![(field.into(), query.into()), (field.into(), fragment.into())]
    );
    only_error(
        &doc("http://a/api"),
        field,
        "URL must not include a path; set the base path in upstreamDefinitions[].basePath instead",
    );
    only_error(&doc("a:80"), field, "Upstream URL must use http or https scheme");
    ok(&doc("http://a/"));
}

#[test]
fn definition_fields() {
    let main = "{main: {url: 'http://b'}}";
    let one = |def: &str| with_definitions(&format!("[{def}]"), main);
    only_error(
        &one("{upstreams: [{url: 'http://a'}]}"),
        "spec.upstreamDefinitions[0].name",
        "Upstream definition name is required",
    );
    let long = "n".repeat(101);
    only_error(
        &one(&format!("{{name: {long}, upstreams: [{{url: 'http://a'}}]}}")),
        "spec.upstreamDefinitions[0].name",
        "Upstream definition name must be 1-100 characters",
    );
    only_error(
        &one("{name: 'a.b', upstreams: [{url: 'http://a'}]}"),
        "spec.upstreamDefinitions[0].name",
        "Upstream definition name must contain only letters, numbers, hyphens and underscores",
    );
    only_error(
        &one("{name: a}"),
        "spec.upstreamDefinitions[0].upstreams",
        "At least one upstream is required",
    );
    only_error(
        &one("{name: a, upstreams: [{weight: 5}]}"),
        "spec.upstreamDefinitions[0].upstreams[0].url",
        "Upstream URL is required",
    );
    only_error(
        &one("{name: a, upstreams: [{url: 'http://a', weight: -1}]}"),
        "spec.upstreamDefinitions[0].upstreams[0].weight",
        "Weight must be between 0 and 100",
    );
    ok(&one(
        "{name: a, upstreams: [{url: 'http://a', weight: 0}, {url: 'http://c', weight: 100}]}",
    ));
    let base = "Base path must start with / and must not end with / (omit it for the root)";
    for bad in ["/", "/svc/", "svc"] {
        only_error(
            &one(&format!(
                "{{name: a, basePath: '{bad}', upstreams: [{{url: 'http://a'}}]}}"
            )),
            "spec.upstreamDefinitions[0].basePath",
            base,
        );
    }
    for bad in ["0s", "5", "1m30s"] {
        let msg = format!(
            "Invalid connect timeout '{bad}' (must be a positive duration with one unit of ms, s, m or h, e.g. 5s)"
        );
        only_error(
            &one(&format!(
                "{{name: a, timeout: {{connect: '{bad}'}}, upstreams: [{{url: 'http://a'}}]}}"
            )),
            "spec.upstreamDefinitions[0].timeout.connect",
            &msg,
        );
    }
}

#[test]
fn definition_names_are_unique() {
    let defs = "[{name: a, upstreams: [{url: 'http://a'}]}, {name: a, upstreams: [{url: 'http://c'}]}]";
    only_error(
        &with_definitions(defs, "{main: {url: 'http://b'}}"),
        "spec.upstreamDefinitions[1].name",
        "Duplicate upstream definition name 'a'",
    );
}

#[test]
fn upstreams_at_the_gateway_itself_are_refused_with_their_field() {
    let errs = errors(&with_upstreams(
        "{main: {url: 'http://169.254.169.254/latest'}, sandbox: {url: 'http://127.0.0.1:9901'}}",
    ));
    let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        vec!["spec.upstream.main.url", "spec.upstream.sandbox.url"],
        "{errs:?}"
    );
    assert!(errs[0].1.contains("link-local"), "{errs:?}");
    assert!(errs[1].1.contains("gateway itself"), "{errs:?}");
    // Every URL of a definition is checked, not only the first (the one routed to today).
    let doc = with_definitions(
        "[{name: d, upstreams: [{url: 'http://backend:80'}, {url: 'http://[fe80::1]:80'}]}]",
        "{main: {ref: d}}",
    );
    let errs = errors(&doc);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, "spec.upstreamDefinitions[0].upstreams[1].url");
    // Loopback elsewhere is an ordinary backend.
    ok(&with_upstreams("{main: {url: 'http://127.0.0.1:34567'}}"));
}

#[test]
fn the_configured_guard_decides() {
    let doc = with_upstreams("{main: {url: 'http://127.0.0.1:7000'}}");
    let mut defaults = defaults();
    ok(&doc);
    defaults.upstreams.gateway_ports = vec![7000];
    assert!(resolve(&doc, &defaults, &Catalogue::builtin()).is_err());
    defaults.upstreams.allowed = vec!["127.0.0.1:7000".into()];
    assert!(resolve(&doc, &defaults, &Catalogue::builtin()).is_ok());
}
