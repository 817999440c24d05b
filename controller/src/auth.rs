//! Management API authentication (HTTP Basic; bcrypt, argon2id or plaintext passwords) and the
//! route → role map (reference §1.2), deny by default.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::{Role, User};
use crate::db::{Db, DbError};

/// The settings key of the generated admin's password hash.
const ADMIN_HASH_KEY: &str = "admin_password_hash";

/// The variable that sets the first admin's password.
pub const ADMIN_PASSWORD_VAR: &str = "TOLLGATE_ADMIN_PASSWORD";

/// Why the authenticator could not be built, or a password hashed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Reading or storing the admin's password hash failed.
    #[error("admin password hash: {0}")]
    Db(#[from] DbError),
    /// The OS random source failed.
    #[error("no OS randomness")]
    Random,
    /// Hashing a password failed.
    #[error("hashing: {0}")]
    Hash(argon2::password_hash::Error),
    /// A private file (the generated admin password) could not be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Checks credentials and roles.
#[derive(Debug)]
pub struct Authenticator {
    enabled: bool,
    users: Vec<User>,
    /// Digests of `user:password` pairs that verified, so slow hashes are checked once.
    verified: Mutex<HashSet<[u8; 32]>>,
}

/// The caller, once authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub username: String,
    pub roles: Vec<Role>,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No usable credentials (401).
    Missing,
    /// Wrong credentials (401).
    Failed,
    /// Authenticated but not allowed (403).
    Forbidden,
}

/// What the first start did about the admin user.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// Users come from the config file, or one was generated before.
    Nothing,
    /// The admin password came from `TOLLGATE_ADMIN_PASSWORD`.
    FromEnv,
    /// A random password was generated and written to this file.
    Generated(std::path::PathBuf),
}

// === impl Authenticator ===

impl Authenticator {
    /// Builds the authenticator. With auth on and no configured user, an `admin` user is created
    /// on first start: password from `TOLLGATE_ADMIN_PASSWORD`, else random, written to
    /// `<data_dir>/admin-password` (mode 0600). Only its hash is stored.
    pub fn new(enabled: bool, users: Vec<User>, db: &Db, data_dir: &Path) -> Result<(Self, Bootstrap), AuthError> {
        let from_env = std::env::var(ADMIN_PASSWORD_VAR).ok();
        Authenticator::with_admin_password(enabled, users, db, data_dir, from_env)
    }

    /// [`Authenticator::new`] with the value of `TOLLGATE_ADMIN_PASSWORD` given (tests pass their
    /// own, so they never depend on the environment running them).
    pub fn with_admin_password(
        enabled: bool,
        users: Vec<User>,
        db: &Db,
        data_dir: &Path,
        admin_password: Option<String>,
    ) -> Result<(Self, Bootstrap), AuthError> {
        let mut users = users;
        let mut bootstrap = Bootstrap::Nothing;
        if enabled && users.is_empty() {
            let hash = match db.setting(ADMIN_HASH_KEY)? {
                Some(h) => h,
                None => {
                    let (password, how) = match admin_password {
                        Some(p) if !p.is_empty() => (p, Bootstrap::FromEnv),
                        _ => {
                            let p = random_password()?;
                            let file = data_dir.join("admin-password");
                            write_private(&file, &p)?;
                            (p, Bootstrap::Generated(file))
                        }
                    };
                    let hash = hash_password(&password)?;
                    db.set_setting(ADMIN_HASH_KEY, &hash)?;
                    bootstrap = how;
                    hash
                }
            };
            users.push(User {
                username: "admin".into(),
                password: hash,
                password_hashed: true,
                roles: vec![Role::Admin],
            });
        }
        Ok((
            Authenticator {
                enabled,
                users,
                verified: Mutex::new(HashSet::new()),
            },
            bootstrap,
        ))
    }

    /// Whether authentication is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Authenticates an `Authorization` header value and checks the caller holds one of `allowed`.
    pub fn check(&self, authorization: Option<&str>, allowed: &[Role]) -> Result<Principal, Denied> {
        if !self.enabled {
            return Ok(Principal {
                username: "anonymous".into(),
                roles: vec![Role::Admin],
            });
        }
        let principal = self.authenticate(authorization)?;
        if principal.roles.iter().any(|r| allowed.contains(r)) {
            Ok(principal)
        } else {
            Err(Denied::Forbidden)
        }
    }

    fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, Denied> {
        let encoded = authorization
            .and_then(|h| h.strip_prefix("Basic "))
            .ok_or(Denied::Missing)?;
        let decoded = base64_decode(encoded.trim()).ok_or(Denied::Missing)?;
        let text = String::from_utf8(decoded).map_err(|_| Denied::Missing)?;
        let (name, password) = text.split_once(':').ok_or(Denied::Missing)?;
        let user = self
            .users
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(name))
            .ok_or(Denied::Failed)?;
        let key: [u8; 32] = digest(&SHA256, text.as_bytes())
            .as_ref()
            .try_into()
            .map_err(|_| Denied::Failed)?;
        let cached = self.verified.lock().map(|v| v.contains(&key)).unwrap_or(false);
        if !cached {
            if !verify(user, password) {
                return Err(Denied::Failed);
            }
            if let Ok(mut v) = self.verified.lock() {
                v.insert(key);
            }
        }
        Ok(Principal {
            username: user.username.clone(),
            roles: user.roles.clone(),
        })
    }
}

