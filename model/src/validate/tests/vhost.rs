//! Virtual hosts: defaults, the `_gateway_default_` sentinel, sandbox rules and `fill_vhosts`.

use super::*;

#[test]
fn vhosts_default_and_sentinel_resolution() {
    let mut doc = minimal();
    doc.spec.vhosts = Some(document::Vhosts {
        main: Some("_gateway_default_".into()),
        sandbox: None,
    });
    assert_eq!(ok(&doc).main_vhosts, vec!["*".to_string()]);
    doc.spec.vhosts = Some(document::Vhosts {
        main: Some("a.example.com; _gateway_default_;".into()),
        sandbox: None,
    });
    assert_eq!(ok(&doc).main_vhosts, vec!["a.example.com".to_string(), "*".to_string()]);
    // A sandbox vhost without a sandbox upstream is irrelevant, even when malformed.
    doc.spec.vhosts = Some(document::Vhosts {
        main: Some("custom.wso2.com".into()),
        sandbox: Some("a;b".into()),
    });
    let api = ok(&doc);
    assert_eq!(
        (api.main_vhosts, api.sandbox_vhost),
        (vec!["custom.wso2.com".to_string()], None)
    );
    doc.spec.upstream = Some(parse_upstreams(
        "{main: {url: 'http://b:80'}, sandbox: {url: 'http://b:80/sandbox'}}",
    ));
    doc.spec.vhosts = None;
    assert_eq!(ok(&doc).sandbox_vhost.as_deref(), Some("sandbox-*"));
    doc.spec.vhosts = Some(document::Vhosts {
        main: None,
        sandbox: Some("_gateway_default_".into()),
    });
    assert_eq!(ok(&doc).sandbox_vhost.as_deref(), Some("sandbox-*"));
    doc.spec.vhosts = Some(document::Vhosts {
        main: None,
        sandbox: Some("custom-sandbox.wso2.com".into()),
    });
    assert_eq!(ok(&doc).sandbox_vhost.as_deref(), Some("custom-sandbox.wso2.com"));
}

#[test]
fn vhost_errors() {
    let mut doc = minimal();
    let set = |doc: &mut RestApiDoc, main: &str, sandbox: Option<&str>| {
        doc.spec.vhosts = Some(document::Vhosts {
            main: Some(main.into()),
            sandbox: sandbox.map(String::from),
        });
    };
    set(&mut doc, "a.com;a.com", None);
    only_error(&doc, "spec.vhosts.main", "Duplicate virtual host 'a.com'");
    set(&mut doc, "a.com;b c;x.*.com", None);
    assert_eq!(
        errors(&doc),
        vec![
            ("spec.vhosts.main".into(), "Invalid virtual host 'b c'".into()),
            ("spec.vhosts.main".into(), "Invalid virtual host 'x.*.com'".into()),
        ]
    );
    set(&mut doc, ";;", None);
    only_error(&doc, "spec.vhosts.main", "At least one virtual host is required");
    doc.spec.upstream = Some(parse_upstreams("{main: {url: 'http://b'}, sandbox: {url: 'http://b'}}"));
    set(&mut doc, "a.com;b.com", Some("b.com"));
    only_error(
        &doc,
        "spec.vhosts.sandbox",
        "Sandbox virtual host 'b.com' must differ from the main virtual hosts",
    );
    set(&mut doc, "a.com", Some("s1.com;s2.com"));
    only_error(
        &doc,
        "spec.vhosts.sandbox",
        "Sandbox virtual host must be a single hostname",
    );
}

#[test]
fn fill_vhosts_writes_the_resolved_strings() {
    let mut doc = minimal();
    fill_vhosts(&mut doc, &defaults());
    assert_eq!(
        doc.spec.vhosts,
        Some(document::Vhosts {
            main: Some("*".into()),
            sandbox: None
        })
    );

    let mut doc = minimal();
    doc.spec.upstream = Some(parse_upstreams("{main: {url: 'http://b'}, sandbox: {url: 'http://b'}}"));
    doc.spec.vhosts = Some(document::Vhosts {
        main: Some("_gateway_default_".into()),
        sandbox: None,
    });
    fill_vhosts(&mut doc, &defaults());
    let expected = document::Vhosts {
        main: Some("*".into()),
        sandbox: Some("sandbox-*".into()),
    };
    assert_eq!(doc.spec.vhosts, Some(expected));

    // Explicit values are kept as written; without a sandbox upstream the sandbox value is untouched.
    let mut doc = minimal();
    doc.spec.vhosts = Some(document::Vhosts {
        main: Some("a.com;b.com".into()),
        sandbox: Some("_gateway_default_".into()),
    });
    let before = doc.spec.vhosts.clone();
    fill_vhosts(&mut doc, &defaults());
    assert_eq!(doc.spec.vhosts, before);
}

/// Envoy compares domains without case and refuses two that differ only in case (found by the
/// differential test), so vhosts are compared and kept in lower case.
#[test]
fn vhosts_differing_only_in_case_are_the_same() {
    let mut doc = minimal();
    doc.spec.vhosts = Some(document::Vhosts {
        main: Some("API.Example.com;api.example.com".into()),
        sandbox: None,
    });
    only_error(&doc, "spec.vhosts.main", "Duplicate virtual host 'api.example.com'");
    doc.spec.vhosts = Some(document::Vhosts {
        main: Some("Shop.Example".into()),
        sandbox: None,
    });
    assert_eq!(ok(&doc).main_vhosts, vec!["shop.example".to_string()]);
}
