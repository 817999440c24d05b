//! `basic-auth` through the real Envoy (the policy-catalogue issue): the ext_authz service checks
//! `Authorization: Basic` against an argon2id verifier the translator made from the document's
//! password: 401 with `WWW-Authenticate` without or with wrong credentials, 200 with the right
//! ones, and an operation's own policy (`allowUnauthenticated`) overriding the API's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use tollgate_testkit::Echo;

use crate::api_yaml;
use crate::stack::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_answers_401_or_lets_the_right_user_in() {
    let echo = Echo::start("backend").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let ops = "    - {method: GET, path: /private}\n    - method: GET\n      path: /open\n      policies:\n        - {name: basic-auth, version: v1, params: {username: alice, password: s3cret, allowUnauthenticated: true}}\n";
    let doc = api_yaml("shop", "/shop", &url, ops).replace(
        "  operations:",
        "  policies:\n    - {name: basic-auth, version: v1, params: {username: alice, password: s3cret, realm: Shop}}\n  operations:",
    );
    let (st, b) = s.deploy(&doc).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");

    // New connections: one opened before the listener learnt to send `authorization` to
    // ext_authz keeps its old filter configuration.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let call = |path: &'static str, creds: Option<&'static str>| {
        let mut r = client.get(format!("http://127.0.0.1:{}{path}", s.port));
        if let Some(c) = creds {
            r = r.header("authorization", format!("Basic {}", STANDARD.encode(c)));
        }
        async move {
            let resp = r.send().await.unwrap();
            let www = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (resp.status().as_u16(), www)
        }
    };
    let realm = Some("Basic realm=\"Shop\"".to_string());
    assert_eq!(call("/shop/private", None).await, (401, realm.clone()));
    assert_eq!(call("/shop/private", Some("alice:wrong")).await, (401, realm.clone()));
    assert_eq!(call("/shop/private", Some("bob:s3cret")).await, (401, realm));
    assert_eq!(call("/shop/private", Some("alice:s3cret")).await, (200, None));
    assert_eq!(
        call("/shop/private", Some("alice:s3cret")).await,
        (200, None),
        "remembered"
    );
    assert_eq!(call("/shop/open", None).await, (200, None));
    assert_eq!(call("/shop/open", Some("alice:s3cret")).await, (200, None));
}
