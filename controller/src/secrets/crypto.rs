//! Encryption of stored secret values: AES-256-GCM (ring) with a fresh random 96-bit nonce per
//! value and the secret's id as associated data, so a ciphertext copied onto another row does
//! not decrypt. The stored form names the key that sealed it:
//! `enc:aesgcm:v1:<key version>:<base64(nonce ‖ ciphertext ‖ tag)>`.
//!
//! Keys come from `TOLLGATE_SECRET_KEYS` (`version:base64,...`, the first encrypts) or else from
//! the files `<data dir>/secret-keys/<version>.key` (base64 of 32 bytes; the highest version
//! encrypts). Every configured key decrypts, so a new key can be added and values re-encrypted
//! (`tollgate secrets rotate`) before the old one is removed.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::secret::Secret;

/// The environment variable that carries the keys (and overrides the key files).
pub const KEYS_VAR: &str = "TOLLGATE_SECRET_KEYS";
/// The folder under the data directory that holds the key files.
pub const KEY_DIR: &str = "secret-keys";
/// The key version generated on first start.
const FIRST_VERSION: &str = "v1";
/// The prefix of every stored value.
const PREFIX: &str = "enc:aesgcm:v1:";

/// Why keys could not be loaded or a value could not be sealed or opened. Messages never hold a
/// key or a value.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A key file or the key folder could not be read or written.
    #[error("secret key file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A configured key is not base64 of exactly 32 bytes, or its version is not a plain name.
    #[error("secret key '{version}' from {from} is invalid: {reason}")]
    BadKey {
        version: String,
        from: String,
        reason: &'static str,
    },
    /// No key is configured but encrypted values are stored: they cannot be read.
    #[error(
        "no secret encryption key in {dir} (nor {KEYS_VAR}) but {stored} secret(s) are stored: restore the key file (or set {KEYS_VAR}); a new key cannot read them"
    )]
    NoKeys { dir: PathBuf, stored: usize },
    /// A stored value names a key version that is not configured.
    #[error(
        "secret '{id}' was encrypted with key '{version}', which is not configured: restore that key file (or add it to {KEYS_VAR})"
    )]
    UnknownVersion { id: String, version: String },
    /// A stored value does not decrypt with the key of its version: the key was replaced or the
    /// value altered.
    #[error("secret '{id}' does not decrypt with key '{version}': the key was replaced or the stored value altered")]
    Undecryptable { id: String, version: String },
    /// A stored value is not in the stored form.
    #[error("secret '{id}' is not stored in the expected encrypted form")]
    Malformed { id: String },
    /// The OS random source failed (a nonce or a key could not be made).
    #[error("the system random source failed")]
    Random,
}

/// One key: its version and the AEAD key made of its 32 bytes (ring never prints those).
#[derive(Clone)]
struct Key {
    version: String,
    aead: LessSafeKey,
}

/// The configured keys, the first of which encrypts.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<Key>,
}

/// Where the keys of a [`Keyring`] came from, for the start-up log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `TOLLGATE_SECRET_KEYS`.
    Env,
    /// Files under the key folder.
    Files,
    /// A key file generated now, none having existed.
    Generated(PathBuf),
}

// === impl Keyring ===

impl Keyring {
    /// Keys from `TOLLGATE_SECRET_KEYS` (looked up with `env`) or the key files under
    /// `data_dir`; with neither, a new key file is generated, unless `stored` secrets exist
    /// (they were sealed with a key that is now lost: a clear error, never a new key).
    pub fn load(
        data_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        stored: usize,
    ) -> Result<(Keyring, KeySource), CryptoError> {
        if let Some(text) = env(KEYS_VAR).filter(|t| !t.trim().is_empty()) {
            return Ok((Keyring::from_env(&text)?, KeySource::Env));
        }
        let dir = data_dir.join(KEY_DIR);
        let found = read_dir(&dir)?;
        if !found.is_empty() {
            return Ok((Keyring { keys: found }, KeySource::Files));
        }
        if stored > 0 {
            return Err(CryptoError::NoKeys { dir, stored });
        }
        let path = generate(&dir)?;
        let keys = read_dir(&dir)?;
        Ok((Keyring { keys }, KeySource::Generated(path)))
    }

