//! Key propagation to a remote ext_authz replica: from sending `POST .../api-keys` (create) or
//! `DELETE .../api-keys/{name}` (revoke) to the first `Check` on the replica that allows (or
//! refuses) the key. The controller (with `api_keys.publish_to_replicas`) and one replica run in
//! this process over loopback; `Check` is called directly on the replica every 0.2 ms. Also timed:
//! when the REST call answered (it waits for the replica's ACK), and how often the first `Check`
//! made after that answer already saw the change.
//!
//! Usage: `cargo run --release -p tollgate-bench --bin authz-replica [-- SAMPLES [SYNC_TIMEOUT_MS]]`
//! (defaults 200 and the config default). `SYNC_TIMEOUT_MS` 0 makes the REST call answer without
//! waiting for the replica, for comparison.

use std::time::{Duration, Instant};

use anyhow::Context;
use tollgate::config::Config;
use tollgate::replica::{Replica, ReplicaConfig};
use tollgate::runtime;
use tollgate_bench::{deploy_yaml, micros, orders_check, percentile};
use tollgate_proto::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use tollgate_testkit::{envoy::TempDir, free_port};

const API: &str = "orders";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let samples: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let sync_timeout: Option<u64> = std::env::args().nth(2).and_then(|a| a.parse().ok());
    let dir = std::env::temp_dir().join(format!("tollgate-bench-replica-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _data = TempDir(dir.clone());
    let mut c = Config::loopback(dir, free_port(), "bench", "bench");
    c.api_keys.publish_to_replicas = true;
    if let Some(ms) = sync_timeout {
        c.api_keys.replica_sync_timeout = Duration::from_millis(ms);
    }
    let running = runtime::start(&c).await?;
    let replica_port = free_port();
    let replica = Replica::start(ReplicaConfig {
        xds: format!("http://{}", running.xds),
        listen: format!("127.0.0.1:{replica_port}").parse()?,
        node_id: "bench-replica".into(),
        token: tollgate::replica::replica_token(&c.server.data_dir)?.0.into(),
        tls: None,
        serve_tls: None,
        max_staleness: None,
        header_names: Default::default(),
    })
    .await?;
    let mut authz = AuthorizationClient::connect(format!("http://127.0.0.1:{replica_port}")).await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let mgmt = format!("http://{}/api/management/v1", running.management);
    let doc = format!(
        "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata: {{name: {API}}}\nspec:\n  displayName: {API}\n  version: v1\n  context: /{API}\n  upstream: {{main: {{url: \"http://127.0.0.1:9\"}}}}\n  policies:\n    - {{name: api-key-auth, version: v1, params: {{key: X-API-Key, in: header}}}}\n  operations:\n    - {{method: GET, path: /*}}\n"
    );
    deploy_yaml(&http, &mgmt, "bench", doc).await?;

    // Per change (create, revoke): REST answered, replica right, first check after the answer right.
    let mut answered = [Vec::with_capacity(samples), Vec::with_capacity(samples)];
    let mut seen = [Vec::with_capacity(samples), Vec::with_capacity(samples)];
    let mut first_right = [0usize; 2];
    for i in 0..samples {
        let name = format!("key-{i}");
        let t = Instant::now();
        let r = http
            .post(format!("{mgmt}/rest-apis/{API}/api-keys"))
            .basic_auth("bench", Some("bench"))
            .json(&serde_json::json!({"name": name}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "create: {}", r.status());
        let body: serde_json::Value = r.json().await?;
        answered[0].push(t.elapsed());
        let key = body["apiKey"]["apiKey"].as_str().context("a key")?.to_string();
        first_right[0] += usize::from(wait(&mut authz, &key, 0).await? == 1);
        seen[0].push(t.elapsed());

        let t = Instant::now();
        let r = http
            .delete(format!("{mgmt}/rest-apis/{API}/api-keys/{name}"))
            .basic_auth("bench", Some("bench"))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "revoke: {}", r.status());
        let _ = r.bytes().await?;
        answered[1].push(t.elapsed());
        first_right[1] += usize::from(wait(&mut authz, &key, 16).await? == 1);
        seen[1].push(t.elapsed());
    }
    println!(
        "| change | samples | REST answered p50 | p99 | replica right p50 | p99 | max | first Check after the answer right |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (i, what) in ["created → allowed", "revoked → refused"].into_iter().enumerate() {
        let (a, t) = (&mut answered[i], &mut seen[i]);
        a.sort_unstable();
        t.sort_unstable();
        println!(
            "| {what} | {samples} | {} | {} | {} | {} | {} | {} of {samples} |",
            micros(percentile(a, 50.0)),
            micros(percentile(a, 99.0)),
            micros(percentile(t, 50.0)),
            micros(percentile(t, 99.0)),
            micros(*t.last().unwrap_or(&Duration::ZERO)),
            first_right[i]
        );
    }
    replica.stop().await;
    running.shutdown().await;
    Ok(())
}

/// Calls Check on the replica every 0.2 ms until its gRPC status code is `code` (0 allow, 16 deny);
/// returns how many calls that took.
async fn wait(
    authz: &mut AuthorizationClient<tonic::transport::Channel>,
    key: &str,
    code: i32,
) -> anyhow::Result<usize> {
    let t = Instant::now();
    let mut calls = 0;
    loop {
        let r = authz.check(orders_check(key)).await?.into_inner();
        calls += 1;
        if r.status.map(|s| s.code) == Some(code) {
            return Ok(calls);
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(10),
            "the replica never saw the change"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}
