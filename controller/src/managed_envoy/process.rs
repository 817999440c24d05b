//! A handle on the managed Envoy process: one this controller started (its child) or one it
//! adopted (started by a previous controller; watched through a pidfd, since only a parent can
//! wait for a process).

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::Child;
use tracing::warn;

use super::Record;

/// How long a stopped Envoy has to exit after SIGTERM before it gets SIGKILL. Envoy exits at once
/// on SIGTERM; the bound is for one that hangs.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The running managed Envoy.
#[derive(Debug)]
pub struct ManagedEnvoy {
    pid: u32,
    process: Process,
    /// The record naming this Envoy; removed once it is gone or stopped on purpose.
    record: PathBuf,
}

#[derive(Debug)]
enum Process {
    /// Started by this controller.
    Child(Child),
    /// Left running by a previous controller: a pidfd, readable once the process exits.
    #[cfg(target_os = "linux")]
    Adopted(std::os::fd::OwnedFd),
}

// === impl ManagedEnvoy ===

impl ManagedEnvoy {
    pub(super) fn started(child: Child, record: PathBuf) -> Self {
        // A child that has not been waited for keeps its pid, so `id` is `Some` here.
        let pid = child.id().unwrap_or_default();
        ManagedEnvoy {
            pid,
            process: Process::Child(child),
            record,
        }
    }

    #[cfg(target_os = "linux")]
    pub(super) fn adopt(pid: u32, pidfd: std::os::fd::OwnedFd, record: PathBuf) -> Self {
        ManagedEnvoy {
            pid,
            process: Process::Adopted(pidfd),
            record,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether a previous controller started this Envoy.
    pub fn adopted(&self) -> bool {
        !matches!(self.process, Process::Child(_))
    }

    /// Resolves when Envoy exits, with its status when it was this controller's child; the record
    /// is removed (there is nothing left to adopt).
    pub async fn exited(&mut self) -> Option<ExitStatus> {
        let status = match &mut self.process {
            Process::Child(c) => c.wait().await.ok(),
            #[cfg(target_os = "linux")]
            Process::Adopted(fd) => {
                // Checked on a tick rather than registered with the reactor (tokio's safe
                // registration is deprecated); half a second is nothing next to a restart.
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                while !has_exited(fd) {
                    tick.tick().await;
                }
                None
            }
        };
        Record::remove(&self.record);
        status
    }

    /// Stops Envoy: SIGTERM, then SIGKILL after `grace`; the record is removed.
    pub async fn stop(mut self, grace: Duration) {
        if let Err(e) = self.signal(Term::Gracefully) {
            warn!(pid = self.pid, error = %e, "could not signal the managed envoy");
        }
        if tokio::time::timeout(grace, self.exited()).await.is_err() {
            warn!(pid = self.pid, ?grace, "the managed envoy ignored SIGTERM: killing it");
            let _ = self.signal(Term::Now);
            let _ = tokio::time::timeout(grace, self.exited()).await;
        }
        Record::remove(&self.record);
    }

    /// Leaves Envoy running with its record in place, for the next controller to adopt.
    pub fn release(self) {}

    fn signal(&mut self, how: Term) -> std::io::Result<()> {
        match &mut self.process {
            Process::Child(c) => signal_child(c, how),
            #[cfg(target_os = "linux")]
            Process::Adopted(fd) => {
                // Through the pidfd: a pid the process no longer holds is never signalled.
                let sig = match how {
                    Term::Gracefully => rustix::process::Signal::TERM,
                    Term::Now => rustix::process::Signal::KILL,
                };
                Ok(rustix::process::pidfd_send_signal(&*fd, sig)?)
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Term {
    /// SIGTERM: Envoy closes its listeners and exits.
    Gracefully,
    /// SIGKILL.
    Now,
}

/// Whether the process behind a pidfd has exited: the pidfd then polls readable. An error
/// counts as exited, since there is nothing left to watch.
#[cfg(target_os = "linux")]
fn has_exited(fd: &std::os::fd::OwnedFd) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
    !matches!(poll(&mut fds, Some(&zero)), Ok(0))
}

#[cfg(unix)]
fn signal_child(c: &mut Child, how: Term) -> std::io::Result<()> {
    use rustix::process::{Pid, Signal, kill_process};
    // `id` is `None` once the child has been waited for: then there is nothing to signal.
    let Some(pid) = c.id().and_then(|p| Pid::from_raw(p.try_into().ok()?)) else {
        return Ok(());
    };
    let sig = match how {
        Term::Gracefully => Signal::TERM,
        Term::Now => Signal::KILL,
    };
    Ok(kill_process(pid, sig)?)
}

#[cfg(not(unix))]
fn signal_child(c: &mut Child, _: Term) -> std::io::Result<()> {
    c.start_kill()
}
