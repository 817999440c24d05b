//! Tollgate's benchmark programs (see `bench/README.md`) and the small statistics they share.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tollgate_policies::authz::ctx;
use tollgate_proto::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context};

/// Percentile (nearest rank) of a sample; `p` in 0..=100.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Formats a duration in microseconds with one decimal.
pub fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// Posts a RestApi YAML document to the management API at `mgmt` (its base URL) as `user` (whose
/// password is the same); fails unless it answers 201.
pub async fn deploy_yaml(http: &reqwest::Client, mgmt: &str, user: &str, doc: String) -> anyhow::Result<()> {
    let r = http
        .post(format!("{mgmt}/rest-apis"))
        .basic_auth(user, Some(user))
        .header("content-type", "application/yaml")
        .body(doc)
        .send()
        .await?;
    anyhow::ensure!(
        r.status() == 201,
        "deploy: {} {}",
        r.status(),
        r.text().await.unwrap_or_default()
    );
    Ok(())
}

/// CPU time (user + system) the threads of process `pid` have used so far, from the scheduler's
/// per-thread counters (`/proc/PID/task/*/schedstat`, nanoseconds); with `prefix`, only threads whose
/// name starts with it. 0 where /proc cannot be read.
pub fn cpu_time(pid: u32, prefix: Option<&str>) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let mut ns = 0u64;
    for task in tasks.flatten() {
        let dir = task.path();
        if let Some(p) = prefix {
            let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if !name.starts_with(p) {
                continue;
            }
        }
        let stat = std::fs::read_to_string(dir.join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(ns)
}

/// Request headers a load case sends with every request (name, value).
pub type Headers = Vec<(String, String)>;

/// Polls `url` (GET with `headers`) until it answers 200; fails after 30 s.
pub async fn wait_200(http: &reqwest::Client, url: &str, headers: &Headers) -> anyhow::Result<()> {
    let t = Instant::now();
    loop {
        let r = with_headers(http.get(url), headers);
        if r.send().await.map(|r| r.status() == 200).unwrap_or(false) {
            return Ok(());
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "{url} never answered 200");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Closed-loop load: `conc` tasks GET `url` with `headers` for `secs` seconds. Returns the latencies
/// of the 200 answers, requests/s, and how many answers were not 200 (or failed).
pub async fn load(
    http: &reqwest::Client,
    url: &str,
    headers: &Headers,
    secs: u64,
    conc: usize,
) -> anyhow::Result<(Vec<Duration>, f64, usize)> {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (http, url, headers, stop) = (http.clone(), url.to_string(), headers.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            while !stop.load(Ordering::Relaxed) {
                let r = with_headers(http.get(&url), &headers);
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

/// One load case through an Envoy: latencies, throughput and where the CPU went.
#[derive(Debug)]
pub struct Measured {
    /// p50 of the 200 answers.
    pub p50: Duration,
    /// p99 of the 200 answers.
    pub p99: Duration,
    pub requests_per_s: f64,
    /// CPU time per request of the serving Envoy (process `envoy_pid`).
    pub envoy_cpu: Duration,
    /// CPU time per request of this process's ext_authz threads (`authz*`).
    pub authz_cpu: Duration,
}

/// A one-second warm-up, then [`load`] for `secs` with `conc` in flight, measuring the CPU time the
/// Envoy `envoy_pid` and this process's `authz*` threads spend meanwhile; fails on any non-200.
pub async fn measure(
    http: &reqwest::Client,
    url: &str,
    headers: &Headers,
    (secs, conc): (u64, usize),
    envoy_pid: u32,
) -> anyhow::Result<Measured> {
    load(http, url, headers, 1, conc).await?;
    let me = std::process::id();
    let (envoy_cpu, authz_cpu) = (cpu_time(envoy_pid, None), cpu_time(me, Some("authz")));
    let (mut lat, requests_per_s, errors) = load(http, url, headers, secs, conc).await?;
    anyhow::ensure!(errors == 0, "{url}: {errors} non-200 responses");
    let n = u32::try_from(lat.len().max(1)).unwrap_or(u32::MAX);
    lat.sort_unstable();
    Ok(Measured {
        p50: percentile(&lat, 50.0),
        p99: percentile(&lat, 99.0),
        requests_per_s,
        envoy_cpu: cpu_time(envoy_pid, None).saturating_sub(envoy_cpu) / n,
        authz_cpu: cpu_time(me, Some("authz")).saturating_sub(authz_cpu) / n,
    })
}

fn with_headers(mut r: reqwest::RequestBuilder, headers: &Headers) -> reqwest::RequestBuilder {
    for (k, v) in headers {
        r = r.header(k, v);
    }
    r
}

/// A `CheckRequest` for `GET /orders/1` on a route of API `orders` protected by a key in the
/// `x-api-key` header, presenting `key`.
pub fn orders_check(key: &str) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            context_extensions: [
                (ctx::API, "orders"),
                (ctx::KEY_IN, "header"),
                (ctx::KEY_NAME, "x-api-key"),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    path: "/orders/1".into(),
                    headers: [("x-api-key".to_string(), key.to_string())].into_iter().collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
