//! Secrets made and kept on disk: random hex from the OS source, written to files only their owner
//! may read. Shared by the bootstrap admin password and the replica token.

use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};

/// `N` bytes from the OS random source, as hex; `None` if the source fails.
pub fn random_hex<const N: usize>() -> Option<String> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(tollgate_proto::hex::encode(&bytes))
}

/// Writes `contents` and a newline to `path`, created (or truncated) with mode 0600.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")
}