    /// Keys written as `version:base64` separated by commas; the first encrypts.
    pub fn from_env(text: &str) -> Result<Keyring, CryptoError> {
        let mut keys = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (version, b64) = item.split_once(':').ok_or_else(|| CryptoError::BadKey {
                version: String::new(),
                from: KEYS_VAR.into(),
                reason: "each key is written version:base64",
            })?;
            keys.push(Key::parse(version.trim(), b64, KEYS_VAR)?);
        }
        if keys.is_empty() {
            return Err(CryptoError::BadKey {
                version: String::new(),
                from: KEYS_VAR.into(),
                reason: "no key",
            });
        }
        Ok(Keyring { keys })
    }

    /// One new random key of version `version` (tests, and keys made for the environment).
    pub fn random(version: &str) -> Result<Keyring, CryptoError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).map_err(|_| CryptoError::Random)?;
        Ok(Keyring {
            keys: vec![Key::parse(version, &B64.encode(bytes), "random")?],
        })
    }

    /// The version of the key that encrypts.
    pub fn current(&self) -> &str {
        &self.keys[0].version
    }

    /// The versions configured, the encrypting one first.
    pub fn versions(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.version.as_str()).collect()
    }

    /// Seals `value` for secret `id` with the current key.
    pub fn encrypt(&self, id: &str, value: &str) -> Result<String, CryptoError> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let mut data = value.as_bytes().to_vec();
        key.aead
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(id.as_bytes()), &mut data)
            .map_err(|_| CryptoError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{PREFIX}{}:{}", key.version, B64.encode(out)))
    }

    /// Opens a stored value of secret `id`.
    pub fn decrypt(&self, id: &str, stored: &str) -> Result<Secret<String>, CryptoError> {
        let malformed = || CryptoError::Malformed { id: id.into() };
        let (version, b64) = stored
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .ok_or_else(malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.version == version)
            .ok_or_else(|| CryptoError::UnknownVersion {
                id: id.into(),
                version: version.into(),
            })?;
        let raw = B64.decode(b64).map_err(|_| malformed())?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(malformed());
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| malformed())?;
        let mut sealed = sealed.to_vec();
        let undecryptable = || CryptoError::Undecryptable {
            id: id.into(),
            version: version.into(),
        };
        let plain = key
            .aead
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut sealed)
            .map_err(|_| undecryptable())?;
        String::from_utf8(plain.to_vec())
            .map(Secret::new)
            .map_err(|_| undecryptable())
    }

    /// The version a stored value was sealed with.
    pub fn version_of(stored: &str) -> Option<&str> {
        stored.strip_prefix(PREFIX)?.split_once(':').map(|(v, _)| v)
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("versions", &self.versions()).finish()
    }
}

// === impl Key ===

impl Key {
    fn parse(version: &str, b64: &str, from: &str) -> Result<Key, CryptoError> {
        let bad = |reason| CryptoError::BadKey {
            version: version.into(),
            from: from.into(),
            reason,
        };
        let plain_name = !version.is_empty()
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !plain_name {
            return Err(bad("the version must be letters, digits, '.', '_' or '-'"));
        }
        let raw = B64.decode(b64.trim()).map_err(|_| bad("not base64"))?;
        if raw.len() != 32 {
            return Err(bad("an AES-256 key is 32 bytes"));
        }
        let key = UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| bad("an AES-256 key is 32 bytes"))?;
        Ok(Key {
            version: version.into(),
            aead: LessSafeKey::new(key),
        })
    }
}

/// The keys in `dir` (`<version>.key`), highest version first; none when `dir` does not exist.
fn read_dir(dir: &Path) -> Result<Vec<Key>, CryptoError> {
    let file_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CryptoError::File { path, source }
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(file_err(dir)(e)),
    };
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry.map_err(file_err(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("key") {
            continue;
        }
        let version = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&path).map_err(file_err(&path))?;
        keys.push(Key::parse(&version, &text, &path.display().to_string())?);
    }
    keys.sort_by(|a, b| rank(&b.version).cmp(&rank(&a.version)));
    Ok(keys)
}

/// Orders versions by their trailing number (`v10` after `v9`), then by name.
fn rank(version: &str) -> (u64, &str) {
    let digits = version.len() - version.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let n = version[version.len() - digits..].parse().unwrap_or(0);
    (n, version)
}

/// Writes a new random key as `<dir>/v1.key` (mode 0600, the folder 0700).
fn generate(dir: &Path) -> Result<PathBuf, CryptoError> {
    std::fs::create_dir_all(dir).map_err(|source| CryptoError::File {
        path: dir.to_path_buf(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| CryptoError::Random)?;
    let path = dir.join(format!("{FIRST_VERSION}.key"));
    crate::secret::write_private(&path, &B64.encode(bytes)).map_err(|source| CryptoError::File {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}
