use std::collections::BTreeMap;
use std::sync::Arc;

use super::crypto::{CryptoError, KeySource, Keyring};
use super::render::{redact, render, secret_refs};
use super::template::{Lookup, Template, TemplateError, Used};
use super::{SecretDoc, Secrets, rotate};
use crate::db::Db;
use crate::secret::Secret;

struct Fake {
    env: BTreeMap<&'static str, &'static str>,
    secrets: BTreeMap<&'static str, &'static str>,
}

impl Lookup for Fake {
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).map(|v| v.to_string())
    }
    fn secret(&self, id: &str) -> Option<Secret<String>> {
        self.secrets.get(id).map(|v| Secret::new(v.to_string()))
    }
}

fn fake() -> Fake {
    Fake {
        env: [("HOST", "backend.internal"), ("EMPTY", "")].into(),
        secrets: [("token", "s3cr3t-value"), ("other", "xyz")].into(),
    }
}

fn render_str(src: &str) -> Result<String, TemplateError> {
    Template::parse(src)?.render(&fake(), &mut Used::default())
}

#[test]
fn renders_env_secret_and_default() {
    assert_eq!(render_str("plain").unwrap(), "plain");
    assert_eq!(
        render_str("http://{{ env \"HOST\" }}:8080/x").unwrap(),
        "http://backend.internal:8080/x"
    );
    assert_eq!(
        render_str("Bearer {{secret \"token\"}}").unwrap(),
        "Bearer s3cr3t-value"
    );
    assert_eq!(render_str("{{ default \"x\" (env \"NOPE\") }}").unwrap(), "x");
    assert_eq!(render_str("{{ default \"x\" (env \"EMPTY\") }}").unwrap(), "x");
    assert_eq!(
        render_str("{{ default \"x\" (env \"HOST\") }}").unwrap(),
        "backend.internal"
    );
    assert_eq!(render_str("{{ env \"NOPE\" | default \"y\" }}").unwrap(), "y");
    assert_eq!(render_str("{{ default `raw` (secret \"missing\") }}").unwrap(), "raw");
    assert_eq!(render_str("a {{- secret \"other\" -}} b").unwrap(), "axyzb");
    assert_eq!(
        render_str("{{ \"esc\\\"aped\" | default \"z\" }}").unwrap_err(),
        TemplateError::Syntax("an action starts with a function name")
    );
}

#[test]
fn missing_values_and_bad_syntax_are_errors() {
    assert_eq!(
        render_str("{{ env \"NOPE\" }}").unwrap_err(),
        TemplateError::MissingEnv("NOPE".into())
    );
    assert_eq!(
        render_str("{{ secret \"gone\" }}").unwrap_err(),
        TemplateError::MissingSecret("gone".into())
    );
    assert_eq!(
        render_str("{{ upper \"x\" }}").unwrap_err(),
        TemplateError::UnknownFunction("upper".into())
    );
    assert_eq!(
        render_str("{{ env }}").unwrap_err(),
        TemplateError::Arity {
            name: "env",
            expected: 1
        }
    );
    assert_eq!(
        render_str("{{ default \"x\" }}").unwrap_err(),
        TemplateError::Arity {
            name: "default",
            expected: 2
        }
    );
    for bad in [
        "{{ env \"X\"",
        "{{ }}",
        "{{ .Values.x }}",
        "{{ env \"X }}",
        "{{ default \"x\" (env \"A\" }}",
        "{{ env X }}",
        "{{ env \"a\\q\" }}",
    ] {
        assert!(
            matches!(render_str(bad), Err(TemplateError::Syntax(_))),
            "{bad}: {:?}",
            render_str(bad)
        );
    }
}

#[test]
fn nesting_is_bounded() {
    let nested = |n: usize| {
        let open = "(default \"y\" ".repeat(n);
        format!("{{{{ default \"x\" {open}(env \"A\"){} }}}}", ")".repeat(n))
    };
    assert_eq!(render_str(&nested(6)).unwrap(), "y");
    let deep = nested(100_000);
    assert_eq!(
        render_str(&deep).unwrap_err(),
        TemplateError::Syntax("parentheses nested too deeply")
    );
}

