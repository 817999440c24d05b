//! A whole stack for one test: the controller (in-process, ephemeral ports, its own data dir), the
//! real Envoy talking delta ADS to it, and helpers to call the management API and Envoy.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use tollgate::config::Config;
use tollgate::runtime::{self, Running};
use tollgate_testkit::{Envoy, envoy::TempDir, envoy::poll_until, free_port, wait_for};

pub const LIMIT: Duration = Duration::from_secs(30);

pub struct Stack {
    pub running: Option<Running>,
    pub envoy: Envoy,
    pub port: u16,
    pub config: Config,
    pub http: reqwest::Client,
    _data: TempDir,
}

/// Config for a test: ephemeral controller ports, loopback only, user admin/admin.
pub fn test_config(data: PathBuf) -> Config {
    Config::loopback(data, free_port(), "admin", "admin")
}

impl Stack {
    pub async fn start() -> Stack {
        Self::with(|_| {}).await
    }

    /// Starts with a config adjusted by `f`.
    pub async fn with(f: impl FnOnce(&mut Config)) -> Stack {
        Self::with_bootstrap(f, |_, b| b).await
    }

    /// Starts with a config adjusted by `f` and the Envoy's bootstrap by `adjust` (given the config).
    pub async fn with_bootstrap(f: impl FnOnce(&mut Config), adjust: impl FnOnce(&Config, String) -> String) -> Stack {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tollgate-e2e-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = test_config(dir.clone());
        f(&mut config);
        let running = runtime::start(&config).await.expect("controller starts");
        let envoy = Envoy::start_adjusted("delta", "router", "default", running.xds, |b| adjust(&config, b)).await;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let stack = Stack {
            running: Some(running),
            envoy,
            port: config.router.http_port,
            config,
            http,
            _data: TempDir(dir),
        };
        let ready = poll_until(LIMIT, || async {
            matches!(stack.gw(Method::GET, "/_gateway-health/ready", None).send().await,
                Ok(r) if r.status() == StatusCode::OK)
        })
        .await;
        if !ready {
            let listeners = stack.envoy.admin_get("/listeners?format=json").await;
            panic!(
                "Envoy did not serve /_gateway-health/ready on port {} within {LIMIT:?}\nlisteners: {listeners:?}\n\
                 Envoy log:\n{}",
                stack.port,
                stack.envoy.log()
            );
        }
        stack
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    /// Stops the controller and starts it again on the same data dir and xDS port.
    pub async fn restart_controller(&mut self) {
        let xds_port = self.running().xds.port();
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        let mut config = self.config.clone();
        config.server.xds_port = xds_port;
        self.running = Some(runtime::start(&config).await.expect("controller restarts"));
    }

    /// A management API request as admin.
    pub fn mgmt(&self, method: Method, path: &str) -> RequestBuilder {
        let url = format!("http://{}/api/management/v1{path}", self.running().management);
        self.http.request(method, url).basic_auth("admin", Some("admin"))
    }

    /// An admin API request as admin.
    pub fn admin(&self, path: &str) -> RequestBuilder {
        let url = format!("http://{}/api/admin/v1{path}", self.running().admin);
        self.http.get(url).basic_auth("admin", Some("admin"))
    }

    /// Posts a YAML document; returns status and JSON body.
    pub async fn deploy(&self, yaml: &str) -> (StatusCode, Value) {
        send(
            self.mgmt(Method::POST, "/rest-apis")
                .header("content-type", "application/yaml")
                .body(yaml.to_string()),
        )
        .await
    }

    /// A request through Envoy.
    pub fn gw(&self, method: Method, path: &str, host: Option<&str>) -> RequestBuilder {
        let mut r = self
            .http
            .request(method, format!("http://127.0.0.1:{}{path}", self.port));
        if let Some(h) = host {
            r = r.header("host", h);
        }
        r
    }

    /// Polls GET `path` through Envoy until it answers `status`.
    pub async fn wait_status(&self, path: &str, host: Option<&str>, status: u16) {
        wait_for(&format!("GET {path} (host {host:?}) → {status}"), LIMIT, || async {
            match self.gw(Method::GET, path, host).send().await {
                Ok(r) => r.status().as_u16() == status,
                Err(_) => false,
            }
        })
        .await;
    }

    /// GET through Envoy: status and JSON body (Null if not JSON).
    pub async fn call(&self, method: Method, path: &str, host: Option<&str>) -> (StatusCode, Value) {
        send(self.gw(method, path, host)).await
    }
}

/// Sends and returns status and JSON body (Null if not JSON).
pub async fn send(r: RequestBuilder) -> (StatusCode, Value) {
    let resp = r.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Polls `cond` until it holds (30 s at most).
pub async fn eventually<F, Fut>(cond: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_for("condition", LIMIT, cond).await;
}

/// Returns once at least 10 s remain in the current UTC minute (sleeping at most 10 s), so a test
/// that counts a few requests against a per-minute quota cannot see the window reset midway.
pub async fn fresh_minute() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = now.as_secs_f64() % 60.0;
    if into > 50.0 {
        tokio::time::sleep(Duration::from_secs_f64(60.0 - into + 0.05)).await;
    }
}

/// Everything the controller logs (at debug) in this test process, for tests that search it.
pub fn logs() -> String {
    let buf = log_buffer();
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    static BUF: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    BUF.get_or_init(|| {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = Capture(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    })
}

/// Starts capturing logs (call before the stack starts).
pub fn capture_logs() {
    log_buffer();
}

#[derive(Clone)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
