//! Management API authentication (HTTP Basic; bcrypt, argon2id or plaintext passwords) and the
//! route → role map (reference §1.2), deny by default.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

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

/// Checks credentials and roles. `Debug` shows who is configured, never a password or a digest.
pub struct Authenticator {
    enabled: bool,
    users: Vec<User>,
    /// Digests of `user:password` pairs that verified, so slow hashes are checked once.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// How many password hashes may be checked at once (each takes a core for tens of ms).
    verifying: tokio::sync::Semaphore,
    /// Recent failed logins by lower-cased user name (known or not) and by source address.
    failures: Mutex<HashMap<Tracked, Failures>>,
}

/// Failed logins of one name: after [`FREE_FAILURES`] in a row, each further one closes the name
/// for twice as long as the last (1 s, 2 s, ... at most [`MAX_BACKOFF`]); a success clears it.
#[derive(Debug, Default)]
struct Failures {
    count: u32,
    closed_until: Option<Instant>,
}

const FREE_FAILURES: u32 = 5;
/// One address may try several names (an office behind one NAT): it gets more free failures.
const FREE_FAILURES_PER_SOURCE: u32 = 20;

/// What failed logins are counted against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Tracked {
    /// A lower-cased user name, known or not.
    Name(String),
    /// The caller's address.
    Source(std::net::IpAddr),
}
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Names tracked at most; past it the table starts again (it only ever delays guessing).
const MAX_TRACKED: usize = 10_000;

/// Password hashes checked at the same time, at most: failed logins cannot take every core.
const CONCURRENT_VERIFIES: usize = 2;

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
    /// Too many failed logins for this name or from this address lately; not checked (429, with
    /// `Retry-After` in seconds).
    Throttled(u64),
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

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.users.iter().map(|u| u.username.as_str()).collect();
        f.debug_struct("Authenticator")
            .field("enabled", &self.enabled)
            .field("users", &names)
            .finish_non_exhaustive()
    }
}

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
                password: hash.into(),
                password_hashed: true,
                roles: vec![Role::Admin],
            });
        }
        Ok((
            Authenticator {
                enabled,
                users,
                verified: Mutex::new(HashSet::new()),
                verifying: tokio::sync::Semaphore::new(CONCURRENT_VERIFIES),
                failures: Mutex::new(HashMap::new()),
            },
            bootstrap,
        ))
    }

    /// Whether authentication is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Authenticates an `Authorization` header value and checks the caller holds one of `allowed`.
    pub async fn check(&self, authorization: Option<&str>, allowed: &[Role]) -> Result<Principal, Denied> {
        self.check_from(authorization, None, allowed).await
    }

    /// [`Authenticator::check`] for a caller at `source` (its failures are counted there too).
    pub async fn check_from(
        &self,
        authorization: Option<&str>,
        source: Option<std::net::IpAddr>,
        allowed: &[Role],
    ) -> Result<Principal, Denied> {
        if !self.enabled {
            return Ok(Principal {
                username: "anonymous".into(),
                roles: vec![Role::Admin],
            });
        }
        let principal = self.authenticate(authorization, source).await?;
        if principal.roles.iter().any(|r| allowed.contains(r)) {
            Ok(principal)
        } else {
            Err(Denied::Forbidden)
        }
    }

    /// Slow hashes are checked on the blocking pool, a few at a time, never on an async worker; an
    /// unknown user is checked against a decoy hash, so the time taken does not say which names exist.
    async fn authenticate(
        &self,
        authorization: Option<&str>,
        source: Option<std::net::IpAddr>,
    ) -> Result<Principal, Denied> {
        let encoded = authorization
            .and_then(|h| h.strip_prefix("Basic "))
            .ok_or(Denied::Missing)?;
        let decoded = base64_decode(encoded.trim()).ok_or(Denied::Missing)?;
        let text = String::from_utf8(decoded).map_err(|_| Denied::Missing)?;
        let (name, password) = text.split_once(':').ok_or(Denied::Missing)?;
        let user = self.users.iter().find(|u| u.username.eq_ignore_ascii_case(name));
        let key: [u8; 32] = digest(&SHA256, text.as_bytes())
            .as_ref()
            .try_into()
            .map_err(|_| Denied::Failed)?;
        let cached = user.is_some() && self.verified.lock().map(|v| v.contains(&key)).unwrap_or(false);
        if !cached {
            let tracked = tracked(name, source);
            self.throttled(&tracked)?;
            let _permit = self.verifying.acquire().await.map_err(|_| Denied::Failed)?;
            let (candidate, password) = (user.cloned(), password.to_string());
            let ok = tokio::task::spawn_blocking(move || match candidate {
                Some(u) => verify(&u, &password),
                None => {
                    verify(decoy(), &password);
                    false
                }
            })
            .await
            .unwrap_or(false);
            self.record(&tracked, ok);
            if !ok {
                return Err(Denied::Failed);
            }
            if let Ok(mut v) = self.verified.lock() {
                v.insert(key);
            }
        }
        let user = user.ok_or(Denied::Failed)?;
        Ok(Principal {
            username: user.username.clone(),
            roles: user.roles.clone(),
        })
    }
}

