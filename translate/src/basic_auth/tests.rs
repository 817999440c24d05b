use serde_json::json;
use tollgate_model::{Method, Operation, PathKind, PolicyRef, Resilience, Upstream};

use super::*;

fn api(policies: Vec<PolicyRef>, op_policies: Vec<PolicyRef>) -> Api {
    Api {
        handle: "shop".into(),
        display_name: "Shop".into(),
        version: "v1".into(),
        context: "/shop".into(),
        deployed: true,
        main_vhosts: vec!["*".into()],
        sandbox_vhost: None,
        main: Upstream {
            tls: false,
            host: "10.0.0.1".into(),
            port: 80,
            base_path: String::new(),
            host_rewrite: true,
            connect_timeout: None,
        },
        sandbox: None,
        policies,
        resilience: Resilience::default(),
        operations: vec![Operation {
            method: Method::Get,
            path: "/x".into(),
            kind: PathKind::Template,
            headers: vec![],
            resilience: Resilience::default(),
            policies: op_policies,
        }],
    }
}

fn basic(params: serde_json::Value) -> PolicyRef {
    PolicyRef {
        name: "basic-auth".into(),
        version: "v1".into(),
        params,
    }
}

#[test]
fn a_plaintext_password_reaches_envoy_only_as_a_stable_argon2id_verifier() {
    let a = api(
        vec![basic(json!({"username": "alice", "password": "s3cret-pw"}))],
        vec![],
    );
    let line = route_basic_auth(&a, 0).unwrap();
    assert!(!line.contains("s3cret-pw"), "{line}");
    let parsed = BasicLine::parse(&line).unwrap();
    assert!(parsed.verifier.starts_with("$argon2id$"), "{line}");
    assert_eq!(
        (parsed.realm.as_str(), parsed.username.as_str()),
        ("Restricted", "alice")
    );
    // The same document translates to the same route (no push on re-translation).
    assert_eq!(route_basic_auth(&a, 0).unwrap(), line);
    // A PHC string in the document is used as is; the operation's policy wins.
    let phc = "$2b$04$abcdefghijklmnopqrstuuP5V6G8i9RfM1bQmI4n6o0hY1OqjD8Da";
    let b = api(
        vec![basic(json!({"username": "alice", "password": "s3cret-pw"}))],
        vec![basic(
            json!({"username": "bob", "password": phc, "allowUnauthenticated": true}),
        )],
    );
    let op = BasicLine::parse(&route_basic_auth(&b, 0).unwrap()).unwrap();
    assert_eq!(
        (op.username.as_str(), op.verifier.as_str(), op.allow_unauthenticated),
        ("bob", phc, true)
    );
    assert_eq!(route_basic_auth(&api(vec![], vec![]), 0), None);
}
