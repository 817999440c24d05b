//! Requests through Envoy, side by side in one run: no authentication, Envoy's native
//! `api_key_auth` filter, and Tollgate's ext_authz (the same key, the same route shape, the same
//! echo upstream). Each Envoy runs with `--concurrency 1`; a closed-loop client keeps N requests in
//! flight for a fixed time. For each case it also reports the CPU time per request of the Envoy
//! serving it and of the controller's ext_authz threads (`authz*`), from the scheduler's
//! per-thread counters, to show where an ext_authz check's cost lands.
//!
//! Usage: `cargo run --release -p tollgate-bench --bin authz-envoy [-- SECONDS CONCURRENCY]`
//! (defaults 10 and 16). Needs Envoy (`make envoy`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tollgate::config::Config;
use tollgate::runtime;
use tollgate_bench::{cpu_time, deploy_yaml, micros, percentile};
use tollgate_testkit::{Echo, Envoy, envoy::TempDir, free_port};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let secs = args.first().copied().unwrap_or(10);
    let conc = args.get(1).copied().unwrap_or(16) as usize;
    let echo = Echo::start("backend").await;

    // Tollgate: two APIs on the same upstream, one protected by api-key-auth.
    let dir = std::env::temp_dir().join(format!("tollgate-authz-envoy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _dir = TempDir(dir.clone());
    let c = Config::loopback(dir, free_port(), "b", "b");
    let running = runtime::start(&c).await?;
    let envoy = Envoy::start("delta", "bench", "default", running.xds).await;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let mgmt = format!("http://{}/api/management/v1", running.management);
    for (name, policy) in [
        ("open", ""),
        (
            "keyed",
            "  policies:\n    - {name: api-key-auth, version: v1, params: {key: x-api-key, in: header}}\n",
        ),
    ] {
        let doc = format!(
            "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata: {{name: {name}}}\nspec:\n  displayName: {name}\n  version: v1\n  context: /{name}\n  upstream: {{main: {{url: \"http://127.0.0.1:{}\"}}}}\n{policy}  operations:\n    - {{method: GET, path: /*}}\n",
            echo.port
        );
        deploy_yaml(&http, &mgmt, "b", doc).await?;
    }
    let r = http
        .post(format!("{mgmt}/rest-apis/keyed/api-keys"))
        .basic_auth("b", Some("b"))
        .json(&serde_json::json!({}))
        .send()
        .await?;
    let body: serde_json::Value = r.json().await?;
    let key = body["apiKey"]["apiKey"].as_str().unwrap_or_default().to_string();

    // Envoy's native filter, same key, same route shape.
    let (native_port, admin) = (free_port(), free_port());
    let bootstrap = format!(
        r#"static_resources:
  listeners:
  - name: native
    address: {{socket_address: {{address: 127.0.0.1, port_value: {native_port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: native
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{path_separated_prefix: /keyed}}
                route: {{cluster: echo, prefix_rewrite: /}}
          http_filters:
          - name: envoy.filters.http.api_key_auth
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth
              credentials:
              - {{key: "{key}", client: bench}}
              key_sources:
              - {{header: x-api-key}}
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: echo
    type: STATIC
    connect_timeout: 1s
    load_assignment: {{cluster_name: echo, endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {}}}}}}}}}]}}]}}
admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}}}
"#,
        echo.port
    );
    let native = Envoy::start_with(bootstrap, admin).await;
    let (tollgate_pid, native_pid) = (envoy.pid().unwrap_or(0), native.pid().unwrap_or(0));

    let gw = c.router.http_port;
    let cases = [
        (
            "no auth (Tollgate route)",
            format!("http://127.0.0.1:{gw}/open/x"),
            None,
            tollgate_pid,
        ),
        (
            "Envoy api_key_auth (native)",
            format!("http://127.0.0.1:{native_port}/keyed/x"),
            Some(key.clone()),
            native_pid,
        ),
        (
            "Tollgate ext_authz",
            format!("http://127.0.0.1:{gw}/keyed/x"),
            Some(key.clone()),
            tollgate_pid,
        ),
    ];
    for (_, url, k, _) in &cases {
        wait_200(&http, url, k.as_deref()).await?;
    }
    println!("| case | requests/s | p50 | p99 | p50 vs native | Envoy CPU per request | ext_authz CPU per request |");
    println!("|---|---|---|---|---|---|---|");
    let mut native_p50 = None;
    let me = std::process::id();
    for (label, url, k, pid) in &cases {
        load(&http, url, k.as_deref(), 1, conc).await?; // warm-up
        let (envoy_cpu, authz_cpu) = (cpu_time(*pid, None), cpu_time(me, Some("authz")));
        let (mut lat, rps, errors) = load(&http, url, k.as_deref(), secs, conc).await?;
        let per_request = |d: Duration| micros(d / u32::try_from(lat.len().max(1)).unwrap_or(u32::MAX));
        let envoy_cpu = per_request(cpu_time(*pid, None).saturating_sub(envoy_cpu));
        let authz_cpu = per_request(cpu_time(me, Some("authz")).saturating_sub(authz_cpu));
        anyhow::ensure!(errors == 0, "{label}: {errors} non-200 responses");
        lat.sort_unstable();
        let p50 = percentile(&lat, 50.0);
        if label.contains("native") {
            native_p50 = Some(p50);
        }
        let vs = native_p50
            .map(|n| format!("{:+.1} µs", (p50.as_secs_f64() - n.as_secs_f64()) * 1e6))
            .unwrap_or("-".into());
        println!(
            "| {label} | {rps:.0} | {} | {} | {vs} | {envoy_cpu} | {authz_cpu} |",
            micros(p50),
            micros(percentile(&lat, 99.0))
        );
    }
    running.shutdown().await;
    Ok(())
}

async fn wait_200(http: &reqwest::Client, url: &str, key: Option<&str>) -> anyhow::Result<()> {
    let t = Instant::now();
    loop {
        let mut r = http.get(url);
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        if r.send().await.map(|r| r.status() == 200).unwrap_or(false) {
            return Ok(());
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "{url} never answered 200");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn load(
    http: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    secs: u64,
    conc: usize,
) -> anyhow::Result<(Vec<Duration>, f64, usize)> {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (http, url, key, stop) = (http.clone(), url.to_string(), key.map(str::to_string), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            while !stop.load(Ordering::Relaxed) {
                let mut r = http.get(&url);
                if let Some(k) = &key {
                    r = r.header("x-api-key", k);
                }
                let t0 = Instant::now();
                match r.send().await {
                    Ok(resp) if resp.status() == 200 => {
                        let _ = resp.bytes().await;
                        lat.push(t0.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    let rps = all.len() as f64 / start.elapsed().as_secs_f64();
    Ok((all, rps, errors))
}