fn verify(user: &User, password: &str) -> bool {
    if !user.password_hashed {
        return constant_time_eq(user.password.as_bytes(), password.as_bytes());
    }
    let stored = user.password.as_str();
    if stored.starts_with("$2") {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    match PasswordHash::new(stored) {
        Ok(h) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// Compares digests so the time taken does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (da, db) = (digest(&SHA256, a), digest(&SHA256, b));
    da.as_ref()
        .iter()
        .zip(db.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// An argon2id PHC hash of `password`.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt).map_err(|_| AuthError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(AuthError::Hash)?;
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(AuthError::Hash)?;
    Ok(hash.to_string())
}

/// The replica token moved to the replica feature; named here for existing callers.
pub use crate::replica::token::{REPLICA_TOKEN_FILE, replica_token};

fn random_password() -> Result<String, AuthError> {
    random_hex::<18>()
}

/// `N` bytes from the OS random source, as hex.
fn random_hex<const N: usize>() -> Result<String, AuthError> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).map_err(|_| AuthError::Random)?;
    Ok(tollgate_proto::hex::encode(&bytes))
}

fn write_private(path: &Path, contents: &str) -> Result<(), AuthError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let write = || -> std::io::Result<()> {
        let mut f = opts.open(path)?;
        f.write_all(contents.as_bytes())?;
        f.write_all(b"\n")
    };
    write().map_err(|source| AuthError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u8);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let raw = format!("{user}:{pass}");
        let mut out = String::new();
        for chunk in raw.as_bytes().chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        format!("Basic {out}")
    }

    fn auth(users: Vec<User>) -> Authenticator {
        let dir = std::env::temp_dir();
        Authenticator::new(true, users, &Db::memory().unwrap(), &dir).unwrap().0
    }

    #[test]
    fn plaintext_bcrypt_and_argon2_users_authenticate() {
        let users = vec![
            User {
                username: "plain".into(),
                password: "p1".into(),
                password_hashed: false,
                roles: vec![Role::Admin],
            },
            User {
                username: "bc".into(),
                password: bcrypt::hash("p2", 4).unwrap(),
                password_hashed: true,
                roles: vec![Role::Developer],
            },
            User {
                username: "ar".into(),
                password: hash_password("p3").unwrap(),
                password_hashed: true,
                roles: vec![Role::Consumer],
            },
        ];
        let a = auth(users);
        assert_eq!(
            a.check(Some(&basic("plain", "p1")), &[Role::Admin]).unwrap().username,
            "plain"
        );
        assert!(a.check(Some(&basic("BC", "p2")), &[Role::Developer]).is_ok());
        assert!(a.check(Some(&basic("ar", "p3")), &[Role::Consumer]).is_ok());
        assert_eq!(
            a.check(Some(&basic("ar", "nope")), &[Role::Consumer]),
            Err(Denied::Failed)
        );
        assert_eq!(
            a.check(Some(&basic("ar", "p3")), &[Role::Admin]),
            Err(Denied::Forbidden)
        );
        assert_eq!(a.check(None, &[Role::Admin]), Err(Denied::Missing));
        assert_eq!(a.check(Some("Bearer x"), &[Role::Admin]), Err(Denied::Missing));
        assert_eq!(a.check(Some(&basic("ghost", "x")), &[Role::Admin]), Err(Denied::Failed));
    }

    #[test]
    fn first_start_generates_an_admin_once_and_stores_only_a_hash() {
        let dir = std::env::temp_dir().join(format!("tollgate-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::memory().unwrap();
        // No TOLLGATE_ADMIN_PASSWORD, whatever the environment running the tests holds.
        let (a, how) = Authenticator::with_admin_password(true, vec![], &db, &dir, None).unwrap();
        let file = dir.join("admin-password");
        assert_eq!(how, Bootstrap::Generated(file.clone()));
        let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(a.check(Some(&basic("admin", &password)), &[Role::Admin]).is_ok());
        let stored = db.setting(ADMIN_HASH_KEY).unwrap().unwrap();
        assert!(stored.starts_with("$argon2id$") && !stored.contains(&password));
        let (_, again) = Authenticator::with_admin_password(true, vec![], &db, &dir, None).unwrap();
        assert_eq!(again, Bootstrap::Nothing);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_first_admin_password_can_come_from_the_environment() {
        let dir = std::env::temp_dir().join(format!("tollgate-auth-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::memory().unwrap();
        let given = Some("from-the-env".to_string());
        let (a, how) = Authenticator::with_admin_password(true, vec![], &db, &dir, given).unwrap();
        assert_eq!(how, Bootstrap::FromEnv);
        assert!(
            !dir.join("admin-password").exists(),
            "no file when the password is given"
        );
        assert!(a.check(Some(&basic("admin", "from-the-env")), &[Role::Admin]).is_ok());
        let blank = Some(String::new());
        let (_, how) = Authenticator::with_admin_password(true, vec![], &Db::memory().unwrap(), &dir, blank).unwrap();
        assert!(
            matches!(how, Bootstrap::Generated(_)),
            "an empty variable counts as unset"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn disabled_auth_lets_everyone_in() {
        let a = Authenticator::new(false, vec![], &Db::memory().unwrap(), &std::env::temp_dir())
            .unwrap()
            .0;
        assert!(a.check(None, &[Role::Admin]).is_ok());
    }
}
