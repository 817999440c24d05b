//! The replica token: the shared secret a replica presents (in [`TOKEN_HEADER`]) to be sent key
//! sets. The controller keeps it in `<data_dir>/replica-token` (256 random bits, mode 0600), or
//! takes it from `TOLLGATE_REPLICA_TOKEN`; replicas read it from a file or that variable.

use std::path::{Path, PathBuf};

use ring::digest::{SHA256, digest};
use tollgate_xds::AccessRule;

use crate::secret::{random_hex, write_private};

/// Where the controller keeps the token remote authz replicas present to read key sets.
pub const REPLICA_TOKEN_FILE: &str = "replica-token";

/// The environment variable that, when set, holds the token instead of the file.
pub const TOKEN_ENV: &str = "TOLLGATE_REPLICA_TOKEN";

/// The request metadata that carries the token on a replica's xDS stream.
pub const TOKEN_HEADER: &str = "x-tollgate-replica-token";

/// Why the token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file exists but holds nothing.
    #[error("{} is empty", .0.display())]
    Empty(PathBuf),
    /// The token file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A new token file could not be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The OS random source failed.
    #[error("no OS randomness")]
    Random,
}

/// Lets a stream read key sets only when it presents the token. Tokens are compared as SHA-256
/// digests without an early exit, so the time a comparison takes says nothing about the token.
#[derive(Debug)]
pub struct TokenRule {
    want: [u8; 32],
}

/// The replica token: `TOLLGATE_REPLICA_TOKEN` when set, else `<data_dir>/replica-token`, created
/// (random, mode 0600) when missing. The second value says whether it was just created.
pub fn replica_token(data_dir: &Path) -> Result<(String, bool), TokenError> {
    token_from(std::env::var(TOKEN_ENV).ok(), data_dir)
}

/// [`replica_token`] with the variable's value passed in.
fn token_from(env: Option<String>, data_dir: &Path) -> Result<(String, bool), TokenError> {
    if let Some(t) = env.filter(|t| !t.trim().is_empty()) {
        return Ok((t.trim().to_string(), false));
    }
    let path = data_dir.join(REPLICA_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok((t.trim().to_string(), false)),
        Ok(_) => Err(TokenError::Empty(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = random_hex::<32>().ok_or(TokenError::Random)?;
            write_private(&path, &token).map_err(|source| TokenError::Write { path, source })?;
            Ok((token, true))
        }
        Err(source) => Err(TokenError::Read { path, source }),
    }
}

// === impl TokenRule ===

impl TokenRule {
    /// A rule that wants `token`.
    pub fn new(token: &str) -> Self {
        TokenRule {
            want: sha256(token.as_bytes()),
        }
    }

    fn allows(&self, presented: Option<&[u8]>) -> bool {
        presented.is_some_and(|t| same_digest(&sha256(t), &self.want))
    }
}

impl AccessRule for TokenRule {
    fn check(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), tonic::Status> {
        if self.allows(metadata.get(TOKEN_HEADER).map(|v| v.as_bytes())) {
            Ok(())
        } else {
            Err(tonic::Status::permission_denied(format!(
                "key sets need a valid {TOKEN_HEADER}"
            )))
        }
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, b).as_ref());
    out
}

/// Equal digests, compared without an early exit.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_token_is_created_once_private_and_random() {
        let dir = std::env::temp_dir().join(format!("tollgate-replica-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (token, created) = token_from(None, &dir).unwrap();
        assert!(created);
        assert_eq!(token.len(), 64, "256 bits as hex");
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(REPLICA_TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            token_from(None, &dir).unwrap(),
            (token.clone(), false),
            "read back, not replaced"
        );
        let other = std::env::temp_dir().join(format!("tollgate-replica-token-{}-b", std::process::id()));
        std::fs::create_dir_all(&other).unwrap();
        assert_ne!(token_from(None, &other).unwrap().0, token);
        std::fs::write(other.join(REPLICA_TOKEN_FILE), "  \n").unwrap();
        assert!(token_from(None, &other).is_err(), "an empty token file is refused");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&other);
    }

    #[test]
    fn the_variable_takes_precedence_over_the_file() {
        let dir = std::env::temp_dir().join(format!("tollgate-replica-token-{}-env", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(
            token_from(Some(" t0k ".into()), &dir).unwrap(),
            ("t0k".to_string(), false)
        );
        assert!(!dir.join(REPLICA_TOKEN_FILE).exists(), "no file made");
        assert!(
            token_from(Some("  ".into()), &dir).unwrap().1,
            "a blank variable is unset"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_rule_wants_the_exact_token() {
        let rule = TokenRule::new("secret");
        let check = |v: Option<&str>| {
            let mut m = tonic::metadata::MetadataMap::new();
            if let Some(v) = v {
                m.insert(TOKEN_HEADER, v.parse().unwrap());
            }
            rule.check(&m)
        };
        assert!(check(Some("secret")).is_ok());
        for bad in [None, Some("secre"), Some("secret "), Some("")] {
            let status = check(bad).unwrap_err();
            assert_eq!(status.code(), tonic::Code::PermissionDenied, "{bad:?}");
        }
    }
}
