use serde_json::{Value, json};

use crate::Catalogue;

fn paths(params: Value) -> Vec<String> {
    let cat = Catalogue::builtin();
    let def = cat.lookup("basic-auth", "v1").expect("builtin policy");
    def.validate_params(Some(&params)).into_iter().map(|e| e.path).collect()
}

#[test]
fn basic_auth_takes_wso2s_parameters() {
    assert!(paths(json!({"username": "alice", "password": "s3cret"})).is_empty());
    assert!(
        paths(json!({"username": "a", "password": "p", "realm": "Shop API", "allowUnauthenticated": true})).is_empty()
    );
    let mut got =
        paths(json!({"username": "a:b", "password": "", "realm": "say \"hi\"", "allowUnauthenticated": "yes"}));
    got.sort();
    assert_eq!(got, ["allowUnauthenticated", "password", "realm", "username"]);
    assert_eq!(paths(json!({})), ["username", "password"]);
    assert!(super::is_phc("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA") && super::is_phc("$2b$04$x"));
    assert!(!super::is_phc("s3cret") && !super::is_phc("$1$md5"));
}
