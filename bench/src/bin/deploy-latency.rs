//! Deploy-to-serving latency: from sending `POST /rest-apis` to the first 200 through the real
//! Envoy, with 0, 1,000 and 10,000 APIs already deployed; the controller's resident memory at each
//! size; and, with `--churn N`, the responses other than 200/404 seen by traffic running while N
//! APIs are created one by one.
//!
//! Usage: `cargo run --release -p tollgate-bench --bin deploy-latency [-- SIZES... --samples N --churn N]`
//! (defaults: sizes 0 1000 10000, 40 samples, churn 3000). Needs Envoy (`make envoy`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tollgate::config::Config;
use tollgate::runtime::{self, Running};
use tollgate_bench::percentile;
use tollgate_testkit::{Echo, Envoy, envoy::TempDir, free_port};

/// Counts heap bytes, so the live heap can be told apart from allocator overhead in RSS.
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed, process-wide.
fn live_heap_mib() -> f64 {
    let s = GLOBAL.stats();
    (s.bytes_allocated as f64 - s.bytes_deallocated as f64) / (1024.0 * 1024.0)
}

struct Stack {
    running: Running,
    _envoy: Envoy,
    port: u16,
    http: reqwest::Client,
    upstream: u16,
    _data: TempDir,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let samples = flag("--samples", 40);
    let churn = flag("--churn", 3000);
    let mut sizes: Vec<usize> = Vec::new();
    let mut skip = false;
    for a in &args {
        if skip {
            skip = false;
        } else if a.starts_with("--") {
            skip = true;
        } else if let Ok(n) = a.parse() {
            sizes.push(n);
        }
    }
    if sizes.is_empty() {
        sizes = vec![0, 1000, 10_000];
    }
    let echo = Echo::start("backend").await;
    println!(
        "| APIs already deployed | samples | p50 | p99 | max | POST answered p50 | controller RSS after preload | live heap |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for size in sizes {
        let stack = Stack::start(echo.port, size).await?;
        let t = Instant::now();
        for i in 0..size {
            stack.create(&format!("pre-{i}")).await?;
        }
        let preload = t.elapsed();
        let rss = rss_kib();
        let heap = live_heap_mib();
        let (mut lat, mut post) = (Vec::new(), Vec::new());
        for i in 0..samples {
            let (answered, served) = stack.deploy_and_wait(&format!("sample-{i}")).await?;
            post.push(answered);
            lat.push(served);
        }
        lat.sort_unstable();
        post.sort_unstable();
        println!(
            "| {size} | {samples} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} MiB (preload took {:.1} s) | {heap:.1} MiB |",
            ms(percentile(&lat, 50.0)),
            ms(percentile(&lat, 99.0)),
            ms(*lat.last().unwrap_or(&Duration::ZERO)),
            ms(percentile(&post, 50.0)),
            rss as f64 / 1024.0,
            preload.as_secs_f64()
        );
        stack.running.shutdown().await;
    }
    if churn > 0 {
        let stack = Stack::start(echo.port, churn).await?;
        let (bad, total) = stack.churn(churn).await?;
        println!(
            "\nchurn: {churn} APIs created one by one under traffic: {bad} responses other than 200/404 out of {total}"
        );
        stack.running.shutdown().await;
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Resident memory of this process (the controller runs in it; Envoy does not).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

impl Stack {
    async fn start(upstream: u16, tag: usize) -> anyhow::Result<Stack> {
        let dir = std::env::temp_dir().join(format!("tollgate-bench-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let c = Config::loopback(dir.clone(), free_port(), "bench", "bench");
        let running = runtime::start(&c).await?;
        let envoy = Envoy::start("delta", "bench", "default", running.xds).await;
        let http = reqwest::Client::builder().no_proxy().build()?;
        let stack = Stack {
            running,
            _envoy: envoy,
            port: c.router.http_port,
            http,
            upstream,
            _data: TempDir(dir),
        };
        let t = Instant::now();
        while stack.get("/_gateway-health/ready").await != 200 {
            anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "envoy never became ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(stack)
    }

    async fn create(&self, name: &str) -> anyhow::Result<()> {
        let doc = format!(
            "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata: {{name: {name}}}\nspec:\n  displayName: {name}\n  version: v1\n  context: /{name}\n  upstream: {{main: {{url: \"http://127.0.0.1:{}\"}}}}\n  operations:\n    - {{method: GET, path: /*}}\n",
            self.upstream
        );
        let url = format!("http://{}/api/management/v1/rest-apis", self.running.management);
        let r = self
            .http
            .post(url)
            .basic_auth("bench", Some("bench"))
            .header("content-type", "application/yaml")
            .body(doc)
            .send()
            .await
            .context("POST")?;
        anyhow::ensure!(r.status() == 201, "create {name}: {}", r.status());
        Ok(())
    }

    async fn get(&self, path: &str) -> u16 {
        match self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Time from sending the POST to its response, and to the first 200 through Envoy (polling
    /// every 1 ms).
    async fn deploy_and_wait(&self, name: &str) -> anyhow::Result<(Duration, Duration)> {
        let t0 = Instant::now();
        self.create(name).await?;
        let answered = t0.elapsed();
        let path = format!("/{name}/x");
        while self.get(&path).await != 200 {
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(60), "{name} never served");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok((answered, t0.elapsed()))
    }

    /// Creates `n` APIs one by one while a client requests the newest and an older API.
    async fn churn(&self, n: usize) -> anyhow::Result<(u64, u64)> {
        let stop = Arc::new(AtomicBool::new(false));
        let newest = Arc::new(AtomicU64::new(0));
        let (bad, total) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let traffic = {
            let (stop, newest, bad, total) = (stop.clone(), newest.clone(), bad.clone(), total.clone());
            let (http, port) = (self.http.clone(), self.port);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let i = newest.load(Ordering::Relaxed);
                    for path in [format!("/churn-{i}/x"), format!("/churn-{}/x", i / 2)] {
                        let s = match http.get(format!("http://127.0.0.1:{port}{path}")).send().await {
                            Ok(r) => r.status().as_u16(),
                            Err(_) => 0,
                        };
                        total.fetch_add(1, Ordering::Relaxed);
                        if s != 200 && s != 404 {
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        };
        for i in 0..n {
            self.create(&format!("churn-{i}")).await?;
            newest.store(i as u64, Ordering::Relaxed);
        }
        stop.store(true, Ordering::Relaxed);
        traffic.await?;
        Ok((bad.load(Ordering::Relaxed), total.load(Ordering::Relaxed)))
    }
}
