//! The managed Envoy of `tollgate run` (issue #13): the pinned Envoy starts from the real bootstrap
//! template with a cleared environment, so none of the controller's secrets reach it; a second
//! launch on the same directory adopts it (issue #19), or replaces it when its configuration
//! changed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tollgate::managed_envoy::{EnvoySpec, RECORD, Record, STOP_GRACE};
use tollgate_testkit::envoy::{TempDir, binary, poll_until, repo_root};
use tollgate_testkit::free_port;

fn spec(admin: u16) -> EnvoySpec {
    EnvoySpec {
        binary: binary(),
        bootstrap_template: repo_root().join("envoy/bootstrap-delta.yaml"),
        node_id: "managed".into(),
        node_cluster: "managed".into(),
        xds: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        admin_port: admin,
        args: ["--disable-hot-restart", "--concurrency", "1", "--log-level", "warn"]
            .map(String::from)
            .to_vec(),
        xds_tls: None,
        log_file: None,
    }
}

async fn admin_answers(admin: u16) -> bool {
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{admin}/server_info");
    poll_until(Duration::from_secs(60), || async {
        http.get(&url).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await
}

/// Whether `pid` runs a process whose command line mentions `dir` (so a reused pid is not ours).
pub fn runs_in(pid: u32, dir: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*dir.to_string_lossy()))
}

/// Kills, when dropped, every Envoy started under `dir` that the test did not stop (one a failed
/// assertion left behind): the pids recorded in `dir`'s records and the ones `track` was given.
pub struct EnvoyReaper {
    pub dir: PathBuf,
    pub pids: Vec<u32>,
}

impl EnvoyReaper {
    pub fn track(&mut self, pid: u32) {
        self.pids.push(pid);
    }
}

impl Drop for EnvoyReaper {
    fn drop(&mut self) {
        let recorded = Record::read(&self.dir.join(RECORD)).map(|r| r.pid);
        for pid in self.pids.iter().copied().chain(recorded) {
            if runs_in(pid, &self.dir)
                && let Some(p) = rustix::process::Pid::from_raw(pid as i32)
            {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
    }
}

/// Waits until `pid` no longer runs under `dir`.
pub async fn gone(pid: u32, dir: &Path) -> bool {
    poll_until(Duration::from_secs(30), || async { !runs_in(pid, dir) }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_managed_envoy_starts_without_the_controllers_secrets() {
    let dir = TempDir(std::env::temp_dir().join(format!("tollgate-managed-envoy-{}", std::process::id())));
    let mut reaper = EnvoyReaper {
        dir: dir.0.clone(),
        pids: vec![],
    };
    let admin = free_port();
    let spec = spec(admin);
    let secret = "managed-envoy-secret-pw";
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    env.push(("TOLLGATE_ADMIN_PASSWORD".into(), secret.into()));
    env.push(("TOLLGATE_CONTROL_PLANE_TOKEN".into(), secret.into()));
    let envoy = spec.launch_with_env(&dir.0, env).await.unwrap();
    let pid = envoy.pid();
    reaper.track(pid);
    assert!(admin_answers(admin).await, "the managed Envoy's admin API answers");
    let environ = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap()).into_owned();
    assert!(!environ.contains("TOLLGATE_"), "no TOLLGATE_* variable reaches Envoy");
    assert!(!environ.contains(secret), "no secret reaches Envoy");
    assert!(environ.split('\0').any(|v| v.starts_with("PATH=")), "PATH is kept");
    envoy.stop(STOP_GRACE).await;
    assert!(!runs_in(pid, &dir.0), "a stopped Envoy is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_launch_adopts_the_running_envoy_and_a_changed_one_replaces_it() {
    let dir = TempDir(std::env::temp_dir().join(format!("tollgate-managed-adopt-{}", std::process::id())));
    let mut reaper = EnvoyReaper {
        dir: dir.0.clone(),
        pids: vec![],
    };
    let admin = free_port();
    let spec = spec(admin);
    let first = spec.launch(&dir.0).await.unwrap();
    let pid = first.pid();
    reaper.track(pid);
    assert!(!first.adopted());
    assert!(admin_answers(admin).await);
    // The controller that started it goes away without stopping it (a crash, an upgrade).
    first.release();
    assert_eq!(Record::read(&dir.0.join(RECORD)).map(|r| r.pid), Some(pid));

    let second = spec.launch(&dir.0).await.unwrap();
    assert!(second.adopted(), "the running Envoy is adopted");
    assert_eq!(second.pid(), pid, "no second Envoy");
    second.release();

    // Another configuration: the old Envoy is stopped and a new one started in its place.
    let mut changed = spec.clone();
    changed.args.push("--component-log-level".into());
    changed.args.push("upstream:error".into());
    let third = changed.launch(&dir.0).await.unwrap();
    reaper.track(third.pid());
    assert!(!third.adopted());
    assert_ne!(third.pid(), pid);
    assert!(gone(pid, &dir.0).await, "the replaced Envoy is stopped");
    assert!(admin_answers(admin).await, "the new Envoy took the admin port");
    let third_pid = third.pid();
    third.stop(STOP_GRACE).await;
    assert!(!runs_in(third_pid, &dir.0));
    assert_eq!(
        Record::read(&dir.0.join(RECORD)),
        None,
        "a stopped Envoy leaves no record"
    );
}