// === failed-login back-off ===

impl Authenticator {
    /// Refuses a name or source that failed too often lately, without checking the password.
    fn throttled(&self, tracked: &[Tracked]) -> Result<(), Denied> {
        let Ok(failures) = self.failures.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        let wait = tracked
            .iter()
            .filter_map(|t| failures.get(t).and_then(|f| f.closed_until))
            .filter(|until| now < *until)
            .map(|until| until - now)
            .max();
        match wait {
            // Rounded up: a client that waits exactly this long is let through.
            Some(w) => Err(Denied::Throttled(w.as_secs() + u64::from(w.subsec_nanos() > 0))),
            None => Ok(()),
        }
    }

    fn record(&self, tracked: &[Tracked], ok: bool) {
        let Ok(mut failures) = self.failures.lock() else { return };
        for t in tracked {
            if ok {
                failures.remove(t);
                continue;
            }
            if failures.len() >= MAX_TRACKED && !failures.contains_key(t) {
                failures.clear();
            }
            let free = match t {
                Tracked::Name(_) => FREE_FAILURES,
                Tracked::Source(_) => FREE_FAILURES_PER_SOURCE,
            };
            let f = failures.entry(t.clone()).or_default();
            f.count = f.count.saturating_add(1);
            if f.count >= free {
                let doublings = (f.count - free).min(16);
                let backoff = Duration::from_secs(1u64 << doublings).min(MAX_BACKOFF);
                f.closed_until = Some(Instant::now() + backoff);
            }
        }
    }
}

/// What a login attempt counts against: the name, and the source when known.
fn tracked(name: &str, source: Option<std::net::IpAddr>) -> Vec<Tracked> {
    let mut t = vec![Tracked::Name(name.to_ascii_lowercase())];
    t.extend(source.map(Tracked::Source));
    t
}

/// A user no one can log in as, with an argon2id hash, checked in place of an unknown user.
fn decoy() -> &'static User {
    static DECOY: OnceLock<User> = OnceLock::new();
    DECOY.get_or_init(|| {
        let secret = crate::secret::random_hex::<18>().unwrap_or_default();
        let (password, hashed) = match hash_password(&secret) {
            Ok(h) => (h, true),
            Err(_) => (secret, false),
        };
        User {
            username: String::new(),
            password: password.into(),
            password_hashed: hashed,
            roles: Vec::new(),
        }
    })
}

fn verify(user: &User, password: &str) -> bool {
    if !user.password_hashed {
        return constant_time_eq(user.password.expose().as_bytes(), password.as_bytes());
    }
    let stored = user.password.expose().as_str();
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
    crate::secret::random_hex::<18>().ok_or(AuthError::Random)
}

