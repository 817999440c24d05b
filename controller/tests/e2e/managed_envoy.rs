//! The managed Envoy of `tollgate run` (issue #13): the pinned Envoy starts from the real bootstrap
//! template with a cleared environment, so none of the controller's secrets reach it.

use std::ffi::OsString;
use std::time::Duration;

use tollgate::managed_envoy::EnvoySpec;
use tollgate_testkit::envoy::{TempDir, binary, poll_until, repo_root};
use tollgate_testkit::free_port;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_managed_envoy_starts_without_the_controllers_secrets() {
    let dir = TempDir(std::env::temp_dir().join(format!("tollgate-managed-envoy-{}", std::process::id())));
    let admin = free_port();
    let spec = EnvoySpec {
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
    };
    let secret = "managed-envoy-secret-pw";
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    env.push(("TOLLGATE_ADMIN_PASSWORD".into(), secret.into()));
    env.push(("TOLLGATE_CONTROL_PLANE_TOKEN".into(), secret.into()));
    let child = spec.spawn_with_env(&dir.0, env).unwrap();
    let pid = child.id().unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{admin}/server_info");
    let up = poll_until(Duration::from_secs(60), || async {
        http.get(&url).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(up, "the managed Envoy's admin API answers");
    let environ = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap()).into_owned();
    assert!(!environ.contains("TOLLGATE_"), "no TOLLGATE_* variable reaches Envoy");
    assert!(!environ.contains(secret), "no secret reaches Envoy");
    assert!(environ.split('\0').any(|v| v.starts_with("PATH=")), "PATH is kept");
    drop(child);
}
