//! Whether the Envoy a previous controller recorded can be adopted. It must still run (a pidfd
//! opens), be that Envoy and not a process that reused its pid (`/proc/<pid>/cmdline` names the
//! recorded binary and bootstrap), answer on its admin port as that Envoy (`/server_info` names
//! the same bootstrap), and have been started exactly as this controller would start it (the
//! identity digest).

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use rustix::process::{Pid, PidfdFlags, pidfd_open};

use super::{ManagedEnvoy, Record};

/// How long a recorded Envoy's admin API has to answer before the Envoy is replaced. An Envoy
/// the previous controller started just before it died may still be starting.
const ADMIN_WAIT: Duration = Duration::from_secs(10);

/// What to do with the recorded Envoy.
pub enum Verdict {
    /// It runs as this controller would start it: keep it.
    Adopt(ManagedEnvoy),
    /// It is ours but started differently, or does not answer: stop it, then start a new one.
    Replace(ManagedEnvoy, &'static str),
    /// Nothing of ours runs (it exited, or the pid now belongs to another process).
    Gone,
}

/// Judges the Envoy `found` names against the identity this controller would start it with.
pub async fn check(found: &Record, identity: &str, record_path: &Path) -> Verdict {
    let Some(fd) = open(found) else {
        return Verdict::Gone;
    };
    let envoy = ManagedEnvoy::adopt(found.pid, fd, record_path.to_path_buf());
    if found.identity != identity {
        return Verdict::Replace(envoy, "its binary, arguments or bootstrap changed");
    }
    if !admin_answers(found).await {
        return Verdict::Replace(envoy, "its admin API does not answer as that envoy");
    }
    Verdict::Adopt(envoy)
}

/// A pidfd on the recorded process, when it runs and is the recorded Envoy. The pidfd is opened
/// before the command line is read, so the process checked is the one the pidfd holds (unless the
/// pid was reused in between, which the command-line check then catches).
fn open(found: &Record) -> Option<OwnedFd> {
    let pid = Pid::from_raw(found.pid.try_into().ok()?)?;
    let fd = pidfd_open(pid, PidfdFlags::empty()).ok()?;
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", found.pid)).ok()?;
    if !is_recorded_envoy(&cmdline, found) {
        return None;
    }
    Some(fd)
}

/// Whether a NUL-separated command line is the recorded binary started on the recorded bootstrap.
pub fn is_recorded_envoy(cmdline: &[u8], found: &Record) -> bool {
    let mut args = cmdline.split(|b| *b == 0);
    let binary = found.binary.as_os_str().as_encoded_bytes();
    let config = found.config_path.as_os_str().as_encoded_bytes();
    if args.next() != Some(binary) {
        return false;
    }
    let args: Vec<&[u8]> = args.collect();
    args.windows(2).any(|w| w[0] == b"-c" && w[1] == config)
}

/// Whether the admin port answers `/server_info` for an Envoy running the recorded bootstrap
/// (and not some other Envoy that took the port), polling for [`ADMIN_WAIT`].
async fn admin_answers(found: &Record) -> bool {
    let Ok(http) = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return false;
    };
    let url = format!("http://127.0.0.1:{}/server_info", found.admin_port);
    let want = found.config_path.to_string_lossy();
    let deadline = tokio::time::Instant::now() + ADMIN_WAIT;
    loop {
        if let Ok(r) = http.get(&url).send().await
            && let Ok(info) = r.json::<serde_json::Value>().await
        {
            return info["command_line_options"]["config_path"].as_str() == Some(&want);
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
