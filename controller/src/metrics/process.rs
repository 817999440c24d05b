//! Process metrics under their conventional names (`process_resident_memory_bytes`,
//! `process_cpu_seconds_total`, `process_open_fds`, `process_max_fds`), read from `/proc/self`
//! at scrape time. Three small files are read by hand rather than through a crate such as
//! `procfs`, which would bring a large dependency (and its own parsing of every field) for four
//! numbers. Elsewhere than Linux nothing is reported.

use std::path::Path;

/// The kernel's unit of `utime`/`stime` in `/proc/<pid>/stat` (`USER_HZ`): 100 on every Linux
/// architecture, whatever the kernel's own tick rate (it is part of the user-space ABI).
const USER_HZ: f64 = 100.0;

/// What the scrape shows about this process.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Process {
    pub(super) rss_bytes: Option<u64>,
    pub(super) cpu_seconds: Option<f64>,
    pub(super) open_fds: Option<u64>,
    pub(super) max_fds: Option<u64>,
}

/// Reads the current values (each `None` when its file cannot be read or parsed).
pub(super) fn read() -> Process {
    let proc = Path::new("/proc/self");
    Process {
        rss_bytes: std::fs::read_to_string(proc.join("status")).ok().and_then(|s| rss(&s)),
        cpu_seconds: std::fs::read_to_string(proc.join("stat")).ok().and_then(|s| cpu(&s)),
        open_fds: std::fs::read_dir(proc.join("fd")).ok().map(|d| d.count() as u64),
        max_fds: std::fs::read_to_string(proc.join("limits"))
            .ok()
            .and_then(|s| max_fds(&s)),
    }
}

/// `VmRSS:   1234 kB` of `/proc/self/status`.
fn rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `utime + stime` of `/proc/self/stat` (fields 14 and 15), in seconds. The command name (field
/// 2) is in parentheses and may hold spaces, so fields are counted after its closing one.
fn cpu(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_proc_files() {
        assert_eq!(rss("Name:\tx\nVmRSS:\t    2048 kB\nVmSwap: 0 kB\n"), Some(2048 * 1024));
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 2 3";
        assert_eq!(cpu(stat), Some(3.0));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 4096                 files\n";
        assert_eq!(max_fds(limits), Some(1024));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let p = read();
        assert!(p.rss_bytes.is_some_and(|b| b > 0));
        assert!(p.cpu_seconds.is_some());
        assert!(p.open_fds.is_some_and(|n| n > 0));
        assert!(p.max_fds.is_some_and(|n| n > 0));
    }
}
