//! Requests through Envoy, side by side in one run: no authentication, Envoy's native
//! `api_key_auth` filter, Tollgate's ext_authz (the same key, the same route shape, the same
//! echo upstream), and Tollgate's ext_authz checking a subscription token whose plan counts every
//! request (a limit no run reaches, so the quota accounting runs and nothing is refused). Each Envoy runs with `--concurrency 1`; a closed-loop client keeps N requests in
//! flight for a fixed time. For each case it also reports the CPU time per request of the Envoy
//! serving it and of the controller's ext_authz threads (`authz*`), from the scheduler's
//! per-thread counters, to show where an ext_authz check's cost lands.
//!
//! Usage: `cargo run --release -p tollgate-bench --bin authz-envoy [-- SECONDS CONCURRENCY]`
//! (defaults 10 and 16). Needs Envoy (`make envoy`).

use tollgate::config::Config;
use tollgate::runtime;
use tollgate_bench::{deploy_yaml, measure, micros, wait_200};
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
        (
            "subscribed",
            "  subscriptionPlans: [Bench]\n  policies:\n    - {name: subscription-validation, version: v1}\n",
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

    let token = subscribe(&http, &mgmt).await?;
    let gw = c.router.http_port;
    let keyed = vec![("x-api-key".to_string(), key.clone())];
    let cases = [
        (
            "no auth (Tollgate route)",
            format!("http://127.0.0.1:{gw}/open/x"),
            vec![],
            tollgate_pid,
        ),
        (
            "Envoy api_key_auth (native)",
            format!("http://127.0.0.1:{native_port}/keyed/x"),
            keyed.clone(),
            native_pid,
        ),
        (
            "Tollgate ext_authz",
            format!("http://127.0.0.1:{gw}/keyed/x"),
            keyed,
            tollgate_pid,
        ),
        (
            "Tollgate ext_authz, subscription + quota",
            format!("http://127.0.0.1:{gw}/subscribed/x"),
            vec![("subscription-key".to_string(), token)],
            tollgate_pid,
        ),
    ];
    for (_, url, headers, _) in &cases {
        wait_200(&http, url, headers).await?;
    }
    println!("| case | requests/s | p50 | p99 | p50 vs native | Envoy CPU per request | ext_authz CPU per request |");
    println!("|---|---|---|---|---|---|---|");
    let mut native_p50 = None;
    for (label, url, headers, pid) in &cases {
        let m = measure(&http, url, headers, (secs, conc), *pid).await?;
        if label.contains("native") {
            native_p50 = Some(m.p50);
        }
        let vs = native_p50
            .map(|n| format!("{:+.1} µs", (m.p50.as_secs_f64() - n.as_secs_f64()) * 1e6))
            .unwrap_or("-".into());
        println!(
            "| {label} | {:.0} | {} | {} | {vs} | {} | {} |",
            m.requests_per_s,
            micros(m.p50),
            micros(m.p99),
            micros(m.envoy_cpu),
            micros(m.authz_cpu)
        );
    }
    running.shutdown().await;
    Ok(())
}

/// A plan with a limit no run reaches (so every request is counted, none refused) and a
/// subscription to API `subscribed` on it; returns the subscription's token.
async fn subscribe(http: &reqwest::Client, mgmt: &str) -> anyhow::Result<String> {
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{mgmt}{path}"))
            .basic_auth("b", Some("b"))
            .json(&body)
            .send()
    };
    let plan: serde_json::Value = post(
        "/subscription-plans",
        serde_json::json!({"planName": "Bench", "throttleLimitCount": 1_000_000_000, "throttleLimitUnit": "Month"}),
    )
    .await?
    .json()
    .await?;
    let plan = plan["id"].as_str().unwrap_or_default().to_string();
    let r = post(
        "/subscriptions",
        serde_json::json!({"apiId": "subscribed", "subscriptionPlanId": plan}),
    )
    .await?;
    anyhow::ensure!(r.status() == 201, "subscribe: {}", r.status());
    let body: serde_json::Value = r.json().await?;
    Ok(body["subscriptionToken"].as_str().unwrap_or_default().to_string())
}