#[test]
fn secret_ids_are_listed_and_values_recorded() {
    let t = Template::parse("{{ secret \"token\" }}/{{ default \"x\" (secret \"other\") }}").unwrap();
    assert_eq!(t.secret_ids(), ["token", "other"]);
    let mut used = Used::default();
    t.render(&fake(), &mut used).unwrap();
    assert_eq!(used.secret_ids, ["token", "other"]);
    assert_eq!(used.secret_values.len(), 2);
}

fn api_doc(url: &str, header: &str) -> tollgate_model::RestApiDoc {
    let doc = serde_json::json!({
        "apiVersion": "gateway.api-platform.wso2.com/v1", "kind": "RestApi", "metadata": {"name": "a"},
        "spec": {"displayName": "a", "version": "v1", "context": "/a",
            "upstream": {"main": {"url": url}},
            "operations": [{"method": "GET", "path": "/x", "policies": [
                {"name": "respond", "version": "v1", "params": {"statusCode": 200, "body": header}}]}]}
    });
    serde_json::from_value(doc).unwrap()
}

#[test]
fn a_document_is_rendered_and_errors_name_the_field() {
    let doc = api_doc("http://{{ env \"HOST\" }}", "token={{ secret \"token\" }}");
    let r = render(&doc, &fake()).unwrap();
    let spec = serde_json::to_value(&r.doc.spec).unwrap();
    assert_eq!(spec["upstream"]["main"]["url"], "http://backend.internal");
    assert_eq!(
        spec["operations"][0]["policies"][0]["params"]["body"],
        "token=s3cr3t-value"
    );
    assert_eq!(r.secret_values.len(), 1);
    // The source is untouched.
    assert!(serde_json::to_string(&doc).unwrap().contains("{{ secret"));

    let errors = render(&api_doc("http://{{ env \"NOPE\" }}", "{{ secret \"gone\" }}"), &fake()).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["spec.operations[0].policies[0].params.body", "spec.upstream.main.url"]
    );
    assert!(errors[0].message.contains("secret 'gone' does not exist"), "{errors:?}");

    let spec = serde_json::to_value(&doc.spec).unwrap();
    assert_eq!(secret_refs(&spec), ["token"]);
}

#[test]
fn redaction_replaces_every_value_longest_first() {
    let values = [Secret::new("abc".to_string()), Secret::new("abcdef".to_string())];
    assert_eq!(redact("x abcdef y abc", &values), "x [redacted] y [redacted]");
}

#[test]
fn values_round_trip_with_fresh_nonces_and_the_id_bound() {
    let k = Keyring::random("v1").unwrap();
    let a = k.encrypt("id1", "hello").unwrap();
    let b = k.encrypt("id1", "hello").unwrap();
    assert!(a.starts_with("enc:aesgcm:v1:v1:"), "{a}");
    assert_ne!(a, b, "a nonce is never reused");
    assert!(!a.contains("hello"));
    assert_eq!(k.decrypt("id1", &a).unwrap().expose(), "hello");
    // Copied onto another id, it does not open.
    assert!(matches!(k.decrypt("id2", &a), Err(CryptoError::Undecryptable { .. })));
    assert!(matches!(
        k.decrypt("id1", "garbage"),
        Err(CryptoError::Malformed { .. })
    ));
}

#[test]
fn a_wrong_or_missing_key_fails_clearly() {
    let k1 = Keyring::random("v1").unwrap();
    let other = Keyring::random("v1").unwrap();
    let sealed = k1.encrypt("id", "value").unwrap();
    let e = other.decrypt("id", &sealed).unwrap_err();
    assert!(e.to_string().contains("does not decrypt with key 'v1'"), "{e}");
    let v2 = Keyring::random("v2").unwrap();
    let e = v2.decrypt("id", &sealed).unwrap_err();
    assert!(e.to_string().contains("key 'v1', which is not configured"), "{e}");
}

