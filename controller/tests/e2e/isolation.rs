//! One API can never freeze the gateway (issue on isolation): a write answers once every connected
//! Envoy serves it; a change an Envoy rejects is refused (400) or, when it was not refused in time,
//! quarantined as `failed` while every other API keeps deploying and serving.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tollgate_testkit::Envoy;

use crate::stack::{Stack, eventually, send};

/// An API answering `GET {context}/ping` with `status` directly (no upstream), optionally with a
/// header condition matched by a regular expression.
fn respond_api(name: &str, status: u16, header_regex: Option<&str>) -> String {
    let headers = header_regex
        .map(|re| format!("        headers: [{{name: x-pattern, type: RegularExpression, value: '{re}'}}]\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata:\n  name: {name}\nspec:\n  \
         displayName: {name}\n  version: v1.0\n  context: /{name}\n  upstream:\n    main:\n      url: http://127.0.0.1:9\n  \
         policies:\n    - {{name: respond, version: v1, params: {{statusCode: {status}}}}}\n  operations:\n    \
         - match:\n        method: GET\n        path: {{value: /ping, type: Exact}}\n{headers}"
    )
}

/// A header regex whose RE2 program is larger than 50 instructions and far below the 1,000 our
/// bootstraps (and the validator) allow.
const HEAVY: &str = "^[a-z]{120}$";

/// The second Envoy's bootstrap: the same group, a much stricter RE2 program-size limit.
fn strict(bootstrap: String) -> String {
    let limit = "re2.max_program_size.error_level: 1000";
    assert!(bootstrap.contains(limit), "the shipped bootstrap sets {limit}");
    bootstrap.replace(limit, "re2.max_program_size.error_level: 50")
}

async fn state_of(s: &Stack, name: &str) -> (String, Value) {
    let (code, body) = send(s.mgmt(Method::GET, &format!("/rest-apis/{name}"))).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    (body["status"]["state"].as_str().unwrap_or_default().to_string(), body)
}

async fn gw_status(s: &Stack, path: &str) -> u16 {
    s.gw(Method::GET, path, None)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// Route names in an Envoy's dynamic route configuration.
async fn routes_of(envoy: &Envoy) -> String {
    let dump = envoy.config_dump().await;
    dump["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["@type"].as_str().is_some_and(|t| t.ends_with("RoutesConfigDump")))
        .map(|c| c.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stricter_envoy_quarantines_only_the_api_it_rejects() {
    let mut s = Stack::start().await;
    for (name, status) in [("before", 201), ("heavy", 202)] {
        let regex = (name == "heavy").then_some(HEAVY);
        let (code, body) = s.deploy(&respond_api(name, status, regex)).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"]["state"], "deployed", "{body}");
    }
    let heavy_path = "/heavy/ping";
    let header = "a".repeat(120);
    let heavy_ok = || async {
        s.gw(Method::GET, heavy_path, None)
            .header("x-pattern", &header)
            .send()
            .await
            .map_or(0, |r| r.status().as_u16())
    };
    assert_eq!(heavy_ok().await, 202, "served once the write answered");

    // An Envoy of the same group whose runtime refuses the heavy regex joins: it rejects the
    // whole route configuration, and the controller finds the one API that caused it.
    let strict_envoy = Envoy::start_adjusted("delta", "strict", "default", s.running().xds, strict).await;
    eventually(|| async { state_of(&s, "heavy").await.0 == "failed" }).await;
    let (_, body) = state_of(&s, "heavy").await;
    let message = body["status"]["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.contains("program size") || message.contains("regex"),
        "Envoy's message: {body}"
    );
    assert_eq!(state_of(&s, "before").await.0, "deployed");

    // The failed API is listed, in the admin status and the config dump.
    let (_, listed) = send(s.mgmt(Method::GET, "/rest-apis?status=failed")).await;
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(listed["apis"][0]["metadata"]["name"], "heavy", "{listed}");
    let (_, sync) = send(s.admin("/xds_sync_status")).await;
    assert_eq!(sync["failedApis"][0]["id"], "heavy", "{sync}");
    let (_, dump) = send(s.admin("/config_dump")).await;
    let dumped = dump["apis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["configuration"]["metadata"]["name"] == "heavy");
    assert_eq!(dumped.unwrap()["metadata"]["status"], "failed", "{dump}");

    // Both Envoys serve the others, before and after; the strict one holds their routes.
    eventually(|| async { routes_of(&strict_envoy).await.contains("/before/ping") }).await;
    let (code, body) = s.deploy(&respond_api("after", 203, None)).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["state"], "deployed", "both Envoys ACKed it: {body}");
    assert!(routes_of(&strict_envoy).await.contains("/after/ping"));
    assert!(routes_of(&s.envoy).await.contains("/after/ping"));
    assert!(!routes_of(&strict_envoy).await.contains("/heavy/ping"));
    for _ in 0..10 {
        // New connections each time: both Envoys share the listener port (SO_REUSEPORT).
        assert_eq!(gw_status(&s, "/before/ping").await, 201);
        assert_eq!(gw_status(&s, "/after/ping").await, 203);
    }

    // A write both Envoys cannot take is refused while they are connected, and stores nothing.
    let (code, body) = s.deploy(&respond_api("heavy2", 204, Some(HEAVY))).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["field"], "spec", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("rejected by Envoy"),
        "{body}"
    );
    let (code, _) = send(s.mgmt(Method::GET, "/rest-apis/heavy2")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(gw_status(&s, "/after/ping").await, 203, "the others keep serving");

    // The failure survives a restart and does not block it.
    s.restart_controller().await;
    assert_eq!(state_of(&s, "heavy").await.0, "failed");
    // Both Envoys come back (a write before that would answer `pending`).
    eventually(|| async {
        let (_, sync) = send(s.admin("/xds_sync_status")).await;
        sync["nodes"].as_array().map_or(0, Vec::len) == 2
    })
    .await;
    let (code, body) = s.deploy(&respond_api("later", 205, None)).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["state"], "deployed", "{body}");
    assert_eq!(gw_status(&s, "/later/ping").await, 205);

    // A corrected document recovers it.
    let (code, body) = send(
        s.mgmt(Method::PUT, "/rest-apis/heavy")
            .header("content-type", "application/yaml")
            .body(respond_api("heavy", 202, Some("^[a-z]{2}$"))),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["status"]["state"], "deployed", "{body}");
    assert!(body["status"]["message"].is_null(), "{body}");
    let (code, _) = send(s.gw(Method::GET, "/heavy/ping", None).header("x-pattern", "ab")).await;
    assert_eq!(code.as_u16(), 202);
    drop(strict_envoy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_request_after_each_answer_sees_the_change() {
    let s = Stack::start().await;
    let mut live: Vec<(String, u16)> = Vec::new();
    for i in 0..100u16 {
        let status = 200 + (i % 50);
        match i % 4 {
            // Create.
            0 | 1 => {
                let name = format!("c{i}");
                let (code, body) = s.deploy(&respond_api(&name, status, None)).await;
                assert_eq!(code, StatusCode::CREATED, "{body}");
                assert_eq!(gw_status(&s, &format!("/{name}/ping")).await, status, "create #{i}");
                live.push((name, status));
            }
            // Update: a new status code.
            2 => {
                let (name, _) = live.last().cloned().unwrap();
                let (code, body) = send(
                    s.mgmt(Method::PUT, &format!("/rest-apis/{name}"))
                        .header("content-type", "application/yaml")
                        .body(respond_api(&name, status, None)),
                )
                .await;
                assert_eq!(code, StatusCode::OK, "{body}");
                assert_eq!(gw_status(&s, &format!("/{name}/ping")).await, status, "update #{i}");
                live.last_mut().unwrap().1 = status;
            }
            // Delete.
            _ => {
                let (name, _) = live.remove(0);
                let (code, body) = send(s.mgmt(Method::DELETE, &format!("/rest-apis/{name}"))).await;
                assert_eq!(code, StatusCode::OK, "{body}");
                assert_eq!(gw_status(&s, &format!("/{name}/ping")).await, 404, "delete #{i}");
            }
        }
    }
    for (name, status) in &live {
        assert_eq!(gw_status(&s, &format!("/{name}/ping")).await, *status);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_envoy_a_write_is_pending_until_one_acks_it() {
    let mut s = Stack::start().await;
    // Stop the Envoy (in its place, one that never reaches the controller): nobody to wait for.
    let xds = s.running().xds;
    let nowhere = std::net::SocketAddr::from(([127, 0, 0, 1], tollgate_testkit::free_port()));
    drop(std::mem::replace(
        &mut s.envoy,
        Envoy::start("delta", "elsewhere", "default", nowhere).await,
    ));
    eventually(|| async {
        let (_, sync) = send(s.admin("/xds_sync_status")).await;
        sync["nodes"].as_array().is_some_and(|n| n.is_empty())
    })
    .await;
    let (code, body) = s.deploy(&respond_api("lonely", 201, None)).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["state"], "pending", "{body}");
    let (_, listed) = send(s.mgmt(Method::GET, "/rest-apis?status=pending")).await;
    assert_eq!(listed["count"], 1, "{listed}");
    let _router = Envoy::start("delta", "router", "default", xds).await;
    eventually(|| async { state_of(&s, "lonely").await.0 == "deployed" }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_deployment_envoy_rejects_is_acked_failed_with_its_message() {
    use crate::platform::{TOKEN, WAIT, ack_payload, artifact, link_to};
    let fake = tollgate_testkit::FakePlatform::start(TOKEN).await;
    let s = Stack::with(|c| link_to(&fake, c)).await;
    fake.wait_connections(1, WAIT).await;
    let _strict = Envoy::start_adjusted("delta", "strict", "default", s.running().xds, strict).await;
    eventually(|| async {
        let (_, sync) = send(s.admin("/xds_sync_status")).await;
        sync["nodes"].as_array().map_or(0, Vec::len) == 2
    })
    .await;
    let heavy = artifact("pheavy", "http://127.0.0.1:9", "").replace(
        "    - {method: GET, path: /*}\n",
        &format!(
            "    - match:\n        method: GET\n        path: {{value: /ping}}\n        \
             headers: [{{name: x-pattern, type: RegularExpression, value: '{HEAVY}'}}]\n"
        ),
    );
    let id = "5a0c7a3e-8daf-4638-b295-14898312759f";
    let d = fake.deploy(id, &heavy);
    fake.push(&fake.deployed_event(&d));
    let acks = fake.wait_acks(1, WAIT).await;
    let p = ack_payload(&acks[0]);
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(p["errorCode"], "GATEWAY_ENVOY_REJECTED", "{p}");
    assert!(p["errorMessage"].as_str().is_some_and(|m| !m.is_empty()), "{p}");
    assert_eq!(p["performedAt"], d.performed_at.as_str());
    let (code, _) = send(s.mgmt(Method::GET, "/rest-apis/pheavy")).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "nothing stored");
}

/// Sends `signal` (STOP or CONT) to a process.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_mid_write_does_not_split_the_state() {
    let s = Stack::with(|c| c.server.ack_timeout = std::time::Duration::from_secs(3)).await;
    let pid = s.envoy.pid().expect("envoy runs");
    // A frozen Envoy never answers: the write waits for it while the client gives up.
    signal(pid, "STOP");
    let impatient = s
        .mgmt(Method::POST, "/rest-apis")
        .header("content-type", "application/yaml")
        .body(respond_api("abandoned", 201, None))
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    assert!(impatient.is_err(), "the client gave up before the answer");
    signal(pid, "CONT");
    // The write ran to its end anyway: stored, listed, served, and deletable exactly once.
    eventually(|| async { send(s.mgmt(Method::GET, "/rest-apis/abandoned")).await.0 == StatusCode::OK }).await;
    eventually(|| async { state_of(&s, "abandoned").await.0 == "deployed" }).await;
    assert_eq!(gw_status(&s, "/abandoned/ping").await, 201);
    let (code, _) = send(s.mgmt(Method::DELETE, "/rest-apis/abandoned")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(gw_status(&s, "/abandoned/ping").await, 404);
    let (code, body) = s.deploy(&respond_api("abandoned", 202, None)).await;
    assert_eq!(code, StatusCode::CREATED, "re-created: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_deployment_that_overlaps_another_api_is_acked_failed() {
    use crate::platform::{TOKEN, WAIT, ack_payload, artifact, link_to};
    let fake = tollgate_testkit::FakePlatform::start(TOKEN).await;
    let s = Stack::with(|c| link_to(&fake, c)).await;
    fake.wait_connections(1, WAIT).await;
    let (code, body) = s.deploy(&respond_api("shop", 201, None)).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    // The platform's API takes every path under /shop, including the local API's /shop/ping.
    let intruder = artifact("intruder", "http://127.0.0.1:9", "").replace("context: /intruder", "context: /shop");
    let d = fake.deploy("6f0a7a3e-8daf-4638-b295-14898312759f", &intruder);
    fake.push(&fake.deployed_event(&d));
    let acks = fake.wait_acks(1, WAIT).await;
    let p = ack_payload(&acks[0]);
    assert_eq!(p["status"], "failed", "{p}");
    let (code, _) = send(s.mgmt(Method::GET, "/rest-apis/intruder")).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "nothing stored");
    assert_eq!(gw_status(&s, "/shop/ping").await, 201, "the local API keeps its route");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_changes_an_envoy_rejects_later_become_failed_and_the_rest_deployed() {
    let mut s = Stack::start().await;
    let xds = s.running().xds;
    let nowhere = std::net::SocketAddr::from(([127, 0, 0, 1], tollgate_testkit::free_port()));
    drop(std::mem::replace(
        &mut s.envoy,
        Envoy::start("delta", "elsewhere", "default", nowhere).await,
    ));
    eventually(|| async {
        let (_, sync) = send(s.admin("/xds_sync_status")).await;
        sync["nodes"].as_array().is_some_and(|n| n.is_empty())
    })
    .await;
    for (name, regex) in [("calm1", None), ("heavy", Some(HEAVY)), ("calm2", None)] {
        let (code, body) = s.deploy(&respond_api(name, 201, regex)).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"]["state"], "pending", "{body}");
    }
    // The only Envoy to come is the strict one: it rejects what the three pending writes built.
    let _strict = Envoy::start_adjusted("delta", "strict", "default", xds, strict).await;
    eventually(|| async { state_of(&s, "heavy").await.0 == "failed" }).await;
    eventually(|| async { state_of(&s, "calm1").await.0 == "deployed" && state_of(&s, "calm2").await.0 == "deployed" })
        .await;
    assert_eq!(gw_status(&s, "/calm1/ping").await, 201);
    assert_eq!(gw_status(&s, "/calm2/ping").await, 201);
    assert_eq!(
        gw_status(&s, "/heavy/ping").await,
        404,
        "a never-accepted API serves nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repro_a_regex_envoy_cannot_compile_is_a_400_naming_the_field() {
    let s = Stack::start().await;
    let (code, body) = s.deploy(&respond_api("repro", 201, Some("a{99999}"))).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let field = body["errors"][0]["field"].as_str().unwrap_or_default();
    assert!(
        field.starts_with("spec.operations[0]") && field.contains("headers"),
        "{body}"
    );
    // Nothing was stored, and the next API deploys and serves.
    assert_eq!(
        send(s.mgmt(Method::GET, "/rest-apis/repro")).await.0,
        StatusCode::NOT_FOUND
    );
    let (code, body) = s.deploy(&respond_api("next", 201, None)).await;
    assert_eq!(
        (code, body["status"]["state"].as_str()),
        (StatusCode::CREATED, Some("deployed"))
    );
    assert_eq!(gw_status(&s, "/next/ping").await, 201);
}
