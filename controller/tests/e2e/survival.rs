//! The data plane outlives the controller (issue #19 item 7), with the real `tollgate run`
//! binary: a `kill -9` of the controller leaves its managed Envoy serving (open APIs answer,
//! key-protected ones are refused while no ext_authz answers), and the restarted controller adopts
//! that Envoy instead of starting a second one. A graceful stop stops Envoy unless
//! `envoy.keep_running_on_exit`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tollgate::managed_envoy::{RECORD, Record};
use tollgate_testkit::envoy::{TempDir, binary, poll_until, repo_root};
use tollgate_testkit::{Echo, free_port};

use crate::api_yaml;
use crate::keys::protected;
use crate::managed_envoy::{EnvoyReaper, gone, runs_in};

const LIMIT: Duration = Duration::from_secs(60);

/// One data dir and config file, and the `tollgate run` processes started on them.
struct Setup {
    dir: TempDir,
    config: PathBuf,
    management: u16,
    http: u16,
    client: reqwest::Client,
}

impl Setup {
    fn new(name: &str, keep_running_on_exit: bool) -> Setup {
        let dir = TempDir(std::env::temp_dir().join(format!("tollgate-{name}-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&dir.0);
        std::fs::create_dir_all(&dir.0).unwrap();
        let (management, http) = (free_port(), free_port());
        let text = format!(
            r#"[server]
bind = "127.0.0.1"
grpc_bind = "127.0.0.1"
management_port = {management}
admin_port = {admin}
metrics_port = {metrics}
xds_port = {xds}
authz_port = {authz}
data_dir = "{data}"
shutdown_timeout = "2s"

[router]
listen_address = "127.0.0.1"
http_port = {http}
https_port = {https}

[envoy]
bootstrap = "{bootstrap}"
admin_port = {envoy_admin}
args = ["--concurrency", "1", "--log-level", "warn"]
log_file = "{log}"
keep_running_on_exit = {keep_running_on_exit}

[[auth.users]]
username = "admin"
password = "admin"
roles = ["admin"]
"#,
            admin = free_port(),
            metrics = free_port(),
            xds = free_port(),
            authz = free_port(),
            data = dir.0.join("data").display(),
            https = free_port(),
            bootstrap = repo_root().join("envoy/bootstrap-delta.yaml").display(),
            envoy_admin = free_port(),
            log = dir.0.join("envoy.log").display(),
        );
        let config = dir.0.join("tollgate.toml");
        std::fs::write(&config, text).unwrap();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Setup {
            dir,
            config,
            management,
            http,
            client,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.0.join("data")
    }

    fn reaper(&self) -> EnvoyReaper {
        EnvoyReaper {
            dir: self.data(),
            pids: vec![],
        }
    }

    /// Starts `tollgate run` and waits until Envoy serves on its listener.
    async fn start(&self, n: u32) -> Child {
        let log = std::fs::File::create(self.dir.0.join(format!("controller-{n}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env("TOLLGATE_ENVOY_BIN", binary())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // Envoy is launched (or adopted) once the controller listens; it says so in its log.
        let log = self.dir.0.join(format!("controller-{n}.log"));
        let launched = poll_until(LIMIT, || async {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("managed envoy running"))
        })
        .await;
        assert!(launched, "start {n} launches Envoy\n{}", self.logs());
        let ready = poll_until(LIMIT, || async {
            self.get("/_gateway-health/ready", None).await == Some(200)
        })
        .await;
        assert!(ready, "Envoy serves after start {n}\n{}", self.logs());
        child
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(&self.dir.0).unwrap().flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "log") {
                out += &format!(
                    "--- {}\n{}\n",
                    p.display(),
                    std::fs::read_to_string(&p).unwrap_or_default()
                );
            }
        }
        out
    }

    fn envoy_pid(&self) -> Option<u32> {
        Record::read(&self.data().join("envoy").join(RECORD)).map(|r| r.pid)
    }

    /// The status of a GET through Envoy; `None` when it did not answer.
    async fn get(&self, path: &str, key: Option<&str>) -> Option<u16> {
        let mut r = self.client.get(format!("http://127.0.0.1:{}{path}", self.http));
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        r.send().await.ok().map(|r| r.status().as_u16())
    }

    async fn mgmt(&self, path: &str, body: Option<(&str, String)>) -> (StatusCode, Value) {
        let url = format!("http://127.0.0.1:{}/api/management/v1{path}", self.management);
        let r = match body {
            Some((ct, b)) => self.client.post(url).header("content-type", ct).body(b),
            None => self.client.get(url),
        };
        let resp = r.basic_auth("admin", Some("admin")).send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn deploy(&self, yaml: &str) {
        let (st, body) = self
            .mgmt("/rest-apis", Some(("application/yaml", yaml.to_string())))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
    }

    async fn wait_get(&self, path: &str, key: Option<&str>, status: u16) {
        let ok = poll_until(LIMIT, || async { self.get(path, key).await == Some(status) }).await;
        assert!(ok, "GET {path} → {status}\n{}", self.logs());
    }
}

/// Envoy processes whose command line names this data dir.
fn envoys_under(dir: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| runs_in(*pid, dir))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_plane_outlives_a_killed_controller() {
    let echo = Echo::start("backend").await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    let s = Setup::new("survival", false);
    let mut reaper = s.reaper();
    let mut first = s.start(1).await;
    let pid = s.envoy_pid().expect("the managed Envoy is recorded");
    reaper.track(pid);
    assert!(s.dir.0.join("envoy.log").is_file(), "Envoy writes to envoy.log_file");
    s.deploy(&api_yaml("open", "/open", &url, "    - {method: GET, path: /*}\n"))
        .await;
    s.deploy(&protected("locked", &url, true)).await;
    let body = json!({"name": "survivor-key"}).to_string();
    let (st, key) = s
        .mgmt("/rest-apis/locked/api-keys", Some(("application/json", body)))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{key}");
    let key = key["apiKey"]["apiKey"].as_str().unwrap().to_string();
    s.wait_get("/open/x", None, 200).await;
    s.wait_get("/locked/x", Some(&key), 200).await;

    // kill -9: no handler, no drop runs in the controller.
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    for _ in 0..15 {
        assert_eq!(
            s.get("/open/x", None).await,
            Some(200),
            "the open API answers\n{}",
            s.logs()
        );
        // Refused by Envoy's ext_authz filter, which fails closed with 403 (neither served nor hung).
        let locked = s.get("/locked/x", Some(&key)).await;
        assert_eq!(
            locked,
            Some(403),
            "the protected API is refused while no ext_authz answers"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(runs_in(pid, &s.data()), "Envoy outlived the controller");

    let mut second = s.start(2).await;
    assert_eq!(
        s.envoy_pid(),
        Some(pid),
        "the restarted controller adopted the running Envoy"
    );
    assert_eq!(envoys_under(&s.data()), [pid], "no second Envoy\n{}", s.logs());
    s.wait_get("/locked/x", Some(&key), 200).await;
    s.deploy(&api_yaml("later", "/later", &url, "    - {method: GET, path: /*}\n"))
        .await;
    s.wait_get("/later/x", None, 200).await;
    assert_eq!(s.envoy_pid(), Some(pid), "served by the adopted Envoy");

    // A graceful stop stops the (adopted) Envoy as well.
    terminate(&second);
    second.wait().await.unwrap();
    assert!(
        gone(pid, &s.data()).await,
        "SIGTERM of the controller stops its Envoy\n{}",
        s.logs()
    );
    assert_eq!(s.envoy_pid(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_running_on_exit_leaves_envoy_for_the_next_start() {
    let s = Setup::new("keep-running", true);
    let mut reaper = s.reaper();
    let mut first = s.start(1).await;
    let pid = s.envoy_pid().expect("the managed Envoy is recorded");
    reaper.track(pid);
    terminate(&first);
    first.wait().await.unwrap();
    assert!(runs_in(pid, &s.data()), "keep_running_on_exit: Envoy still runs");
    assert_eq!(s.get("/_gateway-health/ready", None).await, Some(200));

    let mut second = s.start(2).await;
    assert_eq!(s.envoy_pid(), Some(pid), "adopted");
    assert_eq!(envoys_under(&s.data()), [pid]);
    // The adopted Envoy is watched like a child: when it dies, the controller stops as well.
    let envoy = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(envoy, rustix::process::Signal::KILL).unwrap();
    let stopped = tokio::time::timeout(LIMIT, second.wait()).await;
    assert!(
        stopped.is_ok(),
        "the controller notices its adopted Envoy died\n{}",
        s.logs()
    );
    assert_eq!(s.envoy_pid(), None, "a dead Envoy leaves no record");
}

/// SIGTERM, as `kill` and service managers send it.
fn terminate(c: &Child) {
    let pid = rustix::process::Pid::from_raw(c.id().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
}