#[test]
fn keys_come_from_files_generated_once_or_the_environment() {
    let dir = std::env::temp_dir().join(format!("tollgate-keys-{}", uuid::Uuid::now_v7()));
    let no_env = |_: &str| None;
    // Secrets stored but no key: refused, no new key made.
    let e = Keyring::load(&dir, &no_env, 3).unwrap_err();
    assert!(e.to_string().contains("3 secret(s) are stored"), "{e}");
    assert!(!dir.join("secret-keys").exists());
    let (k, source) = Keyring::load(&dir, &no_env, 0).unwrap();
    let KeySource::Generated(file) = source else {
        panic!("{source:?}")
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let sealed = k.encrypt("id", "v").unwrap();
    let (again, source) = Keyring::load(&dir, &no_env, 1).unwrap();
    assert_eq!(source, KeySource::Files);
    assert_eq!(again.decrypt("id", &sealed).unwrap().expose(), "v");
    // A second file with a higher version encrypts; both decrypt.
    std::fs::write(
        dir.join("secret-keys/v10.key"),
        "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=",
    )
    .unwrap();
    std::fs::write(
        dir.join("secret-keys/v9.key"),
        "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDI=",
    )
    .unwrap();
    let (both, _) = Keyring::load(&dir, &no_env, 1).unwrap();
    assert_eq!(both.versions(), ["v10", "v9", "v1"]);
    assert_eq!(both.decrypt("id", &sealed).unwrap().expose(), "v");
    // The environment wins over the files.
    let env = |_: &str| {
        Some(
            "k2:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=, k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDI="
                .to_string(),
        )
    };
    let (from_env, source) = Keyring::load(&dir, &env, 1).unwrap();
    assert_eq!((source, from_env.current()), (KeySource::Env, "k2"));
    assert!(
        Keyring::from_env("k:c2hvcnQ=")
            .unwrap_err()
            .to_string()
            .contains("32 bytes")
    );
    assert!(Keyring::from_env("nocolon").is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn secret_doc(id: &str, value: &str) -> SecretDoc {
    SecretDoc::parse(
        &serde_json::json!({"apiVersion": "gateway.api-platform.wso2.com/v1", "kind": "Secret",
            "metadata": {"name": id}, "spec": {"displayName": "A secret", "value": value}}),
        None,
    )
    .unwrap()
}

#[test]
fn rotation_re_encrypts_with_the_current_key_and_keeps_values() {
    let db = Arc::new(Db::memory().unwrap());
    let old = Keyring::from_env("v1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=").unwrap();
    let store = Secrets::load(db.clone(), old).unwrap();
    store.create(&secret_doc("a", "alpha")).unwrap();
    store.create(&secret_doc("b", "beta")).unwrap();
    let both = Keyring::from_env(
        "v2:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDI=,v1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=",
    )
    .unwrap();
    assert_eq!(rotate(&db, &both).unwrap(), 2);
    assert_eq!(rotate(&db, &both).unwrap(), 0, "nothing left to rotate");
    // Only the new key is needed now.
    let new_only = Keyring::from_env("v2:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDI=").unwrap();
    let reloaded = Secrets::load(db.clone(), new_only).unwrap();
    assert_eq!(reloaded.value("a").unwrap().expose(), "alpha");
    assert_eq!(reloaded.value("b").unwrap().expose(), "beta");
    // Nothing but ciphertext in the database.
    for row in db.list_secrets().unwrap() {
        assert!(row.ciphertext.starts_with("enc:aesgcm:v1:v2:"), "{}", row.ciphertext);
    }
    // A duplicate id is a conflict.
    assert!(matches!(
        reloaded.create(&secret_doc("a", "x")),
        Err(super::SecretsError::Db(crate::db::DbError::Conflict(_)))
    ));
}

#[test]
fn secret_documents_are_validated_field_by_field() {
    let errors = SecretDoc::parse(
        &serde_json::json!({"apiVersion": "v0", "kind": "Nope", "metadata": {"name": "bad/id"},
            "spec": {"displayName": "", "description": "d".repeat(1025), "value": "v".repeat(10 * 1024 + 1)}}),
        None,
    )
    .unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "apiVersion",
            "kind",
            "metadata.name",
            "spec.displayName",
            "spec.description",
            "spec.value"
        ]
    );
    let errors = SecretDoc::parse(
        &serde_json::json!({"apiVersion": "gateway.api-platform.wso2.com/v1", "kind": "Secret",
            "metadata": {"name": "a"}, "spec": {"displayName": "A", "value": "x"}}),
        Some("b"),
    )
    .unwrap_err();
    assert_eq!(errors[0].field, "metadata.name");
    assert_eq!(secret_doc("a", &"v".repeat(10 * 1024)).value.expose().len(), 10 * 1024);
}
