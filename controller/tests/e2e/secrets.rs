//! Secrets and templating end to end (issue #16 items 1 and 2, reference §1.9, §2.7): a secret
//! rendered into a response header and an upstream path reaches the client and the upstream
//! through the real Envoy, and never the controller's config_dump, API GET or logs; a missing
//! secret is a 400 naming the field; a changed secret is redeployed; a used one cannot be
//! deleted; key rotation keeps every value readable; a lost key stops the start clearly.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_testkit::Echo;

use crate::api_yaml;
use crate::stack::{Stack, send};

fn secret(id: &str, value: &str) -> Value {
    json!({"apiVersion": "gateway.api-platform.wso2.com/v1", "kind": "Secret",
        "metadata": {"name": id}, "spec": {"displayName": format!("The {id}"), "value": value}})
}

/// An API whose `/hdr` answers directly with the secret in a header and whose `/up` goes to the
/// upstream under a base path holding another secret; the host comes from `default`.
fn api(port: u16, header_secret: &str) -> String {
    let url = format!(
        "http://{{{{ default \"127.0.0.1\" (env \"TG_E2E_UNSET_HOST\") }}}}:{port}/{{{{ secret \"path-part\" }}}}"
    );
    let ops = format!(
        "    - method: GET\n      path: /hdr\n      policies:\n        - name: respond\n          version: v1\n          params:\n            statusCode: 200\n            headers:\n              - name: x-token\n                value: 'Bearer {{{{ secret \"{header_secret}\" }}}}'\n    - {{method: GET, path: /up}}\n"
    );
    api_yaml("sec", "/sec", &format!("'{url}'"), &ops)
}