fn write_private(path: &Path, contents: &str) -> Result<(), AuthError> {
    crate::secret::write_private(path, contents).map_err(|source| AuthError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Base64 (standard alphabet), padding optional, as clients send `Basic` credentials.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(s).ok()
}

/// The user name and password of an `Authorization: Basic` header value.
pub(crate) fn basic_credentials(header: &str) -> Option<(String, String)> {
    let decoded = base64_decode(header.strip_prefix("Basic ")?.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Authenticator {
        /// [`Authenticator::check`] on a runtime of its own, for the synchronous tests below.
        fn check_now(&self, authorization: Option<&str>, allowed: &[Role]) -> Result<Principal, Denied> {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(self.check(authorization, allowed))
        }
    }

    /// Issue #13: after five failures in a row a name is closed for a while (429, not even a right
    /// password is checked); other names are not affected.
    #[test]
    fn repeated_failures_back_off() {
        let plain = |name: &str| User {
            username: name.into(),
            password: "right".into(),
            password_hashed: false,
            roles: vec![Role::Admin],
        };
        let a = auth(vec![plain("alice"), plain("bob")]);
        for _ in 0..FREE_FAILURES {
            assert_eq!(
                a.check_now(Some(&basic("alice", "wrong")), &[Role::Admin]),
                Err(Denied::Failed)
            );
        }
        assert!(matches!(
            a.check_now(Some(&basic("Alice", "right")), &[Role::Admin]),
            Err(Denied::Throttled(1))
        ));
        assert!(a.check_now(Some(&basic("bob", "right")), &[Role::Admin]).is_ok());
        // Unknown names are tracked alike, so guessing names is slowed too.
        for _ in 0..FREE_FAILURES {
            assert_eq!(
                a.check_now(Some(&basic("ghost", "x")), &[Role::Admin]),
                Err(Denied::Failed)
            );
        }
        assert!(matches!(
            a.check_now(Some(&basic("ghost", "x")), &[Role::Admin]),
            Err(Denied::Throttled(_))
        ));
    }

    /// Issue #13: one address failing with many names is closed too, and says when to come back.
    #[test]
    fn a_source_failing_with_many_names_backs_off() {
        let a = auth(vec![User {
            username: "carol".into(),
            password: "right".into(),
            password_hashed: false,
            roles: vec![Role::Admin],
        }]);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let from = |ip: [u8; 4], name: &str, password: &str| {
            let header = basic(name, password);
            rt.block_on(a.check_from(Some(&header), Some(std::net::IpAddr::from(ip)), &[Role::Admin]))
        };
        for i in 0..FREE_FAILURES_PER_SOURCE {
            assert_eq!(from([10, 0, 0, 1], &format!("guess{i}"), "x"), Err(Denied::Failed));
        }
        assert!(matches!(from([10, 0, 0, 1], "carol", "right"), Err(Denied::Throttled(s)) if s >= 1));
        assert!(
            from([10, 0, 0, 2], "carol", "right").is_ok(),
            "other addresses are not affected"
        );
    }

    /// Issue #13: a password hash is checked on the blocking pool, so a one-thread runtime keeps
    /// running other tasks meanwhile; an unknown user fails like a wrong password.
    #[test]
    fn slow_hashes_are_checked_off_the_async_workers() {
        let hashed = User {
            username: "ar".into(),
            password: hash_password("p3").unwrap().into(),
            password_hashed: true,
            roles: vec![Role::Consumer],
        };
        let a = auth(vec![hashed]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let order = std::sync::Mutex::new(Vec::new());
        rt.block_on(async {
            let check = async {
                let r = a.check(Some(&basic("ar", "wrong")), &[Role::Consumer]).await;
                order.lock().unwrap().push("check");
                r
            };
            let other = async {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                order.lock().unwrap().push("other task");
            };
            let (r, ()) = tokio::join!(check, other);
            assert_eq!(r, Err(Denied::Failed));
        });
        assert_eq!(
            *order.lock().unwrap(),
            ["other task", "check"],
            "the hash did not block the runtime"
        );
        assert_eq!(
            a.check_now(Some(&basic("ghost", "p3")), &[Role::Consumer]),
            Err(Denied::Failed)
        );
        assert!(a.check_now(Some(&basic("ar", "p3")), &[Role::Consumer]).is_ok());
    }

    fn basic(user: &str, pass: &str) -> String {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
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
                password: bcrypt::hash("p2", 4).unwrap().into(),
                password_hashed: true,
                roles: vec![Role::Developer],
            },
            User {
                username: "ar".into(),
                password: hash_password("p3").unwrap().into(),
                password_hashed: true,
                roles: vec![Role::Consumer],
            },
        ];
        let a = auth(users);
        assert_eq!(
            a.check_now(Some(&basic("plain", "p1")), &[Role::Admin])
                .unwrap()
                .username,
            "plain"
        );
        assert!(a.check_now(Some(&basic("BC", "p2")), &[Role::Developer]).is_ok());
        assert!(a.check_now(Some(&basic("ar", "p3")), &[Role::Consumer]).is_ok());
        assert_eq!(
            a.check_now(Some(&basic("ar", "nope")), &[Role::Consumer]),
            Err(Denied::Failed)
        );
        assert_eq!(
            a.check_now(Some(&basic("ar", "p3")), &[Role::Admin]),
            Err(Denied::Forbidden)
        );
        assert_eq!(a.check_now(None, &[Role::Admin]), Err(Denied::Missing));
        assert_eq!(a.check_now(Some("Bearer x"), &[Role::Admin]), Err(Denied::Missing));
        assert_eq!(
            a.check_now(Some(&basic("ghost", "x")), &[Role::Admin]),
            Err(Denied::Failed)
        );
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
        assert!(a.check_now(Some(&basic("admin", &password)), &[Role::Admin]).is_ok());
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
        assert!(
            a.check_now(Some(&basic("admin", "from-the-env")), &[Role::Admin])
                .is_ok()
        );
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
        assert!(a.check_now(None, &[Role::Admin]).is_ok());
    }

    #[test]
    fn basic_credentials_decode_with_or_without_padding() {
        assert_eq!(base64_decode("YWxpY2U6cHc=").as_deref(), Some(&b"alice:pw"[..]));
        assert_eq!(base64_decode("YWxpY2U6cHc").as_deref(), Some(&b"alice:pw"[..]));
        assert_eq!(base64_decode("not base64!"), None);
    }
}
