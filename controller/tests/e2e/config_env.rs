//! Issue #19: every configuration key from the environment, run through the real binary: a bad
//! value exits 64 naming the key and its variable, and `TOLLGATE_DATA_DIR` decides where the
//! database is created.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tollgate_testkit::envoy::TempDir;

/// `tollgate serve` in `cwd` with only `vars` (and `PATH`) in its environment.
fn tollgate(cwd: &Path, vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.arg("serve").current_dir(cwd).env_clear().stdin(Stdio::null());
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs(vars.iter().copied());
    cmd
}

fn scratch(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("tollgate-e2e-config-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

#[test]
fn a_bad_environment_value_exits_64_naming_the_key_and_the_variable() {
    let dir = scratch("bad-env");
    let out = tollgate(&dir.0, &[("TOLLGATE_ROUTER_HTTP_PORT", "eighty")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("router.http_port (from env TOLLGATE_ROUTER_HTTP_PORT)") && stderr.contains("integer"),
        "{stderr}"
    );
    assert!(!dir.0.join("data").exists(), "nothing started");
}

#[test]
fn tollgate_data_dir_decides_where_the_database_is_created() {
    let dir = scratch("data-dir");
    let data: PathBuf = dir.0.join("elsewhere");
    let password = "e2e-config-admin-pw";
    let data_text = data.display().to_string();
    let log = std::fs::File::create(dir.0.join("stdout.log")).unwrap();
    let mut child = tollgate(
        &dir.0,
        &[
            ("TOLLGATE_DATA_DIR", &data_text),
            ("TOLLGATE_ADMIN_PASSWORD", password),
            ("TOLLGATE_SERVER_BIND", "127.0.0.1"),
            ("TOLLGATE_SERVER_MANAGEMENT_PORT", "0"),
            ("TOLLGATE_SERVER_ADMIN_PORT", "0"),
            ("TOLLGATE_SERVER_METRICS_PORT", "0"),
            ("TOLLGATE_SERVER_XDS_PORT", "0"),
            ("TOLLGATE_SERVER_AUTHZ_PORT", "0"),
            ("TOLLGATE_LOGGING_FORMAT", "json"),
            ("TOLLGATE_ROUTER_HTTP_PROT", "1"),
        ],
    )
    .stdout(log)
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let db = data.join("tollgate.db");
    let start = Instant::now();
    while !db.is_file() && start.elapsed() < Duration::from_secs(60) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("tollgate exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let created = db.is_file();
    let _ = child.kill();
    let _ = child.wait();
    assert!(created, "no database at {}", db.display());
    assert!(!dir.0.join("data").exists(), "the default ./data is not used");
    let logged = std::fs::read_to_string(dir.0.join("stdout.log")).unwrap();
    assert!(
        logged.contains("env TOLLGATE_DATA_DIR"),
        "the log names the source: {logged}"
    );
    assert!(!logged.contains(password), "no secret in the log");
    assert!(
        logged.contains("TOLLGATE_ROUTER_HTTP_PROT") && logged.contains("WARN"),
        "a misspelt variable is named: {logged}"
    );
}

#[test]
fn a_set_flag_beats_the_environment_and_a_bad_one_exits_64() {
    let dir = scratch("set-flag");
    // The environment's valid port is overridden by the flag's invalid one: the flag is blamed.
    let out = tollgate(&dir.0, &[("TOLLGATE_ROUTER_HTTP_PORT", "8080")])
        .args(["--set", "router.http_port=eighty"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("router.http_port (from flag --set router.http_port)"),
        "{stderr}"
    );
    // And a flag's valid value wins over the environment's invalid one.
    let out = tollgate(&dir.0, &[("TOLLGATE_ROUTER_HTTP_PORT", "eighty")])
        .args([
            "--set",
            "router.http_port=8080",
            "--set",
            "server.management_port=notaport",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("server.management_port") && !stderr.contains("TOLLGATE_ROUTER_HTTP_PORT"),
        "{stderr}"
    );
}
