//! Secrets made and kept on disk: random hex from the OS source, written to files only their owner
//! may read; and [`Secret`], the wrapper that keeps a password or token out of `Debug` output.
//! Shared by the bootstrap admin password, the replica token and the control-plane token.

use std::fmt;
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// A password, token or key that must never be printed: `Debug` shows `[redacted]` (or `""` when
/// empty, so a missing secret can still be told from a present one). Serde sees the plain value,
/// because the config file holds it, except inside [`redacting`], where it serializes as
/// `[redacted]` too: so whatever holds a `Secret` can be logged through serde without a list of
/// its secret fields. The value is reached only through [`Secret::expose`], so each use is
/// deliberate.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

thread_local! {
    /// Set while [`redacting`] runs on this thread.
    static REDACTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (a serialization) with every non-empty [`Secret`] it meets written as `[redacted]`.
pub fn redacting<R>(f: impl FnOnce() -> R) -> R {
    /// Puts the flag back however `f` ends (a panic included).
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            REDACTING.with(|r| r.set(self.0));
        }
    }
    let _restore = Restore(REDACTING.with(|r| r.replace(true)));
    f()
}

/// `N` bytes from the OS random source, as hex; `None` if the source fails.
pub fn random_hex<const N: usize>() -> Option<String> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(tollgate_proto::hex::encode(&bytes))
}

/// Writes `contents` and a newline to `path`, created (or truncated) with mode 0600. A symbolic
/// link at `path` is refused (it could point the secret anywhere), and an existing file's mode is
/// set back to 0600 before anything is written into it.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NOFOLLOW: opening a symbolic link fails (ELOOP) instead of following it.
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let mut f = opts.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // `mode` applies only when the file is created; an older file keeps its own otherwise.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")
}

// === impl Secret ===

impl<T> Secret<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    /// The secret itself: for sending or comparing it, never for printing it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Secret<T> {
        Secret(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Secret<String> {
        Secret(value.to_string())
    }
}

impl<T: Serialize + AsRef<[u8]>> Serialize for Secret<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if REDACTING.with(std::cell::Cell::get) && !self.0.as_ref().is_empty() {
            s.serialize_str("[redacted]")
        } else {
            self.0.serialize(s)
        }
    }
}

impl<T: AsRef<[u8]>> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.as_ref().is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("[redacted]")
        }
    }
}

#[cfg(test)]
mod tests;