async fn header(s: &Stack, path: &str) -> (u16, String, String) {
    let resp = s.gw(Method::GET, path, None).send().await.unwrap();
    let status = resp.status().as_u16();
    let token = resp
        .headers()
        .get("x-token")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    (status, token, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_render_into_envoy_and_nowhere_else() {
    crate::stack::capture_logs();
    let echo = Echo::start("backend").await;
    let mut s = Stack::start().await;
    let token = format!("tg-token-{}", uuid::Uuid::now_v7().simple());
    let path_part = format!("p{}", uuid::Uuid::now_v7().simple());

    // CRUD: the value only from GET one; field errors; a taken id.
    let (st, b) = send(s.mgmt(Method::POST, "/secrets").json(&secret("backend-token", &token))).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert!(!b.to_string().contains(&token), "create answers no value: {b}");
    assert_eq!(
        send(s.mgmt(Method::POST, "/secrets").json(&secret("path-part", &path_part)))
            .await
            .0,
        StatusCode::CREATED
    );
    let (st, b) = send(s.mgmt(Method::POST, "/secrets").json(&secret("backend-token", "x"))).await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    let (st, b) = send(
        s.mgmt(Method::POST, "/secrets")
            .json(&json!({"kind": "Secret", "spec": {"value": ""}})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert!(
        b.to_string().contains("spec.value") && b.to_string().contains("metadata.name"),
        "{b}"
    );
    let (st, list) = send(s.mgmt(Method::GET, "/secrets")).await;
    assert_eq!((st, list["count"].as_u64()), (StatusCode::OK, Some(2)), "{list}");
    assert!(!list.to_string().contains(&token), "{list}");
    let (_, one) = send(s.mgmt(Method::GET, "/secrets/backend-token")).await;
    assert_eq!(one["spec"]["value"], token.as_str());

    // Rendered at deploy time: the header reaches the client, the base path the upstream.
    let (st, b) = s.deploy(&api(echo.port, "backend-token")).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert!(!b.to_string().contains(&token), "{b}");
    s.wait_status("/sec/hdr", None, 200).await;
    assert_eq!(header(&s, "/sec/hdr").await.1, format!("Bearer {token}"));
    let (st, up) = s.call(Method::GET, "/sec/up", None).await;
    assert_eq!(st, 200);
    assert_eq!(up["path"], format!("/{path_part}/up"), "{up}");

    // The source is what the controller keeps and shows.
    let (_, got) = send(s.mgmt(Method::GET, "/rest-apis/sec")).await;
    assert!(got.to_string().contains("{{ secret \\\"backend-token\\\" }}"), "{got}");
    let (_, dump) = send(s.admin("/config_dump")).await;
    for text in [got.to_string(), dump.to_string()] {
        assert!(
            !text.contains(&token) && !text.contains(&path_part),
            "a secret value leaked: {text}"
        );
    }

    // A missing secret is a 400 naming the field; nothing is deployed.
    let (st, b) = s
        .deploy(
            &api(echo.port, "no-such-secret")
                .replace("name: sec", "name: sec2")
                .replace("context: /sec", "context: /sec2"),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(
        b["errors"][0]["field"], "spec.operations[0].policies[0].params.headers[0].value",
        "{b}"
    );
    assert!(
        b["errors"][0]["message"].as_str().unwrap().contains("no-such-secret"),
        "{b}"
    );

    // A rendered value that does not validate is never quoted back.
    let bad = format!("bad name {}", uuid::Uuid::now_v7().simple());
    assert_eq!(
        send(s.mgmt(Method::POST, "/secrets").json(&secret("bad-name", &bad)))
            .await
            .0,
        StatusCode::CREATED
    );
    let doc = api(echo.port, "backend-token")
        .replace("name: sec", "name: sec3")
        .replace("context: /sec", "context: /sec3")
        .replace("- name: x-token", "- name: '{{ secret \"bad-name\" }}'");
    let (st, b) = s.deploy(&doc).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert!(
        !b.to_string().contains(&bad) && b.to_string().contains("[redacted]"),
        "{b}"
    );
    assert_eq!(
        send(s.mgmt(Method::DELETE, "/secrets/bad-name")).await.0,
        StatusCode::OK
    );

    // A new value is re-rendered and served when the PUT answers.
    let token2 = format!("{token}-v2");
    let (st, b) = send(
        s.mgmt(Method::PUT, "/secrets/backend-token")
            .json(&secret("backend-token", &token2)),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["status"]["redeployed"], json!(["sec"]), "{b}");
    assert_eq!(header(&s, "/sec/hdr").await.1, format!("Bearer {token2}"));
    // A secret in use cannot be deleted; an unused one can.
    let (st, b) = send(s.mgmt(Method::DELETE, "/secrets/backend-token")).await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert!(b["message"].as_str().unwrap().contains("sec"), "{b}");
    assert_eq!(
        send(s.mgmt(Method::POST, "/secrets").json(&secret("spare", "unused")))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(send(s.mgmt(Method::DELETE, "/secrets/spare")).await.0, StatusCode::OK);
    assert_eq!(
        send(s.mgmt(Method::GET, "/secrets/spare")).await.0,
        StatusCode::NOT_FOUND
    );

    rotate_and_restart(&mut s, &[&token2, &path_part]).await;
    assert_eq!(header(&s, "/sec/hdr").await.1, format!("Bearer {token2}"));

    let logs = crate::stack::logs();
    for v in [&token, &token2, &path_part, &bad] {
        assert!(!logs.contains(v.as_str()), "a secret value was logged");
    }
    lost_key_stops_the_start(&mut s).await;
}

/// Adds a newer key file, runs `tollgate secrets rotate`, removes the old key, restarts: every
/// value still reads (it could not without the rotation).
async fn rotate_and_restart(s: &mut Stack, values: &[&str]) {
    let data = s.config.server.data_dir.clone();
    let keys = data.join("secret-keys");
    assert!(keys.join("v1.key").exists(), "the first key was generated");
    std::fs::write(keys.join("v2.key"), "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=\n").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["secrets", "rotate"])
        .env("TOLLGATE_DATA_DIR", &data)
        .env_remove("TOLLGATE_SECRET_KEYS")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("re-encrypted 2 secret(s) with key 'v2'"), "{stdout}");
    std::fs::remove_file(keys.join("v1.key")).unwrap();
    s.restart_controller().await;
    let (_, list) = send(s.mgmt(Method::GET, "/secrets")).await;
    let mut read = Vec::new();
    for m in list["secrets"].as_array().unwrap() {
        let id = m["metadata"]["name"].as_str().unwrap();
        let (_, one) = send(s.mgmt(Method::GET, &format!("/secrets/{id}"))).await;
        read.push(one["spec"]["value"].as_str().unwrap().to_string());
    }
    for v in values {
        assert!(read.iter().any(|r| r == v), "{v} unreadable after rotation");
    }
}

/// Without its key file, a controller with stored secrets refuses to start, saying why.
async fn lost_key_stops_the_start(s: &mut Stack) {
    if let Some(r) = s.running.take() {
        r.shutdown().await;
    }
    std::fs::remove_file(s.config.server.data_dir.join("secret-keys/v2.key")).unwrap();
    let Err(e) = tollgate::runtime::start(&s.config).await else {
        panic!("the start is refused");
    };
    let text = format!("{e:#}");
    assert!(
        text.contains("2 secret(s) are stored") && text.contains("restore the key file"),
        "{text}"
    );
}

/// A platform deployment whose artifact names a secret this gateway lacks pulls it from the
/// platform API (`GET /secrets/{handle}/value`) and serves it; one the platform lacks fails the
/// deployment, naming the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_artifacts_pull_the_secrets_they_name() {
    use crate::platform::{TOKEN, WAIT, ack_payload, artifact, link_to};
    use tollgate_testkit::platform::FakePlatform;

    let echo = Echo::start("backend").await;
    let fake = FakePlatform::start(TOKEN).await;
    let s = Stack::with(|c| link_to(&fake, c)).await;
    fake.wait_connections(1, WAIT).await;
    let value = format!("pf-{}", uuid::Uuid::now_v7().simple());
    fake.set_secret("pf-token", &value);
    let url = format!("http://127.0.0.1:{}", echo.port);
    let respond = "  policies:\n    - {name: respond, version: v1, params: {statusCode: 200, headers: [{name: x-token, value: '{{ secret \"SECRET\" }}'}]}}\n";

    let d = fake.deploy(
        "7f0c2a51-2222-4333-8444-555566667777",
        &artifact("pulled", &url, &respond.replace("SECRET", "pf-token")),
    );
    fake.push(&fake.deployed_event(&d));
    let p = ack_payload(&fake.wait_acks(1, WAIT).await[0]).clone();
    assert_eq!(p["status"], "success", "{p}");
    s.wait_status("/pulled/x", None, 200).await;
    assert_eq!(header(&s, "/pulled/x").await.1, value);
    let (_, list) = send(s.mgmt(Method::GET, "/secrets")).await;
    assert_eq!(list["secrets"][0]["metadata"]["name"], "pf-token", "{list}");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path.ends_with("/secrets/pf-token/value"))
    );

    let d = fake.deploy(
        "7f0c2a51-3333-4333-8444-555566667777",
        &artifact("unpulled", &url, &respond.replace("SECRET", "pf-none")),
    );
    fake.push(&fake.deployed_event(&d));
    let p = ack_payload(&fake.wait_acks(2, WAIT).await[1]).clone();
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(s.call(Method::GET, "/unpulled/x", None).await.0, StatusCode::NOT_FOUND);
}
