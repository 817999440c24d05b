//! The client commands of the real `tollgate` binary against a running controller and the real
//! Envoy: apply (file, stdin, folder, update, --wait), get, delete, keys (and the key then works
//! through Envoy), status, refusals with field messages and exit codes, and the password never
//! printed.

use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tollgate::config::{Role, User};
use tollgate_testkit::{Echo, Envoy, envoy::TempDir};

use crate::api_yaml;
use crate::keys::{call, protected};
use crate::stack::{Stack, eventually, test_config};

/// The CLI user's password: distinct from every other string in play, so any echo of it is found.
const PASSWORD: &str = "Cli-Pw-5e8f1d77";

/// What a run of the binary left.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `tollgate ARGS` as user `ops` against the `management` and `admin` URLs, with nothing from this
/// machine's environment or home folder; asserts the password shows nowhere in what it printed.
async fn tollgate_at(management: &str, admin: &str, args: &[&str], stdin: Option<&str>, password: &str) -> Ran {
    let home = std::env::temp_dir().join(format!("tollgate-cli-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(args)
        .env_clear()
        .env("HOME", &home)
        .env("TOLLGATE_URL", management)
        .env("TOLLGATE_ADMIN_URL", admin)
        .env("TOLLGATE_USERNAME", "ops")
        .env("TOLLGATE_PASSWORD", password)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the tollgate binary starts");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let out = child.wait_with_output().await.unwrap();
    let ran = Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !ran.stdout.contains(password) && !ran.stderr.contains(password),
        "the password was printed by {args:?}: {ran:?}"
    );
    ran
}

/// The management and admin URLs of a controller.
fn urls(r: &tollgate::runtime::Running, scheme: &str) -> (String, String) {
    (
        format!("{scheme}://{}", r.management),
        format!("{scheme}://{}", r.admin),
    )
}

async fn tollgate(s: &Stack, args: &[&str]) -> Ran {
    let (m, a) = urls(s.running(), "http");
    tollgate_at(&m, &a, args, None, PASSWORD).await
}

async fn tollgate_stdin(s: &Stack, args: &[&str], stdin: &str) -> Ran {
    let (m, a) = urls(s.running(), "http");
    tollgate_at(&m, &a, args, Some(stdin), PASSWORD).await
}

/// Runs and expects exit 0.
async fn ok(s: &Stack, args: &[&str]) -> String {
    let ran = tollgate(s, args).await;
    assert_eq!(ran.code, 0, "{args:?}: {ran:?}");
    ran.stdout
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Adds the admin user `ops` with [`PASSWORD`].
fn with_ops(c: &mut tollgate::config::Config) {
    c.auth.users.push(User {
        username: "ops".into(),
        password: PASSWORD.to_string().into(),
        password_hashed: false,
        roles: vec![Role::Admin],
    });
}

fn open_api(name: &str, context: &str, url: &str) -> String {
    api_yaml(name, context, url, "    - {method: GET, path: /*}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_applies_lists_updates_and_deletes_apis() {
    let echo = Echo::start("backend").await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let s = Stack::with(with_ops).await;
    let dir = TempDir(std::env::temp_dir().join(format!("tollgate-cli-apply-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    // A folder: two YAML documents in one file, a JSON file, and a file that is not a document.
    let two = format!(
        "{}---\n{}",
        protected("cli-a", &url, true),
        open_api("cli-b", "/cli-b", &url)
    );
    std::fs::write(dir.0.join("10-two.yaml"), two).unwrap();
    let c: serde_yaml::Value = serde_yaml::from_str(&open_api("cli-c", "/cli-c", &url)).unwrap();
    std::fs::write(dir.0.join("20-c.json"), serde_json::to_string(&c).unwrap()).unwrap();
    std::fs::write(dir.0.join("notes.txt"), "not a document").unwrap();

    let out = ok(&s, &["apply", "-f", dir.0.to_str().unwrap()]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, name) in lines.iter().zip(["cli-a", "cli-b", "cli-c"]) {
        assert!(
            line.starts_with(&format!("api {name} created (deployed, generation ")),
            "{out}"
        );
    }
    s.wait_status("/cli-b/x", None, 200).await;
    s.wait_status("/cli-c/x", None, 200).await;
    assert_eq!(call(&s, "/cli-a/x", None).await.0, 401);

    // Update from standard input: the same name, a new context.
    let moved = open_api("cli-b", "/cli-b2", &url);
    let ran = tollgate_stdin(&s, &["apply", "-f", "-"], &moved).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.starts_with("api cli-b configured (deployed"), "{ran:?}");
    s.wait_status("/cli-b2/x", None, 200).await;
    s.wait_status("/cli-b/x", None, 404).await;
    // And from a file, with -o json: the server's answers.
    let file = dir.0.join("c.yaml");
    std::fs::write(&file, open_api("cli-c", "/cli-c3", &url)).unwrap();
    let answers = json(&ok(&s, &["apply", "-f", file.to_str().unwrap(), "-o", "json"]).await);
    assert_eq!(answers[0]["spec"]["context"], "/cli-c3", "{answers}");
    assert_eq!(answers[0]["status"]["state"], "deployed", "{answers}");

    let table = ok(&s, &["get", "apis"]).await;
    let rows: Vec<&str> = table.lines().collect();
    assert!(
        rows[0].starts_with("NAME") && rows[0].contains("CONTEXT") && rows[0].contains("STATE"),
        "{table}"
    );
    for (name, context) in [("cli-a", "/cli-a"), ("cli-b", "/cli-b2"), ("cli-c", "/cli-c3")] {
        assert!(
            rows.iter()
                .any(|r| r.starts_with(name) && r.contains(context) && r.contains("deployed")),
            "{name}: {table}"
        );
    }
    let list = json(&ok(&s, &["get", "apis", "-o", "json"]).await);
    assert_eq!(list["count"], 3, "{list}");
    let one = ok(&s, &["-o", "yaml", "get", "api", "cli-a"]).await;
    let one: serde_yaml::Value = serde_yaml::from_str(&one).unwrap();
    assert_eq!(one["metadata"]["name"].as_str(), Some("cli-a"));

    assert_eq!(ok(&s, &["delete", "api", "cli-c"]).await, "api cli-c deleted\n");
    s.wait_status("/cli-c3/x", None, 404).await;
    for args in [&["get", "api", "cli-c"][..], &["delete", "api", "cli-c"]] {
        let ran = tollgate(&s, args).await;
        assert_eq!(ran.code, 3, "not found: {ran:?}");
        assert!(ran.stderr.contains("404 Not Found"), "{ran:?}");
    }
}

/// The key printed by `keys create` (the indented line that starts with the key prefix).
fn printed_key(out: &str) -> String {
    let keys: Vec<&str> = out.lines().map(str::trim).filter(|l| l.starts_with("apip_")).collect();
    assert_eq!(keys.len(), 1, "{out}");
    keys[0].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_keys_open_the_api_through_envoy_until_revoked() {
    let echo = Echo::start("backend").await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let s = Stack::with(with_ops).await;
    let ran = tollgate_stdin(&s, &["apply", "-f", "-"], &protected("shop", &url, true)).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    s.wait_status("/shop/x", None, 401).await;

    let out = ok(
        &s,
        &["keys", "create", "shop", "--name", "key-one", "--expires-in", "30d"],
    )
    .await;
    let key = printed_key(&out);
    assert!(out.contains("only time"), "{out}");
    assert!(out.contains("curl -H 'X-API-Key: "), "{out}");
    assert_eq!(
        call(&s, "/shop/x", Some(&key)).await.0,
        200,
        "the new key opens the API"
    );
    assert_eq!(call(&s, "/shop/x", None).await.0, 401);

    let quiet = ok(&s, &["keys", "create", "shop", "--name", "key-two", "-q"]).await;
    let k2 = quiet.trim_end().to_string();
    assert!(k2.starts_with("apip_") && !k2.contains('\n'), "{quiet}");
    assert_eq!(call(&s, "/shop/x", Some(&k2)).await.0, 200);
    let dup = tollgate(&s, &["keys", "create", "shop", "--name", "key-two"]).await;
    assert_eq!(dup.code, 4, "a second key-two is a conflict: {dup:?}");

    let table = ok(&s, &["get", "keys", "shop"]).await;
    assert!(
        table.starts_with("NAME") && table.contains("key-one") && table.contains("key-two"),
        "{table}"
    );
    assert!(
        !table.contains(&key) && !table.contains(&k2),
        "listing shows masks only: {table}"
    );
    let listed = json(&ok(&s, &["get", "keys", "shop", "-o", "json"]).await);
    assert_eq!(listed["totalCount"], 2, "{listed}");

    let new = ok(&s, &["keys", "regenerate", "shop", "key-one", "-q"])
        .await
        .trim_end()
        .to_string();
    assert_ne!(new, key);
    assert_eq!(
        call(&s, "/shop/x", Some(&new)).await.0,
        200,
        "the regenerated key works"
    );
    eventually(|| async { call(&s, "/shop/x", Some(&key)).await.0 == 401 }).await;

    let out = ok(&s, &["keys", "revoke", "shop", "key-one"]).await;
    assert_eq!(out, "API key key-one of API shop revoked\n");
    eventually(|| async { call(&s, "/shop/x", Some(&new)).await.0 == 401 }).await;
    assert_eq!(call(&s, "/shop/x", Some(&k2)).await.0, 200, "the other key still works");
    let missing = tollgate(&s, &["keys", "create", "nope"]).await;
    assert_eq!(missing.code, 3, "{missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_status_and_refusals_with_exit_codes() {
    let echo = Echo::start("backend").await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let s = Stack::with(with_ops).await;

    let status = ok(&s, &["status"]).await;
    assert!(status.contains("Controller:     ready"), "{status}");
    assert!(status.contains("Platform link:  disabled"), "{status}");
    let node_row = status
        .lines()
        .find(|l| l.starts_with("router"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(node_row.contains("yes"), "the Envoy is in sync: {status}");
    let all = json(&ok(&s, &["status", "-o", "json"]).await);
    assert_eq!(all["ready"]["status"], "ready", "{all}");
    assert_eq!(all["xdsSyncStatus"]["nodes"].as_array().unwrap().len(), 1, "{all}");

    // A document the server refuses: its field messages, exit 1, nothing applied.
    let bad = open_api("bad-api", "/bad", &url).replace("version: v1.0", "version: v1.0.0-beta");
    let ran = tollgate_stdin(&s, &["apply", "-f", "-"], &bad).await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(
        ran.stderr.contains("<stdin>: POST /rest-apis: 400 Bad Request"),
        "{ran:?}"
    );
    assert!(ran.stderr.contains("\n  spec.version: "), "field messages: {ran:?}");
    assert_eq!(tollgate(&s, &["get", "api", "bad-api"]).await.code, 3);

    // Another API's display name and version: a 409 that no update can fix.
    let first = open_api("first", "/first", &url).replace("displayName: first", "displayName: Same");
    let second = open_api("second", "/second", &url).replace("displayName: second", "displayName: Same");
    assert_eq!(tollgate_stdin(&s, &["apply", "-f", "-"], &first).await.code, 0);
    let ran = tollgate_stdin(&s, &["apply", "-f", "-"], &second).await;
    assert_eq!(ran.code, 4, "{ran:?}");
    assert!(ran.stderr.contains("409 Conflict"), "{ran:?}");

    // A wrong password: refused, and neither password is printed.
    let (m, a) = urls(s.running(), "http");
    let ran = tollgate_at(&m, &a, &["get", "apis"], None, "Wrong-Pw-31c9").await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stderr.contains("401 Unauthorized"), "{ran:?}");
    // Nothing listening: exit 5.
    let nowhere = "http://127.0.0.1:1";
    let ran = tollgate_at(nowhere, nowhere, &["get", "apis"], None, PASSWORD).await;
    assert_eq!(ran.code, 5, "{ran:?}");
    assert!(ran.stderr.contains("cannot connect"), "{ran:?}");
    // Usage and input errors.
    assert_eq!(tollgate(&s, &["get", "bogus"]).await.code, 64);
    assert_eq!(tollgate(&s, &["apply", "-f", "/nonexistent/api.yaml"]).await.code, 66);
    let script = ok(&s, &["completion", "bash"]).await;
    assert!(script.contains("tollgate") && script.contains("apply"), "{script}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_apply_wait_waits_until_an_envoy_serves_it() {
    let echo = Echo::start("backend").await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let dir = std::env::temp_dir().join(format!("tollgate-cli-wait-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _data = TempDir(dir.clone());
    let mut config = test_config(dir);
    with_ops(&mut config);
    // The controller alone: no Envoy to ACK anything yet.
    let running = tollgate::runtime::start(&config).await.expect("controller starts");
    let (m, a) = urls(&running, "http");
    let doc = open_api("later", "/later", &url);
    let ran = tollgate_at(
        &m,
        &a,
        &["apply", "-f", "-", "--wait", "--timeout", "1s"],
        Some(&doc),
        PASSWORD,
    )
    .await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stdout.contains("api later created (pending"), "{ran:?}");
    assert!(ran.stderr.contains("gave up waiting after 1s"), "{ran:?}");

    let waiting = tokio::spawn({
        let (m, a, doc) = (m.clone(), a.clone(), doc.clone());
        async move { tollgate_at(&m, &a, &["apply", "-f", "-", "--wait"], Some(&doc), PASSWORD).await }
    });
    let envoy = Envoy::start("delta", "router", "default", running.xds).await;
    let ran = waiting.await.unwrap();
    assert_eq!(ran.code, 0, "{ran:?}\nEnvoy log:\n{}", envoy.log());
    assert!(ran.stdout.contains("served by 1 Envoy(s)"), "{ran:?}");
    // Served by the time --wait returned: the first request is answered.
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{}/later/x", config.router.http_port))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    running.shutdown().await;
    drop(envoy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_speaks_https_trusting_the_given_ca() {
    let dir = std::env::temp_dir().join(format!("tollgate-cli-https-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _dir = TempDir(dir.clone());
    let (cert, key) = tollgate_testkit::tls::self_signed(&["127.0.0.1", "localhost"]);
    std::fs::write(dir.join("api.crt"), &cert).unwrap();
    std::fs::write(dir.join("api.key"), &key).unwrap();
    let mut config = test_config(dir.join("data"));
    with_ops(&mut config);
    config.server.tls_cert_path = Some(dir.join("api.crt"));
    config.server.tls_key_path = Some(dir.join("api.key"));
    let running = tollgate::runtime::start(&config).await.expect("controller starts");
    let (m, a) = urls(&running, "https");
    let ca = dir.join("api.crt");
    let ran = tollgate_at(&m, &a, &["get", "apis", "--ca", ca.to_str().unwrap()], None, PASSWORD).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.starts_with("NAME"), "{ran:?}");
    let ran = tollgate_at(&m, &a, &["get", "apis"], None, PASSWORD).await;
    assert_eq!(ran.code, 5, "an unknown certificate is not trusted: {ran:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_lists_plans_and_subscriptions() {
    use crate::subscriptions::{post, subscribed};
    let echo = Echo::start("backend").await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let s = Stack::with(with_ops).await;
    let ran = tollgate_stdin(&s, &["apply", "-f", "-"], &subscribed("cli-shop", &url, &[], false)).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let (st, plan) = post(
        &s,
        "/subscription-plans",
        serde_json::json!({"planName": "CliGold", "throttleLimitCount": 5, "throttleLimitUnit": "Hour"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{plan}");
    let (st, sub) = post(
        &s,
        "/subscriptions",
        serde_json::json!({"apiId": "cli-shop", "subscriptionPlanId": plan["id"]}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{sub}");
    let (id, token) = (sub["id"].as_str().unwrap(), sub["subscriptionToken"].as_str().unwrap());

    let table = ok(&s, &["get", "plans"]).await;
    assert!(table.contains("CliGold"), "{table}");
    assert_eq!(json(&ok(&s, &["get", "plans", "-o", "json"]).await)["count"], 1);
    let table = ok(&s, &["get", "subscriptions"]).await;
    assert!(table.contains(id) && !table.contains(token), "{table}");
    let listed = json(&ok(&s, &["get", "subscriptions", "--api", "cli-shop", "-o", "json"]).await);
    assert_eq!(listed["count"], 1, "{listed}");
    assert!(!listed.to_string().contains(token), "the token is never listed");
    let none = json(&ok(&s, &["get", "subscriptions", "--api", "nothing-here", "-o", "json"]).await);
    assert_eq!(none["count"], 0, "{none}");
}
