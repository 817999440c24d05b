//! The record of the running managed Envoy (`<data_dir>/envoy/managed-envoy.json`): what a
//! restarted controller needs to find it again and to tell whether it still runs the
//! configuration the controller would start it with.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ManagedEnvoyError, file_error};

/// The managed Envoy as its controller started it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub pid: u32,
    /// Its admin API, on 127.0.0.1.
    pub admin_port: u16,
    /// The binary it was started from (its `argv[0]`).
    pub binary: PathBuf,
    /// The bootstrap it was started with (follows `-c` on its command line).
    pub config_path: PathBuf,
    /// [`identity`] of what it was started with.
    pub identity: String,
}

// === impl Record ===

impl Record {
    /// The record at `path`; `None` when there is none or it cannot be read (then nothing is
    /// adopted, and a fresh Envoy is started).
    pub fn read(path: &Path) -> Option<Record> {
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Writes the record through a temporary file and a rename, so a reader never sees half of it.
    pub fn write(&self, path: &Path) -> Result<(), ManagedEnvoyError> {
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(|e| ManagedEnvoyError::File {
            what: "encoding",
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        std::fs::write(&tmp, text).map_err(file_error("writing", &tmp))?;
        std::fs::rename(&tmp, path).map_err(file_error("writing", path))
    }

    /// Forgets the record: the Envoy it names is gone or was stopped on purpose.
    pub fn remove(path: &Path) {
        let _ = std::fs::remove_file(path);
    }
}

/// A SHA-256 digest (hex) of everything that shapes an Envoy process: the binary, its arguments,
/// the bootstrap text and where its output goes. Equal digests: the running Envoy is the one the
/// controller would start, so it may be adopted.
pub fn identity(binary: &Path, args: &[OsString], bootstrap: &str, log_file: Option<&Path>) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    // Each part is NUL-terminated so that no two different inputs run together alike.
    let mut part = |bytes: &[u8]| {
        ctx.update(bytes);
        ctx.update(b"\0");
    };
    part(binary.as_os_str().as_encoded_bytes());
    for a in args {
        part(a.as_encoded_bytes());
    }
    part(bootstrap.as_bytes());
    part(log_file.map(|p| p.as_os_str().as_encoded_bytes()).unwrap_or_default());
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
