//! Unit tests of the `[jwt]` section: TOML tables, the environment, and what is refused.

use super::super::Config;
use super::*;

const TOML: &str = r#"
[jwt]
jwks_cache_ttl = "30s"
on_failure_status_code = 403

[[jwt.key_managers]]
name = "idp"
issuer = "https://idp.example"
[jwt.key_managers.jwks.remote]
uri = "https://idp.example:8443/jwks"

[[jwt.key_managers]]
name = "local"
[jwt.key_managers.jwks.local]
inline = '{"keys": []}'
"#;

#[test]
fn key_managers_are_tables_in_an_array() {
    let c = Config::parse(TOML).unwrap();
    assert_eq!(c.jwt.names(), ["idp", "local"]);
    let s = c.jwt.settings().unwrap();
    assert_eq!(s.failure_status, 403);
    assert_eq!(s.jwks_cache_ttl, Duration::from_secs(30));
    let Jwks::Remote(r) = &s.key_managers[0].jwks else {
        panic!("remote expected")
    };
    assert_eq!((r.tls, r.host.as_str(), r.port), (true, "idp.example", 8443));
    assert_eq!(s.key_managers[1].jwks, Jwks::Inline(r#"{"keys": []}"#.into()));
}

#[test]
fn key_managers_come_from_the_environment_as_json() {
    let env = |var: &str| {
        (var == "TOLLGATE_JWT_KEY_MANAGERS")
            .then(|| r#"[{"name": "idp", "jwks": {"remote": {"uri": "http://10.0.0.1/jwks"}}}]"#.to_string())
    };
    let c = Config::load_with(None, &env).unwrap();
    let s = c.jwt.settings().unwrap();
    let Jwks::Remote(r) = &s.key_managers[0].jwks else {
        panic!("remote expected")
    };
    assert_eq!((r.tls, r.host.as_str(), r.port), (false, "10.0.0.1", 80));
}

#[test]
fn bad_values_name_their_key() {
    let bad = |edit: &dyn Fn(&mut Jwt)| {
        let mut j = Config::parse(TOML).unwrap().jwt;
        edit(&mut j);
        j.settings().unwrap_err().to_string()
    };
    assert!(bad(&|j| j.on_failure_status_code = 500).contains("jwt.on_failure_status_code"));
    assert!(bad(&|j| j.error_message_format = "xml".into()).contains("jwt.error_message_format"));
    assert!(bad(&|j| j.leeway = Duration::from_millis(1500)).contains("jwt.leeway"));
    assert!(bad(&|j| j.header_name = "bad header".into()).contains("jwt.header_name"));
    let e = bad(&|j| j.key_managers[1].name = "idp".into());
    assert!(e.contains("[1].name") && e.contains("twice"), "{e}");
    let e = bad(&|j| j.key_managers[0].name = "a b".into());
    assert!(e.contains("[0].name"), "{e}");
    let e = bad(&|j| j.key_managers[0].jwks.local = j.key_managers[1].jwks.local.clone());
    assert!(e.contains("[0].jwks: exactly one"), "{e}");
    let e = bad(&|j| j.key_managers[0].jwks.remote.as_mut().unwrap().uri = "ftp://x/jwks".into());
    assert!(e.contains("[0].jwks.remote.uri"), "{e}");
    let e = bad(&|j| j.key_managers[1].jwks.local.as_mut().unwrap().inline = Some("{}".into()));
    assert!(e.contains("[1].jwks.local.inline: must be a JWKS"), "{e}");
    let e = bad(&|j| j.key_managers[1].jwks.local.as_mut().unwrap().inline = Some("-----BEGIN X".into()));
    assert!(e.contains("[1].jwks.local.inline: "), "{e}");
    let e =
        bad(&|j| j.key_managers[0].jwks.remote.as_mut().unwrap().certificate_path = Some("/nonexistent/ca.pem".into()));
    assert!(e.contains("[0].jwks.remote.certificate_path: "), "{e}");
}

#[test]
fn a_local_pem_becomes_an_inline_jwks() {
    let (cert, _) = tollgate_testkit::tls::self_signed(&["idp.example"]);
    let mut j = Config::parse(TOML).unwrap().jwt;
    j.key_managers[1].jwks.local.as_mut().unwrap().inline = Some(cert);
    let s = j.settings().unwrap();
    let Jwks::Inline(text) = &s.key_managers[1].jwks else {
        panic!("inline expected")
    };
    assert!(text.starts_with(r#"{"keys":[{"crv":"P-256""#), "{text}");
}
